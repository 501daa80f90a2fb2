-- PL/pgSQL plans each statement of these functions afresh for its first calls and then keeps
-- a generic plan only if that looks no dearer than planning every time. For the statement
-- that reads the streams' heads, and the one that records new streams, it often did not: their
-- array arguments are estimated at their real length when planned afresh and at 100 rows when
-- generic. Measured with pg_stat_statements over a benchmark: one call in four of
-- homeward_append_exact planned the heads statement again, at about 150 µs each (more than the
-- statement's own run). With sequential scans off (the previous migration) the generic plans
-- of these functions are the index probes they should be whatever the table sizes, so they are
-- kept for good.
ALTER FUNCTION homeward_append(text, text, bigint, uuid, uuid[], text[], smallint[], jsonb[],
                               jsonb, timestamptz, jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION homeward_append_batch(text[], text[], bigint[], uuid[], jsonb[], timestamptz[],
                                     jsonb[], integer[], uuid[], text[], smallint[], jsonb[],
                                     jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION homeward_append_exact(text[], text[], bigint[], uuid[], jsonb[], timestamptz[],
                                     integer[], uuid[], text[], smallint[], jsonb[], jsonb)
    SET plan_cache_mode = force_generic_plan;
