-- 0004: the event log. seq is the stream's sequence number: AUTOINCREMENT
-- never reuses one, even after the newest events are deleted, and the one
-- writer commits them in order.

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    job_id  TEXT    NOT NULL DEFAULT '',   -- '' for an event of no job
    host    TEXT    NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    data    TEXT    NOT NULL DEFAULT ''    -- a JSON object, or ''
) STRICT;

-- EventList filtered by job, host or type, in seq order.
CREATE INDEX events_job ON events (job_id, seq);
CREATE INDEX events_host ON events (host, seq);
CREATE INDEX events_type ON events (type, seq);
-- Retention of the events of no job, oldest first.
CREATE INDEX events_unowned_at ON events (at) WHERE job_id = '';

-- A job's events go with it (JobDeleteFinished).
CREATE TRIGGER jobs_delete_events AFTER DELETE ON jobs BEGIN
    DELETE FROM events WHERE job_id = old.id;
END;
