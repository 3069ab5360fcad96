-- 0005: each host's operator state (isolated, draining) and the operator
-- action that set it last: who, why, when. It survives a restart; the
-- history of the actions is the event log (type operator.action).

CREATE TABLE host_operators (
    host     TEXT    PRIMARY KEY,
    isolated INTEGER NOT NULL DEFAULT 0,
    draining INTEGER NOT NULL DEFAULT 0,
    action   TEXT    NOT NULL,              -- the last action: isolate, drain, release, reset
    by_name  TEXT    NOT NULL,
    reason   TEXT    NOT NULL DEFAULT '',
    at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
