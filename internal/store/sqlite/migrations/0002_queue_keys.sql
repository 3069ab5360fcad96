-- 0002: the scheduler's view of the queue, independent of its length and of
-- spec sizes; retention of finished jobs.
--
-- constraints_key is store.ConstraintsKey(spec.constraints): the scheduler
-- groups queued jobs by it, since whether a job can be placed now depends on
-- its constraints only (image and the host to avoid only order the hosts).
-- image is spec.image, so that a queued job's light row never reads the spec.

ALTER TABLE jobs ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN constraints_key TEXT NOT NULL DEFAULT '';

UPDATE jobs SET image = coalesce(json_extract(spec, '$.image'), ''),
    constraints_key = coalesce(json(json_extract(spec, '$.constraints')), '');

-- JobListReady: one key's ready jobs in dispatch order, read from the index
-- alone (it covers every column of the light row).
CREATE INDEX jobs_ready ON jobs (constraints_key, priority DESC, created_at, id,
    not_before, attempt, host, image, reason) WHERE state = 'queued';
-- JobSetWaitReason: only the rows whose reason differs are visited.
CREATE INDEX jobs_wait_reason ON jobs (constraints_key, reason, not_before) WHERE state = 'queued';
-- JobNextNotBefore.
CREATE INDEX jobs_not_before ON jobs (not_before) WHERE state = 'queued';
-- JobDeleteFinished: a finished job's updated_at is the time it finished.
CREATE INDEX jobs_finished ON jobs (updated_at)
    WHERE state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost');

-- The constraint keys of the queued jobs and how many have each, kept by
-- triggers in the transaction that changes a job's state (as job_counts):
-- a scheduling pass reads the keys without scanning the queue. A key's row
-- goes when its last queued job leaves.
CREATE TABLE queue_keys (
    constraints_key TEXT    NOT NULL PRIMARY KEY,
    n               INTEGER NOT NULL CHECK (n > 0)
) STRICT, WITHOUT ROWID;

INSERT INTO queue_keys (constraints_key, n)
    SELECT constraints_key, count(*) FROM jobs WHERE state = 'queued' GROUP BY constraints_key;

CREATE TRIGGER queue_keys_insert AFTER INSERT ON jobs WHEN new.state = 'queued' BEGIN
    INSERT INTO queue_keys (constraints_key, n) VALUES (new.constraints_key, 1)
        ON CONFLICT (constraints_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queue_keys_enter AFTER UPDATE OF state ON jobs
    WHEN new.state = 'queued' AND old.state <> 'queued' BEGIN
    INSERT INTO queue_keys (constraints_key, n) VALUES (new.constraints_key, 1)
        ON CONFLICT (constraints_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queue_keys_leave AFTER UPDATE OF state ON jobs
    WHEN old.state = 'queued' AND new.state <> 'queued' BEGIN
    DELETE FROM queue_keys WHERE constraints_key = old.constraints_key AND n = 1;
    UPDATE queue_keys SET n = n - 1 WHERE constraints_key = old.constraints_key;
END;

CREATE TRIGGER queue_keys_delete AFTER DELETE ON jobs WHEN old.state = 'queued' BEGIN
    DELETE FROM queue_keys WHERE constraints_key = old.constraints_key AND n = 1;
    UPDATE queue_keys SET n = n - 1 WHERE constraints_key = old.constraints_key;
END;
