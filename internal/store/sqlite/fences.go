package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"fusebox/internal/store"
)

// FenceList implements store.Store.
func (db *DB) FenceList(ctx context.Context, host string) ([]store.Fence, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT host, job_id, attempt, container, reason, created_at
		FROM fences WHERE ? = '' OR host = ? ORDER BY created_at, host, job_id, attempt`, host, host)
	if err != nil {
		return nil, fmt.Errorf("sqlite: fences: %w", err)
	}
	defer rows.Close()
	var out []store.Fence
	for rows.Next() {
		var f store.Fence
		var at int64
		if err := rows.Scan(&f.Host, &f.JobID, &f.Attempt, &f.Container, &f.Reason, &at); err != nil {
			return nil, fmt.Errorf("sqlite: fences: %w", err)
		}
		f.CreatedAt = fromNanos(at)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: fences: %w", err)
	}
	return out, nil
}

// FenceClear implements store.Store.
func (db *DB) FenceClear(ctx context.Context, p store.FenceClearParams) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM fences WHERE host = ? AND job_id = ? AND attempt = ?`, p.Host, p.JobID, p.Attempt)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 || p.Note == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET error = CASE WHEN error = '' THEN ? ELSE error || '; ' || ? END
			WHERE job_id = ? AND number = ?`, p.Note, p.Note, p.JobID, p.Attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: clear fence of job %s attempt %d on %s: %w", p.JobID, p.Attempt, p.Host, err)
	}
	return nil
}
