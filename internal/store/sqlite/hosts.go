package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"fusebox/internal/event"
	"fusebox/internal/store"
)

// operatorActionData is the Data of an event.TypeOperatorAction event.
type operatorActionData struct {
	Action string `json:"action"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// HostActionRecord implements store.Store.
func (db *DB) HostActionRecord(ctx context.Context, a store.HostAction) (store.HostOperator, error) {
	if err := checkHostAction(&a); err != nil {
		return store.HostOperator{}, fmt.Errorf("sqlite: host action: %w", err)
	}
	var out store.HostOperator
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		out = store.HostOperator{Host: a.Host}
		err := tx.QueryRowContext(ctx, `SELECT isolated, draining FROM host_operators WHERE host = ?`, a.Host).
			Scan(&out.Isolated, &out.Draining)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		switch a.Action {
		case store.HostActionIsolate:
			out.Isolated = true
		case store.HostActionDrain:
			out.Draining = true
		case store.HostActionRelease:
			out.Isolated, out.Draining = false, false
		case store.HostActionReset:
			out.Isolated = false
		}
		out.Last = a
		if _, err := tx.ExecContext(ctx, `INSERT INTO host_operators (host, isolated, draining, action, by_name, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET isolated = excluded.isolated, draining = excluded.draining,
				action = excluded.action, by_name = excluded.by_name, reason = excluded.reason, at = excluded.at`,
			a.Host, out.Isolated, out.Draining, a.Action, a.By, a.Reason, nanos(a.At)); err != nil {
			return err
		}
		_, err = emit(event.Event{At: a.At, Type: event.TypeOperatorAction, Host: a.Host,
			Data: event.MarshalData(operatorActionData{Action: a.Action, By: a.By, Reason: a.Reason})})
		return err
	})
	if err != nil {
		return store.HostOperator{}, fmt.Errorf("sqlite: host action %s on %s: %w", a.Action, a.Host, err)
	}
	out.Last.At = fromNanos(nanos(a.At))
	return out, nil
}

func checkHostAction(a *store.HostAction) error {
	switch {
	case a.Host == "":
		return errors.New("host is empty")
	case a.By == "":
		return errors.New("by is empty")
	case a.At.IsZero():
		return errors.New("at is zero")
	}
	switch a.Action {
	case store.HostActionIsolate, store.HostActionDrain, store.HostActionRelease, store.HostActionReset:
	default:
		return fmt.Errorf("action %q: must be isolate, drain, release or reset", a.Action)
	}
	return checkTimes(times{{"at", &a.At}})
}

// HostOperatorList implements store.Store.
func (db *DB) HostOperatorList(ctx context.Context) ([]store.HostOperator, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT host, isolated, draining, action, by_name, reason, at
		FROM host_operators ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: host operators: %w", err)
	}
	defer rows.Close()
	var out []store.HostOperator
	for rows.Next() {
		var o store.HostOperator
		var at int64
		if err := rows.Scan(&o.Host, &o.Isolated, &o.Draining, &o.Last.Action, &o.Last.By, &o.Last.Reason, &at); err != nil {
			return nil, fmt.Errorf("sqlite: host operators: %w", err)
		}
		o.Last.Host, o.Last.At = o.Host, fromNanos(at)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: host operators: %w", err)
	}
	return out, nil
}
