-- 0007: how a job ended, typed (job.Cause: exit, timeout, host, ...), and
-- the artifacts collected from its container (JSON list of job.Output).

ALTER TABLE jobs ADD COLUMN cause TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN outputs TEXT NOT NULL DEFAULT '';
