-- The read-model rows of a plan are updated by nearly every command. With room left on each
-- page, PostgreSQL can update a row in place (a HOT update) when no indexed column changes, and
-- skip the index entries a moved row needs: cheaper commands.
ALTER TABLE plan_view SET (fillfactor = 70);
ALTER TABLE step_view SET (fillfactor = 70);
