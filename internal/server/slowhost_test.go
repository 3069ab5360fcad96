package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// One engine of three turns slow (1.5 s of latency on every call through
// its fault proxy, below the health checks' timeout): it shows degraded and
// its in-flight limit drops, placement puts it last so launches keep
// flowing to the other two, and the jobs that do run there finish with
// their output whole.
func TestSlowHostIsDegradedAndGetsLessWork(t *testing.T) {
	engines := enginetest.ForTest(t, 3)
	enginetest.RequireFaults(t, engines)
	img := enginetest.TestImage(t)
	slow := engines.Engines[0]
	url := startInProcess(t, engines, func(cfg *config.Config) {
		cfg.Hosts[0].Address = slow.ProxyHost()
		for i := range cfg.Hosts {
			cfg.Hosts[i].Capacity = 2
		}
		cfg.HealthCheck.Timeout = 3 * time.Second // slow, not dead: 1.5 s answers pass
		cfg.HealthCheck.Interval = time.Second
	})
	c := apiclient.New(url, "")
	ctx := context.Background()
	if err := slow.AddLatency(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	defer slow.ClearFaults()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.Host(ctx, slow.Name)
		if err != nil {
			t.Fatal(err)
		}
		if h.State == fleet.HostDegraded && h.Breaker.State == "closed" {
			t.Logf("%s: %s (%s)", slow.Name, h.State, h.Reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow host never showed degraded: %+v", h)
		}
		time.Sleep(100 * time.Millisecond) // polling the API
	}

	const n = 24
	var wg sync.WaitGroup
	results := make([]*job.Job, n)
	for i := range n {
		wg.Go(func() {
			j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "print", fmt.Sprint("out ", i), "sleep", "200ms"}})
			if err != nil {
				t.Error(err)
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if results[i], err = c.Wait(wctx, j.ID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	per := map[string]int{}
	for i, j := range results {
		if j == nil {
			continue
		}
		if j.State != job.StateSucceeded {
			t.Errorf("job %d: %s (%s)", i, j.State, j.Reason)
			continue
		}
		per[j.Host]++
		logs, err := c.Logs(ctx, j.ID)
		if err != nil || string(logs.Stdout) != fmt.Sprintf("out %d\n", i) {
			t.Errorf("job %d on %s: output %q (%v)", i, j.Host, logs.Stdout, err)
		}
	}
	t.Logf("jobs per host: %v", per)
	for _, e := range engines.Engines[1:] {
		if per[slow.Name] >= per[e.Name] {
			t.Errorf("the slow host ran %d jobs, %s %d: launches should flow to the fast hosts", per[slow.Name], e.Name, per[e.Name])
		}
	}
	h, err := c.Host(ctx, slow.Name)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := c.Host(ctx, engines.Engines[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if h.Calls.Limit >= fast.Calls.Limit {
		t.Errorf("in-flight limit of the slow host %d, of a fast one %d: want it cut", h.Calls.Limit, fast.Calls.Limit)
	}
}
