package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"

	"github.com/moby/moby/client"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

var testjob = "/usr/local/bin/fusebox-testjob"

func newClient(t testing.TB, e *enginetest.Engine, addr string, to engine.Timeouts) *engine.Client {
	t.Helper()
	if addr == "" {
		addr = e.UnixHost()
	}
	c, err := engine.New(engine.Config{Name: e.Name, Address: addr, NetworkMode: "none", Timeouts: to})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// uniq gives each test's containers their own names on a shared engine.
func uniq(t testing.TB) string {
	return fmt.Sprintf("fbtest-%d", time.Now().UnixNano())
}

func wantClass(t *testing.T, err error, want engine.Class) {
	t.Helper()
	if got := engine.ClassOf(err); got != want {
		t.Fatalf("class of %v = %s, want %s", err, got, want)
	}
}

func TestRoundTripExitCodeAndLogs(t *testing.T) {
	f := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()

	name := uniq(t)
	id, err := c.Create(ctx, engine.ContainerSpec{
		Name: name, Image: img.Ref, Cmd: []string{testjob, "print", "out-line", "stderr", "err-line", "exit", "3"},
		Labels: map[string]string{"fusebox.test": name},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), id) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(ctx, id)
	if err != nil || code != 3 {
		t.Fatalf("wait = %d, %v; want 3, nil", code, err)
	}
	ct, err := c.Inspect(ctx, id)
	if err != nil || !ct.Exited() || ct.ExitCode != 3 || ct.Labels["fusebox.test"] != name {
		t.Fatalf("inspect = %+v, %v", ct, err)
	}
	stdout, stderr, truncated, err := c.Logs(ctx, id, 1<<20)
	if err != nil || truncated {
		t.Fatalf("logs: %v truncated=%v", err, truncated)
	}
	if string(stdout) != "out-line\n" || string(stderr) != "err-line\n" {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	list, err := c.List(ctx, map[string]string{"fusebox.test": name})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Name != name {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// Stopping an exited container and removing twice are not errors.
	if err := c.Stop(ctx, id, time.Second); err != nil {
		t.Fatalf("stop exited: %v", err)
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := c.Inspect(ctx, id); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("inspect removed: %v, want ErrNotFound", err)
	} else {
		wantClass(t, err, engine.ClassIgnored)
	}
}

func TestLogsAreCappedKeepingTheTail(t *testing.T) {
	f := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()
	id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: []string{testjob, "lines", "5000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), id) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	stdout, _, truncated, err := c.Logs(ctx, id, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if !truncated || len(stdout) != 1024 {
		t.Fatalf("truncated=%v len=%d, want true 1024", truncated, len(stdout))
	}
	if !bytes.HasSuffix(bytes.TrimSpace(stdout), []byte("5000")) {
		t.Fatalf("tail not kept: ...%q", stdout[len(stdout)-40:])
	}
}

func TestJobFaults(t *testing.T) {
	f := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()

	t.Run("image not found", func(t *testing.T) {
		_, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: "fusebox/no-such-image:1"})
		wantClass(t, err, engine.ClassJob)
		if !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("%v: want ErrNotFound", err)
		}
		ok, err := c.ImageExists(ctx, "fusebox/no-such-image:1")
		if ok || err != nil {
			t.Fatalf("ImageExists = %v, %v", ok, err)
		}
		ok, err = c.ImageExists(ctx, img.Ref)
		if !ok || err != nil {
			t.Fatalf("ImageExists(test image) = %v, %v", ok, err)
		}
	})
	t.Run("invalid spec", func(t *testing.T) {
		_, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, MemoryBytes: 1024})
		wantClass(t, err, engine.ClassJob)
	})
	t.Run("command not found", func(t *testing.T) {
		id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: []string{"/no/such/binary"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Remove(ctx, id)
		err = c.Start(ctx, id)
		wantClass(t, err, engine.ClassJob)
	})
	t.Run("name conflict is ignored", func(t *testing.T) {
		name := uniq(t)
		id, err := c.Create(ctx, engine.ContainerSpec{Name: name, Image: img.Ref})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Remove(ctx, id)
		_, err = c.Create(ctx, engine.ContainerSpec{Name: name, Image: img.Ref})
		wantClass(t, err, engine.ClassIgnored)
		if !errors.Is(err, engine.ErrNameConflict) {
			t.Fatalf("%v: want ErrNameConflict", err)
		}
	})
	t.Run("caller cancelled is ignored", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := c.Ping(cctx)
		wantClass(t, err, engine.ClassIgnored)
	})
	t.Run("bad image tarball", func(t *testing.T) {
		err := c.ImageLoad(ctx, strings.NewReader("this is not a tar file"))
		if err == nil {
			t.Fatal("loading garbage succeeded")
		}
		if engine.ClassOf(err) == engine.ClassIgnored {
			t.Fatalf("class of %v = ignored", err)
		}
	})
}

func TestKilledEngineIsHostFaultFast(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, "", engine.Timeouts{Ping: 5 * time.Second})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.Ping(context.Background())
	took := time.Since(start)
	wantClass(t, err, engine.ClassHost)
	if !engine.IsUnreachable(err) {
		t.Fatalf("%v: want IsUnreachable", err)
	}
	if took > 2*time.Second {
		t.Fatalf("ping to a killed engine took %v; a refused dial should fail fast", took)
	}
	if err := e.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestHungEngineCallsReturnAtTheirDeadline(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	img := enginetest.TestImage(t)
	const deadline = 500 * time.Millisecond
	c := newClient(t, e, "", engine.Timeouts{Ping: deadline, Inspect: deadline, Create: deadline})
	if err := e.Hang(); err != nil {
		t.Fatal(err)
	}
	defer e.Resume()

	for _, call := range []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"ping", c.Ping},
		{"inspect", func(ctx context.Context) error { _, err := c.Inspect(ctx, "x"); return err }},
		{"create", func(ctx context.Context) error {
			_, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref})
			return err
		}},
	} {
		start := time.Now()
		err := call.fn(context.Background())
		took := time.Since(start)
		wantClass(t, err, engine.ClassHost)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want a deadline error", call.name, err)
		}
		if engine.IsUnreachable(err) {
			t.Errorf("%s on a hung engine: IsUnreachable, but the request was sent", call.name)
		}
		if took < deadline || took > deadline+time.Second {
			t.Errorf("%s on a hung engine returned after %v; want about its %v deadline", call.name, took, deadline)
		}
	}

	// A caller whose own deadline is shorter than the call's: ignored, not
	// the host's fault.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx)
	wantClass(t, err, engine.ClassIgnored)

	if err := e.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func TestFaultProxy(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, e.ProxyHost(), engine.Timeouts{Ping: time.Second})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if _, api, err := c.Version(ctx); err != nil || api == "" {
		t.Fatalf("version: %q %v", api, err)
	}

	if err := e.Blackhole(); err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, e, e.ProxyHost(), engine.Timeouts{Ping: 300 * time.Millisecond})
	err := c2.Ping(ctx)
	wantClass(t, err, engine.ClassHost)

	if err := e.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if err := e.ResetPeer(); err != nil {
		t.Fatal(err)
	}
	c3 := newClient(t, e, e.ProxyHost(), engine.Timeouts{Ping: time.Second})
	err = c3.Ping(ctx)
	wantClass(t, err, engine.ClassHost)
	if err := e.ClearFaults(); err != nil {
		t.Fatal(err)
	}
}

func TestEventsReportDieWithExitCode(t *testing.T) {
	f := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := uniq(t)
	evs, _ := c.Events(ctx, map[string]string{"fusebox.test": name})
	id, err := c.Create(ctx, engine.ContainerSpec{Name: name, Image: img.Ref, Cmd: []string{testjob, "exit", "7"}, Labels: map[string]string{"fusebox.test": name}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(context.Background(), id)
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	for ev := range evs {
		if ev.ContainerID == id && ev.Action == "die" {
			if ev.ExitCode != 7 {
				t.Fatalf("die event exit code %d, want 7", ev.ExitCode)
			}
			return
		}
	}
	t.Fatal("no die event before the deadline")
}

// BenchmarkRoundTrip measures create+start+wait+remove of a container that
// exits at once, on a private engine; besides the mean it reports the
// median (p50-ms). For the figure in the notes:
//
//	go test -run '^$' -bench RoundTrip -benchtime 20x ./internal/engine
func BenchmarkRoundTrip(b *testing.B) {
	f := enginetest.ForTest(b, 1)
	img := enginetest.TestImage(b)
	c := newClient(b, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		id, err := c.Create(ctx, engine.ContainerSpec{Name: fmt.Sprintf("bench-%d", i), Image: img.Ref, Cmd: []string{testjob, "exit", "0"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Wait(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := c.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
}

// A daemon whose runtime is broken answers ping and create but fails every
// start (nomad#11888). Docker 20.10 even answers that start with a 400, as
// if the job were at fault (its error text mentions a missing file): no
// status code tells this host apart, which is why the fleet runs canary
// containers.
func TestBrokenRuntimeAnswersPingButFailsEveryStart(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	img := enginetest.TestImage(t)
	ctx := context.Background()
	if err := e.BreakStarts(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, "", engine.Timeouts{})
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping on the broken engine: %v", err)
	}
	id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: []string{testjob, "exit", "0"}})
	if err != nil {
		t.Fatalf("create on the broken engine: %v", err)
	}
	err = c.Start(ctx, id)
	if err == nil {
		t.Fatal("start on a broken runtime succeeded")
	}
	t.Logf("start on a broken runtime (%s): %v", engine.ClassOf(err), err)
	if err := e.FixStarts(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, e, "", engine.Timeouts{})
	id, err = c2.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: []string{testjob, "exit", "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx, id); err != nil {
		t.Fatalf("start after FixStarts: %v", err)
	}
}

func TestLimitsAndEnvReachTheContainer(t *testing.T) {
	f := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()
	id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: []string{testjob, "env", "GREETING"},
		Env: []string{"GREETING=hi"}, WorkingDir: "/tmp", CPUs: 0.5, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(ctx, id)
	raw, err := f.Engines[0].Client()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	res, err := raw.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := res.Container.HostConfig
	if hc.NanoCPUs != 5e8 || hc.Memory != 64<<20 || string(hc.NetworkMode) != "none" || res.Container.Config.WorkingDir != "/tmp" {
		t.Fatalf("host config: cpus %d memory %d network %q workdir %q", hc.NanoCPUs, hc.Memory, hc.NetworkMode, res.Container.Config.WorkingDir)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := c.Logs(ctx, id, 1024); err != nil || string(out) != "hi\n" {
		t.Fatalf("env: %q %v", out, err)
	}
}

// Once a ping has answered, no call on a hung engine waits for another
// call: each ends with its own context. (The Docker client negotiates its
// API version inside the first call that needs it, under a lock no context
// cancels; Ping negotiates, so that the health checks do it first.)
func TestCallsOnAHungEngineEndWithTheirOwnContext(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, "", engine.Timeouts{List: 10 * time.Second, ImageInspect: 10 * time.Second})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The answered ping had both clients negotiate the engine's API
	// version, in the background.
	direct, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	sv, err := direct.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := sv.APIVersion
	enginetest.Eventually(t, 10*time.Second, "both clients speak the engine's API version "+want, func() bool {
		api, stream := engine.APIVersions(c)
		return api == want && stream == want
	})
	if err := e.Hang(); err != nil {
		t.Fatal(err)
	}
	defer e.Resume()
	// A long call is stuck on the hung engine...
	stuck := make(chan error, 1)
	go func() { _, err := c.List(context.Background(), nil); stuck <- err }()
	// ...and another, cancelled after 200 ms, returns then, not when the
	// first one's 10 s deadline passes.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.ImageExists(ctx, "busybox")
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("image inspect on a hung engine, cancelled after 200ms: %v after %v", err, took)
	}
	if err := e.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-stuck; err != nil {
		t.Logf("the stuck list ended: %v", err)
	}
}
