package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"fusebox/internal/job"
)

// ArtifactsInUse returns the digests of every artifact a stored job, step,
// run result or cache entry refers to.
func (db *DB) ArtifactsInUse(ctx context.Context) (map[string]bool, error) {
	in := map[string]bool{}
	for _, q := range []string{
		`SELECT outputs FROM jobs WHERE outputs != ''`,
		`SELECT outputs FROM workflow_steps WHERE outputs != ''`,
		`SELECT outputs FROM workflow_cache WHERE outputs != ''`,
		`SELECT results FROM workflow_runs WHERE results != ''`,
	} {
		if err := db.collectDigests(ctx, q, in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// collectDigests adds the "digest" of every element of the JSON lists the
// query's one column holds.
func (db *DB) collectDigests(ctx context.Context, query string, in map[string]bool) error {
	rows, err := db.r.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		var outs []job.Output // a wfrun.Result has the same digest field
		if err := json.Unmarshal([]byte(s), &outs); err != nil {
			return fmt.Errorf("artifacts in use: %w", err)
		}
		for _, o := range outs {
			in[o.Digest] = true
		}
	}
	return rows.Err()
}
