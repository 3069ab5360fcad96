package server_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server"
)

// startServer runs a fusebox server on engines and returns it with a
// client of its API.
func startServer(t testing.TB, engines *enginetest.Fleet, edit func(*config.Config)) (*server.Server, *apiclient.Client) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.HealthCheck.Interval = 500 * time.Millisecond
	cfg.HealthCheck.Timeout = 500 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	cfg.Retry.Backoff = 200 * time.Millisecond
	if edit != nil {
		edit(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	c := apiclient.New("http://"+ln.Addr().String(), "")
	waitUp(t.(*testing.T), c)
	return srv, c
}

// variantImage builds a test image of its own (its own ID and layer), on
// no engine yet.
func variantImage(t testing.TB, ref, variant string, pad int) *enginetest.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := enginetest.BuildImage(ctx, enginetest.ImageOptions{Ref: ref, Variant: variant, PadBytes: pad})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageIDOn is the engine's own inspect of ref on e ("" if it lacks it).
func imageIDOn(t testing.TB, e *enginetest.Engine, ref string) string {
	t.Helper()
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	res, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		return ""
	}
	return res.ID
}

// Jobs pinned to a host that lacks their image get it streamed from the
// host that has it: concurrent jobs share one transfer, the host then has
// the same image ID (the engine's own inspect), and the jobs run it.
func TestJobGetsItsImageByTransfer(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	img := variantImage(t, "fusebox/xfer:1", t.Name(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := enginetest.LoadImage(ctx, engines.Engines[0].Host(), img); err != nil {
		t.Fatal(err)
	}
	dst := engines.Engines[1]
	if id := imageIDOn(t, dst, img.Ref); id != "" {
		t.Fatalf("%s already has %s", dst.Name, img.Ref)
	}
	srv, c := startServer(t, engines, nil)
	const n = 3
	jobs := make([]*job.Job, n)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"cat", "/variant"}, PullPolicy: job.PullNever,
				Constraints: map[string]string{job.ConstraintHost: dst.Name}})
			if err != nil {
				t.Error(err)
				return
			}
			jobs[i] = j
		})
	}
	wg.Wait()
	for _, j := range jobs {
		if j == nil {
			t.FailNow()
		}
		got, err := c.Wait(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != job.StateSucceeded || got.Host != dst.Name {
			t.Fatalf("job %s: %s on %s: %s", j.ID, got.State, got.Host, got.Reason)
		}
		logs, err := c.Logs(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(logs.Stdout)) != t.Name() {
			t.Errorf("job %s printed %q, want the image's /variant %q", j.ID, logs.Stdout, t.Name())
		}
	}
	if id := imageIDOn(t, dst, img.Ref); id != img.ID {
		t.Errorf("%s has %s as %q after the transfer, want %s", dst.Name, img.Ref, id, img.ID)
	}
	st := srv.Images.Stats()
	if st.Transfers != 1 || st.Bytes == 0 {
		t.Errorf("transfers %+v, want exactly one (the %d jobs share it)", st, n)
	}
}

// A job whose image is on no host and cannot be pulled fails at once, in
// one sentence saying what to do, as the job's own failure; no host's
// breaker moves.
func TestJobWithAnImageNowhereFailsFast(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	_, c := startServer(t, engines, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	j, _, err := c.Submit(ctx, job.Spec{Image: "fusebox/nowhere:1", Command: []string{"true"}, PullPolicy: job.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != job.StateFailed || got.Cause != job.CauseRefused {
		t.Fatalf("job: %s (%s): %s", got.State, got.Cause, got.Reason)
	}
	want := "image fusebox/nowhere:1 is on no host of the fleet and its pull policy is never; load it with `fusebox image load`"
	if !strings.HasPrefix(got.Reason, want) || strings.Count(got.Reason, ". ") > 0 {
		t.Errorf("reason %q, want one sentence starting %q", got.Reason, want)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("failed after %v, want at once", took)
	}
	hosts, err := c.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Breaker.State != "closed" || h.Breaker.ConsecutiveFailures != 0 {
			t.Errorf("host %s breaker %+v after a missing image", h.Name, h.Breaker)
		}
	}
}
