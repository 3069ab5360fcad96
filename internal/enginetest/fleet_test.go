package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// startOrSkip starts a private fleet directly (not through ForTest) so the
// test controls Close.
func startOrSkip(t *testing.T, n int) *Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := Start(ctx, Options{N: n, Logf: t.Logf, External: []string{}})
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := f.LoadImage(ctx, TestImage(t)); err != nil {
		t.Fatal(err)
	}
	return f
}

// startHanging starts a container that prints "up" and then runs the
// given hang step (default hang-ignore-term), and returns once it printed.
func startHanging(t *testing.T, ctx context.Context, e *Engine, ref string, step ...string) string {
	hang := "hang-ignore-term"
	if len(step) > 0 {
		hang = step[0]
	}
	t.Helper()
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: []string{TestjobPath, "print", "up", hang}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	// Running is not enough: the signal handling is set up once the job
	// has printed.
	eventually(t, time.Minute, "container prints up", func() error {
		logs, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true})
		if err != nil {
			return err
		}
		defer logs.Close()
		var out strings.Builder
		_, _ = stdcopy.StdCopy(&out, io.Discard, logs)
		if out.String() != "up\n" {
			return fmt.Errorf("stdout %q", out.String())
		}
		return nil
	})
	return c.ID
}

// leftovers lists what of the fleet under base is still on the machine.
func leftovers(t *testing.T, base string) []string {
	t.Helper()
	var left []string
	ps, err := listProcs()
	if err != nil {
		t.Fatal(err)
	}
	prefix := nsPrefix(base)
	for _, p := range ps {
		if p.pid != os.Getpid() && p.state != 'Z' && ours(p, base, prefix) {
			left = append(left, "process "+strings.Join(p.args, " "))
		}
	}
	for _, pid := range cgroupPids(prefix) {
		if alive(pid) {
			left = append(left, "process in our cgroups: "+strings.Join(mustProc(pid).args, " "))
		}
	}
	mps, err := mountsUnder(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range mps {
		left = append(left, "mount "+mp)
	}
	for _, cg := range fleetCgroups(prefix) {
		left = append(left, "cgroup "+cg)
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		left = append(left, "directory "+base)
	}
	return left
}

func mustProc(pid int) proc { p, _ := readProc(pid); return p }

func TestCloseLeavesNothing(t *testing.T) {
	f := startOrSkip(t, 2)
	img := TestImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A finished container and a running one on each engine: shims,
	// container processes, shm mounts and cgroups all exist at Close.
	for _, e := range f.Engines {
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		if r, err := runJob(ctx, cli, img.Ref, "print", "x"); err != nil || r.Code != 0 {
			t.Fatalf("%s: run: %+v %v", e.Name, r, err)
		}
		cli.Close()
		startHanging(t, ctx, e, img.Ref)
	}
	pids, err := fleetPids(nsPrefix(f.BaseDir), func(p proc) bool { return ours(p, f.BaseDir, nsPrefix(f.BaseDir)) })
	if err != nil {
		t.Fatal(err)
	}
	// dockerd, containerd, shim and container per engine.
	if len(pids) < 4*len(f.Engines) {
		t.Errorf("found %d processes of the fleet before Close, want at least %d: the search misses some", len(pids), 4*len(f.Engines))
	}
	if mps, _ := mountsUnder(f.BaseDir); len(mps) == 0 {
		t.Errorf("no mounts under %s before Close: the search misses them", f.BaseDir)
	}

	base := f.BaseDir
	began := time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(began).Round(time.Millisecond))
	if left := leftovers(t, base); len(left) > 0 {
		t.Errorf("after Close:\n%s", strings.Join(left, "\n"))
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEnginesHaveDistinctIDs(t *testing.T) {
	f := Shared(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]string{}
	for _, e := range f.Engines {
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		info, err := cli.Info(ctx, client.InfoOptions{})
		cli.Close()
		if err != nil {
			t.Fatal(err)
		}
		id := info.Info.ID
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share the engine ID %q", other, e.Name, id)
		}
		seen[id] = e.Name
	}
}

func TestSweepCleansUpAfterDeadOwner(t *testing.T) {
	f := startOrSkip(t, 1)
	img := TestImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startHanging(t, ctx, f.Engines[0], img.Ref)

	// Pretend the owner died: a pid that cannot exist (above pid_max).
	if err := os.WriteFile(filepath.Join(f.BaseDir, ownerFile), []byte("2147483647 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(f.BaseDir)
	var swept []string
	sweep(ctx, root, func(format string, args ...any) {
		t.Logf(format, args...)
		if len(args) > 0 {
			if s, ok := args[0].(string); ok {
				swept = append(swept, s)
			}
		}
	})
	found := false
	for _, s := range swept {
		found = found || s == f.BaseDir
	}
	if !found {
		t.Fatalf("sweep did not touch %s (swept %v)", f.BaseDir, swept)
	}
	if left := leftovers(t, f.BaseDir); len(left) > 0 {
		t.Errorf("after sweep:\n%s", strings.Join(left, "\n"))
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after sweep: %v", err)
	}
}

func TestSweepSparesLiveOwner(t *testing.T) {
	f := startOrSkip(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sweep(ctx, filepath.Dir(f.BaseDir), t.Logf)
	if err := f.Engines[0].Ping(ctx); err != nil {
		t.Fatalf("sweep broke a live fleet: %v", err)
	}
}

func TestStartGivenBaseDir(t *testing.T) {
	if err := checkPrivate(); err != nil {
		unavailable(t, err)
	}
	parent, err := os.MkdirTemp("", "fbx-given-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(parent)
	keep := filepath.Join(parent, "keep.txt")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := Start(ctx, Options{N: 1, BaseDir: parent, Logf: t.Logf, External: []string{}})
	if err != nil {
		unavailable(t, err)
	}
	if err := f.Engines[0].Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Close removed a file it did not create: %v", err)
	}
	if _, err := os.Stat(f.Engines[0].Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s: %v", f.Engines[0].Dir, err)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Error("Start with N 0 succeeded")
	}
	if _, err := Start(context.Background(), Options{N: 2, External: []string{"unix:///nonexistent.sock"}}); err == nil {
		t.Error("Start with 2 engines wanted and 1 external succeeded")
	}
	if _, err := Start(context.Background(), Options{N: 1, External: []string{"ssh://host"}}); err == nil {
		t.Error("Start with an ssh host succeeded")
	}
}

func TestExternalEngines(t *testing.T) {
	priv := Shared(t, 1).Engines[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Start(ctx, Options{N: 2, External: []string{priv.UnixHost(), priv.TCPHost()}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.External() {
		t.Error("External() = false")
	}
	unix, tcp := f.Engines[0], f.Engines[1]
	for _, e := range f.Engines {
		if err := e.Ping(ctx); err != nil {
			t.Errorf("%s: %v", e, err)
		}
		for op, fault := range map[string]func() error{"Kill": e.Kill, "Hang": e.Hang, "Resume": e.Resume,
			"Restart": func() error { return e.Restart(ctx) }} {
			if err := fault(); !errors.Is(err, ErrNotSupported) {
				t.Errorf("%s.%s() = %v, want ErrNotSupported", e.Name, op, err)
			}
		}
		if e.Pid() != 0 {
			t.Errorf("%s.Pid() = %d, want 0", e.Name, e.Pid())
		}
	}
	if err := unix.AddLatency(time.Second); !errors.Is(err, ErrNotSupported) {
		t.Errorf("AddLatency on an external unix engine = %v, want ErrNotSupported", err)
	}
	if unix.ProxyHost() != "" || tcp.ProxyHost() == "" || tcp.UnixHost() != "" || tcp.Host() != priv.TCPHost() {
		t.Errorf("hosts: unix %q/%q, tcp %q/%q/%q", unix.UnixHost(), unix.ProxyHost(), tcp.Host(), tcp.UnixHost(), tcp.ProxyHost())
	}
	// The proxy in front of an external tcp engine works.
	cli, err := client.New(client.WithHost(tcp.ProxyHost()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Errorf("ping through the proxy: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := priv.Ping(ctx); err != nil {
		t.Errorf("closing an external fleet hurt the engine: %v", err)
	}
}

func TestSharedRefusesFaults(t *testing.T) {
	e := Shared(t, 1).Engines[0]
	for op, fault := range map[string]func() error{
		"Kill": e.Kill, "Hang": e.Hang, "Resume": e.Resume,
		"Restart":     func() error { return e.Restart(context.Background()) },
		"AddLatency":  func() error { return e.AddLatency(time.Second) },
		"ResetPeer":   e.ResetPeer,
		"Blackhole":   e.Blackhole,
		"ClearFaults": e.ClearFaults,
	} {
		if err := fault(); !errors.Is(err, ErrShared) {
			t.Errorf("%s() on a shared engine = %v, want ErrShared", op, err)
		}
	}
}

func TestHostsFromEnv(t *testing.T) {
	t.Setenv(EnvEngines, " unix:///a.sock, ,tcp://127.0.0.1:1 ")
	got := HostsFromEnv()
	if len(got) != 2 || got[0] != "unix:///a.sock" || got[1] != "tcp://127.0.0.1:1" {
		t.Errorf("HostsFromEnv() = %q", got)
	}
	t.Setenv(EnvEngines, "")
	if got := HostsFromEnv(); got != nil {
		t.Errorf("HostsFromEnv() with the variable empty = %q, want nil", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a/b`: "/a/b", `/a\040b`: "/a b", `/x\011y\134z`: "/x\ty\\z", `/bad\9`: `/bad\9`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOwner(t *testing.T) {
	o := selfOwner()
	if !o.alive() {
		t.Fatalf("own owner %v not alive", o)
	}
	p, err := parseOwner([]byte(o.String()))
	if err != nil || p != o {
		t.Fatalf("parseOwner(%q) = %v, %v", o.String(), p, err)
	}
	if (owner{pid: o.pid, start: o.start + 1}).alive() {
		t.Error("an owner with another start time counts as alive (pid reuse)")
	}
	if nsPrefix("/tmp/a") != nsPrefix("/tmp/a/") || nsPrefix("/tmp/a") == nsPrefix("/tmp/b") {
		t.Error("nsPrefix is not a function of the clean path")
	}
}
