// Package sqlite is the SQLite implementation of store.Store: fusebox's jobs,
// their transitions, attempts and logs in one database file.
//
// It owns that file and its schema (migrations/*.sql, applied at Open) and
// nothing else. It must not import the dispatcher, the fleet, the engine or
// the API: callers see only store.Store, and cmd/fusebox chooses this package.
//
// # Durability
//
// The database runs in WAL mode. Every method that changes data does so in
// one write transaction that is committed before the method returns. With
// the default Synchronous "FULL" the WAL is fsynced at every commit, so an
// acknowledged change survives a process crash and a power loss. "NORMAL"
// is cheaper (the WAL is fsynced only at checkpoints): it still survives a
// process crash, but a power loss or OS crash may roll back the last
// transactions — a job the API acknowledged could be dropped.
//
// # Connections
//
// All writes go through one connection, and every write transaction begins
// with BEGIN IMMEDIATE, so writers are serialised in this process by the
// connection pool and across processes by SQLite's write lock. A read made
// inside a write transaction (the queue bound, an idempotency key, a
// compare-and-set) therefore sees the state the write applies to: two
// inserts cannot both pass the bound, two transitions cannot both win.
// Reads outside transactions go through a separate pool of read-only
// connections, which WAL lets run while a write is in progress (with reads
// on the writer connection instead, a read waits for every write's fsync:
// BenchmarkReadWhileWriting).
//
// # Schema
//
// Times are INTEGER unix nanoseconds UTC, 0 for the zero time.Time, and are
// read back in UTC; the store refuses times outside the years 1679-2261
// (the instant 1970-01-01T00:00:00Z would read back as the zero time).
// A job's spec is kept as JSON, with its priority and idempotency key copied
// into columns for the queue index and the unique index. job_counts holds
// the number of jobs in each state, kept by triggers in the transaction that
// changes a state, so the queue bound costs the same however long the queue.
// In the same way queue_keys holds the constraint keys of the queued jobs
// (store.ConstraintsKey, copied into a column with the image), and partial
// indexes over the queued jobs cover the scheduler's light rows, so that a
// scheduling pass costs what it places, not the queue's length or its specs'
// size.
//
// The events table is the event log: seq is AUTOINCREMENT, and since the one
// writer commits in order, a reader that has seen seq N never sees a smaller
// one appear later. A write that appends events goes through writeEvents,
// which calls the event hook (SetEventHook) after the commit; a job's
// transitions append their event in the transaction that makes them.
//
// host_operators holds, per host, the operator state (isolated, draining)
// and the last operator action (who, why, when); each action appends its
// operator.action event in the same transaction, so the event log is the
// history of the actions.
//
// The alert tables (internal/alert) are alert_states (the last state of
// each alert, by fingerprint), alert_notices (the outbox: webhook bodies,
// delivered in id order per receiver), alert_receivers (each receiver's
// last delivery and last error) and alert_cursor (the event sequence number
// the evaluator has processed, written in the transaction that enqueues
// what it found). A delivery marks its notice and appends its
// alert.delivery event in one transaction.
//
// The workflow tables (internal/workflow) are workflow_runs (a run, with its
// resolved definition as JSON), workflow_steps (its steps, deleted with it)
// and workflow_cache (successful steps' outputs by cache key, with the
// digests of the key's parts). Each change of a run or a step appends its
// workflow.run or workflow.step event in the same transaction.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

var _ store.Store = (*DB)(nil)

// Defaults for the zero fields of Options.
const (
	SynchronousDefault = "FULL"
	BusyTimeoutDefault = 5 * time.Second
	ReadConnsDefault   = 4
)

// Options tune Open. The zero value of a field means its default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (default:
	// committed means on disk, even across a power loss), "NORMAL" (survives
	// a process crash; a power loss may lose the last commits) or "EXTRA".
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (another process, or a WAL checkpoint) before failing.
	BusyTimeout time.Duration
	// ReadConns is the size of the pool of read-only connections.
	ReadConns int

	// sharedPool makes reads use the writer connection too (no read pool);
	// for the benchmark that compares the two.
	sharedPool bool
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Synchronous == "" {
		o.Synchronous = SynchronousDefault
	}
	o.Synchronous = strings.ToUpper(o.Synchronous)
	if o.BusyTimeout == 0 {
		o.BusyTimeout = BusyTimeoutDefault
	}
	if o.ReadConns == 0 {
		o.ReadConns = ReadConnsDefault
	}
	return o
}

func (o Options) validate() error {
	switch o.Synchronous {
	case "NORMAL", "FULL", "EXTRA":
	default:
		return fmt.Errorf("sqlite: options: synchronous %q: must be FULL, NORMAL or EXTRA", o.Synchronous)
	}
	if o.BusyTimeout < time.Millisecond {
		return fmt.Errorf("sqlite: options: busy timeout %v: must be at least 1ms", o.BusyTimeout)
	}
	if o.ReadConns < 1 {
		return fmt.Errorf("sqlite: options: read conns %d: must be at least 1", o.ReadConns)
	}
	return nil
}

// DB is a fusebox store in one SQLite database file. It is safe for
// concurrent use.
type DB struct {
	path string
	w    *sql.DB // the one writer connection
	r    *sql.DB // read-only connections (== w with sharedPool)

	eventHook atomic.Pointer[func(lastSeq int64)] // SetEventHook

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date. It fails if the database was written by a newer fusebox
// (ErrSchemaTooNew). At most one Options may be given.
func Open(ctx context.Context, path string, opts ...Options) (*DB, error) {
	if len(opts) > 1 {
		return nil, fmt.Errorf("sqlite: open: got %d Options, want at most one", len(opts))
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open: path %q: must be the path of a database file", path)
	}

	wdsn, err := dsn(path, o, false)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	rdsn, _ := dsn(path, o, true)

	db := &DB{path: path}
	db.w, err = sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := checkPragmas(ctx, db.w, o); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, db.w); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	if o.sharedPool {
		db.r = db.w
		return db, nil
	}
	db.r, err = sql.Open("sqlite", rdsn)
	if err == nil {
		db.r.SetMaxOpenConns(o.ReadConns)
		db.r.SetMaxIdleConns(o.ReadConns)
		db.r.SetConnMaxIdleTime(0)
		err = db.r.PingContext(ctx)
		if err != nil {
			db.r.Close()
		}
	}
	if err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	return db, nil
}

// dsn is the driver's data source name for path: a file: URI of the
// absolute path (so that any character in it is escaped) with the
// per-connection settings.
func dsn(path string, o Options, readOnly bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+o.Synchronous+")")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

// checkPragmas makes sure the writer connection got the settings the
// durability of the store depends on; journal_mode=WAL, for one, silently
// does not apply on some file systems.
func checkPragmas(ctx context.Context, w *sql.DB, o Options) error {
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (is the file on a file system that supports WAL?)", mode)
	}
	var sync, fk int
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if want := map[string]int{"NORMAL": 1, "FULL": 2, "EXTRA": 3}[o.Synchronous]; sync != want {
		return fmt.Errorf("synchronous is %d, want %d (%s)", sync, want, o.Synchronous)
	}
	if err := w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if fk != 1 {
		return errors.New("foreign keys are off, want on")
	}
	return nil
}

// InstanceID returns the id made for this database by migration 0010.
func (db *DB) InstanceID(ctx context.Context) (string, error) {
	var id string
	if err := db.r.QueryRowContext(ctx, `SELECT id FROM instance`).Scan(&id); err != nil {
		return "", fmt.Errorf("sqlite: read instance id: %w", err)
	}
	return id, nil
}

// Close closes the database. Safe to call twice.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		var errR error
		if db.r != db.w {
			errR = db.r.Close()
		}
		db.closeErr = errors.Join(errR, db.w.Close())
		if db.closeErr != nil {
			db.closeErr = fmt.Errorf("sqlite: close %s: %w", db.path, db.closeErr)
		}
	})
	return db.closeErr
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in one write transaction (BEGIN IMMEDIATE on the writer
// connection) and commits it; if fn or the commit fails, nothing is changed.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// mapErr turns the driver's errors into the store's, once: no rows becomes
// job.ErrNotFound; everything else is returned as is.
func mapErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return job.ErrNotFound
	}
	return err
}

// isConstraint reports whether err is SQLite's extended result code code
// (one of the SQLITE_CONSTRAINT_* codes).
func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

const (
	codeUnique     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	codePrimaryKey = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	codeForeignKey = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
)

// nanos is t as stored: unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// times name optional times, for checkTimes.
type times []struct {
	name string
	t    *time.Time // nil: not given
}

// checkTimes rejects a time the store cannot hold as unix nanoseconds.
func checkTimes(ts times) error {
	for _, t := range ts {
		if t.t == nil || t.t.IsZero() {
			continue
		}
		if y := t.t.Year(); y <= 1678 || y >= 2262 {
			return fmt.Errorf("%s %v: outside the years 1679-2261 the store can hold", t.name, *t.t)
		}
	}
	return nil
}
