package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server"
	"fusebox/internal/server/servertest"
)

// startServer runs a fusebox server on engines (retry backoff 200 ms) and
// returns it with a client of its API, once it answers.
func startServer(t testing.TB, engines *enginetest.Fleet, edit func(*config.Config)) (*server.Server, *apiclient.Client) {
	t.Helper()
	srv, url := servertest.Start(t, engines, func(cfg *config.Config) {
		cfg.Retry.Backoff = 200 * time.Millisecond
		if edit != nil {
			edit(cfg)
		}
	})
	c := apiclient.New(url, "")
	enginetest.Eventually(t, 30*time.Second, "the server answers", func() bool { return c.Health(context.Background()) == nil })
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
		if h.Breaker.State != breaker.StateClosed || h.Breaker.ConsecutiveFailures != 0 {
			t.Errorf("host %s breaker %+v after a missing image", h.Name, h.Breaker)
		}
	}
}

// Jobs pull from a real registry (Debian's docker-registry, htpasswd auth)
// with the configured credentials. With the registry stopped they wait in
// the queue saying so, its breaker (registry/<host>) opens and no host's
// breaker moves; once it is back they run. Wrong credentials fail the job
// with the registry's message.
func TestJobsPullFromARealRegistry(t *testing.T) {
	engines := enginetest.ForTest(t, 3)
	pusher := engines.Engines[2]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	good, err := enginetest.StartDistribution(ctx, enginetest.DistributionOptions{Dir: t.TempDir(), Users: map[string]string{"alice": "s3cret"}, Logf: t.Logf})
	if err != nil {
		if enginetest.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { good.Close() })
	bad, err := enginetest.StartDistribution(ctx, enginetest.DistributionOptions{Dir: t.TempDir(), Users: map[string]string{"bob": "right"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() })
	img := variantImage(t, "fusebox/reg:1", t.Name(), 0)
	if err := enginetest.LoadImage(ctx, pusher.Host(), img); err != nil {
		t.Fatal(err)
	}
	ref, err := good.Push(ctx, pusher.Host(), img.Ref, "team/reg:1", "alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	badRef, err := bad.Push(ctx, pusher.Host(), img.Ref, "team/reg:1", "bob", "right")
	if err != nil {
		t.Fatal(err)
	}
	_, c := startServer(t, engines, func(cfg *config.Config) {
		cfg.Hosts = cfg.Hosts[:2] // the pusher is no host of the fleet
		cfg.Registries = []config.Registry{
			{Host: good.Addr, Username: "alice", Password: "s3cret"},
			{Host: bad.Addr, Username: "bob", Password: "wrong"},
		}
		cfg.Images.RegistryBreaker = config.RegistryBreaker{FailureThreshold: 1, ResetTimeout: time.Second}
	})
	spec := func(image string) job.Spec {
		return job.Spec{Image: image, Command: []string{"cat", "/variant"}, PullPolicy: job.PullAlways}
	}
	run := func(image string) *job.Job {
		t.Helper()
		j, _, err := c.Submit(ctx, spec(image))
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	wait := func(j *job.Job) *job.Job {
		t.Helper()
		got, err := c.Wait(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	hostsClosed := func() {
		t.Helper()
		hosts, err := c.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if h.Breaker.State != breaker.StateClosed || h.Breaker.ConsecutiveFailures != 0 {
				t.Errorf("host %s breaker %+v: a registry's trouble moved it", h.Name, h.Breaker)
			}
		}
	}

	if got := wait(run(ref)); got.State != job.StateSucceeded {
		t.Fatalf("pull with credentials: %s: %s", got.State, got.Reason)
	}

	if err := good.Stop(); err != nil {
		t.Fatal(err)
	}
	waiting := []*job.Job{run(ref), run(ref)}
	for _, j := range waiting {
		eventuallyNil(t, 30*time.Second, "job "+j.ID+" waits for the registry", func() error {
			d, err := c.Get(ctx, j.ID)
			if err != nil {
				return err
			}
			if d.Job.State != job.StateQueued || !strings.Contains(d.Job.Reason, "waiting for registry "+good.Addr) {
				return fmt.Errorf("%s: %s", d.Job.State, d.Job.Reason)
			}
			return nil
		})
	}
	eventuallyNil(t, 30*time.Second, "the registry's breaker opens", func() error {
		bs, err := c.Breakers(ctx)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.Name == "registry/"+good.Addr {
				if b.State.String() == "closed" && b.Trips == 0 {
					return fmt.Errorf("%s is %s", b.Name, b.State)
				}
				return nil
			}
		}
		return fmt.Errorf("no breaker registry/%s", good.Addr)
	})
	hostsClosed()

	if err := good.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, j := range waiting {
		if got := wait(j); got.State != job.StateSucceeded {
			t.Errorf("job %s after the registry came back: %s: %s", j.ID, got.State, got.Reason)
		}
	}

	got := wait(run(badRef))
	if got.State != job.StateFailed || got.Cause != job.CauseRefused || !strings.Contains(got.Reason, "unauthorized") {
		t.Errorf("pull with a wrong password: %s (%s): %s, want failed with the registry's unauthorized", got.State, got.Cause, got.Reason)
	}
	hostsClosed()
}

// eventuallyNil waits, with enginetest.Eventually, until f returns nil,
// saying what it last returned on a timeout.
func eventuallyNil(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	var last error
	enginetest.Eventually(t, timeout, what, func() bool { last = f(); return last == nil }, func() string { return fmt.Sprint(last) })
}
