package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// jobColumns are the columns scanJob reads, in its order.
const jobColumns = `id, spec, state, reason, attempt, host, container_id, exit_code,
	not_before, created_at, updated_at, started_at, finished_at, cancel_requested, cause, outputs`

// defaultLimit is the page size when a list's Limit is 0.
const defaultLimit = 100

func scanJob(scan func(dest ...any) error) (*job.Job, error) {
	var (
		j                          job.Job
		spec                       []byte
		exit                       sql.NullInt64
		notBefore, created, update int64
		started, finished, cancel  int64
		outputs                    string
	)
	err := scan(&j.ID, &spec, &j.State, &j.Reason, &j.Attempt, &j.Host, &j.ContainerID, &exit,
		&notBefore, &created, &update, &started, &finished, &cancel, &j.Cause, &outputs)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal(spec, &j.Spec); err != nil {
		return nil, fmt.Errorf("job %s: decode spec: %w", j.ID, err)
	}
	if exit.Valid {
		code := int(exit.Int64)
		j.ExitCode = &code
	}
	if outputs != "" {
		if err := json.Unmarshal([]byte(outputs), &j.Outputs); err != nil {
			return nil, fmt.Errorf("job %s: decode outputs: %w", j.ID, err)
		}
	}
	j.NotBefore = fromNanos(notBefore)
	j.CreatedAt = fromNanos(created)
	j.UpdatedAt = fromNanos(update)
	j.StartedAt = fromNanos(started)
	j.FinishedAt = fromNanos(finished)
	j.CancelRequested = cancel != 0
	return &j, nil
}

func getJob(ctx context.Context, q querier, id string) (*job.Job, error) {
	return scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id).Scan)
}

func listJobs(ctx context.Context, q querier, query string, args ...any) ([]*job.Job, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []*job.Job
	for rows.Next() {
		j, err := scanJob(rows.Scan)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// canonicalSpec is the JSON form in which two specs are compared: maps are
// written with sorted keys, and empty optional fields are left out, so that
// equal specs give equal bytes however they were built.
func canonicalSpec(s job.Spec) ([]byte, error) { return json.Marshal(s) }

// errKeyTaken means the idempotency key was inserted between our look-up and
// our insert. BEGIN IMMEDIATE rules that out, but should it happen the unique
// index refuses the insert and JobInsert starts again, finding the key.
var errKeyTaken = errors.New("idempotency key taken concurrently")

// JobInsert implements store.Store.
func (db *DB) JobInsert(ctx context.Context, p store.JobInsertParams) (*job.Job, bool, error) {
	if p.Job == nil || p.Job.ID == "" || p.Job.CreatedAt.IsZero() {
		return nil, false, errors.New("sqlite: job insert: Job with ID and CreatedAt is required")
	}
	in := p.Job
	if err := checkTimes(times{{"created_at", &in.CreatedAt}, {"not_before", &in.NotBefore},
		{"started_at", &in.StartedAt}, {"finished_at", &in.FinishedAt}}); err != nil {
		return nil, false, fmt.Errorf("sqlite: job insert %s: %w", in.ID, err)
	}
	spec, err := canonicalSpec(in.Spec)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: job insert %s: encode spec: %w", in.ID, err)
	}
	for range 2 {
		var out *job.Job
		var existed bool
		err = db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
			var err error
			out, existed, err = insertJob(ctx, tx, emit, in, spec, p.MaxQueued)
			return err
		})
		if errors.Is(err, errKeyTaken) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("sqlite: job insert %s: %w", in.ID, err)
		}
		return out, existed, nil
	}
	return nil, false, fmt.Errorf("sqlite: job insert %s: %w", in.ID, err)
}

// insertJob is JobInsert's transaction: idempotency first (a retried submit
// gets its job back even when the queue has since filled), then the bound,
// then the insert, with its first transition and that transition's event.
func insertJob(ctx context.Context, tx *sql.Tx, emit emitFunc, in *job.Job, spec []byte, maxQueued int) (*job.Job, bool, error) {
	key := in.Spec.IdempotencyKey
	if key != "" {
		have, err := scanJob(tx.QueryRowContext(ctx,
			`SELECT `+jobColumns+` FROM jobs WHERE idempotency_key = ?`, key).Scan)
		switch {
		case err == nil:
			haveSpec, err := canonicalSpec(have.Spec)
			if err != nil {
				return nil, false, err
			}
			if !bytes.Equal(haveSpec, spec) {
				return nil, false, fmt.Errorf("idempotency key %q is held by job %s: %w", key, have.ID, job.ErrDuplicate)
			}
			return have, true, nil
		case !errors.Is(err, job.ErrNotFound):
			return nil, false, err
		}
	}
	var nameArg any
	if name := in.Spec.Name; name != "" {
		nameArg = name
		var holder string
		var state job.State
		err := tx.QueryRowContext(ctx, `SELECT id, state FROM jobs WHERE name = ? AND state IN ('queued', 'launching', 'running')`, name).Scan(&holder, &state)
		switch {
		case err == nil:
			return nil, false, &job.NameInUseError{Name: name, Holder: holder, State: state}
		case !errors.Is(err, sql.ErrNoRows):
			return nil, false, err
		}
	}
	if maxQueued > 0 {
		// job_counts is kept by triggers in this same transaction.
		var n int
		err := tx.QueryRowContext(ctx, `SELECT n FROM job_counts WHERE state = 'queued'`).Scan(&n)
		if err != nil {
			return nil, false, err
		}
		if n >= maxQueued {
			return nil, false, fmt.Errorf("%d jobs queued, the bound is %d: %w", n, maxQueued, job.ErrQueueFull)
		}
	}
	var keyArg, exit any
	if key != "" {
		keyArg = key
	}
	if in.ExitCode != nil {
		exit = *in.ExitCode
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, spec, state, reason, attempt, host, container_id,
		exit_code, not_before, created_at, updated_at, started_at, finished_at, cancel_requested,
		idempotency_key, priority, image, constraints_key, name) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		in.ID, string(spec), in.Reason, in.Attempt, in.Host, in.ContainerID, exit,
		nanos(in.NotBefore), nanos(in.CreatedAt), nanos(in.CreatedAt), nanos(in.StartedAt), nanos(in.FinishedAt),
		in.CancelRequested, keyArg, in.Spec.Priority, in.Spec.Image, store.ConstraintsKey(in.Spec.Constraints), nameArg)
	switch {
	case isConstraint(err, codeUnique):
		return nil, false, errKeyTaken
	case isConstraint(err, codePrimaryKey):
		return nil, false, fmt.Errorf("a job with id %s already exists", in.ID)
	case err != nil:
		return nil, false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO transitions (job_id, seq, from_state, to_state, reason, host, attempt, at)
		VALUES (?, 1, '', 'queued', 'submitted', ?, ?, ?)`, in.ID, in.Host, in.Attempt, nanos(in.CreatedAt))
	if err != nil {
		return nil, false, err
	}
	if _, err := emit(transitionEvent(in.ID, "", string(job.StateQueued), "submitted", in.Host, in.Attempt, "", nanos(in.CreatedAt))); err != nil {
		return nil, false, fmt.Errorf("record event: %w", err)
	}
	out, err := getJob(ctx, tx, in.ID)
	return out, false, err
}

// JobGetByID implements store.Store.
func (db *DB) JobGetByID(ctx context.Context, id string) (*job.Job, error) {
	j, err := getJob(ctx, db.r, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job %s: %w", id, err)
	}
	return j, nil
}

// JobList implements store.Store. A BeforeID naming no job gives
// job.ErrNotFound.
func (db *DB) JobList(ctx context.Context, p store.JobListParams) ([]*job.Job, error) {
	var where []string
	var args []any
	if len(p.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(p.States)-1)+")")
		for _, s := range p.States {
			args = append(args, string(s))
		}
	}
	if p.Host != "" {
		where = append(where, "host = ?")
		args = append(args, p.Host)
	}
	if p.Name != "" {
		where = append(where, "name = ?")
		args = append(args, p.Name)
	}
	if p.IDPrefix != "" {
		if strings.ContainsAny(p.IDPrefix, "*?[]") {
			return nil, nil // no id holds a glob character
		}
		where = append(where, "id GLOB ?")
		args = append(args, p.IDPrefix+"*")
	}
	if p.BeforeID != "" {
		var created int64
		err := db.r.QueryRowContext(ctx, `SELECT created_at FROM jobs WHERE id = ?`, p.BeforeID).Scan(&created)
		if err != nil {
			return nil, fmt.Errorf("sqlite: job list: cursor job %s: %w", p.BeforeID, mapErr(err))
		}
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, created, p.BeforeID)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit(p.Limit))
	jobs, err := listJobs(ctx, db.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job list: %w", err)
	}
	return jobs, nil
}

func limit(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// JobListQueued implements store.Store.
func (db *DB) JobListQueued(ctx context.Context, p store.JobListQueuedParams) ([]*job.Job, error) {
	jobs, err := listJobs(ctx, db.r, `SELECT `+jobColumns+` FROM jobs
		WHERE state = 'queued' AND not_before <= ?
		ORDER BY priority DESC, created_at, id LIMIT ?`, nanos(p.Now), limit(p.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: job list queued: %w", err)
	}
	return jobs, nil
}

// JobListActive implements store.Store.
func (db *DB) JobListActive(ctx context.Context) ([]*job.Job, error) {
	jobs, err := listJobs(ctx, db.r, `SELECT `+jobColumns+` FROM jobs
		WHERE state IN ('launching', 'running') ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job list active: %w", err)
	}
	return jobs, nil
}

// JobCountByState implements store.Store. It reads the counts the triggers
// keep; states with none are absent.
func (db *DB) JobCountByState(ctx context.Context) (map[job.State]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT state, n FROM job_counts WHERE n > 0`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job count by state: %w", err)
	}
	defer rows.Close()
	counts := make(map[job.State]int)
	for rows.Next() {
		var s job.State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("sqlite: job count by state: %w", err)
		}
		counts[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: job count by state: %w", err)
	}
	return counts, nil
}

// JobTransition implements store.Store. The current attempt is the one the
// job is on after p's updates; a new attempt row takes the job's host after
// them. Beyond the contract it refuses, with an error that is none of the
// sentinels and changing nothing, params with no From, an unknown To, a zero
// Now, or a SetAttempt below the job's attempt (which would reuse a number).
func (db *DB) JobTransition(ctx context.Context, p store.JobTransitionParams) (*job.Job, error) {
	if err := checkTransition(p); err != nil {
		return nil, fmt.Errorf("sqlite: job transition %s: %w", p.ID, err)
	}
	var out *job.Job
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		var err error
		out, err = transition(ctx, tx, emit, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: job transition %s to %s: %w", p.ID, p.To, err)
	}
	return out, nil
}

func checkTransition(p store.JobTransitionParams) error {
	switch {
	case len(p.From) == 0:
		return errors.New("invalid params: From is empty")
	case !p.To.Valid():
		return fmt.Errorf("invalid params: To %q is not a state", p.To)
	case p.Now.IsZero():
		return errors.New("invalid params: Now is zero")
	case p.SetAttempt != nil && *p.SetAttempt < 1:
		return fmt.Errorf("invalid params: SetAttempt %d: attempts are numbered from 1", *p.SetAttempt)
	}
	return checkTimes(times{{"now", &p.Now}, {"not_before", p.NotBefore},
		{"started_at", p.StartedAt}, {"finished_at", p.FinishedAt}})
}

// active reports whether s is a state in which the job has a current attempt.
func active(s job.State) bool { return s == job.StateLaunching || s == job.StateRunning }

// transition is JobTransition's transaction: compare, update the job, keep
// the attempts in step, record the transition and its event.
func transition(ctx context.Context, tx *sql.Tx, emit emitFunc, p store.JobTransitionParams) (*job.Job, error) {
	cur, err := getJob(ctx, tx, p.ID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.From, cur.State) {
		return nil, fmt.Errorf("job is %s, not %v: %w", cur.State, p.From, job.ErrConflict)
	}
	if p.ExpectAttempt != nil && cur.Attempt != *p.ExpectAttempt {
		return nil, fmt.Errorf("job is on attempt %d, not %d: %w", cur.Attempt, *p.ExpectAttempt, job.ErrConflict)
	}
	if p.SetAttempt != nil && *p.SetAttempt < cur.Attempt {
		return nil, fmt.Errorf("SetAttempt %d is below the job's attempt %d", *p.SetAttempt, cur.Attempt)
	}

	next := *cur
	next.State, next.Reason, next.UpdatedAt = p.To, p.Reason, p.Now
	if p.Host != nil {
		next.Host = *p.Host
	}
	if p.ContainerID != nil {
		next.ContainerID = *p.ContainerID
	}
	if p.SetAttempt != nil {
		next.Attempt = *p.SetAttempt
	}
	if p.DropAttempt {
		if cur.State != job.StateLaunching || p.To == job.StateLaunching || p.SetAttempt != nil || cur.Attempt < 1 {
			return nil, fmt.Errorf("DropAttempt is only valid when leaving launching (job is %s on attempt %d)", cur.State, cur.Attempt)
		}
		next.Attempt = cur.Attempt - 1
	}
	if p.ExitCode != nil {
		next.ExitCode = p.ExitCode
	}
	if p.NotBefore != nil {
		next.NotBefore = *p.NotBefore
	}
	if p.StartedAt != nil {
		next.StartedAt = *p.StartedAt
	}
	if p.FinishedAt != nil {
		next.FinishedAt = *p.FinishedAt
	}
	if p.To.Terminal() {
		next.Cause = p.Cause
	}
	if p.Outputs != nil {
		next.Outputs = p.Outputs
	}
	var outputs string
	if len(next.Outputs) > 0 {
		b, err := json.Marshal(next.Outputs)
		if err != nil {
			return nil, fmt.Errorf("encode outputs: %w", err)
		}
		outputs = string(b)
	}
	var exit any
	if next.ExitCode != nil {
		exit = *next.ExitCode
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, attempt = ?, host = ?,
		container_id = ?, exit_code = ?, not_before = ?, updated_at = ?, started_at = ?, finished_at = ?,
		cause = ?, outputs = ?
		WHERE id = ?`,
		next.State, next.Reason, next.Attempt, next.Host, next.ContainerID, exit,
		nanos(next.NotBefore), nanos(next.UpdatedAt), nanos(next.StartedAt), nanos(next.FinishedAt),
		next.Cause, outputs, p.ID)
	if err != nil {
		return nil, err
	}

	// The attempts table: a new attempt starts, the current one learns its
	// container, the current one finishes when the job leaves launching/running.
	if next.Attempt > cur.Attempt {
		_, err = tx.ExecContext(ctx, `INSERT INTO attempts (job_id, number, host, started_at) VALUES (?, ?, ?, ?)`,
			p.ID, next.Attempt, next.Host, nanos(p.Now))
		if err != nil {
			return nil, fmt.Errorf("start attempt %d: %w", next.Attempt, err)
		}
	}
	if p.ContainerID != nil {
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET container_id = ? WHERE job_id = ? AND number = ?`,
			*p.ContainerID, p.ID, next.Attempt)
		if err != nil {
			return nil, fmt.Errorf("set container of attempt %d: %w", next.Attempt, err)
		}
	}
	if p.DropAttempt {
		if _, err = tx.ExecContext(ctx, `DELETE FROM attempts WHERE job_id = ? AND number = ?`, p.ID, cur.Attempt); err != nil {
			return nil, fmt.Errorf("drop attempt %d: %w", cur.Attempt, err)
		}
	}
	var outcome string // of the attempt this transition finishes
	if !p.DropAttempt && active(cur.State) && !active(next.State) {
		outcome = p.AttemptOutcome
		if outcome == "" {
			outcome = string(p.To)
		}
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET finished_at = ?, outcome = ?, error = ?
			WHERE job_id = ? AND number = ?`, nanos(p.Now), outcome, p.Reason, p.ID, next.Attempt)
		if err != nil {
			return nil, fmt.Errorf("finish attempt %d: %w", next.Attempt, err)
		}
	}

	if f := p.Fence; f != nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO fences (host, job_id, attempt, container, reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, f.Host, p.ID, f.Attempt, f.Container, f.Reason, nanos(p.Now))
		if err != nil {
			return nil, fmt.Errorf("add fence on %s: %w", f.Host, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO transitions (job_id, seq, from_state, to_state, reason, host, attempt, at)
		SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM transitions WHERE job_id = ?`,
		p.ID, cur.State, next.State, p.Reason, next.Host, next.Attempt, nanos(p.Now), p.ID)
	if err != nil {
		return nil, fmt.Errorf("record transition: %w", err)
	}
	ev := transitionEvent(p.ID, string(cur.State), string(next.State), p.Reason, next.Host, next.Attempt, outcome, nanos(p.Now))
	if _, err := emit(ev); err != nil {
		return nil, fmt.Errorf("record event: %w", err)
	}
	return getJob(ctx, tx, p.ID)
}

// JobSetCancelRequested implements store.Store. It does not change
// UpdatedAt: the store has no clock of its own and the state is unchanged.
func (db *DB) JobSetCancelRequested(ctx context.Context, id string) (*job.Job, error) {
	var out *job.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State.Terminal() {
			return fmt.Errorf("job is %s: %w", cur.State, job.ErrTerminal)
		}
		if !active(cur.State) {
			return fmt.Errorf("job is %s, not launching or running: %w", cur.State, job.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE id = ?`, id); err != nil {
			return err
		}
		cur.CancelRequested = true
		out = cur
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: job %s: set cancel requested: %w", id, err)
	}
	return out, nil
}

// JobTransitionList implements store.Store.
func (db *DB) JobTransitionList(ctx context.Context, jobID string) ([]job.Transition, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT seq, from_state, to_state, reason, host, attempt, at
		FROM transitions WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job %s: transitions: %w", jobID, err)
	}
	defer rows.Close()
	var ts []job.Transition
	for rows.Next() {
		t := job.Transition{JobID: jobID}
		var at int64
		if err := rows.Scan(&t.Seq, &t.From, &t.To, &t.Reason, &t.Host, &t.Attempt, &at); err != nil {
			return nil, fmt.Errorf("sqlite: job %s: transitions: %w", jobID, err)
		}
		t.At = fromNanos(at)
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: job %s: transitions: %w", jobID, err)
	}
	if len(ts) == 0 { // every job has its submission: no rows, no job
		return nil, fmt.Errorf("sqlite: job %s: transitions: %w", jobID, job.ErrNotFound)
	}
	return ts, nil
}

// AttemptList implements store.Store.
func (db *DB) AttemptList(ctx context.Context, jobID string) ([]job.Attempt, error) {
	as, err := listAttempts(ctx, db.r, jobID)
	if err == nil && len(as) == 0 {
		err = db.r.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = ?`, jobID).Scan(new(int))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: job %s: attempts: %w", jobID, mapErr(err))
	}
	return as, nil
}

func listAttempts(ctx context.Context, q querier, jobID string) ([]job.Attempt, error) {
	rows, err := q.QueryContext(ctx, `SELECT number, host, container_id, started_at, finished_at, outcome, error
		FROM attempts WHERE job_id = ? ORDER BY number`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []job.Attempt
	for rows.Next() {
		a := job.Attempt{JobID: jobID}
		var started, finished int64
		if err := rows.Scan(&a.Number, &a.Host, &a.ContainerID, &started, &finished, &a.Outcome, &a.Error); err != nil {
			return nil, err
		}
		a.StartedAt, a.FinishedAt = fromNanos(started), fromNanos(finished)
		as = append(as, a)
	}
	return as, rows.Err()
}
