package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// BenchmarkSlowHostDegradation measures, on the same three private engines
// in the same run, submit-to-running latency (p50, p99) of jobs placed on
// the healthy hosts while the third host is slow (1.5 s of latency on
// every call through its fault proxy), with graceful degradation enabled
// and disabled. It also counts the jobs the slow host took.
//
//	go test -run '^$' -bench SlowHostDegradation -benchtime 1x ./internal/server/
func BenchmarkSlowHostDegradation(b *testing.B) {
	engines := enginetest.ForTest(b, 3)
	enginetest.RequireFaults(b, engines)
	img := enginetest.TestImage(b)
	slow := engines.Engines[0]
	if err := slow.AddLatency(1500 * time.Millisecond); err != nil {
		b.Fatal(err)
	}
	defer slow.ClearFaults()
	edit := func(enabled bool) func(*config.Config) {
		return func(cfg *config.Config) {
			cfg.Hosts[0].Address = slow.ProxyHost()
			for i := range cfg.Hosts {
				cfg.Hosts[i].Capacity = 3
			}
			cfg.HealthCheck.Timeout = 3 * time.Second // slow, not dead
			cfg.HealthCheck.Interval = time.Second
			cfg.GracefulDegradation.Enabled = enabled
		}
	}
	const jobs, workers = 48, 6 // as many workers as the healthy hosts have slots
	type sample struct {
		host string
		lat  time.Duration
		path []string // the job's transitions, for the slowest
	}
	burst := func(url string) (healthy []time.Duration, onSlow int) {
		c := apiclient.New(url, "")
		ctx := context.Background()
		enginetest.Eventually(b, 30*time.Second, slow.Name+" shows degraded", func() bool {
			h, err := c.Host(ctx, slow.Name)
			return err == nil && h.State == fleet.HostDegraded
		})
		var mu sync.Mutex
		var got []sample
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < jobs; i += workers {
					j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Labels: map[string]string{"n": fmt.Sprint(i)},
						Command: []string{"/usr/local/bin/fusebox-testjob", "lines", "20", "sleep", "300ms"}})
					if err != nil {
						b.Error(err)
						return
					}
					var running time.Time
					var path []string
					wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
					defer cancel()
					end, err := c.WaitTransitions(wctx, j.ID, func(t job.Transition) {
						if t.To == job.StateRunning && running.IsZero() {
							running = t.At
						}
						path = append(path, fmt.Sprintf("%s +%v %s", t.To, t.At.Sub(j.CreatedAt).Round(time.Millisecond), t.Reason))
					})
					if err != nil || end.State != job.StateSucceeded {
						b.Errorf("job %s: %v %v", j.ID, end, err)
						return
					}
					mu.Lock()
					got = append(got, sample{end.Host, running.Sub(j.CreatedAt), path})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		var slowest sample
		for _, s := range got {
			if s.host == slow.Name {
				onSlow++
				continue
			}
			healthy = append(healthy, s.lat)
			if s.lat > slowest.lat {
				slowest = s
			}
		}
		slices.Sort(healthy)
		b.Logf("slowest on a healthy host: %v on %s: %q", slowest.lat, slowest.host, slowest.path)
		return healthy, onSlow
	}
	pct := func(l []time.Duration, p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
	}
	for b.Loop() {
		on, onSlowOn := burst(startInProcess(b, engines, edit(true)))
		off, onSlowOff := burst(startInProcess(b, engines, edit(false)))
		b.ReportMetric(pct(on, 0.5), "p50-ms-healthy-degradation-on")
		b.ReportMetric(pct(off, 0.5), "p50-ms-healthy-degradation-off")
		b.ReportMetric(pct(on, 0.99), "p99-ms-healthy-degradation-on")
		b.ReportMetric(pct(off, 0.99), "p99-ms-healthy-degradation-off")
		b.ReportMetric(float64(onSlowOn), "jobs-on-slow-host-on")
		b.ReportMetric(float64(onSlowOff), "jobs-on-slow-host-off")
	}
	b.ReportMetric(0, "ns/op")
}
