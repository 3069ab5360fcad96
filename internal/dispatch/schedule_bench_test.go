package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
)

// Run: go test -run '^$' -bench BenchmarkSchedulePass -benchtime 20x ./internal/dispatch/
//
// One scheduling pass over a queue of 100,000 jobs of which 99% are
// constrained to a host that is isolated, on an in-process simulated fleet:
// fleet.Fleet hosts whose engines are never dialled (no health checks), and
// a stand-in for the launch that gives the slot back at once, so that only
// the scheduler is measured. Each iteration first tops the placeable jobs
// back up to 1% (outside the timer), then runs one pass; ns/placed is the
// pass's time divided by the jobs it placed. "old" is the scheduler before
// issue 7 (the first 200 queued jobs, full specs), kept below as oldPass.

const (
	benchQueued    = 100_000
	benchPlaceable = benchQueued / 100
)

// simFleet is the simulated fleet: live-1 and live-2 (pool=live) take jobs;
// dead (pool=dead) is isolated.
func simFleet(b *testing.B) *fleet.Fleet {
	b.Helper()
	var hosts []fleet.HostConfig
	for _, h := range []struct{ name, pool string }{{"live-1", "live"}, {"live-2", "live"}, {"dead", "dead"}} {
		hosts = append(hosts, fleet.HostConfig{Name: h.name, Labels: map[string]string{"pool": h.pool}, Capacity: 8,
			Engine: engine.Config{Address: "unix://" + filepath.Join(b.TempDir(), "never-dialled.sock")}})
	}
	fl, err := fleet.New(fleet.Config{Hosts: hosts, DisableHealthChecks: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fl.Stop)
	if err := fl.Isolate("dead"); err != nil {
		b.Fatal(err)
	}
	return fl
}

// standInLaunch replaces startLaunch: the launch "succeeds" and the job
// leaves its host at once.
func standInLaunch(_ *job.Job, l *fleet.Lease) {
	l.Done(nil)
	l.Host().Release()
}

type benchQueue struct {
	db      *sqlite.DB
	path    string
	d       *Dispatcher
	rnd     *rand.Rand
	n       int
	start   time.Time
	spec    func(pool string) job.Spec
	behind  bool // placeable jobs submitted after every unplaceable one
	pending int  // placeable jobs queued
}

func newBenchQueue(b *testing.B, queued int, behind bool, specBytes int) *benchQueue {
	b.Helper()
	path := filepath.Join(b.TempDir(), "fusebox.db")
	db, err := sqlite.Open(b.Context(), path, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	q := &benchQueue{db: db, path: path, d: New(Config{}, db, simFleet(b)), rnd: rand.New(rand.NewPCG(1, 2)),
		start: time.Now().Add(-time.Hour), behind: behind}
	pad := strings.Repeat("x", specBytes)
	q.spec = func(pool string) job.Spec {
		s := job.Spec{Image: "alpine:3.20", Command: []string{"true"}, Constraints: map[string]string{"pool": pool}}
		if specBytes > 0 {
			s.Env = map[string]string{"PAD": pad}
		}
		return s
	}
	step := time.Hour / time.Duration(queued)
	q.bulk(b, queued, func(i int) (string, time.Time) {
		pool := "dead"
		if !behind && i%100 == 0 {
			pool = "live"
			q.pending++
		}
		return pool, q.start.Add(time.Duration(i) * step)
	})
	q.topUp(b)
	return q
}

// bulk inserts n queued jobs in one transaction, straight into the SQLite
// file (JobInsert commits one at a time: minutes for 100,000 on a busy
// machine). The triggers keep the counts and the queue keys as JobInsert
// would; the scheduler reads them only through the store.
func (q *benchQueue) bulk(b *testing.B, n int, job func(i int) (pool string, created time.Time)) {
	b.Helper()
	raw, err := sql.Open("sqlite", "file:"+q.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		pool, created := job(i)
		q.n++
		id := fmt.Sprintf("j%07d", q.n)
		s := q.spec(pool)
		spec, _ := json.Marshal(s)
		c := created.UnixNano()
		if _, err := tx.Exec(`INSERT INTO jobs (id, spec, state, created_at, updated_at, image, constraints_key)
			VALUES (?, ?, 'queued', ?, ?, ?, ?)`, id, string(spec), c, c, s.Image, store.ConstraintsKey(s.Constraints)); err != nil {
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
}

func (q *benchQueue) insert(b *testing.B, pool string, created time.Time) {
	q.n++
	j := &job.Job{ID: fmt.Sprintf("j%07d", q.n), Spec: q.spec(pool), CreatedAt: created}
	if _, _, err := q.db.JobInsert(b.Context(), store.JobInsertParams{Job: j}); err != nil {
		b.Fatal(err)
	}
}

// topUp queues placeable jobs until there are benchPlaceable: spread
// among the others, or behind them all.
func (q *benchQueue) topUp(b *testing.B) {
	for ; q.pending < benchPlaceable; q.pending++ {
		created := q.start.Add(time.Duration(q.rnd.Int64N(int64(time.Hour))))
		if q.behind {
			created = q.start.Add(time.Hour + time.Duration(q.n))
		}
		q.insert(b, "live", created)
	}
}

func (q *benchQueue) launching(b *testing.B) int {
	c, err := q.db.JobCountByState(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return c[job.StateLaunching]
}

func BenchmarkSchedulePass(b *testing.B) {
	// A pass returns 0 when it left waiting reasons to write.
	passes := map[string]func(ctx context.Context, d *Dispatcher) time.Duration{
		"old": func(ctx context.Context, d *Dispatcher) time.Duration { return oldPass(ctx, d, standInLaunch) },
		"new": func(ctx context.Context, d *Dispatcher) time.Duration {
			return (&scheduler{d: d, launch: standInLaunch}).pass(ctx)
		},
	}
	for _, layout := range []string{"spread", "behind"} {
		for _, impl := range []string{"old", "new"} {
			b.Run(fmt.Sprintf("queued=%d/unplaceable=99pct/%s/%s", benchQueued, layout, impl), func(b *testing.B) {
				q := newBenchQueue(b, benchQueued, layout == "behind", 0)
				pass := passes[impl]
				t0 := time.Now()
				// The first passes record the waiting reasons of the 99,000.
				warm := 1
				for pass(b.Context(), q.d) == 0 {
					warm++
				}
				first := q.launching(b)
				b.Logf("first %d passes (they record the reasons): %v, placed %d", warm, time.Since(t0), first)
				q.pending -= first
				q.topUp(b)
				placed := 0
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					before := q.launching(b)
					b.StartTimer()
					pass(b.Context(), q.d)
					b.StopTimer()
					n := q.launching(b) - before
					placed += n
					q.pending -= n
					q.topUp(b)
					b.StartTimer()
				}
				b.StopTimer()
				b.ReportMetric(float64(placed)/float64(b.N), "placed/pass")
				if placed > 0 {
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placed), "ns/placed")
				}
				b.StartTimer() // ReportAllocs reads the counters at the end
			})
		}
	}
}

// oldPass is the scheduling pass before issue 7 (schedule and place at
// commit 0d3ab6e), with the launch as a parameter.
func oldPass(ctx context.Context, d *Dispatcher, launch func(*job.Job, *fleet.Lease)) time.Duration {
	next := time.Second
	for {
		jobs, err := d.store.JobListQueued(ctx, store.JobListQueuedParams{Now: time.Now(), Limit: 200})
		if err != nil {
			return next
		}
		placed := 0
		for _, j := range jobs {
			if ctx.Err() != nil {
				return next
			}
			if oldPlace(ctx, d, j, launch) {
				placed++
			}
		}
		if placed == 0 || len(jobs) < 200 {
			return next
		}
	}
}

func oldPlace(ctx context.Context, d *Dispatcher, j *job.Job, launch func(*job.Job, *fleet.Lease)) bool {
	avoid := ""
	if j.Attempt > 0 {
		avoid = j.Host
	}
	lease, err := d.fleet.Place(fleet.Request{Constraints: j.Spec.Constraints, Image: j.Spec.Image, Avoid: avoid})
	if err != nil {
		var nh *fleet.NoHostError
		if d.cfg.NoDegradation && errors.As(err, &nh) && !nh.AnyFull() {
			now := time.Now()
			nj, terr := d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateFailed, Now: now, FinishedAt: &now,
				Reason: err.Error() + "; not queued: graceful degradation is off",
			})
			if terr == nil {
				d.finished(nj)
			}
			return false
		}
		reason := "waiting for a host: " + err.Error()
		if j.Reason != reason {
			_, _ = d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateQueued, Reason: reason, Now: time.Now(),
			})
		}
		return false
	}
	h := lease.Host()
	attempt := j.Attempt + 1
	nj, err := d.store.JobTransition(ctx, store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateQueued}, ExpectAttempt: &j.Attempt,
		To: job.StateLaunching, Reason: fmt.Sprintf("placed on %s (attempt %d)", h.Name(), attempt), Now: time.Now(),
		Host: store.Ptr(h.Name()), SetAttempt: &attempt, ContainerID: store.Ptr(""), NotBefore: &time.Time{},
	})
	if err != nil {
		lease.Done(context.Canceled)
		h.Release()
		return false
	}
	launch(nj, lease)
	return true
}
