package server_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// BenchmarkDispatchWithDeadAlertReceiver measures, in the same run on the
// same engine, submit-to-running latency (p50, p99) of a burst of trivial
// jobs through a server without alert receivers and through one whose only
// receiver is dead (it accepts connections and never answers) while alerts
// keep firing (a host that does not exist has its breaker open; the queue
// threshold is low, so the burst fires and resolves the queue alert). The
// dead receiver must not change dispatch: issue 8 asks for the same p99.
//
//	go test -run '^$' -bench DispatchWithDeadAlertReceiver -benchtime 1x ./internal/server/
func BenchmarkDispatchWithDeadAlertReceiver(b *testing.B) {
	engines := enginetest.Shared(b, 1)
	img := enginetest.TestImage(b)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer dead.Close()
	go func() { // accept and hold every connection: no answer, ever
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close() // a host nobody answers at

	edit := func(receiver bool) func(*config.Config) {
		return func(cfg *config.Config) {
			cfg.Hosts[0].Capacity = 8
			cfg.Hosts = append(cfg.Hosts, config.DefaultHost("gone", "tcp://"+goneAddr))
			cfg.Queue.MaxQueuedJobs = 100
			cfg.Alerts.QueueThreshold = 0.02
			cfg.Alerts.EvalInterval = 100 * time.Millisecond
			if receiver {
				cfg.Alerts.Receivers = []config.AlertReceiver{config.DefaultAlertReceiver("dead", "http://"+dead.Addr().String()+"/hook", testSecret)}
			}
		}
	}
	const jobs, workers = 60, 6
	burst := func(url string) []time.Duration {
		c := apiclient.New(url, "")
		ctx := context.Background()
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < jobs; i += workers {
					j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"true"}, Labels: map[string]string{"n": fmt.Sprint(i)}})
					if err != nil {
						b.Error(err)
						return
					}
					var running time.Time
					if _, err := c.WaitTransitions(ctx, j.ID, func(t job.Transition) {
						if t.To == job.StateRunning && running.IsZero() {
							running = t.At
						}
					}); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, running.Sub(j.CreatedAt))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
	pct := func(l []time.Duration, p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
	}
	for b.Loop() {
		without := burst(startInProcess(b, engines, edit(false)))
		with := burst(startInProcess(b, engines, edit(true)))
		b.ReportMetric(pct(without, 0.5), "p50-ms-no-receiver")
		b.ReportMetric(pct(with, 0.5), "p50-ms-dead-receiver")
		b.ReportMetric(pct(without, 0.99), "p99-ms-no-receiver")
		b.ReportMetric(pct(with, 0.99), "p99-ms-dead-receiver")
		b.ReportMetric(pct(with, 0.99)/pct(without, 0.99), "p99-ratio")
	}
	b.ReportMetric(0, "ns/op")
}
