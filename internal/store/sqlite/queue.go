package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/store"
)

// QueueKeyList implements store.Store. It reads queue_keys, which triggers
// keep in step with the jobs' states.
func (db *DB) QueueKeyList(ctx context.Context) ([]store.QueueKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT constraints_key, n FROM queue_keys ORDER BY constraints_key`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queue key list: %w", err)
	}
	defer rows.Close()
	var keys []store.QueueKey
	for rows.Next() {
		var k store.QueueKey
		if err := rows.Scan(&k.Key, &k.Queued); err != nil {
			return nil, fmt.Errorf("sqlite: queue key list: %w", err)
		}
		if k.Key != "" {
			if err := json.Unmarshal([]byte(k.Key), &k.Constraints); err != nil {
				return nil, fmt.Errorf("sqlite: queue key list: key %q: %w", k.Key, err)
			}
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: queue key list: %w", err)
	}
	return keys, nil
}

// JobListReady implements store.Store. The query reads the index jobs_ready
// alone, which covers every column of the light row; the jobs that come
// before the cursor and are still queued (waiting for a backoff) are
// stepped over in the index.
func (db *DB) JobListReady(ctx context.Context, p store.JobListReadyParams) ([]store.QueuedJob, error) {
	if err := checkTimes(times{{"now", &p.Now}}); err != nil {
		return nil, fmt.Errorf("sqlite: job list ready: %w", err)
	}
	query := `SELECT id, attempt, host, image, reason, priority, created_at, not_before
		FROM jobs INDEXED BY jobs_ready
		WHERE state = 'queued' AND constraints_key = ? AND not_before <= ?`
	args := []any{p.Key, nanos(p.Now)}
	if a := p.After; a != nil {
		query += ` AND (priority < ? OR (priority = ? AND (created_at > ? OR (created_at = ? AND id > ?))))`
		c := nanos(a.CreatedAt)
		args = append(args, a.Priority, a.Priority, c, c, a.ID)
	}
	query += ` ORDER BY priority DESC, created_at, id LIMIT ?`
	args = append(args, limit(p.Limit))
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job list ready: %w", err)
	}
	defer rows.Close()
	var out []store.QueuedJob
	for rows.Next() {
		q := store.QueuedJob{Key: p.Key}
		var created, notBefore int64
		if err := rows.Scan(&q.ID, &q.Attempt, &q.Host, &q.Image, &q.Reason, &q.Priority, &created, &notBefore); err != nil {
			return nil, fmt.Errorf("sqlite: job list ready: %w", err)
		}
		q.CreatedAt, q.NotBefore = fromNanos(created), fromNanos(notBefore)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: job list ready: %w", err)
	}
	return out, nil
}

// differentReason selects the rowids of the ready queued jobs of key ?1
// whose reason differs from ?2 at ?3, through the index jobs_wait_reason:
// "reason <> ?" would scan every job of the key, two ranges visit only the
// rows to change.
const differentReason = `SELECT rowid FROM jobs INDEXED BY jobs_wait_reason
		WHERE state = 'queued' AND constraints_key = ?1 AND reason < ?2 AND not_before <= ?3
	UNION ALL
	SELECT rowid FROM jobs INDEXED BY jobs_wait_reason
		WHERE state = 'queued' AND constraints_key = ?1 AND reason > ?2 AND not_before <= ?3`

// JobSetWaitReason implements store.Store. It looks on a read connection
// first, so that the usual case (every reason already right) takes no
// write lock and no fsync; the limit keeps each write transaction short
// when the reason of a long queue changes.
func (db *DB) JobSetWaitReason(ctx context.Context, p store.JobSetWaitReasonParams) (int, error) {
	if p.Now.IsZero() {
		return 0, errors.New("sqlite: job set wait reason: invalid params: Now is zero")
	}
	if err := checkTimes(times{{"now", &p.Now}}); err != nil {
		return 0, fmt.Errorf("sqlite: job set wait reason: %w", err)
	}
	now := nanos(p.Now)
	err := db.r.QueryRowContext(ctx, differentReason+` LIMIT 1`, p.Key, p.Reason, now).Scan(new(int64))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: job set wait reason: %w", err)
	}
	var n int64
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET reason = ?2, updated_at = ?3 WHERE rowid IN (`+differentReason+` LIMIT ?4)`,
			p.Key, p.Reason, now, limit(p.Limit))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: job set wait reason: %w", err)
	}
	return int(n), nil
}

// JobNextNotBefore implements store.Store.
func (db *DB) JobNextNotBefore(ctx context.Context, now time.Time) (time.Time, error) {
	var next sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT min(not_before) FROM jobs INDEXED BY jobs_not_before
		WHERE state = 'queued' AND not_before > ?`, nanos(now)).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: job next not before: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromNanos(next.Int64), nil
}

// terminalStates is the SQL list of the terminal states, as in the partial
// index jobs_finished (a query must repeat it for the index to apply).
const terminalStates = `('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')`

// JobDeleteFinished implements store.Store. Transitions, attempts and logs
// go with their job (ON DELETE CASCADE), and its events (a trigger). A job with a fence is kept until
// the fence is cleared: its record is what says what became of the
// container it may have left.
func (db *DB) JobDeleteFinished(ctx context.Context, p store.JobDeleteFinishedParams) (int, error) {
	if p.Before.IsZero() {
		return 0, errors.New("sqlite: job delete finished: invalid params: Before is zero")
	}
	if err := checkTimes(times{{"before", &p.Before}}); err != nil {
		return 0, fmt.Errorf("sqlite: job delete finished: %w", err)
	}
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id IN (
			SELECT id FROM jobs INDEXED BY jobs_finished
			WHERE state IN `+terminalStates+` AND updated_at < ?
				AND NOT EXISTS (SELECT 1 FROM fences WHERE fences.job_id = jobs.id)
			ORDER BY updated_at LIMIT ?)`,
			nanos(p.Before), limit(p.Limit))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events INDEXED BY events_unowned_at
			WHERE job_id = '' AND at < ? ORDER BY at LIMIT ?)`,
			nanos(p.Before), store.EventPruneFactor*limit(p.Limit))
		if err != nil {
			return err
		}
		return pruneAlerts(ctx, tx, nanos(p.Before), store.EventPruneFactor*limit(p.Limit))
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: job delete finished: %w", err)
	}
	return int(n), nil
}
