package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/job"
)

// BenchmarkFailFast measures, on three private engines with the default
// health-check and breaker settings: how long after a SIGSTOP (hang) and a
// SIGKILL the engine's breaker opens, and how long after SIGCONT a job is
// placed there again (jobs submitted steadily meanwhile); then, in the
// same run, p50/p99 submit-to-running of a burst of jobs while one engine
// is hung, with breakers on against circuit_breaker.enabled: false. The
// times come from the server's own events.
//
//	go test -run '^$' -bench FailFast -benchtime 1x ./internal/server/
func BenchmarkFailFast(b *testing.B) {
	engines := enginetest.ForTest(b, 3)
	enginetest.RequireFaults(b, engines)
	img := enginetest.TestImage(b)
	sick := engines.Engines[0]
	defaults := config.Default()
	edit := func(breakers bool) func(*config.Config) {
		return func(cfg *config.Config) {
			cfg.HealthCheck = defaults.HealthCheck
			cfg.PollInterval = defaults.PollInterval
			cfg.CircuitBreaker.Enabled = breakers
			for i := range cfg.Hosts {
				cfg.Hosts[i].Capacity = 4
			}
		}
	}
	ctx := context.Background()
	// first returns the first event of typ on host after since whose data
	// has to (a breaker's "to", or a job's "to").
	first := func(c *apiclient.Client, typ, host, to string, since time.Time, within time.Duration) time.Time {
		b.Helper()
		ectx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		var at time.Time
		found := errors.New("found")
		err := c.Events(ectx, apiclient.EventsParams{Types: []string{typ}, Host: host, Since: since.UTC().Format(time.RFC3339Nano), Follow: true},
			func(ev event.Event) error {
				var d struct {
					To string `json:"to"`
				}
				if json.Unmarshal(ev.Data, &d) == nil && d.To == to && !ev.At.Before(since) {
					at = ev.At
					return found
				}
				return nil
			})
		if !errors.Is(err, found) {
			b.Fatalf("no %s event on %s to %s within %v: %v", typ, host, to, within, err)
		}
		return at
	}
	submit := func(c *apiclient.Client, cmd ...string) *job.Job {
		j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: cmd})
		if err != nil {
			b.Fatal(err)
		}
		return j
	}
	// steady submits a job of a second every 200 ms until stop is closed:
	// the healthy hosts are busy, so a host that is back is the least
	// loaded (with "true" jobs they would stay idle, and the image they are
	// known to have would keep them first).
	steady := func(c *apiclient.Client, stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(200 * time.Millisecond) // a submit rate, not synchronisation
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					submit(c, "/usr/local/bin/fusebox-testjob", "sleep", "1s")
				}
			}
		})
		return &wg
	}
	burst := func(c *apiclient.Client) []time.Duration {
		const jobs, workers = 30, 6
		var mu sync.Mutex
		var lat []time.Duration
		var slowest time.Duration
		var slowPath []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < jobs; i += workers {
					j := submit(c, "/usr/local/bin/fusebox-testjob", "sleep", "200ms")
					var running time.Time
					var path []string
					wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
					end, err := c.WaitTransitions(wctx, j.ID, func(t job.Transition) {
						if t.To == job.StateRunning && running.IsZero() {
							running = t.At
						}
						path = append(path, fmt.Sprintf("%s +%v %s", t.To, t.At.Sub(j.CreatedAt).Round(time.Millisecond), t.Reason))
					})
					cancel()
					if err != nil || end.State != job.StateSucceeded {
						b.Errorf("job %s: %v %v", j.ID, end, err)
						return
					}
					mu.Lock()
					lat = append(lat, running.Sub(j.CreatedAt))
					if d := running.Sub(j.CreatedAt); d > slowest {
						slowest, slowPath = d, path
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		b.Logf("slowest: %v: %q", slowest, slowPath)
		return lat
	}
	pct := func(l []time.Duration, p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
	}
	healthy := func(c *apiclient.Client) {
		enginetest.Eventually(b, time.Minute, "every host healthy", func() bool {
			hs, err := c.Hosts(ctx)
			if err != nil {
				return false
			}
			for _, h := range hs {
				if h.State != "healthy" {
					return false
				}
			}
			return true
		})
	}
	for b.Loop() {
		c := apiclient.New(startInProcess(b, engines, edit(true)), "")
		healthy(c)
		t0 := time.Now()
		if err := sick.Hang(); err != nil {
			b.Fatal(err)
		}
		hang := first(c, event.TypeHostBreaker, sick.Name, "open", t0, 30*time.Second).Sub(t0)
		stop := make(chan struct{})
		wg := steady(c, stop)
		tc := time.Now()
		if err := sick.Resume(); err != nil {
			b.Fatal(err)
		}
		placed := first(c, event.TypeJobTransition, sick.Name, "launching", tc, time.Minute).Sub(tc)
		close(stop)
		wg.Wait()
		healthy(c)
		t1 := time.Now()
		if err := sick.Kill(); err != nil {
			b.Fatal(err)
		}
		kill := first(c, event.TypeHostBreaker, sick.Name, "open", t1, 30*time.Second).Sub(t1)
		if err := sick.Restart(ctx); err != nil {
			b.Fatal(err)
		}

		var p50, p99 [2]float64
		for i, on := range []bool{true, false} {
			c := apiclient.New(startInProcess(b, engines, edit(on)), "")
			healthy(c)
			if err := sick.Hang(); err != nil {
				b.Fatal(err)
			}
			lat := burst(c)
			if err := sick.Resume(); err != nil {
				b.Fatal(err)
			}
			p50[i], p99[i] = pct(lat, 0.5), pct(lat, 0.99)
			b.Logf("breakers %v: %d jobs, submit-to-running p50 %.0f ms, p99 %.0f ms", on, len(lat), p50[i], p99[i])
		}
		b.ReportMetric(hang.Seconds(), "hang-to-open-s")
		b.ReportMetric(kill.Seconds(), "kill-to-open-s")
		b.ReportMetric(placed.Seconds(), "sigcont-to-placed-s")
		b.ReportMetric(p50[0], "p50-ms-hung-breakers-on")
		b.ReportMetric(p50[1], "p50-ms-hung-breakers-off")
		b.ReportMetric(p99[0], "p99-ms-hung-breakers-on")
		b.ReportMetric(p99[1], "p99-ms-hung-breakers-off")
		b.Logf("hang->open %v, kill->open %v, SIGCONT->first job placed %v", hang.Round(time.Millisecond), kill.Round(time.Millisecond), placed.Round(time.Millisecond))
	}
	b.ReportMetric(0, "ns/op")
}
