-- 0008: workflow runs (internal/workflow), their steps, and the step
-- cache. A run keeps its resolved definition as JSON; a step its outputs.
-- cache_entries are successful steps' outputs by cache key.

CREATE TABLE workflow_runs (
    id               TEXT    PRIMARY KEY,
    workflow         TEXT    NOT NULL,
    task_id          TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL,
    reason           TEXT    NOT NULL DEFAULT '',
    cause            TEXT    NOT NULL DEFAULT '',
    params           TEXT    NOT NULL DEFAULT '',  -- JSON object
    skip_cache       INTEGER NOT NULL DEFAULT 0,
    use_breaker      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    definition       TEXT    NOT NULL,             -- JSON of def.Resolved
    results          TEXT    NOT NULL DEFAULT '',  -- JSON list of wfrun.Result
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER NOT NULL DEFAULT 0,
    finished_at      INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE INDEX workflow_runs_created ON workflow_runs (created_at, id);
CREATE INDEX workflow_runs_task ON workflow_runs (task_id, created_at) WHERE task_id != '';
CREATE INDEX workflow_runs_active ON workflow_runs (created_at, id)
    WHERE state NOT IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX workflow_runs_finished ON workflow_runs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE workflow_steps (
    run_id      TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    ord         INTEGER NOT NULL,             -- order in the definition
    id          TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    job_id      TEXT    NOT NULL DEFAULT '',
    try         INTEGER NOT NULL DEFAULT 0,
    host        TEXT    NOT NULL DEFAULT '',
    next_at     INTEGER NOT NULL DEFAULT 0,
    cache_key   TEXT    NOT NULL DEFAULT '',
    cached      INTEGER NOT NULL DEFAULT 0,
    why_ran     TEXT    NOT NULL DEFAULT '',
    job_cause   TEXT    NOT NULL DEFAULT '',
    outputs     TEXT    NOT NULL DEFAULT '',  -- JSON list of job.Output
    updated_at  INTEGER NOT NULL,
    started_at  INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE workflow_cache (
    key        TEXT    PRIMARY KEY,
    workflow   TEXT    NOT NULL,
    step       TEXT    NOT NULL,
    parts      TEXT    NOT NULL,  -- JSON object: key part -> digest of its value
    outputs    TEXT    NOT NULL,  -- JSON list of job.Output
    run_id     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX workflow_cache_step ON workflow_cache (workflow, step, created_at);
CREATE INDEX workflow_cache_expires ON workflow_cache (expires_at);
