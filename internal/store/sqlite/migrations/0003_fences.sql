-- 0003: fences. A fence is a container fusebox may have left on a host it
-- could not reach (a launch whose answer was lost, a job whose host was
-- declared lost): the host gets no other job until the container is
-- confirmed gone.

CREATE TABLE fences (
    host       TEXT    NOT NULL,
    job_id     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    container  TEXT    NOT NULL,            -- the attempt's container name
    reason     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (host, job_id, attempt)
) STRICT, WITHOUT ROWID;
