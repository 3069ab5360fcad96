package sim_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/sim"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
)

// Run: go test -run '^$' -bench BenchmarkScaleSimulated -benchtime 1x -timeout 30m ./internal/sim/
//
// The scale of the scheduler, by simulation: N simulated engines (package
// sim: in-process Docker API, every container runs scaleJobRuntime and
// exits 0) behind the real fleet (health checks with the default config,
// breakers, limiter, placement) and the real dispatcher (scheduler, launch,
// monitoring by events, log collection, removal), with scaleQueued jobs
// queued in a SQLite store (synchronous=NORMAL, so that the disk's fsync is
// not what is measured). Per host count it reports:
//
//   - place-ns/job: one fleet.Place (and its release) over N hosts, the
//     placement decision alone;
//   - placed/s and goodput-jobs/s: containers the dispatcher started, and
//     jobs it recorded succeeded, per second, over scaleWindow;
//   - health-checks/s: pings the simulated engines answered per second
//     (one check per host per interval is N/s with the defaults);
//   - heap-MB and goroutines: the process (fusebox's fleet, dispatcher and
//     store, and the simulation) after a GC, at the end of that window;
//   - goodput-after-fail-jobs/s and goodput-kept-pct: the same window after
//     10% of the hosts were killed at once (connections reset, dials
//     refused), and its share of the goodput before.
const (
	scaleQueued     = 100_000
	scaleJobRuntime = time.Second
	scaleWindow     = 8 * time.Second
	scaleCapacity   = 4
)

func BenchmarkScaleSimulated(b *testing.B) {
	template := filepath.Join(b.TempDir(), "template.db")
	queueTemplate(b, template, scaleQueued)
	for _, n := range []int{10, 100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("hosts=%d/queued=%d", n, scaleQueued), func(b *testing.B) {
			for range b.N {
				scaleRun(b, template, n)
			}
		})
	}
}

func scaleRun(b *testing.B, template string, n int) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	path := filepath.Join(b.TempDir(), "fusebox.db")
	copyFile(b, template, path)
	db, err := sqlite.Open(ctx, path, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	cl := sim.New(n, sim.Model{JobRuntime: scaleJobRuntime})
	defer cl.Close()
	hosts := make([]fleet.HostConfig, n)
	for i, e := range cl.Engines() {
		hosts[i] = fleet.HostConfig{Name: e.Name(), Capacity: scaleCapacity, Engine: engine.Config{Address: e.Address(), Dial: e.Dial}}
	}
	fl, err := fleet.New(fleet.Config{Hosts: hosts})
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Stop()
	t0 := time.Now()
	if err := fl.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("hosts=%d: fleet started (first check of every host) in %v", n, time.Since(t0).Round(time.Millisecond))

	// The placement decision alone, on this fleet before any job runs:
	// as many as fit in a second.
	places := 0
	t0 = time.Now()
	for places < 100_000 && time.Since(t0) < time.Second {
		l, err := fl.Place(fleet.Request{Image: "busybox:latest"})
		if err != nil {
			b.Fatal(err)
		}
		l.Done(nil)
		l.Host().Release()
		places++
	}
	placeNs := float64(time.Since(t0).Nanoseconds()) / float64(places)

	d := dispatch.New(dispatch.Config{MaxQueued: 2 * scaleQueued}, db, fl)
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	// Warm up: the slots fill and the first jobs finish.
	time.Sleep(2 * scaleJobRuntime) // a measurement window, not synchronisation

	w := measure(b, ctx, db, cl, scaleWindow)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapMB := float64(int64(ms.HeapInuse)-int64(base.HeapInuse)) / (1 << 20)
	goroutines := runtime.NumGoroutine()

	for i, e := range cl.Engines() {
		if i%10 == 0 {
			e.Kill()
		}
	}
	after := measure(b, ctx, db, cl, scaleWindow)

	b.ReportMetric(placeNs, "place-ns/job")
	b.ReportMetric(w.placed, "placed/s")
	b.ReportMetric(w.goodput, "goodput-jobs/s")
	b.ReportMetric(w.pings, "health-checks/s")
	b.ReportMetric(heapMB, "heap-MB")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(after.goodput, "goodput-after-fail-jobs/s")
	if w.goodput > 0 {
		b.ReportMetric(100*after.goodput/w.goodput, "goodput-kept-pct")
	}
	b.Logf("hosts=%d: steady %+v; after 10%% killed %+v; heap %.0f MB, %d goroutines", n, w, after, heapMB, goroutines)
}

type window struct{ placed, goodput, pings float64 }

// measure counts, over d, the containers started, the jobs recorded
// succeeded and the pings answered, per second.
func measure(b *testing.B, ctx context.Context, db store.Store, cl *sim.Cluster, d time.Duration) window {
	b.Helper()
	succeeded := func() int {
		c, err := db.JobCountByState(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return c[job.StateSucceeded]
	}
	s0, j0, t0 := cl.Stats(), succeeded(), time.Now()
	time.Sleep(d) // a measurement window, not synchronisation
	s1, j1, el := cl.Stats(), succeeded(), time.Since(t0).Seconds()
	return window{placed: float64(s1.Starts-s0.Starts) / el, goodput: float64(j1-j0) / el, pings: float64(s1.Pings-s0.Pings) / el}
}

// queueTemplate makes a store holding n queued jobs, inserted in one
// transaction straight into the SQLite file (JobInsert commits one at a
// time: minutes for 100,000 on a busy machine); the triggers keep the
// counts and the queue keys as JobInsert would. Each run copies it.
func queueTemplate(b *testing.B, path string, n int) {
	b.Helper()
	db, err := sqlite.Open(b.Context(), path, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	s := job.Spec{Image: "busybox:latest", Command: []string{"true"}}
	spec, _ := json.Marshal(s)
	start := time.Now().Add(-time.Hour)
	for i := range n {
		c := start.Add(time.Duration(i) * time.Millisecond).UnixNano()
		id := fmt.Sprintf("sim%07d", i)
		if _, err := tx.Exec(`INSERT INTO jobs (id, spec, state, created_at, updated_at, image, constraints_key)
			VALUES (?, ?, 'queued', ?, ?, ?, ?)`, id, string(spec), c, c, s.Image, store.ConstraintsKey(nil)); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO transitions (job_id, seq, from_state, to_state, reason, attempt, at)
			VALUES (?, 1, '', 'queued', 'submitted', 0, ?)`, id, c); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
}
