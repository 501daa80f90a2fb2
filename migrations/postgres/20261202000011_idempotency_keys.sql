-- Idempotency keys of API requests, scoped to the party that sent them. A key is stored only as a
-- keyed hash, with a keyed fingerprint of the request it was first used for (operation, target
-- and arguments) and that request's command id, whose events are its first result: no personal
-- data. A request with a known key and the same fingerprint gets the first result; with another
-- fingerprint it is refused.
CREATE TABLE idempotency_keys (
    party_id        uuid NOT NULL,
    key_hash        bytea NOT NULL,
    operation       text NOT NULL,
    target          text,
    fingerprint     bytea NOT NULL,
    command_id      uuid NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (party_id, key_hash)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
