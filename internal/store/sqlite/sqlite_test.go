package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	})
}

// openTest opens path and closes it when t ends.
func openTest(t testing.TB, path string, opts ...Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testJob(id string) *job.Job {
	return &job.Job{ID: id, Spec: job.Spec{Image: "alpine:3.20", Env: map[string]string{"K": "v"}},
		CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC)}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "fusebox.db")
	db := openTest(t, path)
	if _, _, err := db.JobInsert(ctx, store.JobInsertParams{Job: testJob("j1")}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC)
	want, err := db.JobTransition(ctx, store.JobTransitionParams{ID: "j1", From: []job.State{job.StateQueued},
		To: job.StateLaunching, Now: now, Host: store.Ptr("h1"), SetAttempt: store.Ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.LogsSet(ctx, "j1", job.Logs{Stdout: []byte("out")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, path)
	got, err := db.JobGetByID(ctx, "j1")
	if err != nil {
		t.Fatalf("after re-open: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after re-open:\n got %+v\nwant %+v", got, want)
	}
	ts, err1 := db.JobTransitionList(ctx, "j1")
	as, err2 := db.AttemptList(ctx, "j1")
	logs, err3 := db.LogsGet(ctx, "j1")
	if err := errors.Join(err1, err2, err3); err != nil || len(ts) != 2 || len(as) != 1 || string(logs.Stdout) != "out" {
		t.Fatalf("after re-open: %d transitions, %d attempts, logs %q, %v", len(ts), len(as), logs.Stdout, err)
	}
}

// TestCrash checks "committed before acknowledged" across a process crash:
// a child process inserts a job and exits without closing the database.
func TestCrash(t *testing.T) {
	if path := os.Getenv("FUSEBOX_SQLITE_CRASH_DB"); path != "" {
		db, err := Open(context.Background(), path)
		if err == nil {
			_, _, err = db.JobInsert(context.Background(), store.JobInsertParams{Job: testJob("crash")})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(3) // no Close: the WAL is not checkpointed
	}
	path := filepath.Join(t.TempDir(), "fusebox.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "FUSEBOX_SQLITE_CRASH_DB="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	db := openTest(t, path)
	if _, err := db.JobGetByID(t.Context(), "crash"); err != nil {
		t.Fatalf("job inserted before the crash: %v", err)
	}
}

func migrationRows(t *testing.T, db *DB) [][3]any {
	t.Helper()
	rows, err := db.r.QueryContext(t.Context(), `SELECT version, name, applied_at FROM migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][3]any
	for rows.Next() {
		var v, at int64
		var name string
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		out = append(out, [3]any{v, name, at})
	}
	return out
}

func TestReopenKeepsMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fusebox.db")
	db := openTest(t, path)
	first := migrationRows(t, db)
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(ms) || first[0][1] != "0001_init" {
		t.Fatalf("migrations = %v, want the %d embedded ones", first, len(ms))
	}
	db.Close()
	db = openTest(t, path) // would fail if 0001 (CREATE TABLE jobs ...) ran again
	if again := migrationRows(t, db); !reflect.DeepEqual(again, first) {
		t.Fatalf("after re-open migrations = %v, want %v", again, first)
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fusebox.db")
	db := openTest(t, path)
	if _, err := db.w.ExecContext(t.Context(), `INSERT INTO migrations VALUES (99, '0099_future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(t.Context(), path)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(newer database) = %v, want ErrSchemaTooNew naming the file and version 99", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for _, tt := range []struct {
		files []string
		err   string
	}{
		{[]string{"0001_a.sql", "0002_b.sql"}, ""},
		{[]string{"0001_a.sql", "0003_c.sql"}, "version 3, want 2"},
		{[]string{"0002_b.sql"}, "version 2, want 1"},
		{[]string{"1_a.sql"}, "NNNN_name.sql"},
		{[]string{"0001a.sql"}, "NNNN_name.sql"},
	} {
		fsys := fstest.MapFS{}
		for _, n := range tt.files {
			fsys["migrations/"+n] = file
		}
		ms, err := loadMigrations(fsys)
		if tt.err == "" && (err != nil || len(ms) != len(tt.files)) {
			t.Errorf("%v: %d migrations, %v", tt.files, len(ms), err)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%v: error %v, want one containing %q", tt.files, err, tt.err)
		}
	}
	if _, err := loadMigrations(migrationFiles); err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Synchronous: "OFF"}, {Synchronous: "fast"}, {ReadConns: -1}, {BusyTimeout: -time.Second}} {
		if _, err := Open(t.Context(), filepath.Join(dir, "bad.db"), o); err == nil || !strings.HasPrefix(err.Error(), "sqlite: options: ") {
			t.Errorf("Open(%+v) = %v, want an options error", o, err)
		}
	}
	if _, err := Open(t.Context(), filepath.Join(dir, "two.db"), Options{}, Options{}); err == nil {
		t.Error("Open with two Options succeeded")
	}
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "missing", "x.db")} {
		if _, err := Open(t.Context(), p); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
	for _, tt := range []struct {
		sync string
		want int
	}{{"", 2}, {"normal", 1}, {"EXTRA", 3}} {
		db := openTest(t, filepath.Join(dir, "sync"+tt.sync+".db"), Options{Synchronous: tt.sync})
		var got int
		if err := db.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil || got != tt.want {
			t.Errorf("synchronous %q: PRAGMA synchronous = %d, %v; want %d", tt.sync, got, err, tt.want)
		}
	}
}

func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag", "fuse box%20.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, path)
	if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: testJob("j")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

func TestRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, path := range []string{"x.db", "y:z.db"} {
		db := openTest(t, path)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("database not at the path given: %v", err)
		}
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	if _, err := db.r.ExecContext(t.Context(), `DELETE FROM jobs`); err == nil {
		t.Fatal("a write through the read pool succeeded")
	}
}

// TestTwoHandles is two processes sharing one file: BEGIN IMMEDIATE keeps
// the queue bound, which the single writer connection alone could not.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fusebox.db")
	dbs := []*DB{openTest(t, path), openTest(t, path)}
	const n, bound = 20, 5
	var wg sync.WaitGroup
	var ok, full atomic.Int32
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, err := dbs[i%2].JobInsert(t.Context(), store.JobInsertParams{Job: testJob(fmt.Sprintf("j%02d", i)), MaxQueued: bound})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, job.ErrQueueFull):
				full.Add(1)
			default:
				t.Errorf("insert %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != bound || full.Load() != n-bound {
		t.Fatalf("%d accepted, %d refused; want %d, %d", ok.Load(), full.Load(), bound, n-bound)
	}
}

func TestDuplicateID(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: testJob("j")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: testJob("j")})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second insert of id j = %v, want an error saying it exists", err)
	}
}

// TestCountsMatchJobs checks the trigger-kept job_counts against the jobs
// themselves after racing inserts and transitions.
func TestCountsMatchJobs(t *testing.T) {
	ctx := t.Context()
	db := openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if _, _, err := db.JobInsert(ctx, store.JobInsertParams{Job: testJob(id), MaxQueued: 25}); err != nil {
					continue // the queue is full
				}
				now := time.Now()
				for _, to := range []job.State{job.StateLaunching, job.StateRunning, job.StateSucceeded}[:i%4] {
					from := map[job.State]job.State{job.StateLaunching: job.StateQueued, job.StateRunning: job.StateLaunching,
						job.StateSucceeded: job.StateRunning}[to]
					p := store.JobTransitionParams{ID: id, From: []job.State{from}, To: to, Now: now}
					if to == job.StateLaunching {
						p.SetAttempt, p.Host = store.Ptr(1), store.Ptr("h1")
					}
					if _, err := db.JobTransition(ctx, p); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	kept, err := db.JobCountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := map[job.State]int{}
	rows, err := db.r.QueryContext(ctx, `SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s job.State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		counted[s] = n
	}
	if !reflect.DeepEqual(kept, counted) || len(counted) < 3 {
		t.Fatalf("job_counts = %v, jobs = %v", kept, counted)
	}
}

func TestTimeRange(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "fusebox.db"))
	j := testJob("old")
	j.CreatedAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: j}); err == nil || !strings.Contains(err.Error(), "created_at") {
		t.Fatalf("insert with CreatedAt in 1600 = %v, want an error naming created_at", err)
	}
	j = testJob("pre-epoch")
	j.CreatedAt = time.Date(1969, 12, 31, 23, 59, 59, 999, time.UTC)
	if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: j}); err != nil {
		t.Fatal(err)
	}
	got, err := db.JobGetByID(t.Context(), "pre-epoch")
	if err != nil || !got.CreatedAt.Equal(j.CreatedAt) {
		t.Fatalf("pre-epoch CreatedAt = %v, %v; want %v", got.CreatedAt, err, j.CreatedAt)
	}
}
