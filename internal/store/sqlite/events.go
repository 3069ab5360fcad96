package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fusebox/internal/event"
	"fusebox/internal/store"
)

// EventAppend implements store.Store.
func (db *DB) EventAppend(ctx context.Context, ev event.Event) (int64, error) {
	var seq int64
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		var err error
		seq, err = emit(ev)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: event append %s: %w", ev.Type, err)
	}
	return seq, nil
}

// emitFunc appends an event inside a write transaction (see writeEvents).
type emitFunc func(ev event.Event) (int64, error)

// writeEvents is write for transactions that append events: fn appends
// them with emit, and after the commit the event hook learns the greatest
// Seq appended. Every write that appends an event goes through it.
func (db *DB) writeEvents(ctx context.Context, fn func(tx *sql.Tx, emit emitFunc) error) error {
	var last int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		last = 0
		return fn(tx, func(ev event.Event) (int64, error) {
			seq, err := insertEvent(ctx, tx, ev)
			if err == nil {
				last = seq
			}
			return seq, err
		})
	})
	if err == nil && last > 0 {
		if hook := db.eventHook.Load(); hook != nil {
			(*hook)(last)
		}
	}
	return err
}

// insertEvent appends ev in tx and returns its Seq.
func insertEvent(ctx context.Context, tx *sql.Tx, ev event.Event) (int64, error) {
	switch {
	case ev.Type == "":
		return 0, errors.New("invalid event: Type is empty")
	case ev.At.IsZero():
		return 0, errors.New("invalid event: At is zero")
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return 0, errors.New("invalid event: Data is not JSON")
	}
	if err := checkTimes(times{{"at", &ev.At}}); err != nil {
		return 0, fmt.Errorf("invalid event: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO events (at, type, job_id, host, attempt, data) VALUES (?, ?, ?, ?, ?, ?)`,
		nanos(ev.At), ev.Type, ev.JobID, ev.Host, ev.Attempt, string(ev.Data))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// EventLastSeq implements store.Store: AUTOINCREMENT keeps the greatest
// Seq ever used in sqlite_sequence.
func (db *DB) EventLastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("sqlite: event last seq: %w", err)
	}
	return seq, nil
}

// SetEventHook implements store.Store.
func (db *DB) SetEventHook(fn func(lastSeq int64)) {
	if fn == nil {
		db.eventHook.Store(nil)
		return
	}
	db.eventHook.Store(&fn)
}

// EventList implements store.Store.
func (db *DB) EventList(ctx context.Context, p store.EventListParams) ([]event.Event, error) {
	where := []string{"seq > ?"}
	args := []any{p.AfterSeq}
	if len(p.Types) > 0 {
		where = append(where, "type IN (?"+strings.Repeat(", ?", len(p.Types)-1)+")")
		for _, t := range p.Types {
			args = append(args, t)
		}
	}
	if p.JobID != "" {
		where = append(where, "job_id = ?")
		args = append(args, p.JobID)
	}
	if p.Host != "" {
		where = append(where, "host = ?")
		args = append(args, p.Host)
	}
	if !p.Since.IsZero() {
		if err := checkTimes(times{{"since", &p.Since}}); err != nil {
			return nil, fmt.Errorf("sqlite: event list: %w", err)
		}
		where = append(where, "at >= ?")
		args = append(args, nanos(p.Since))
	}
	args = append(args, limit(p.Limit))
	rows, err := db.r.QueryContext(ctx, `SELECT seq, at, type, job_id, host, attempt, data FROM events
		WHERE `+strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event list: %w", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var ev event.Event
		var at int64
		var data string
		if err := rows.Scan(&ev.Seq, &at, &ev.Type, &ev.JobID, &ev.Host, &ev.Attempt, &data); err != nil {
			return nil, fmt.Errorf("sqlite: event list: %w", err)
		}
		ev.At = fromNanos(at)
		if data != "" {
			ev.Data = json.RawMessage(data)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: event list: %w", err)
	}
	return out, nil
}

// transitionEvent is the event of a job transition.
func transitionEvent(jobID, from, to, reason, host string, attempt int, outcome string, at int64) event.Event {
	return event.Event{At: fromNanos(at), Type: event.TypeJobTransition, JobID: jobID, Host: host, Attempt: attempt,
		Data: event.MarshalData(event.JobTransition{From: from, To: to, Reason: reason, Outcome: outcome})}
}
