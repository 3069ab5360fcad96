package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Run: go test -run '^$' -bench . -benchtime 2s ./internal/store/sqlite/

func opsPerSecond(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkJobInsert(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, queued := range []int{0, 10_000} {
			b.Run(fmt.Sprintf("synchronous=%s/queued=%d", sync, queued), func(b *testing.B) {
				db := openTest(b, filepath.Join(b.TempDir(), "fusebox.db"), Options{Synchronous: sync})
				prefill(b, db, queued)
				n := 0
				for b.Loop() {
					// The bound is above the queue, so every insert counts it all.
					_, _, err := db.JobInsert(b.Context(), store.JobInsertParams{Job: testJob(fmt.Sprintf("j%d", n)), MaxQueued: 1 << 30})
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				opsPerSecond(b, n)
			})
		}
	}
}

// prefill adds n queued jobs in one transaction.
func prefill(b *testing.B, db *DB, n int) {
	b.Helper()
	err := db.write(b.Context(), func(tx *sql.Tx) error {
		for i := range n {
			j := testJob(fmt.Sprintf("pre%d", i))
			if _, _, err := insertJob(b.Context(), tx, func(ev event.Event) (int64, error) { return insertEvent(b.Context(), tx, ev) }, j, []byte(`{"image":"alpine"}`), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkJobTransition(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db := openTest(b, filepath.Join(b.TempDir(), "fusebox.db"), Options{Synchronous: sync})
			ctx := b.Context()
			if _, _, err := db.JobInsert(ctx, store.JobInsertParams{Job: testJob("j")}); err != nil {
				b.Fatal(err)
			}
			// Alternately launch attempt k (a new attempt row) and put the
			// job back in the queue (finishing it).
			n := 0
			now := time.Now()
			for b.Loop() {
				p := store.JobTransitionParams{ID: "j", From: []job.State{job.StateQueued}, To: job.StateLaunching,
					ExpectAttempt: store.Ptr(n / 2), SetAttempt: store.Ptr(n/2 + 1), Host: store.Ptr("h1"), Now: now}
				if n%2 == 1 {
					p = store.JobTransitionParams{ID: "j", From: []job.State{job.StateLaunching}, To: job.StateQueued,
						ExpectAttempt: store.Ptr(n/2 + 1), AttemptOutcome: "host_fault", Now: now}
				}
				if _, err := db.JobTransition(ctx, p); err != nil {
					b.Fatal(err)
				}
				n++
			}
			opsPerSecond(b, n)
		})
	}
}

// BenchmarkReadWhileWriting compares a separate read pool with reads
// sharing the writer connection, while one goroutine inserts without pause.
func BenchmarkReadWhileWriting(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			db := openTest(b, filepath.Join(b.TempDir(), "fusebox.db"), Options{sharedPool: shared})
			if _, _, err := db.JobInsert(b.Context(), store.JobInsertParams{Job: testJob("read-me")}); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			var writes atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					_, _, err := db.JobInsert(ctx, store.JobInsertParams{Job: testJob(fmt.Sprintf("w%d", i))})
					if err == nil {
						writes.Add(1)
					}
				}
			})
			var reads atomic.Int64
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.JobGetByID(ctx, "read-me"); err != nil {
						b.Error(err)
						return
					}
					reads.Add(1)
				}
			})
			b.StopTimer()
			cancel()
			wg.Wait()
			b.ReportMetric(float64(reads.Load())/b.Elapsed().Seconds(), "reads/s")
			b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
