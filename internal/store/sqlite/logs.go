package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"fusebox/internal/job"
)

// LogsSet implements store.Store. It returns job.ErrNotFound for an unknown
// job.
func (db *DB) LogsSet(ctx context.Context, jobID string, logs job.Logs) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO logs (job_id, stdout, stderr, truncated, stdout_marks, stderr_marks) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (job_id) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr,
			truncated = excluded.truncated, stdout_marks = excluded.stdout_marks, stderr_marks = excluded.stderr_marks`,
			jobID, blob(logs.Stdout), blob(logs.Stderr), logs.Truncated,
			blob(job.EncodeMarks(logs.StdoutMarks)), blob(job.EncodeMarks(logs.StderrMarks)))
		if isConstraint(err, codeForeignKey) {
			return job.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: job %s: set logs: %w", jobID, err)
	}
	return nil
}

// blob is b, never nil: the driver would bind a nil slice as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// LogsGet implements store.Store. Stdout and Stderr are never nil.
func (db *DB) LogsGet(ctx context.Context, jobID string) (job.Logs, error) {
	var l job.Logs
	var om, em []byte
	err := db.r.QueryRowContext(ctx, `SELECT stdout, stderr, truncated, stdout_marks, stderr_marks FROM logs WHERE job_id = ?`, jobID).
		Scan(&l.Stdout, &l.Stderr, &l.Truncated, &om, &em)
	if err != nil {
		return job.Logs{}, fmt.Errorf("sqlite: job %s: logs: %w", jobID, mapErr(err))
	}
	l.Stdout, l.Stderr = blob(l.Stdout), blob(l.Stderr)
	if l.StdoutMarks, err = job.DecodeMarks(om); err == nil {
		l.StderrMarks, err = job.DecodeMarks(em)
	}
	if err != nil {
		return job.Logs{}, fmt.Errorf("sqlite: job %s: logs: %w", jobID, err)
	}
	return l, nil
}
