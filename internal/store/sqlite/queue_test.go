package sqlite

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// A database written before migration 0002 gets its queued jobs' keys and
// images filled in, and the queue keys counted, when it is opened.
func TestMigrateQueueKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fusebox.db")
	w, err := sql.Open("sqlite", mustDSN(t, path))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	// Schema version 1, as the first fusebox left it.
	for _, q := range []string{
		`CREATE TABLE migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`,
		ms[0].sql,
		`INSERT INTO migrations VALUES (1, '0001_init', 0)`,
	} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	gpu := map[string]string{"gpu": "yes", "zone": "a"}
	for i, s := range []struct {
		id    string
		state job.State
		spec  job.Spec
	}{
		{"a", job.StateQueued, job.Spec{Image: "alpine:3.20", Constraints: gpu}},
		{"b", job.StateQueued, job.Spec{Image: "busybox", Constraints: gpu}},
		{"c", job.StateQueued, job.Spec{Image: "debian"}},
		{"d", job.StateSucceeded, job.Spec{Image: "debian", Constraints: gpu}},
	} {
		spec, err := canonicalSpec(s.spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(`INSERT INTO jobs (id, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			s.id, string(spec), s.state, int64(i+1), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	db := openTest(t, path)
	keys, err := db.QueueKeyList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []store.QueueKey{{Key: "", Queued: 1}, {Key: store.ConstraintsKey(gpu), Constraints: gpu, Queued: 2}}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("QueueKeyList after migrating = %+v, want %+v", keys, want)
	}
	js, err := db.JobListReady(t.Context(), store.JobListReadyParams{Key: store.ConstraintsKey(gpu), Now: time.Now()})
	if err != nil || len(js) != 2 || js[0].ID != "a" || js[0].Image != "alpine:3.20" || js[1].Image != "busybox" {
		t.Fatalf("JobListReady after migrating = %+v, %v", js, err)
	}
	// A job submitted now with the same constraints joins the migrated key.
	j := testJob("e")
	j.Spec.Constraints = map[string]string{"zone": "a", "gpu": "yes"}
	if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: j}); err != nil {
		t.Fatal(err)
	}
	keys, _ = db.QueueKeyList(t.Context())
	if len(keys) != 2 || keys[1].Queued != 3 {
		t.Fatalf("QueueKeyList after an insert = %+v", keys)
	}
}

func mustDSN(t *testing.T, path string) string {
	t.Helper()
	d, err := dsn(path, Options{}.WithDefaults(), false)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The scheduler's queries use their indexes: none scans the jobs table.
func TestQueuePlans(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	for name, q := range map[string]string{
		"ready":  `SELECT id FROM jobs INDEXED BY jobs_ready WHERE state = 'queued' AND constraints_key = ?1 AND not_before <= ?2 ORDER BY priority DESC, created_at, id LIMIT 1`,
		"reason": `UPDATE jobs SET reason = ?2, updated_at = ?3 WHERE rowid IN (` + differentReason + ` LIMIT 10)`,
	} {
		rows, err := db.r.Query("EXPLAIN QUERY PLAN "+q, "k", "r", 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if strings.Contains(all, "SCAN") || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("%s: plan %q scans or sorts", name, all)
		}
		if name == "reason" && !strings.Contains(all, "reason<?") {
			t.Errorf("reason: plan %q does not seek by reason", all)
		}
	}
}
