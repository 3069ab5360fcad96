package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/store"
)

// AlertEnqueue implements store.Store.
func (db *DB) AlertEnqueue(ctx context.Context, p store.AlertEnqueueParams) error {
	if err := checkAlertEnqueue(&p); err != nil {
		return fmt.Errorf("sqlite: alert enqueue: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, s := range p.States {
			labels, err := json.Marshal(nonNil(s.Labels))
			if err != nil {
				return err
			}
			ann, err := json.Marshal(nonNil(s.Annotations))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_states
				(fingerprint, labels, annotations, status, starts_at, ends_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, annotations = excluded.annotations,
					status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at, sent_at = excluded.sent_at`,
				s.Fingerprint, string(labels), string(ann), s.Status, nanos(s.StartsAt), nanos(s.EndsAt), nanos(s.SentAt)); err != nil {
				return err
			}
		}
		for _, n := range p.Notices {
			created := n.CreatedAt
			if created.IsZero() {
				created = p.At
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_notices (receiver, webhook_id, body, created_at)
				VALUES (?, ?, ?, ?)`, n.Receiver, n.WebhookID, n.Body, nanos(created)); err != nil {
				return err
			}
		}
		if p.Cursor > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_cursor (id, seq) VALUES (1, ?)
				ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)`, p.Cursor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: alert enqueue: %w", err)
	}
	return nil
}

func checkAlertEnqueue(p *store.AlertEnqueueParams) error {
	if p.At.IsZero() {
		return errors.New("invalid params: At is zero")
	}
	ts := times{{"at", &p.At}}
	for i := range p.States {
		s := &p.States[i]
		switch {
		case s.Fingerprint == "":
			return fmt.Errorf("invalid params: state %d: Fingerprint is empty", i)
		case s.Status != store.AlertFiring && s.Status != store.AlertResolved:
			return fmt.Errorf("invalid params: state %s: status %q: must be firing or resolved", s.Fingerprint, s.Status)
		}
		ts = append(ts, times{{"starts_at", &s.StartsAt}, {"ends_at", &s.EndsAt}, {"sent_at", &s.SentAt}}...)
	}
	for i := range p.Notices {
		n := &p.Notices[i]
		switch {
		case n.Receiver == "":
			return fmt.Errorf("invalid params: notice %d: Receiver is empty", i)
		case n.WebhookID == "":
			return fmt.Errorf("invalid params: notice %d: WebhookID is empty", i)
		case len(n.Body) == 0:
			return fmt.Errorf("invalid params: notice %d: Body is empty", i)
		}
		ts = append(ts, times{{"created_at", &n.CreatedAt}}...)
	}
	return checkTimes(ts)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// AlertStates implements store.Store.
func (db *DB) AlertStates(ctx context.Context) ([]store.AlertState, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT fingerprint, labels, annotations, status, starts_at, ends_at, sent_at
		FROM alert_states ORDER BY fingerprint`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: alert states: %w", err)
	}
	defer rows.Close()
	var out []store.AlertState
	for rows.Next() {
		var s store.AlertState
		var labels, ann string
		var starts, ends, sent int64
		if err := rows.Scan(&s.Fingerprint, &labels, &ann, &s.Status, &starts, &ends, &sent); err != nil {
			return nil, fmt.Errorf("sqlite: alert states: %w", err)
		}
		if err := json.Unmarshal([]byte(labels), &s.Labels); err != nil {
			return nil, fmt.Errorf("sqlite: alert states: %s labels: %w", s.Fingerprint, err)
		}
		if err := json.Unmarshal([]byte(ann), &s.Annotations); err != nil {
			return nil, fmt.Errorf("sqlite: alert states: %s annotations: %w", s.Fingerprint, err)
		}
		s.StartsAt, s.EndsAt, s.SentAt = fromNanos(starts), fromNanos(ends), fromNanos(sent)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: alert states: %w", err)
	}
	return out, nil
}

// AlertCursor implements store.Store.
func (db *DB) AlertCursor(ctx context.Context) (int64, error) {
	var seq int64
	err := db.r.QueryRowContext(ctx, `SELECT seq FROM alert_cursor WHERE id = 1`).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: alert cursor: %w", err)
	}
	return seq, nil
}

const noticeColumns = `id, receiver, webhook_id, body, created_at, attempts, next_at, last_error, delivered_at`

// AlertNextNotice implements store.Store.
func (db *DB) AlertNextNotice(ctx context.Context, receiver string) (store.AlertNotice, bool, error) {
	var n store.AlertNotice
	var created, next, delivered int64
	err := db.r.QueryRowContext(ctx, `SELECT `+noticeColumns+` FROM alert_notices INDEXED BY alert_notices_pending
		WHERE receiver = ? AND delivered_at = 0 ORDER BY id LIMIT 1`, receiver).
		Scan(&n.ID, &n.Receiver, &n.WebhookID, &n.Body, &created, &n.Attempts, &next, &n.LastError, &delivered)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AlertNotice{}, false, nil
	}
	if err != nil {
		return store.AlertNotice{}, false, fmt.Errorf("sqlite: alert next notice of %s: %w", receiver, err)
	}
	n.CreatedAt, n.NextAt, n.DeliveredAt = fromNanos(created), fromNanos(next), fromNanos(delivered)
	return n, true, nil
}

// AlertNoticeDelivered implements store.Store.
func (db *DB) AlertNoticeDelivered(ctx context.Context, id int64, at time.Time, ev event.Event) error {
	if at.IsZero() {
		return errors.New("sqlite: alert notice delivered: invalid params: at is zero")
	}
	if ev.Type != event.TypeAlertDelivery {
		return fmt.Errorf("sqlite: alert notice delivered: invalid event type %q, want %s", ev.Type, event.TypeAlertDelivery)
	}
	if err := checkTimes(times{{"at", &at}}); err != nil {
		return fmt.Errorf("sqlite: alert notice delivered: %w", err)
	}
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		var receiver string
		var delivered int64
		err := tx.QueryRowContext(ctx, `SELECT receiver, delivered_at FROM alert_notices WHERE id = ?`, id).Scan(&receiver, &delivered)
		if err != nil {
			return mapErr(err)
		}
		if delivered != 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alert_notices SET delivered_at = ? WHERE id = ?`, nanos(at), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_receivers (receiver, last_delivered_at) VALUES (?, ?)
			ON CONFLICT (receiver) DO UPDATE SET last_delivered_at = excluded.last_delivered_at`, receiver, nanos(at)); err != nil {
			return err
		}
		_, err = emit(ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: alert notice %d delivered: %w", id, err)
	}
	return nil
}

// AlertNoticeFailed implements store.Store.
func (db *DB) AlertNoticeFailed(ctx context.Context, id int64, errMsg string, nextAt, at time.Time) error {
	if at.IsZero() {
		return errors.New("sqlite: alert notice failed: invalid params: at is zero")
	}
	if err := checkTimes(times{{"next_at", &nextAt}, {"at", &at}}); err != nil {
		return fmt.Errorf("sqlite: alert notice failed: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var receiver string
		var delivered int64
		err := tx.QueryRowContext(ctx, `SELECT receiver, delivered_at FROM alert_notices WHERE id = ?`, id).Scan(&receiver, &delivered)
		if err != nil {
			return mapErr(err)
		}
		if delivered != 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alert_notices SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?`,
			errMsg, nanos(nextAt), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO alert_receivers (receiver, last_error, last_error_at) VALUES (?, ?, ?)
			ON CONFLICT (receiver) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
			receiver, errMsg, nanos(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: alert notice %d failed: %w", id, err)
	}
	return nil
}

// AlertReceiverStats implements store.Store.
func (db *DB) AlertReceiverStats(ctx context.Context) ([]store.AlertReceiverStats, error) {
	rows, err := db.r.QueryContext(ctx, `WITH names AS (
			SELECT receiver FROM alert_receivers
			UNION SELECT DISTINCT receiver FROM alert_notices INDEXED BY alert_notices_pending WHERE delivered_at = 0)
		SELECT n.receiver,
			(SELECT count(*) FROM alert_notices p INDEXED BY alert_notices_pending WHERE p.receiver = n.receiver AND p.delivered_at = 0),
			coalesce(r.last_delivered_at, 0), coalesce(r.last_error, ''), coalesce(r.last_error_at, 0)
		FROM names n LEFT JOIN alert_receivers r ON r.receiver = n.receiver
		ORDER BY n.receiver`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: alert receiver stats: %w", err)
	}
	defer rows.Close()
	var out []store.AlertReceiverStats
	for rows.Next() {
		var s store.AlertReceiverStats
		var delivered, errAt int64
		if err := rows.Scan(&s.Receiver, &s.Pending, &delivered, &s.LastError, &errAt); err != nil {
			return nil, fmt.Errorf("sqlite: alert receiver stats: %w", err)
		}
		s.LastDeliveredAt, s.LastErrorAt = fromNanos(delivered), fromNanos(errAt)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: alert receiver stats: %w", err)
	}
	return out, nil
}

// pruneAlerts deletes up to n delivered notices and n resolved states that
// ended before before (nanoseconds), in tx; part of JobDeleteFinished.
func pruneAlerts(ctx context.Context, tx *sql.Tx, before int64, n int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM alert_notices WHERE id IN (
		SELECT id FROM alert_notices INDEXED BY alert_notices_delivered
		WHERE delivered_at != 0 AND delivered_at < ? ORDER BY delivered_at LIMIT ?)`, before, n); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM alert_states WHERE fingerprint IN (
		SELECT fingerprint FROM alert_states INDEXED BY alert_states_resolved
		WHERE status = 'resolved' AND ends_at < ? ORDER BY ends_at LIMIT ?)`, before, n)
	return err
}
