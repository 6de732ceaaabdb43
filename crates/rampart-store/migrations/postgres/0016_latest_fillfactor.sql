-- Every stored run updates the latest-result row of each of its checks. On a full page the new
-- row version goes to another page, and every index of the table then gets an entry for it;
-- with room left on each page PostgreSQL keeps the new version beside the old one and touches
-- no index (a heap-only update), as long as no indexed column changes. Of the columns an
-- update writes only `status` is indexed, and most checks of most runs keep their status. In
-- `rampart bench fleet` four updates in ten were not heap-only at the default fill factor
-- (docs/performance.md, "Fleet server"). Pages written from now on keep 30 % free; VACUUM FULL
-- (or pg_repack) rewrites the existing ones.
ALTER TABLE latest_results SET (fillfactor = 70);
