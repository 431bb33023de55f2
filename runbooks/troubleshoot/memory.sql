-- Fixture for troubleshoot.memory (seed 004, "Performance Issues - Memory Issues"): the LEAPS
-- tracker (leaps.sql) and an export that sorted more than work_mem holds, so it spilled to
-- temporary files -- what pg_stat_database counts per database (once this session has ended
-- and reported its statistics).
\ir leaps.sql

SET work_mem = '64kB';
SELECT count(*) FROM (SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g ORDER BY h) export;
RESET work_mem;
