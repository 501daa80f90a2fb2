-- Homeward's schema: the event log, its read models and what the workers and the API keep beside
-- them. The SQL functions that write to them are in `functions.sql`, applied at every start.

-- The event log: the single source of truth. Append-only.

-- Every stream, written once when it is created. The head version is not kept here: it is
-- the last row of the stream in `events` (one index probe under the stream lock), which spares
-- every append an UPDATE of this table.
CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    stream_type text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    -- Insert order, not commit order: catch-up readers order by (tx_id, global_position) and
    -- read only below the oldest running transaction (see read_all in the store).
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version > 0),
    -- UUIDv5 of (command id, index): a retried command produces the same ids, and the first
    -- event's id finds the result of a command already appended (idempotency).
    event_id        uuid NOT NULL UNIQUE,
    command_id      uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  smallint NOT NULL,
    payload         jsonb NOT NULL,
    -- actor, correlation id
    metadata        jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
) WITH (fillfactor = 100);

CREATE INDEX events_commit_order ON events (tx_id, global_position);

-- Read models, updated in the append's transaction and rebuildable from the log. The rows of a
-- plan are updated by nearly every command: with room left on each page (fillfactor 70),
-- PostgreSQL updates a row in place (a HOT update) when no indexed column changes, and skips the
-- index entries a moved row needs.
CREATE TABLE plan_view (
    plan_id          uuid PRIMARY KEY,
    version          bigint NOT NULL,
    person_id        uuid NOT NULL,
    template_name    text NOT NULL,
    template_version integer NOT NULL,
    case_worker      uuid NOT NULL,
    organisation     uuid NOT NULL,
    origin_country   text NOT NULL,
    status           text NOT NULL,
    suspended        boolean NOT NULL,
    opened_at        timestamptz NOT NULL,
    departed_at      timestamptz,
    arrived_at       timestamptz,
    closed_at        timestamptz,
    close_reason     text,
    next_due_at      timestamptz,
    steps_total      integer NOT NULL,
    steps_open       integer NOT NULL,
    steps_done       integer NOT NULL,
    steps_blocked    integer NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX plan_view_case_worker ON plan_view (case_worker);
CREATE INDEX plan_view_person ON plan_view (person_id);
CREATE INDEX plan_view_organisation ON plan_view (organisation, status);
-- Plan lists: an organisation's plans, newest first.
CREATE INDEX plan_view_listing ON plan_view (organisation, opened_at DESC, plan_id DESC);

CREATE TABLE step_view (
    plan_id         uuid NOT NULL,
    step_key        text NOT NULL,
    position        integer NOT NULL,
    kind            text NOT NULL,
    title           text NOT NULL,
    status          text NOT NULL,
    assignee        uuid,
    candidate_group text,
    priority        smallint NOT NULL,
    due_at          timestamptz,
    follow_up_on    date,
    document_status text,
    status_reason   text,
    PRIMARY KEY (plan_id, step_key)
) WITH (fillfactor = 70);
-- The inbox: a party's open tasks by due date.
CREATE INDEX step_view_inbox ON step_view (assignee, due_at) WHERE status NOT IN ('done', 'cancelled');

CREATE TABLE party_view (
    party_id     uuid PRIMARY KEY,
    version      bigint NOT NULL,
    display_name text NOT NULL,
    email        text NOT NULL,
    role         text NOT NULL,
    organisation uuid NOT NULL,
    country      text NOT NULL,
    language     text NOT NULL,
    time_zone    text NOT NULL,
    supervisor   uuid,
    active       boolean NOT NULL
);
-- Whom a console sign-in link for an address goes to.
CREATE INDEX party_view_email ON party_view (lower(email));

-- Organisations by id; two may share a name. `works_with`: the organisations whose people may be
-- given steps of this one's plans.
CREATE TABLE organisation_view (
    organisation_id uuid PRIMARY KEY,
    version         bigint NOT NULL,
    name            text NOT NULL,
    kind            text NOT NULL,
    country         text NOT NULL,
    works_with      uuid[] NOT NULL,
    -- Months a survivor's data is kept after her last plan closes.
    retention_months integer NOT NULL
);
CREATE INDEX organisation_view_name ON organisation_view (name, organisation_id);

-- Survivors, without their data: whose they are, and what the retention rule needs to know.
CREATE TABLE person_view (
    person_id    uuid PRIMARY KEY,
    version      bigint NOT NULL,
    organisation uuid NOT NULL,
    erased_at    timestamptz,
    -- Since when a legal hold keeps her data; NULL when none does.
    held_since   timestamptz
);
CREATE INDEX person_view_organisation ON person_view (organisation) WHERE erased_at IS NULL;

-- Reminder timers derived from plan state. A worker claims due ones with FOR UPDATE SKIP LOCKED
-- and holds them for a lease; a timer whose lease ran out (its worker died) is due again. The
-- projection never touches the claim columns (it inserts new timers with ON CONFLICT DO NOTHING
-- and deletes cancelled ones), so a claim survives a command that re-arms the same timer.
-- `attempts` counts failed deliveries, for the backoff (NULL is none).
CREATE TABLE timers (
    timer_id        uuid PRIMARY KEY,
    plan_id         uuid NOT NULL,
    step_key        text NOT NULL,
    kind            text NOT NULL,
    fire_at         timestamptz NOT NULL,
    recipient_party uuid NOT NULL,
    recipient_role  text NOT NULL,
    claimed_by      uuid,
    lease_until     timestamptz,
    attempts        integer
);
CREATE INDEX timers_due ON timers (fire_at);
CREATE INDEX timers_plan ON timers (plan_id);

-- Digests: one row per party with a digest schedule, due at the next occurrence of its cron
-- expression in the party's time zone. Like `timers`, a projection of the party stream (the
-- next occurrence follows from the schedule and the last digest recorded) with claim columns
-- the projection leaves alone while the occurrence stays the same.
CREATE TABLE digests (
    party_id    uuid PRIMARY KEY,
    due_at      timestamptz NOT NULL,
    claimed_by  uuid,
    lease_until timestamptz,
    attempts    integer
);
CREATE INDEX digests_due ON digests (due_at);

-- The read-model rows as the store sends them to the functions; each has the columns of its
-- table, in the table's order.
CREATE TYPE homeward_plan_row AS (
    plan_id uuid, version bigint, person_id uuid, template_name text, template_version integer,
    case_worker uuid, organisation uuid, origin_country text, status text, suspended boolean,
    opened_at timestamptz, departed_at timestamptz, arrived_at timestamptz,
    closed_at timestamptz, close_reason text, next_due_at timestamptz, steps_total integer,
    steps_open integer, steps_done integer, steps_blocked integer
);
CREATE TYPE homeward_step_row AS (
    plan_id uuid, step_key text, position integer, kind text, title text, status text,
    assignee uuid, candidate_group text, priority smallint, due_at timestamptz,
    follow_up_on date, document_status text, status_reason text
);
CREATE TYPE homeward_step_ref AS (plan_id uuid, step_key text);
-- A timer as the projection arms it: `timers` without the scheduler's claim columns.
CREATE TYPE homeward_timer_row AS (
    timer_id uuid, plan_id uuid, step_key text, kind text, fire_at timestamptz,
    recipient_party uuid, recipient_role text
);
CREATE TYPE homeward_party_row AS (
    party_id uuid, version bigint, display_name text, email text, role text,
    organisation uuid, country text, language text, time_zone text, supervisor uuid,
    active boolean
);
CREATE TYPE homeward_organisation_row AS (
    organisation_id uuid, version bigint, name text, kind text, country text, works_with uuid[],
    retention_months integer
);
CREATE TYPE homeward_person_row AS (
    person_id uuid, version bigint, organisation uuid, erased_at timestamptz,
    held_since timestamptz
);
CREATE TYPE homeward_digest_row AS (party_id uuid, due_at timestamptz);
-- What homeward_append_commands answers: each append's refusal (all NULL when written) and
-- the version its stream was at.
CREATE TYPE homeward_append_answer AS (refusals text[], heads bigint[]);

-- API bearer tokens. Credentials, not case data: kept beside the log, never in it. Only a
-- SHA-256 of the token is stored (tokens are 256 random bits, so a slow hash adds nothing);
-- the token itself is printed once when it is created.
CREATE TABLE api_tokens (
    token_id     uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    party_id     uuid NOT NULL,
    role         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The admin who issued it through the API; null for the server's command line.
    issued_by    uuid,
    expires_at   timestamptz NOT NULL,
    -- The hour it was last used in (written at most once an hour per replica).
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_party ON api_tokens (party_id);

-- Invitations: a party's single-use link to create their own token, emailed to them. Only a
-- SHA-256 of the link's secret is stored. A new invitation withdraws the party's earlier ones.
CREATE TABLE invitations (
    invitation_id uuid PRIMARY KEY,
    secret_hash   bytea NOT NULL UNIQUE,
    party_id      uuid NOT NULL,
    issued_by     uuid,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    -- Set once: when it was used, or withdrawn by a newer one.
    used_at       timestamptz
);
CREATE INDEX invitations_party ON invitations (party_id) WHERE used_at IS NULL;

-- The web console's sign-in links: emailed to a party, used once, valid minutes. Only a SHA-256
-- of the link's secret is stored; a new link withdraws the party's earlier unused ones.
CREATE TABLE sign_in_links (
    secret_hash bytea PRIMARY KEY,
    party_id    uuid NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- Set once: when it was used, or withdrawn by a newer one.
    used_at     timestamptz
);
CREATE INDEX sign_in_links_party ON sign_in_links (party_id) WHERE used_at IS NULL;

-- The web console's sessions: only a SHA-256 of the cookie's secret is stored. A session ends
-- when its party signs out, after its idle limit, at its absolute end, when its party is
-- deactivated, or with the token it was started by.
CREATE TABLE console_sessions (
    session_id   uuid PRIMARY KEY,
    secret_hash  bytea NOT NULL UNIQUE,
    party_id     uuid NOT NULL,
    token_id     uuid,
    started_at   timestamptz NOT NULL,
    -- When it was last seen (written at most once a minute).
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);

-- Server-wide secrets shared by every replica, created on first start: the key that signs
-- partner links (HOMEWARD_LINK_SECRET overrides it) and the key of idempotency-key hashes.
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);

-- Each survivor's data key, only ever wrapped by the master key (AES-256-GCM, bound to the
-- person). Erasure sets `wrapped_key` to NULL and keeps the row: what was sealed under the key is
-- then unreadable for good, and readers can tell an erased person from one never seen.
--
-- Beside it, the blind index that finds her by name and date of birth without plaintext: her
-- organisation, and keyed hashes (HMAC-SHA-256 under the search key, which is not the master
-- key, bound to the organisation) of each folded part of her name and of the date, in hex. A
-- search asks for the rows of an organisation whose terms contain every term asked for. They
-- are written with her key (a registration costs no statement more), replaced by a correction
-- of her name or date of birth, and erased with her key. Not a read model: a rebuild cannot
-- recompute them from the sealed log.
CREATE TABLE person_keys (
    person_id    uuid PRIMARY KEY,
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    organisation uuid,
    search_terms text[],
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL)),
    CHECK (wrapped_key IS NOT NULL OR search_terms IS NULL)
);
CREATE INDEX person_keys_search ON person_keys (organisation) WHERE search_terms IS NOT NULL;

-- The access audit: one row per operation that returned a person's personal data (who, when,
-- which fields, through what), written before the response is sent. Append-only: the trigger
-- below refuses to change or delete a row.
CREATE TABLE access_log (
    entry_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    party_id  uuid NOT NULL,
    person_id uuid NOT NULL,
    fields    text[] NOT NULL,
    operation text NOT NULL
);
CREATE INDEX access_log_person ON access_log (person_id, at DESC, entry_id DESC);

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
