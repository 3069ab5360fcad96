package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fusebox/internal/config"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// BenchmarkAPIAgainstEngine measures, on one private engine and in the
// same run, apiJobs trivial jobs arriving at once and run apiConcurrency
// at a time: through fusebox (POST /v1/jobs to an in-process server whose
// one host has capacity apiConcurrency) against the same containers run
// directly with the engine client by apiConcurrency workers (create,
// start, wait, logs, remove: what fusebox does for a job). It reports the
// makespan (the jobs' arrival to the last one ended) and the p50 and p99
// of submit-to-running (their arrival to a job's container started) of
// each, and fusebox's ÷ direct for all three. Issue 13's target is a
// ratio of at most 1.10 on both:
//
//	go test -run '^$' -bench APIAgainstEngine -benchtime 1x ./internal/server/
const (
	apiJobs        = 40
	apiConcurrency = 8
)

func BenchmarkAPIAgainstEngine(b *testing.B) {
	engines := enginetest.ForTest(b, 1)
	e := engines.Engines[0]
	img := enginetest.TestImage(b)
	_, c := startServer(b, engines, func(cfg *config.Config) { cfg.Hosts[0].Capacity = apiConcurrency })
	ec, err := engine.New(engine.Config{Name: e.Name, Address: e.UnixHost(), NetworkMode: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer ec.Close()
	ctx := b.Context()
	spec := job.Spec{Image: img.Ref, Command: []string{"true"}}

	viaAPI := func() (time.Duration, []time.Duration) {
		t0 := time.Now()
		ids := make([]string, apiJobs)
		var wg sync.WaitGroup
		sem := make(chan struct{}, apiConcurrency)
		for i := range apiJobs {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				j, _, err := c.Submit(ctx, spec)
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = j.ID
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		var last time.Time
		toRun := make([]time.Duration, apiJobs)
		for i, id := range ids {
			var d *job.Job
			enginetest.Eventually(b, 2*time.Minute, "job "+id+" ends", func() bool {
				jd, err := c.Get(ctx, id)
				if err != nil {
					return false
				}
				d = jd.Job
				return d.State.Terminal()
			})
			if d.State != job.StateSucceeded {
				b.Fatalf("job %s: %s (%s)", id, d.State, d.Reason)
			}
			toRun[i] = d.StartedAt.Sub(t0)
			if d.FinishedAt.After(last) {
				last = d.FinishedAt
			}
		}
		return last.Sub(t0), toRun
	}
	direct := func() (time.Duration, []time.Duration) {
		t0 := time.Now()
		work := make(chan int, apiJobs)
		for i := range apiJobs {
			work <- i
		}
		close(work)
		toRun := make([]time.Duration, apiJobs)
		var wg sync.WaitGroup
		for range apiConcurrency {
			wg.Go(func() {
				for i := range work {
					if err := runDirect(ctx, ec, spec, &toRun[i], t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return time.Since(t0), toRun
	}
	// One round of each first: the image's first use, the server's warm-up.
	viaAPI()
	direct()
	var mkF, mkD []time.Duration
	var runF, runD []time.Duration
	b.ResetTimer()
	for range b.N {
		m, r := viaAPI()
		mkF, runF = append(mkF, m), append(runF, r...)
		m, r = direct()
		mkD, runD = append(mkD, m), append(runD, r...)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	q := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	b.ReportMetric(ms(median(mkF)), "makespan-ms-fusebox")
	b.ReportMetric(ms(median(mkD)), "makespan-ms-direct")
	b.ReportMetric(float64(median(mkF))/float64(median(mkD)), "makespan-ratio")
	b.ReportMetric(ms(q(runF, 0.5)), "p50-ms-fusebox")
	b.ReportMetric(ms(q(runD, 0.5)), "p50-ms-direct")
	b.ReportMetric(float64(q(runF, 0.5))/float64(q(runD, 0.5)), "p50-ratio")
	b.ReportMetric(ms(q(runF, 0.99)), "p99-ms-fusebox")
	b.ReportMetric(ms(q(runD, 0.99)), "p99-ms-direct")
	b.ReportMetric(float64(q(runF, 0.99))/float64(q(runD, 0.99)), "p99-ratio")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d jobs at concurrency %d, %d rounds", apiJobs, apiConcurrency, b.N)
}

// runDirect runs one job's container the way fusebox does, with the
// engine client alone; toRun gets the time from t0 (when every job
// arrived) to its start.
func runDirect(ctx context.Context, ec *engine.Client, spec job.Spec, toRun *time.Duration, t0 time.Time) error {
	id, err := ec.Create(ctx, engine.ContainerSpec{Image: spec.Image, Cmd: spec.Command, Labels: map[string]string{"bench": "direct"}})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer ec.Remove(context.WithoutCancel(ctx), id)
	if err := ec.Start(ctx, id); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	*toRun = time.Since(t0)
	code, err := ec.Wait(ctx, id)
	if err != nil || code != 0 {
		return fmt.Errorf("wait: exit %d, %v", code, err)
	}
	if _, _, _, err := ec.Logs(ctx, id, 1<<20); err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}
