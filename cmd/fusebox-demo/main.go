// Command fusebox-demo tells fusebox's failover story on three private
// Docker engines (`make demo`): a stream of jobs, one engine hung with
// SIGSTOP, its breaker opening while the jobs flow to the other two, the
// engine resumed, probed and back, and a summary. A second act runs the
// shipped "diamond" workflow across the three engines, then the same run
// again, all cached.
//
// It needs root and Debian's docker.io and busybox-static (make demo
// installs them). Everything it starts is torn down when it ends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"fusebox/breaker"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server"
)

func main() {
	cli := flag.String("fusebox", "", "path of the fusebox binary: first run one job on each engine with 'fusebox run -H'")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *cli); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// Phases of the story.
const (
	warmup   = 5 * time.Second // all hosts healthy
	hungFor  = 8 * time.Second // one host hung
	recovery = 6 * time.Second // after the resume, at least...
	// ...and until the hung host has taken a job again, at most this.
	maxRecovery = 20 * time.Second
	every       = 400 * time.Millisecond
)

type demo struct {
	out     io.Writer
	start   time.Time
	api     *apiclient.Client
	jobs    []submitted
	hungAt  time.Time
	resumed time.Time
}

type submitted struct {
	id    string
	at    time.Time
	phase string
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, out io.Writer, cli string) error {
	d := &demo{out: out, start: time.Now()}
	d.say("starting 3 private Docker engines (dockerd, vfs storage, no network)")
	engines, err := enginetest.Start(ctx, enginetest.Options{N: 3})
	if err != nil {
		return fmt.Errorf("start engines: %w (run as root, with docker.io installed: make demo installs it)", err)
	}
	defer engines.Close()
	for _, e := range engines.Engines {
		d.say("  %s up in %v at %s", e.Name, e.StartTook().Round(time.Millisecond), e.UnixHost())
	}
	d.say("building the demo image in-process (busybox + fusebox-testjob) and loading it into each engine")
	img, err := enginetest.BuildImage(ctx, enginetest.ImageOptions{})
	if err != nil {
		return err
	}
	if err := engines.LoadImage(ctx, img); err != nil {
		return err
	}

	if cli != "" {
		if err := d.direct(ctx, cli, engines); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "fusebox-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := demoConfig(engines, dir)
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Run(sctx, ln) }()
	defer func() { stopServer(); <-served }()
	d.api = apiclient.New("http://"+ln.Addr().String(), "")
	d.say("fusebox serving on %s: 3 hosts, breaker trips after %d host faults, opens for %s (growing), health checks every %s",
		ln.Addr(), cfg.CircuitBreaker.FailureThreshold, cfg.CircuitBreaker.RecoveryTimeout, cfg.HealthCheck.Interval)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go d.watchTransitions(watchCtx)

	hung := engines.Engines[1]
	d.say("submitting a job every %s (each sleeps 400ms and prints a line)", every)
	if err := d.stream(ctx, warmup, "healthy"); err != nil {
		return err
	}
	d.hosts(ctx)
	d.say(">>> SIGSTOP %s: its dockerd is deadlocked; it still accepts connections, but answers nothing", hung.Name)
	if err := hung.Hang(); err != nil {
		return err
	}
	d.hungAt = time.Now()
	if err := d.stream(ctx, hungFor, "hung"); err != nil {
		return err
	}
	d.hosts(ctx)
	d.say(">>> SIGCONT %s: the daemon answers again", hung.Name)
	if err := hung.Resume(); err != nil {
		return err
	}
	d.resumed = time.Now()
	before, err := d.api.Host(ctx, hung.Name)
	if err != nil {
		return err
	}
	if err := d.stream(ctx, recovery, "recovered"); err != nil {
		return err
	}
	// Go on until it has taken a job again: its breaker's open time grew
	// while it was hung, so the probe that closes it may come late.
	for extra := time.Duration(0); extra < maxRecovery-recovery; extra += time.Second {
		if h, err := d.api.Host(ctx, hung.Name); err == nil && h.Placed > before.Placed {
			break
		}
		if err := d.stream(ctx, time.Second, "recovered"); err != nil {
			return err
		}
	}
	d.say("stopped submitting; waiting for every job to finish")
	if err := d.waitAll(ctx, 90*time.Second); err != nil {
		return err
	}
	d.hosts(ctx)
	stopWatch()
	if err := d.summary(ctx, hung.Name); err != nil {
		return err
	}
	return d.workflows(ctx)
}

// direct runs one job on each engine with `fusebox run -H` (--docker-host), straight
// through the engine layer, no server: the container's output streams
// back and its exit code is fusebox's.
func (d *demo) direct(ctx context.Context, cli string, engines *enginetest.Fleet) error {
	for i, e := range engines.Engines {
		args := []string{"run", "-H", e.UnixHost(), "--network", "none", enginetest.DefaultImageRef,
			enginetest.TestjobPath, "print", "hello from a container on " + e.Name, "exit", fmt.Sprint(i)}
		d.say("$ fusebox %s", strings.Join(args, " "))
		out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			d.say("    | %s", line)
		}
		var ee *exec.ExitError
		switch {
		case err == nil:
			d.say("  exit code 0")
		case errors.As(err, &ee) && ee.ExitCode() == i:
			d.say("  exit code %d (the container's, propagated)", i)
		default:
			return fmt.Errorf("fusebox run -H on %s: %w", e.Name, err)
		}
	}
	return nil
}

func demoConfig(engines *enginetest.Fleet, dir string) *config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.Capacity = 3
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.CircuitBreaker.FailureThreshold = 3
	cfg.CircuitBreaker.RecoveryTimeout = 2 * time.Second
	cfg.CircuitBreaker.MaxRecoveryTimeout = 8 * time.Second
	cfg.CircuitBreaker.HalfOpenTimeout = 5 * time.Second
	cfg.HealthCheck.Interval = 250 * time.Millisecond
	cfg.HealthCheck.Timeout = 500 * time.Millisecond
	cfg.DockerTimeouts.Create = 5 * time.Second
	cfg.DockerTimeouts.Start = 5 * time.Second
	cfg.DockerTimeouts.Inspect = 2 * time.Second
	cfg.Retry.Backoff = 200 * time.Millisecond
	cfg.Retry.MaxAttempts = 5
	cfg.PollInterval = 500 * time.Millisecond
	cfg.LostHost.After = time.Minute
	return cfg
}

// stream submits a job every `every` for d, printing a status line each
// second.
func (d *demo) stream(ctx context.Context, dur time.Duration, phase string) error {
	end := time.Now().Add(dur)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastStatus := time.Now()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		n := len(d.jobs)
		j, _, err := d.api.Submit(ctx, job.Spec{
			Image:   "fusebox/testjob:latest",
			Command: []string{"/usr/local/bin/fusebox-testjob", "sleep", "400ms", "print", fmt.Sprintf("job %d done", n)},
		})
		if err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		d.jobs = append(d.jobs, submitted{id: j.ID, at: time.Now(), phase: phase})
		if time.Since(lastStatus) >= 2*time.Second {
			lastStatus = time.Now()
			d.status(ctx)
		}
	}
	return nil
}

func (d *demo) status(ctx context.Context) {
	q, err := d.api.Queue(ctx)
	if err != nil {
		return
	}
	hosts, _ := d.api.Hosts(ctx)
	var per []string
	for _, h := range hosts {
		per = append(per, fmt.Sprintf("%s:%s(%d running)", h.Name, h.State, h.Running))
	}
	d.say("  submitted %d, queued %d, running %d, succeeded %d | %s", len(d.jobs), q.Queued, q.Running,
		q.ByState[job.StateSucceeded], strings.Join(per, " "))
}

func (d *demo) hosts(ctx context.Context) {
	hosts, err := d.api.Hosts(ctx)
	if err != nil {
		return
	}
	d.say("  %-4s %-12s %-10s %-8s %-6s %s", "HOST", "STATE", "BREAKER", "RUNNING", "TRIPS", "NEXT PROBE")
	for _, h := range hosts {
		next := "-"
		if !h.Breaker.NextProbeAt.IsZero() {
			next = "now"
			if d := time.Until(h.Breaker.NextProbeAt); d > 0 {
				next = "in " + d.Round(100*time.Millisecond).String()
			}
		}
		d.say("  %-4s %-12s %-10s %d/%-6d %-6d %s", h.Name, h.State, h.Breaker.State, h.Running, h.Capacity, h.Breaker.Trips, next)
	}
}

// watchTransitions prints every breaker transition as it happens.
func (d *demo) watchTransitions(ctx context.Context) {
	seen := 0
	for ctx.Err() == nil {
		trs, err := d.api.HostTransitions(ctx)
		if err == nil {
			for _, t := range trs[min(seen, len(trs)):] {
				d.say("  breaker %s: %s -> %s", t.Host, t.From, t.To)
			}
			seen = len(trs)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *demo) waitAll(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		open := 0
		for _, s := range d.jobs {
			j, err := d.api.Get(ctx, s.id)
			if err != nil {
				return err
			}
			if !j.Job.State.Terminal() {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs still not finished after %v", open, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (d *demo) summary(ctx context.Context, hung string) error {
	byState := map[job.State]int{}
	byHost := map[string]int{}
	failovers := 0
	var placedOnHungWhileOut int
	var firstBack time.Time
	trs, err := d.api.HostTransitions(ctx)
	if err != nil {
		return err
	}
	var openedAt, closedAt time.Time
	for _, t := range trs {
		if t.Host == hung && t.To == breaker.StateOpen && openedAt.IsZero() && t.At.After(d.hungAt) {
			openedAt = t.At
		}
		if t.Host == hung && t.To == breaker.StateClosed && !openedAt.IsZero() && t.At.After(openedAt) && closedAt.IsZero() {
			closedAt = t.At
		}
	}
	latency := map[string][]time.Duration{}
	for _, s := range d.jobs {
		det, err := d.api.Get(ctx, s.id)
		if err != nil {
			return err
		}
		j := det.Job
		byState[j.State]++
		byHost[j.Host]++
		if j.Attempt > 1 {
			failovers++
		}
		for _, a := range det.Attempts {
			if a.Host != hung {
				continue
			}
			if !openedAt.IsZero() && a.StartedAt.After(openedAt) && (closedAt.IsZero() || a.StartedAt.Before(closedAt)) {
				placedOnHungWhileOut++
			}
			if a.StartedAt.After(d.resumed) && (firstBack.IsZero() || a.StartedAt.Before(firstBack)) {
				firstBack = a.StartedAt
			}
		}
		for _, t := range det.Transitions {
			if t.To == job.StateRunning {
				latency[s.phase] = append(latency[s.phase], t.At.Sub(j.CreatedAt))
				break
			}
		}
	}
	fmt.Fprintf(d.out, "\n=== summary ===\n")
	fmt.Fprintf(d.out, "jobs submitted:   %d\n", len(d.jobs))
	fmt.Fprintf(d.out, "jobs succeeded:   %d\n", byState[job.StateSucceeded])
	fmt.Fprintf(d.out, "jobs failed:      %d\n", byState[job.StateFailed])
	fmt.Fprintf(d.out, "jobs lost:        %d\n", byState[job.StateLost])
	fmt.Fprintf(d.out, "jobs that failed over to another host: %d\n", failovers)
	hosts := slices.Sorted(func(yield func(string) bool) {
		for h := range byHost {
			if !yield(h) {
				return
			}
		}
	})
	fmt.Fprintf(d.out, "jobs per host (where they ran):")
	for _, h := range hosts {
		fmt.Fprintf(d.out, " %s=%d", h, byHost[h])
	}
	fmt.Fprintln(d.out)
	fmt.Fprintf(d.out, "breaker transitions:\n")
	for _, t := range trs {
		fmt.Fprintf(d.out, "  %6.1fs  %s  %s -> %s\n", t.At.Sub(d.start).Seconds(), t.Host, t.From, t.To)
	}
	if !openedAt.IsZero() {
		fmt.Fprintf(d.out, "hang -> %s breaker open:          %v\n", hung, openedAt.Sub(d.hungAt).Round(time.Millisecond))
	}
	fmt.Fprintf(d.out, "jobs placed on %s while it was out: %d\n", hung, placedOnHungWhileOut)
	if !closedAt.IsZero() {
		fmt.Fprintf(d.out, "resume -> %s breaker closed:       %v\n", hung, closedAt.Sub(d.resumed).Round(time.Millisecond))
	}
	if !firstBack.IsZero() {
		fmt.Fprintf(d.out, "resume -> first job placed on %s:  %v\n", hung, firstBack.Sub(d.resumed).Round(time.Millisecond))
	}
	for _, phase := range []string{"healthy", "hung", "recovered"} {
		l := latency[phase]
		if len(l) == 0 {
			continue
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Fprintf(d.out, "submit -> running, %-9s p50 %v  p99 %v  (%d jobs)\n", phase+":", pct(l, 50), pct(l, 99), len(l))
	}
	if byState[job.StateSucceeded] != len(d.jobs) {
		return fmt.Errorf("not every job succeeded: %v", byState)
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	i = min(max(i-1, 0), len(sorted)-1)
	return sorted[i].Round(time.Millisecond)
}
