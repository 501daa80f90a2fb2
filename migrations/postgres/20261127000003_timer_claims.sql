-- Scheduler claims: a worker takes due timers with FOR UPDATE SKIP LOCKED and holds them for a
-- lease; a timer whose lease ran out (its worker died) is due again. The projection never touches
-- these columns (it inserts new timers with ON CONFLICT DO NOTHING and deletes cancelled ones), so
-- a claim survives a command that re-arms the same timer.
-- `attempts` counts failed deliveries, for the backoff (NULL is none: the projection inserts
-- timers from JSON rows, which leave it NULL).
ALTER TABLE timers
    ADD COLUMN claimed_by  uuid,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN attempts    integer;
