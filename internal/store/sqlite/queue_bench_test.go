package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// BenchmarkQueue measures the durable queue with the product's defaults
// (synchronous=FULL, the queue bound checked in the insert's transaction):
//
//   - submit: accepted submissions per second, one JobInsert of a typical
//     spec after another (each committed before it returns);
//
//   - dequeue: jobs taken off a queue of queueDepth per second, the
//     scheduler's way (JobListReady of the key, then the queued ->
//     launching transition of the first);
//
//   - footprint: bytes the database file grows by per queued job, over
//     queueDepth jobs (WAL checkpointed).
//
//     go test -run '^$' -bench Queue -benchtime 2s ./internal/store/sqlite/
const queueDepth = 10_000

func queueSpec(i int) *job.Job {
	return &job.Job{ID: fmt.Sprintf("q%07d", i), CreatedAt: time.Now(), Spec: job.Spec{
		Image: "registry.example.com/team/batch:1.4.2", Command: []string{"python", "-m", "batch.run", "--shard", fmt.Sprint(i)},
		Env: map[string]string{"STAGE": "prod", "SHARD": fmt.Sprint(i)}, Labels: map[string]string{"team": "data"},
		MaxAttempts: 3}}
}

func BenchmarkQueue(b *testing.B) {
	b.Run("submit/synchronous=FULL", func(b *testing.B) {
		db := openTest(b, filepath.Join(b.TempDir(), "fusebox.db"), Options{Synchronous: "FULL"})
		n := 0
		for b.Loop() {
			if _, _, err := db.JobInsert(b.Context(), store.JobInsertParams{Job: queueSpec(n), MaxQueued: 1 << 30}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "accepted/s")
	})
	b.Run(fmt.Sprintf("dequeue/synchronous=FULL/queued=%d", queueDepth), func(b *testing.B) {
		db := openTest(b, filepath.Join(b.TempDir(), "fusebox.db"), Options{Synchronous: "FULL"})
		ctx := b.Context()
		next := 0
		// Filled in one transaction (one fsync), as prefill does.
		fill := func() {
			err := db.write(ctx, func(tx *sql.Tx) error {
				for range queueDepth {
					j := queueSpec(next)
					spec, _ := json.Marshal(j.Spec)
					if _, _, err := insertJob(ctx, tx, func(ev event.Event) (int64, error) { return insertEvent(ctx, tx, ev) }, j, spec, 0); err != nil {
						return err
					}
					next++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		fill()
		b.StartTimer()
		key := store.ConstraintsKey(nil)
		n := 0
		for b.Loop() {
			ready, err := db.JobListReady(ctx, store.JobListReadyParams{Key: key, Now: time.Now(), Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			if len(ready) == 0 {
				b.StopTimer()
				fill()
				b.StartTimer()
				continue
			}
			q := ready[0]
			if _, err := db.JobTransition(ctx, store.JobTransitionParams{ID: q.ID, From: []job.State{job.StateQueued},
				ExpectAttempt: &q.Attempt, To: job.StateLaunching, SetAttempt: store.Ptr(q.Attempt + 1), Host: store.Ptr("h1"),
				Reason: "placed on h1", Now: time.Now()}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "dequeued/s")
	})
	b.Run(fmt.Sprintf("footprint/queued=%d", queueDepth), func(b *testing.B) {
		for range b.N {
			path := filepath.Join(b.TempDir(), "fusebox.db")
			db := openTest(b, path, Options{Synchronous: "NORMAL"})
			size := func() int64 {
				if _, err := db.w.ExecContext(b.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					b.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				return fi.Size()
			}
			before := size()
			for i := range queueDepth {
				if _, _, err := db.JobInsert(b.Context(), store.JobInsertParams{Job: queueSpec(i), MaxQueued: 1 << 30}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size()-before)/queueDepth, "bytes/job")
		}
	})
}
