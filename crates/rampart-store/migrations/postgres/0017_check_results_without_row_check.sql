-- A run's check results are written only by the ingestion transaction that inserts the run
-- itself (`runs.rs`: the rows of the runs its INSERT returned), so the foreign key from
-- `check_results.run_id` checked what that transaction had just made true, once per check
-- result: a trigger call, an index probe of `runs` and a row lock, about half the cost of the
-- insert itself (363,000 rows: 2.9 s with the key, 1.4-1.7 s without, PostgreSQL 15 on two
-- cores; docs/performance.md, "Fleet server"). What the key also did, removing a run's check
-- results with the run, a statement trigger does now for any DELETE on `runs`, one statement
-- per DELETE instead of one per row.
ALTER TABLE check_results DROP CONSTRAINT check_results_run_id_fkey;

CREATE FUNCTION delete_check_results_of_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM check_results c USING deleted_runs d WHERE c.run_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_delete_check_results
    AFTER DELETE ON runs
    REFERENCING OLD TABLE AS deleted_runs
    FOR EACH STATEMENT EXECUTE FUNCTION delete_check_results_of_runs();
