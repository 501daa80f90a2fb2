-- API bearer tokens. Credentials, not case data: kept beside the log, never in it. Only a
-- SHA-256 of the token is stored (tokens are 256 random bits, so a slow hash adds nothing);
-- the token itself is printed once when it is created.
CREATE TABLE api_tokens (
    token_id    uuid PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    party_id    uuid NOT NULL,
    role        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_party ON api_tokens (party_id);

-- Plan lists: an organisation's plans, newest first.
CREATE INDEX plan_view_listing ON plan_view (organisation, opened_at DESC, plan_id DESC);
