package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"fusebox/breaker"
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
	var last string
	enginetest.Eventually(t, 30*time.Second, "the slow host shows degraded with its breaker closed", func() bool {
		h, err := c.Host(ctx, slow.Name)
		if err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprintf("%+v", h)
		if h.State == fleet.HostDegraded && h.Breaker.State == breaker.StateClosed {
			t.Logf("%s: %s (%s)", slow.Name, h.State, h.Reason)
			return true
		}
		return false
	}, func() string { return "the slow host never showed degraded: " + last })

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
	// Its in-flight limit drops below where every host starts. (A fast
	// host's may drop too on a loaded machine: it is not compared.)
	if h.Calls.Limit >= fleet.LimitInitialDefault {
		t.Errorf("in-flight limit of the slow host %d (a fast one: %d): want it cut below %d", h.Calls.Limit, fast.Calls.Limit, fleet.LimitInitialDefault)
	}
	// Its calls' latency shows it: p50 at least the added 1.5 s, ten times
	// a fast host's or more.
	if h.CallLatency.Samples == 0 || h.CallLatency.P50 < 1500*time.Millisecond || fast.CallLatency.P50 >= h.CallLatency.P50/10 {
		t.Errorf("call latency: slow host %+v, fast host %+v", h.CallLatency, fast.CallLatency)
	}
	t.Logf("call latency p50/p99: slow %v/%v, fast %v/%v", h.CallLatency.P50, h.CallLatency.P99, fast.CallLatency.P50, fast.CallLatency.P99)
}

// On a slow host (1.5 s of latency on every call, below the health checks'
// timeout) log collection is deferred: a job that ends there stays running,
// its container kept, for as long as the host is slow; once the latency is
// gone its logs are collected, every line, and the job ends.
func TestSlowHostDefersLogCollectionUntilItRecovers(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	img := enginetest.TestImage(t)
	slow := engines.Engines[0]
	url := startInProcess(t, engines, func(cfg *config.Config) {
		cfg.Hosts[0].Address = slow.ProxyHost()
		cfg.Hosts[0].Labels = map[string]string{"speed": "slow"}
		cfg.HealthCheck.Timeout = 3 * time.Second // slow, not dead: 1.5 s answers pass
		cfg.HealthCheck.Interval = time.Second
	})
	c := apiclient.New(url, "")
	ctx := context.Background()
	if err := slow.AddLatency(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	defer slow.ClearFaults()
	hostHas := func(mode fleet.DegradationMode) bool {
		h, err := c.Host(ctx, slow.Name)
		if err != nil {
			t.Fatal(err)
		}
		return h.State == fleet.HostDegraded && slices.Contains(h.Degradation, mode)
	}
	enginetest.Eventually(t, 30*time.Second, "the slow host shows logs_deferred", func() bool { return hostHas(fleet.ModeLogsDeferred) })

	const lines = 300
	j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Constraints: map[string]string{"speed": "slow"},
		Command: []string{"/usr/local/bin/fusebox-testjob", "lines", fmt.Sprint(lines)}})
	if err != nil {
		t.Fatal(err)
	}
	// Its container runs and exits on the slow host (seen from the engine
	// itself, not through the slow proxy).
	direct, err := slow.Client()
	if err != nil {
		t.Fatal(err)
	}
	var exitedAt time.Time
	enginetest.Eventually(t, time.Minute, "the job's container exited", func() bool {
		d, err := c.Get(ctx, j.ID)
		if err != nil || d.Job.ContainerID == "" {
			return false
		}
		cur := d.Job
		ins, err := direct.ContainerInspect(ctx, cur.ContainerID, client.ContainerInspectOptions{})
		if err != nil || ins.Container.State.Running || ins.Container.State.FinishedAt == "" {
			return false
		}
		exitedAt, err = time.Parse(time.RFC3339Nano, ins.Container.State.FinishedAt)
		return err == nil && exitedAt.Year() > 2000
	})
	// While the host stays slow, the job waits for its logs: still
	// running, its container kept. Without the deferral it would end in a
	// few slow calls (about 5 s).
	const held = 10 * time.Second
	for until := exitedAt.Add(held); time.Now().Before(until); {
		d, err := c.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur := d.Job; cur.State != job.StateRunning {
			t.Fatalf("%s after its container exited on the slow host: its logs were not deferred (%s)", cur.State, cur.Reason)
		}
		if !hostHas(fleet.ModeLogsDeferred) {
			t.Fatal("the slow host no longer lists logs_deferred")
		}
	}
	clearedAt := time.Now()
	if err := slow.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	end, err := c.Wait(wctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.State != job.StateSucceeded || end.FinishedAt.Before(clearedAt) {
		t.Fatalf("job %s (%s), finished %v: want succeeded after the host recovered at %v", end.State, end.Reason, end.FinishedAt, clearedAt)
	}
	logs, err := c.Logs(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if string(logs.Stdout) != want.String() || logs.Truncated {
		t.Errorf("stdout: %d bytes (truncated %v), want the %d lines whole (%d bytes)", len(logs.Stdout), logs.Truncated, lines, want.Len())
	}
	t.Logf("container exited %v before the host recovered; the job ended %v after it", clearedAt.Sub(exitedAt).Round(time.Millisecond), end.FinishedAt.Sub(clearedAt).Round(time.Millisecond))
	enginetest.Eventually(t, 30*time.Second, "the recovered host drops logs_deferred", func() bool { return !hostHas(fleet.ModeLogsDeferred) })
}
