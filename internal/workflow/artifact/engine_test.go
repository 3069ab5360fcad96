package artifact_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/workflow/artifact"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

const testjob = enginetest.TestjobPath

func newClient(tb testing.TB, e *enginetest.Engine) *engine.Client {
	tb.Helper()
	c, err := engine.New(engine.Config{Name: e.Name, Address: e.UnixHost(), NetworkMode: "none"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// create creates a container of the test image running cmd, removed when
// the test ends.
func create(tb testing.TB, c *engine.Client, cmd ...string) string {
	tb.Helper()
	id, err := c.Create(context.Background(), engine.ContainerSpec{
		Name: fmt.Sprintf("fbart-%d", time.Now().UnixNano()), Image: enginetest.TestImage(tb).Ref, Cmd: cmd})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Remove(context.Background(), id) })
	return id
}

// run starts container id, waits for it to exit 0 and returns its stdout.
func run(tb testing.TB, c *engine.Client, id string) string {
	tb.Helper()
	ctx := context.Background()
	if err := c.Start(ctx, id); err != nil {
		tb.Fatal(err)
	}
	code, err := c.Wait(ctx, id)
	out, errOut, _, lerr := c.Logs(ctx, id, 1<<16)
	if err != nil || code != 0 || lerr != nil {
		tb.Fatalf("container exited %d, %v (logs: %v); stdout %q stderr %q", code, err, lerr, out, errOut)
	}
	return string(out)
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func TestCopyOutSameDigestOnTwoEnginesAndCopyIn(t *testing.T) {
	f := enginetest.Shared(t, 2)
	c1, c2 := newClient(t, f.Engines[0]), newClient(t, f.Engines[1])
	ctx := context.Background()
	s1, s2 := open(t, artifact.Options{}), open(t, artifact.Options{})

	// The same files made in a different order, at different times, on
	// two engines.
	id1 := create(t, c1, sh(testjob+" write /out/a/b.txt bee write /out/c.txt sea write /single.txt one"+
		" && busybox ln -s a/b.txt /out/link && mkdir -p /out/empty")...)
	run(t, c1, id1)
	id2 := create(t, c2, sh("mkdir -p /out/empty && busybox ln -s a/b.txt /out/link && "+
		testjob+" write /single.txt one sleep 1100ms write /out/c.txt sea write /out/a/b.txt bee")...)
	run(t, c2, id2)
	paths := []string{"/out", "/single.txt"}
	outs1, err := s1.CopyOut(ctx, c1, id1, paths)
	if err != nil {
		t.Fatal(err)
	}
	outs2, err := s2.CopyOut(ctx, c2, id2, paths)
	if err != nil {
		t.Fatal(err)
	}
	for i := range paths {
		if outs1[i].Path != paths[i] || outs1[i].Digest != outs2[i].Digest || outs1[i].Size != outs2[i].Size || outs1[i].Size == 0 {
			t.Fatalf("output %s: %+v on %s, %+v on %s: want the same digest and size", paths[i], outs1[i], c1.Name(), outs2[i], c2.Name())
		}
	}
	if outs1[0].Digest == outs1[1].Digest {
		t.Fatal("a directory and a file have the same digest")
	}
	// Copied out again: stored once.
	if again, err := s1.CopyOut(ctx, c1, id1, paths); err != nil || again[0] != outs1[0] {
		t.Fatalf("second CopyOut = %+v, %v", again, err)
	}
	if list, err := s1.List(); err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want the 2 artifacts once each", list, err)
	}

	// Into a created container on the other engine, at paths that do not
	// exist (one under /tmp, whose mode must stay 1777).
	id3 := create(t, c2, sh("cat /work/in/deep/a/b.txt /work/in/deep/c.txt /work/in/deep/link /tmp/one/single.txt;"+
		" echo; ls -ld /tmp /work/in/deep/empty | sed 's/ .*//'")...)
	inputs := []job.Input{{Digest: outs1[0].Digest, Path: "/work/in/deep"}, {Digest: outs1[1].Digest, Path: "/tmp/one"}}
	if err := s1.CopyIn(ctx, c2, id3, inputs); err != nil {
		t.Fatal(err)
	}
	if got, want := run(t, c2, id3), "beeseabeeone\ndrwxrwxrwt\ndrwxr-xr-x\n"; got != want {
		t.Fatalf("the container read %q, want %q", got, want)
	}
}

func TestCopyOutMissingAndCopyInUnknown(t *testing.T) {
	f := enginetest.Shared(t, 1)
	c := newClient(t, f.Engines[0])
	ctx := context.Background()
	s := open(t, artifact.Options{})
	id := create(t, c, testjob, "write", "/out/x", "x")
	run(t, c, id)

	_, err := s.CopyOut(ctx, c, id, []string{"/out/x", "/no/such/output"})
	if !errors.Is(err, artifact.ErrMissingOutput) || !strings.Contains(err.Error(), "/no/such/output") || engine.IsHostFault(err) {
		t.Fatalf("CopyOut of a missing path = %v; want ErrMissingOutput naming it, not a host fault", err)
	}
	// A container that is gone is not a missing output.
	_, err = s.CopyOut(ctx, c, "fbart-no-such-container", []string{"/out/x"})
	if err == nil || errors.Is(err, artifact.ErrMissingOutput) {
		t.Fatalf("CopyOut from a missing container = %v; want an error other than ErrMissingOutput", err)
	}
	id2 := create(t, c, "true")
	err = s.CopyIn(ctx, c, id2, []job.Input{{Digest: "sha256:" + strings.Repeat("0", 64), Path: "/in"}})
	if !errors.Is(err, artifact.ErrUnknownArtifact) {
		t.Fatalf("CopyIn of an unknown digest = %v; want ErrUnknownArtifact", err)
	}
}

// heapPeak samples the Go heap in use until stop is called, which returns
// the peak.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// vmHWM is the process's peak resident set size, from /proc/self/status.
func vmHWM() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// A 200 MiB artifact passes from one engine to another with the Go heap
// staying small: nothing buffers a file or an archive whole.
func TestLargeArtifactAcrossEnginesInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB through two engines")
	}
	const size = 200 << 20
	const heapLimit = 64 << 20
	f := enginetest.Shared(t, 2)
	c1, c2 := newClient(t, f.Engines[0]), newClient(t, f.Engines[1])
	ctx := context.Background()
	s := open(t, artifact.Options{})
	id1 := create(t, c1, testjob, "fill", "/out/big", "200MiB")
	run(t, c1, id1)
	id2 := create(t, c2, "wc", "-c", "/in/big")

	runtime.GC()
	stop := heapPeak()
	start := time.Now()
	outs, err := s.CopyOut(ctx, c1, id1, []string{"/out/big"})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	outTook := time.Since(start)
	start = time.Now()
	err = s.CopyIn(ctx, c2, id2, []job.Input{{Digest: outs[0].Digest, Path: "/in"}})
	inTook := time.Since(start)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := run(t, c2, id2), fmt.Sprintf("%d /in/big\n", size); got != want {
		t.Fatalf("wc in the second container = %q, want %q", got, want)
	}
	// What landed is the same content.
	back, err := s.CopyOut(ctx, c2, id2, []string{"/in/big"})
	if err != nil || back[0].Digest != outs[0].Digest {
		t.Fatalf("copied back from %s: %+v, %v; want digest %s", c2.Name(), back, err, outs[0].Digest)
	}
	mbs := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	t.Logf("200 MiB: copy out %v (%.0f MiB/s), copy in %v (%.0f MiB/s); peak Go heap in use %.1f MiB; peak RSS (VmHWM) %s",
		outTook.Round(time.Millisecond), mbs(outTook), inTook.Round(time.Millisecond), mbs(inTook), float64(peak)/(1<<20), vmHWM())
	if peak > heapLimit {
		t.Fatalf("peak Go heap in use %d bytes, want under %d", peak, heapLimit)
	}
}

// BenchmarkCopyOutIn moves one artifact (a 128 MiB file) out of a container
// on one engine and into a container on another, through the store and
// through the docker CLI's cp on the same engines, in the same run.
func BenchmarkCopyOutIn(b *testing.B) {
	const size = 128 << 20
	f := enginetest.Shared(b, 2)
	e1, e2 := f.Engines[0], f.Engines[1]
	c1, c2 := newClient(b, e1), newClient(b, e2)
	ctx := context.Background()
	s, err := artifact.Open(b.TempDir(), artifact.Options{})
	if err != nil {
		b.Fatal(err)
	}
	src := create(b, c1, testjob, "fill", "/out/big", "128MiB")
	run(b, c1, src)
	outs, err := s.CopyOut(ctx, c1, src, []string{"/out/big"})
	if err != nil {
		b.Fatal(err)
	}
	digest := outs[0].Digest
	docker, err := exec.LookPath("docker")
	if err != nil {
		b.Logf("no docker CLI: docker cp not measured")
	}
	dockerCp := func(b *testing.B, host string, stdin io.Reader, stdout io.Writer, args ...string) {
		cmd := exec.Command(docker, append([]string{"-H", host, "cp"}, args...)...)
		cmd.Stdin, cmd.Stdout = stdin, stdout
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("docker cp %v: %v: %s", args, err, stderr.String())
		}
	}

	b.Run("out/fusebox", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.CopyOut(ctx, c1, src, []string{"/out/big"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("out/docker-cp", func(b *testing.B) {
		if docker == "" {
			b.Skip("no docker CLI")
		}
		b.SetBytes(size)
		for b.Loop() {
			dockerCp(b, e1.UnixHost(), nil, io.Discard, src+":/out/big", "-")
		}
	})
	b.Run("in/fusebox", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			id := create(b, c2, "true")
			b.StartTimer()
			if err := s.CopyIn(ctx, c2, id, []job.Input{{Digest: digest, Path: "/in"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in/docker-cp", func(b *testing.B) {
		if docker == "" {
			b.Skip("no docker CLI")
		}
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			id := create(b, c2, "true")
			rc, _, err := s.Open(digest)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			dockerCp(b, e2.UnixHost(), rc, nil, "-", id+":/")
			rc.Close()
		}
	})
}
