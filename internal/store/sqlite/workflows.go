package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow/wfrun"
)

// runColumns are the columns scanRun reads, in its order.
const runColumns = `id, workflow, task_id, state, reason, cause, params, skip_cache, use_breaker,
	cancel_requested, definition, results, created_at, updated_at, started_at, finished_at`

// stepColumns are the columns scanStep reads, in its order.
const stepColumns = `run_id, id, state, reason, job_id, try, host, next_at, cache_key, cached,
	why_ran, job_cause, outputs, updated_at, started_at, finished_at`

// jsonText encodes v as a JSON column, "" for an empty value.
func jsonText(v any, empty bool) (string, error) {
	if empty {
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// fromJSON decodes a JSON column into v; "" leaves v as it is.
func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func scanRun(scan func(dest ...any) error) (*wfrun.Run, error) {
	var (
		r                                   wfrun.Run
		params, definition, results         string
		skip, useBreaker, cancel            int64
		created, updated, started, finished int64
	)
	err := scan(&r.ID, &r.Workflow, &r.TaskID, &r.State, &r.Reason, &r.Cause, &params, &skip, &useBreaker,
		&cancel, &definition, &results, &created, &updated, &started, &finished)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := errors.Join(fromJSON(params, &r.Params), fromJSON(definition, &r.Definition), fromJSON(results, &r.Results)); err != nil {
		return nil, fmt.Errorf("workflow run %s: decode: %w", r.ID, err)
	}
	r.SkipCache, r.UseBreaker, r.CancelRequested = skip != 0, useBreaker != 0, cancel != 0
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	r.StartedAt, r.FinishedAt = fromNanos(started), fromNanos(finished)
	return &r, nil
}

func scanStep(scan func(dest ...any) error) (*wfrun.Step, error) {
	var (
		s                                  wfrun.Step
		nextAt, updated, started, finished int64
		cached                             int64
		outputs                            string
	)
	err := scan(&s.RunID, &s.ID, &s.State, &s.Reason, &s.JobID, &s.Try, &s.Host, &nextAt, &s.CacheKey, &cached,
		&s.WhyRan, &s.JobCause, &outputs, &updated, &started, &finished)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := fromJSON(outputs, &s.Outputs); err != nil {
		return nil, fmt.Errorf("workflow step %s/%s: decode outputs: %w", s.RunID, s.ID, err)
	}
	s.Cached = cached != 0
	s.NextAt, s.UpdatedAt = fromNanos(nextAt), fromNanos(updated)
	s.StartedAt, s.FinishedAt = fromNanos(started), fromNanos(finished)
	return &s, nil
}

func getRun(ctx context.Context, q querier, id string) (*wfrun.Run, error) {
	return scanRun(q.QueryRowContext(ctx, `SELECT `+runColumns+` FROM workflow_runs WHERE id = ?`, id).Scan)
}

func getStep(ctx context.Context, q querier, runID, id string) (*wfrun.Step, error) {
	return scanStep(q.QueryRowContext(ctx, `SELECT `+stepColumns+` FROM workflow_steps WHERE run_id = ? AND id = ?`, runID, id).Scan)
}

func listRuns(ctx context.Context, q querier, query string, args ...any) ([]*wfrun.Run, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wfrun.Run
	for rows.Next() {
		r, err := scanRun(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func runEvent(r *wfrun.Run, from wfrun.RunState) event.Event {
	return event.Event{At: r.UpdatedAt, Type: event.TypeWorkflowRun, Data: event.MarshalData(event.WorkflowRun{
		Run: r.ID, Workflow: r.Workflow, TaskID: r.TaskID, From: string(from), To: string(r.State), Reason: r.Reason, Cause: string(r.Cause),
	})}
}

func stepEvent(s *wfrun.Step, from wfrun.StepState) event.Event {
	return event.Event{At: s.UpdatedAt, Type: event.TypeWorkflowStep, Host: s.Host, Data: event.MarshalData(event.WorkflowStep{
		Run: s.RunID, Step: s.ID, From: string(from), To: string(s.State), Reason: s.Reason, Try: s.Try, JobID: s.JobID, Cached: s.Cached,
	})}
}

// WorkflowRunInsert implements store.Store.
func (db *DB) WorkflowRunInsert(ctx context.Context, p store.WorkflowRunInsertParams) error {
	r := p.Run
	switch {
	case r == nil || r.ID == "" || r.Workflow == "" || r.CreatedAt.IsZero():
		return errors.New("sqlite: workflow run insert: Run with ID, Workflow and CreatedAt is required")
	case !r.State.Valid():
		return fmt.Errorf("sqlite: workflow run insert %s: state %q is not a run state", r.ID, r.State)
	}
	if err := checkTimes(times{{"created_at", &r.CreatedAt}, {"started_at", &r.StartedAt}, {"finished_at", &r.FinishedAt}}); err != nil {
		return fmt.Errorf("sqlite: workflow run insert %s: %w", r.ID, err)
	}
	seen := map[string]bool{}
	for _, s := range p.Steps {
		switch {
		case s.ID == "":
			return fmt.Errorf("sqlite: workflow run insert %s: a step has no ID", r.ID)
		case seen[s.ID]:
			return fmt.Errorf("sqlite: workflow run insert %s: step %s appears twice", r.ID, s.ID)
		case !s.State.Valid():
			return fmt.Errorf("sqlite: workflow run insert %s: step %s: state %q is not a step state", r.ID, s.ID, s.State)
		}
		seen[s.ID] = true
	}
	params, err1 := jsonText(r.Params, len(r.Params) == 0)
	definition, err2 := jsonText(r.Definition, false)
	results, err3 := jsonText(r.Results, len(r.Results) == 0)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("sqlite: workflow run insert %s: encode: %w", r.ID, err)
	}
	in := *r
	in.UpdatedAt = in.CreatedAt
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workflow_runs (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Workflow, in.TaskID, in.State, in.Reason, in.Cause, params, in.SkipCache, in.UseBreaker,
			in.CancelRequested, definition, results, nanos(in.CreatedAt), nanos(in.UpdatedAt), nanos(in.StartedAt), nanos(in.FinishedAt))
		if isConstraint(err, codePrimaryKey) {
			return fmt.Errorf("a run with id %s already exists", in.ID)
		}
		if err != nil {
			return err
		}
		for i, s := range p.Steps {
			outputs, err := jsonText(s.Outputs, len(s.Outputs) == 0)
			if err != nil {
				return fmt.Errorf("step %s: encode outputs: %w", s.ID, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO workflow_steps (ord, `+stepColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				i, in.ID, s.ID, s.State, s.Reason, s.JobID, s.Try, s.Host, nanos(s.NextAt), s.CacheKey, s.Cached,
				s.WhyRan, s.JobCause, outputs, nanos(in.CreatedAt), nanos(s.StartedAt), nanos(s.FinishedAt))
			if err != nil {
				return fmt.Errorf("step %s: %w", s.ID, err)
			}
		}
		_, err = emit(runEvent(&in, ""))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: workflow run insert %s: %w", r.ID, err)
	}
	return nil
}

// WorkflowRunGet implements store.Store.
func (db *DB) WorkflowRunGet(ctx context.Context, id string) (*wfrun.Run, []wfrun.Step, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // the run and its steps as of one moment
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: workflow run %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	r, err := getRun(ctx, tx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: workflow run %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+stepColumns+` FROM workflow_steps WHERE run_id = ? ORDER BY ord`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: workflow run %s: steps: %w", id, err)
	}
	defer rows.Close()
	var steps []wfrun.Step
	for rows.Next() {
		s, err := scanStep(rows.Scan)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite: workflow run %s: steps: %w", id, err)
		}
		steps = append(steps, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: workflow run %s: steps: %w", id, err)
	}
	return r, steps, nil
}

// WorkflowRunList implements store.Store.
func (db *DB) WorkflowRunList(ctx context.Context, p store.WorkflowRunListParams) ([]*wfrun.Run, error) {
	var where []string
	var args []any
	if p.TaskID != "" {
		where = append(where, "task_id = ?")
		args = append(args, p.TaskID)
	}
	if p.Workflow != "" {
		where = append(where, "workflow = ?")
		args = append(args, p.Workflow)
	}
	if p.IDPrefix != "" {
		if strings.ContainsAny(p.IDPrefix, "*?[]") {
			return nil, nil // no id holds a glob character
		}
		where = append(where, "id GLOB ?") // a range on the primary key
		args = append(args, p.IDPrefix+"*")
	}
	if len(p.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(p.States)-1)+")")
		for _, s := range p.States {
			args = append(args, string(s))
		}
	}
	query := `SELECT ` + runColumns + ` FROM workflow_runs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit(p.Limit))
	runs, err := listRuns(ctx, db.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: workflow run list: %w", err)
	}
	return runs, nil
}

// WorkflowRunListActive implements store.Store.
func (db *DB) WorkflowRunListActive(ctx context.Context) ([]*wfrun.Run, error) {
	runs, err := listRuns(ctx, db.r, `SELECT `+runColumns+` FROM workflow_runs
		WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: workflow run list active: %w", err)
	}
	return runs, nil
}

// WorkflowRunUpdate implements store.Store.
func (db *DB) WorkflowRunUpdate(ctx context.Context, p store.WorkflowRunUpdateParams) (*wfrun.Run, error) {
	switch {
	case !p.To.Valid():
		return nil, fmt.Errorf("sqlite: workflow run update %s: To %q is not a run state", p.ID, p.To)
	case p.Now.IsZero():
		return nil, fmt.Errorf("sqlite: workflow run update %s: Now is zero", p.ID)
	}
	if err := checkTimes(times{{"now", &p.Now}, {"started_at", p.StartedAt}, {"finished_at", p.FinishedAt}}); err != nil {
		return nil, fmt.Errorf("sqlite: workflow run update %s: %w", p.ID, err)
	}
	var out *wfrun.Run
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		cur, err := getRun(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		if len(p.From) > 0 && !slices.Contains(p.From, cur.State) {
			return fmt.Errorf("run is %s, not %v: %w", cur.State, p.From, job.ErrConflict)
		}
		next := *cur
		next.State, next.Reason, next.UpdatedAt = p.To, p.Reason, p.Now
		if p.Cause != nil {
			next.Cause = *p.Cause
		}
		if p.CancelRequested != nil {
			next.CancelRequested = *p.CancelRequested
		}
		if p.Results != nil {
			next.Results = p.Results
		}
		if p.StartedAt != nil {
			next.StartedAt = *p.StartedAt
		}
		if p.FinishedAt != nil {
			next.FinishedAt = *p.FinishedAt
		}
		results, err := jsonText(next.Results, len(next.Results) == 0)
		if err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE workflow_runs SET state = ?, reason = ?, cause = ?, cancel_requested = ?,
			results = ?, updated_at = ?, started_at = ?, finished_at = ? WHERE id = ?`,
			next.State, next.Reason, next.Cause, next.CancelRequested, results, nanos(next.UpdatedAt),
			nanos(next.StartedAt), nanos(next.FinishedAt), p.ID)
		if err != nil {
			return err
		}
		if out, err = getRun(ctx, tx, p.ID); err != nil {
			return err
		}
		if _, err := emit(runEvent(out, cur.State)); err != nil {
			return fmt.Errorf("record event: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: workflow run update %s to %s: %w", p.ID, p.To, err)
	}
	return out, nil
}

// WorkflowStepUpdate implements store.Store.
func (db *DB) WorkflowStepUpdate(ctx context.Context, p store.WorkflowStepUpdateParams) (*wfrun.Step, error) {
	switch {
	case !p.To.Valid():
		return nil, fmt.Errorf("sqlite: workflow step update %s/%s: To %q is not a step state", p.RunID, p.ID, p.To)
	case p.Now.IsZero():
		return nil, fmt.Errorf("sqlite: workflow step update %s/%s: Now is zero", p.RunID, p.ID)
	case p.Try != nil && *p.Try < 0:
		return nil, fmt.Errorf("sqlite: workflow step update %s/%s: Try %d is negative", p.RunID, p.ID, *p.Try)
	}
	if err := checkTimes(times{{"now", &p.Now}, {"next_at", p.NextAt}, {"started_at", p.StartedAt}, {"finished_at", p.FinishedAt}}); err != nil {
		return nil, fmt.Errorf("sqlite: workflow step update %s/%s: %w", p.RunID, p.ID, err)
	}
	var out *wfrun.Step
	err := db.writeEvents(ctx, func(tx *sql.Tx, emit emitFunc) error {
		var runState wfrun.RunState
		if err := tx.QueryRowContext(ctx, `SELECT state FROM workflow_runs WHERE id = ?`, p.RunID).Scan(&runState); err != nil {
			return fmt.Errorf("run: %w", mapErr(err))
		}
		if runState.Terminal() {
			return fmt.Errorf("run is %s: %w", runState, job.ErrTerminal)
		}
		cur, err := getStep(ctx, tx, p.RunID, p.ID)
		if err != nil {
			return err
		}
		if len(p.From) > 0 && !slices.Contains(p.From, cur.State) {
			return fmt.Errorf("step is %s, not %v: %w", cur.State, p.From, job.ErrConflict)
		}
		next := *cur
		next.State, next.Reason, next.UpdatedAt = p.To, p.Reason, p.Now
		setIf(&next.JobID, p.JobID)
		setIf(&next.Try, p.Try)
		setIf(&next.Host, p.Host)
		setIf(&next.NextAt, p.NextAt)
		setIf(&next.CacheKey, p.CacheKey)
		setIf(&next.Cached, p.Cached)
		setIf(&next.WhyRan, p.WhyRan)
		setIf(&next.JobCause, p.JobCause)
		setIf(&next.StartedAt, p.StartedAt)
		setIf(&next.FinishedAt, p.FinishedAt)
		if p.Outputs != nil {
			next.Outputs = p.Outputs
		}
		outputs, err := jsonText(next.Outputs, len(next.Outputs) == 0)
		if err != nil {
			return fmt.Errorf("encode outputs: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE workflow_steps SET state = ?, reason = ?, job_id = ?, try = ?, host = ?,
			next_at = ?, cache_key = ?, cached = ?, why_ran = ?, job_cause = ?, outputs = ?, updated_at = ?,
			started_at = ?, finished_at = ? WHERE run_id = ? AND id = ?`,
			next.State, next.Reason, next.JobID, next.Try, next.Host, nanos(next.NextAt), next.CacheKey, next.Cached,
			next.WhyRan, next.JobCause, outputs, nanos(next.UpdatedAt), nanos(next.StartedAt), nanos(next.FinishedAt),
			p.RunID, p.ID)
		if err != nil {
			return err
		}
		if out, err = getStep(ctx, tx, p.RunID, p.ID); err != nil {
			return err
		}
		if _, err := emit(stepEvent(out, cur.State)); err != nil {
			return fmt.Errorf("record event: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: workflow step update %s/%s to %s: %w", p.RunID, p.ID, p.To, err)
	}
	return out, nil
}

// setIf sets *dst to *v when v is not nil.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// WorkflowRunDeleteFinished implements store.Store. Steps go with their run
// (ON DELETE CASCADE).
func (db *DB) WorkflowRunDeleteFinished(ctx context.Context, p store.JobDeleteFinishedParams) (int, error) {
	if p.Before.IsZero() {
		return 0, errors.New("sqlite: workflow run delete finished: Before is required")
	}
	if err := checkTimes(times{{"before", &p.Before}}); err != nil {
		return 0, fmt.Errorf("sqlite: workflow run delete finished: %w", err)
	}
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM workflow_runs WHERE id IN (
			SELECT id FROM workflow_runs WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?
			ORDER BY finished_at LIMIT ?)`, nanos(p.Before), limit(p.Limit))
		if err != nil {
			return err
		}
		d, err := res.RowsAffected()
		if err != nil {
			return err
		}
		n = int(d)
		_, err = tx.ExecContext(ctx, `DELETE FROM workflow_cache WHERE key IN (
			SELECT key FROM workflow_cache WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`, nanos(p.Before), limit(p.Limit))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: workflow run delete finished: %w", err)
	}
	return n, nil
}

const cacheColumns = `key, workflow, step, parts, outputs, run_id, created_at, expires_at`

func scanCache(scan func(dest ...any) error) (wfrun.CacheEntry, error) {
	var (
		e                wfrun.CacheEntry
		parts, outputs   string
		created, expires int64
	)
	if err := scan(&e.Key, &e.Workflow, &e.Step, &parts, &outputs, &e.RunID, &created, &expires); err != nil {
		return e, err
	}
	if err := errors.Join(fromJSON(parts, &e.Parts), fromJSON(outputs, &e.Outputs)); err != nil {
		return e, fmt.Errorf("cache entry %s: decode: %w", e.Key, err)
	}
	e.CreatedAt, e.ExpiresAt = fromNanos(created), fromNanos(expires)
	return e, nil
}

// cacheOne returns the entry a query finds, ok false for none.
func (db *DB) cacheOne(ctx context.Context, query string, args ...any) (wfrun.CacheEntry, bool, error) {
	e, err := scanCache(db.r.QueryRowContext(ctx, query, args...).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return wfrun.CacheEntry{}, false, nil
	}
	if err != nil {
		return wfrun.CacheEntry{}, false, err
	}
	return e, true, nil
}

// WorkflowCacheGet implements store.Store.
func (db *DB) WorkflowCacheGet(ctx context.Context, key string, now time.Time) (wfrun.CacheEntry, bool, error) {
	if err := checkTimes(times{{"now", &now}}); err != nil {
		return wfrun.CacheEntry{}, false, fmt.Errorf("sqlite: workflow cache get: %w", err)
	}
	e, ok, err := db.cacheOne(ctx, `SELECT `+cacheColumns+` FROM workflow_cache WHERE key = ? AND expires_at > ?`, key, nanos(now))
	if err != nil {
		return e, false, fmt.Errorf("sqlite: workflow cache get %s: %w", key, err)
	}
	return e, ok, nil
}

// WorkflowCacheLatest implements store.Store.
func (db *DB) WorkflowCacheLatest(ctx context.Context, workflow, step string) (wfrun.CacheEntry, bool, error) {
	e, ok, err := db.cacheOne(ctx, `SELECT `+cacheColumns+` FROM workflow_cache WHERE workflow = ? AND step = ?
		ORDER BY created_at DESC, key DESC LIMIT 1`, workflow, step)
	if err != nil {
		return e, false, fmt.Errorf("sqlite: workflow cache latest %s/%s: %w", workflow, step, err)
	}
	return e, ok, nil
}

// WorkflowCachePut implements store.Store.
func (db *DB) WorkflowCachePut(ctx context.Context, e wfrun.CacheEntry) error {
	if e.Key == "" || e.Workflow == "" || e.Step == "" || e.CreatedAt.IsZero() || e.ExpiresAt.IsZero() {
		return errors.New("sqlite: workflow cache put: Key, Workflow, Step, CreatedAt and ExpiresAt are required")
	}
	if err := checkTimes(times{{"created_at", &e.CreatedAt}, {"expires_at", &e.ExpiresAt}}); err != nil {
		return fmt.Errorf("sqlite: workflow cache put %s: %w", e.Key, err)
	}
	parts, err1 := jsonText(e.Parts, false)
	outputs, err2 := jsonText(e.Outputs, false)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("sqlite: workflow cache put %s: encode: %w", e.Key, err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO workflow_cache (`+cacheColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Key, e.Workflow, e.Step, parts, outputs, e.RunID, nanos(e.CreatedAt), nanos(e.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: workflow cache put %s: %w", e.Key, err)
	}
	return nil
}
