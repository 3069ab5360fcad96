package dispatch_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"fusebox/internal/dispatch"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/store/sqlite"
)

// countingHandler counts log records whose message contains match.
type countingHandler struct {
	slog.Handler
	match string
	n     *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	if h.Handler != nil {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// lockDB takes SQLite's write lock on path from another connection, as
// another process would, until the returned function is called.
func lockDB(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// Scenario 5: a store write that fails (SQLITE_BUSY past the busy timeout)
// on the launching→running and running→terminal paths is retried until it
// succeeds: the job is never stranded, and its capacity slot is given back
// exactly once.
func TestFailedStoreWritesAreRetriedNotDropped(t *testing.T) {
	engines := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, engines)
	e := engines.Engines[0]
	failures := new(atomic.Int64)
	var inner slog.Handler
	if os.Getenv("FUSEBOX_TEST_LOG") != "" {
		inner = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	log := slog.New(countingHandler{Handler: inner, match: "store write failed", n: failures})
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy, noHealth: true,
		store: sqlite.Options{BusyTimeout: 20 * time.Millisecond}, dispatch: dispatch.Config{Logger: log}})
	h := r.fleet.Host(e.Name)
	late, err := e.DelayAnswers(routeStart, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	j := r.submit(r.spec("sleep", "4s", "print", "kept"))
	if err := late.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	// The start has happened; its answer comes in a second. Lock the
	// store until the running transition has failed a few times.
	unlock := lockDB(t, r.dbPath)
	enginetest.Eventually(t, 30*time.Second, "the running transition failing", func() bool { return failures.Load() >= 3 })
	unlock()
	r.waitState(j.ID, job.StateRunning, 30*time.Second)

	// Again for the end of the run.
	before := failures.Load()
	unlock = lockDB(t, r.dbPath)
	enginetest.Eventually(t, 30*time.Second, "the terminal transition failing", func() bool { return failures.Load() >= before+3 })
	unlock()
	done := r.wait(j.ID, 30*time.Second)
	if done.State != job.StateSucceeded || done.Attempt != 1 {
		t.Fatalf("job %+v", done)
	}
	logs, err := r.d.Logs(context.Background(), j.ID)
	if err != nil || string(logs.Stdout) != "kept\n" {
		t.Fatalf("logs %q, %v", logs.Stdout, err)
	}
	enginetest.Eventually(t, 10*time.Second, "the slot given back once", func() bool { return h.Running() == 0 })
	if n := h.Running(); n != 0 {
		t.Fatalf("host counts %d running jobs after the job ended", n)
	}
}
