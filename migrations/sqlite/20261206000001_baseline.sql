-- Homeward's schema on SQLite: the same tables as on PostgreSQL (see `../postgres/`), in SQLite's
-- types. Ids are 16-byte blobs, times are RFC 3339 text in UTC as sqlx writes them (which sort as
-- the instants they name), booleans are 0 and 1, and lists are JSON arrays or rows of their own.
-- One process writes, through one connection: the checks PostgreSQL makes under locks are made
-- there, in order.

-- The event log: the single source of truth. Append-only.
CREATE TABLE streams (
    stream_id   TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    -- Insert order is commit order: one writer, one transaction at a time.
    global_position INTEGER PRIMARY KEY,
    -- The writing transaction, counted from 1.
    tx_number       INTEGER NOT NULL,
    stream_id       TEXT NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    -- UUIDv5 of (command id, index): a retried command produces the same ids.
    event_id        BLOB NOT NULL UNIQUE,
    command_id      BLOB NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_commit_order ON events (tx_number, global_position);

-- Read models, updated in the append's transaction and rebuildable from the log.
CREATE TABLE plan_view (
    plan_id          BLOB PRIMARY KEY,
    version          INTEGER NOT NULL,
    person_id        BLOB NOT NULL,
    template_name    TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    case_worker      BLOB NOT NULL,
    organisation     BLOB NOT NULL,
    origin_country   TEXT NOT NULL,
    status           TEXT NOT NULL,
    suspended        INTEGER NOT NULL,
    opened_at        TEXT NOT NULL,
    departed_at      TEXT,
    arrived_at       TEXT,
    closed_at        TEXT,
    close_reason     TEXT,
    next_due_at      TEXT,
    steps_total      INTEGER NOT NULL,
    steps_open       INTEGER NOT NULL,
    steps_done       INTEGER NOT NULL,
    steps_blocked    INTEGER NOT NULL
);
CREATE INDEX plan_view_case_worker ON plan_view (case_worker);
CREATE INDEX plan_view_person ON plan_view (person_id);
CREATE INDEX plan_view_listing ON plan_view (organisation, opened_at DESC, plan_id DESC);

CREATE TABLE step_view (
    plan_id         BLOB NOT NULL,
    step_key        TEXT NOT NULL,
    position        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,
    assignee        BLOB,
    candidate_group TEXT,
    priority        INTEGER NOT NULL,
    due_at          TEXT,
    follow_up_on    TEXT,
    document_status TEXT,
    status_reason   TEXT,
    PRIMARY KEY (plan_id, step_key)
) WITHOUT ROWID;
-- The inbox: a party's open tasks by due date.
CREATE INDEX step_view_inbox ON step_view (assignee, due_at) WHERE status NOT IN ('done', 'cancelled');

CREATE TABLE party_view (
    party_id     BLOB PRIMARY KEY,
    version      INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    organisation BLOB NOT NULL,
    country      TEXT NOT NULL,
    language     TEXT NOT NULL,
    time_zone    TEXT NOT NULL,
    supervisor   BLOB,
    active       INTEGER NOT NULL
);
CREATE INDEX party_view_email ON party_view (lower(email));
CREATE INDEX party_view_name ON party_view (display_name, party_id);

-- `works_with`: a JSON array of the organisations' ids (hyphenated text), in id order.
CREATE TABLE organisation_view (
    organisation_id  BLOB PRIMARY KEY,
    version          INTEGER NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    country          TEXT NOT NULL,
    works_with       TEXT NOT NULL,
    retention_months INTEGER NOT NULL
);
CREATE INDEX organisation_view_name ON organisation_view (name, organisation_id);

CREATE TABLE person_view (
    person_id    BLOB PRIMARY KEY,
    version      INTEGER NOT NULL,
    organisation BLOB NOT NULL,
    erased_at    TEXT,
    held_since   TEXT
);
CREATE INDEX person_view_organisation ON person_view (organisation) WHERE erased_at IS NULL;

-- Reminder timers derived from plan state, claimed by a worker for a lease (see the PostgreSQL
-- schema). The projection never touches the claim columns.
CREATE TABLE timers (
    timer_id        BLOB PRIMARY KEY,
    plan_id         BLOB NOT NULL,
    step_key        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    fire_at         TEXT NOT NULL,
    recipient_party BLOB NOT NULL,
    recipient_role  TEXT NOT NULL,
    claimed_by      BLOB,
    lease_until     TEXT,
    attempts        INTEGER
);
CREATE INDEX timers_due ON timers (fire_at);
CREATE INDEX timers_plan ON timers (plan_id);

CREATE TABLE digests (
    party_id    BLOB PRIMARY KEY,
    due_at      TEXT NOT NULL,
    claimed_by  BLOB,
    lease_until TEXT,
    attempts    INTEGER
);
CREATE INDEX digests_due ON digests (due_at);

-- API bearer tokens: only a SHA-256 of each.
CREATE TABLE api_tokens (
    token_id     BLOB PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    party_id     BLOB NOT NULL,
    role         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    issued_by    BLOB,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_party ON api_tokens (party_id);

CREATE TABLE invitations (
    invitation_id BLOB PRIMARY KEY,
    secret_hash   BLOB NOT NULL UNIQUE,
    party_id      BLOB NOT NULL,
    issued_by     BLOB,
    issued_at     TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);
CREATE INDEX invitations_party ON invitations (party_id) WHERE used_at IS NULL;

CREATE TABLE sign_in_links (
    secret_hash BLOB PRIMARY KEY,
    party_id    BLOB NOT NULL,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX sign_in_links_party ON sign_in_links (party_id) WHERE used_at IS NULL;

CREATE TABLE console_sessions (
    session_id   BLOB PRIMARY KEY,
    secret_hash  BLOB NOT NULL UNIQUE,
    party_id     BLOB NOT NULL,
    token_id     BLOB,
    started_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT
);

CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);

-- Each survivor's data key, only ever wrapped by the master key; erasure sets `wrapped_key` to
-- NULL and keeps the row. Her organisation is kept for the blind index.
CREATE TABLE person_keys (
    person_id    BLOB PRIMARY KEY,
    wrapped_key  BLOB,
    created_at   TEXT NOT NULL,
    erased_at    TEXT,
    organisation BLOB,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- The blind index: each keyed hash a person is found by, in her organisation. Written with her
-- key, replaced by a correction of her name or date of birth, erased with her key.
CREATE TABLE person_terms (
    organisation BLOB NOT NULL,
    term         BLOB NOT NULL,
    person_id    BLOB NOT NULL,
    PRIMARY KEY (organisation, term, person_id)
) WITHOUT ROWID;
CREATE INDEX person_terms_person ON person_terms (person_id);

-- The access audit, append-only (the triggers refuse to change or delete a row). `fields`: a
-- JSON array of the field paths read.
CREATE TABLE access_log (
    entry_id  INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    party_id  BLOB NOT NULL,
    person_id BLOB NOT NULL,
    fields    TEXT NOT NULL,
    operation TEXT NOT NULL
);
CREATE INDEX access_log_person ON access_log (person_id, at DESC, entry_id DESC);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access audit is append-only: its rows are never changed or deleted');
END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access audit is append-only: its rows are never changed or deleted');
END;

-- Idempotency keys of API requests, as keyed hashes (see the PostgreSQL schema).
CREATE TABLE idempotency_keys (
    party_id    BLOB NOT NULL,
    key_hash    BLOB NOT NULL,
    operation   TEXT NOT NULL,
    target      TEXT,
    fingerprint BLOB NOT NULL,
    command_id  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (party_id, key_hash)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
