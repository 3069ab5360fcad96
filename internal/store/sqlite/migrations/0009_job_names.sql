-- 0009: a job's name (spec.name, NULL if none), looked up by JobList's
-- Name filter; at most one job that has not ended holds a name.

ALTER TABLE jobs ADD COLUMN name TEXT;
UPDATE jobs SET name = json_extract(spec, '$.name') WHERE json_extract(spec, '$.name') != '';
CREATE UNIQUE INDEX jobs_active_name ON jobs (name)
    WHERE name IS NOT NULL AND state IN ('queued', 'launching', 'running');
CREATE INDEX jobs_name_created ON jobs (name, created_at, id) WHERE name IS NOT NULL;
