-- 0006: operator alerts (internal/alert). alert_states is the last known
-- state of each alert by fingerprint; alert_notices is the outbox of
-- webhook bodies, delivered in id order per receiver; alert_receivers keeps
-- each receiver's last delivery and last error; alert_cursor is the event
-- sequence number the evaluator has processed.

CREATE TABLE alert_states (
    fingerprint TEXT    PRIMARY KEY,
    labels      TEXT    NOT NULL,            -- JSON object
    annotations TEXT    NOT NULL,            -- JSON object
    status      TEXT    NOT NULL,            -- firing | resolved
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL DEFAULT 0,  -- 0 while firing
    sent_at     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- Retention of resolved alerts.
CREATE INDEX alert_states_resolved ON alert_states (ends_at) WHERE status = 'resolved';

CREATE TABLE alert_notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver     TEXT    NOT NULL,
    webhook_id   TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    delivered_at INTEGER NOT NULL DEFAULT 0  -- 0 until delivered
) STRICT;

-- A receiver's head (AlertNextNotice) and its pending count.
CREATE INDEX alert_notices_pending ON alert_notices (receiver, id) WHERE delivered_at = 0;
-- Retention of delivered notices.
CREATE INDEX alert_notices_delivered ON alert_notices (delivered_at) WHERE delivered_at != 0;

CREATE TABLE alert_receivers (
    receiver          TEXT    PRIMARY KEY,
    last_delivered_at INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    last_error_at     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE alert_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
