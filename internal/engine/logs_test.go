package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// floodLineLen and floodLine mirror fusebox-testjob's flood step: line k of
// a stream is k as 19 zero-padded digits, a space, 1003 fill bytes and a
// newline.
const floodLineLen = 1024

func floodLine(k int64, fill byte) []byte {
	b := make([]byte, floodLineLen)
	copy(b, fmt.Sprintf("%019d ", k))
	for i := 20; i < floodLineLen-1; i++ {
		b[i] = fill
	}
	b[floodLineLen-1] = '\n'
	return b
}

// floodTail is the last n bytes of a flood stream of total bytes.
func floodTail(fill byte, total, n int64) []byte {
	n = min(n, total)
	from := total - n
	var buf bytes.Buffer
	for k := from / floodLineLen; int64(buf.Len()) < n+from%floodLineLen; k++ {
		buf.Write(floodLine(k, fill))
	}
	return buf.Bytes()[from%floodLineLen : from%floodLineLen+n]
}

// startJob creates and starts a container running the test job with args.
func startJob(t testing.TB, c *engine.Client, args ...string) string {
	t.Helper()
	img := enginetest.TestImage(t)
	ctx := context.Background()
	id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: img.Ref, Cmd: append([]string{testjob}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), id) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitExit waits for the container to exit with code 0.
func waitExit(t testing.TB, c *engine.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if code, err := c.Wait(ctx, id); err != nil || code != 0 {
		t.Fatalf("wait = %d, %v; want 0", code, err)
	}
}

// heapPeak samples the heap in use until stop is called, which returns the
// peak above what was in use at the start.
func heapPeak() (stop func() uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		return peak - base
	}
}

// cpuTime is the CPU time this process (not the engines it started) has
// used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func wantTail(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes, want %d; first difference at byte %d: got %.60q, want %.60q",
			what, len(got), len(want), i, got[min(i, len(got)):], want[min(i, len(want)):])
	}
}

// A job printing a gigabyte keeps exactly its tail, the collector's memory
// stays bounded, and nothing counts against the host. With -short the job
// prints 128 MiB. For the figure in the notes:
//
//	go test -count=1 -run CollectLogsOfAGigabyte -v ./internal/engine
func TestCollectLogsOfAGigabyte(t *testing.T) {
	f := enginetest.Shared(t, 1)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	total := int64(1 << 30)
	if testing.Short() {
		total = 128 << 20
	}
	const maxBytes = 1 << 20
	errTotal := int64(3<<20 + 5000)
	start := time.Now()
	id := startJob(t, c, "flood-stderr", "3MiB", "flood", strconv.FormatInt(total, 10), "flood-stderr", "5000")
	stop := heapPeak()
	cpu0 := cpuTime()
	l := c.CollectLogs(context.Background(), id, maxBytes, 30*time.Second)
	defer l.Close()
	waitExit(t, c, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stdout, stderr, truncated, err := l.Wait(ctx)
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	peak := stop()
	if err != nil {
		t.Fatalf("collect (%s): %v", engine.ClassOf(err), err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Wait returned a complete result before Done")
	}
	if !truncated {
		t.Error("truncated = false")
	}
	wantTail(t, "stdout", stdout, floodTail('o', total, maxBytes))
	wantTail(t, "stderr", stderr, floodTail('e', errTotal, maxBytes))
	t.Logf("%d MiB collected (maxBytes %d KiB) in %v (%.0f MiB/s, the job's own pace) with %d resumes, using %v of this process's CPU; heap in use at most %.1f MiB above the start",
		total>>20, maxBytes>>10, took.Round(time.Millisecond), float64(total>>20)/took.Seconds(), l.Resumes(), cpu.Round(time.Millisecond), float64(peak)/(1<<20))
	if limit := uint64(8*maxBytes + 4<<20); peak > limit {
		t.Errorf("heap in use rose by %d bytes while collecting, want under %d", peak, limit)
	}
}

// A collector started after the container exited reads everything; one
// started while it runs and one read in one shot see the same.
func TestCollectLogsAfterExit(t *testing.T) {
	f := enginetest.Shared(t, 1)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	id := startJob(t, c, "print", "first", "flood", "3MiB", "stderr", "oops", "flood", "5000")
	live := c.CollectLogs(context.Background(), id, 4<<20, 0)
	defer live.Close()
	waitExit(t, c, id)
	want := append([]byte("first\n"), floodTail('o', 3<<20+5000, 3<<20+5000)...)
	for _, tc := range []struct {
		name string
		l    *engine.LogCollector
	}{
		{"live", live},
		{"after exit", c.CollectLogs(context.Background(), id, 4<<20, 0)},
	} {
		stdout, stderr, truncated, err := tc.l.Wait(context.Background())
		if err != nil || truncated {
			t.Fatalf("%s: err %v truncated %v", tc.name, err, truncated)
		}
		wantTail(t, tc.name+" stdout", stdout, want)
		if string(stderr) != "oops\n" {
			t.Fatalf("%s: stderr %q", tc.name, stderr)
		}
		tc.l.Close()
		tc.l.Close() // twice is fine
	}
	stdout, stderr, truncated, err := c.Logs(context.Background(), id, 4<<20)
	if err != nil || truncated || string(stderr) != "oops\n" {
		t.Fatalf("one-shot: err %v truncated %v stderr %q", err, truncated, stderr)
	}
	wantTail(t, "one-shot stdout", stdout, want)
}

// A container that is gone ends a collection with ErrNotFound, at once.
func TestCollectLogsOfAMissingContainer(t *testing.T) {
	f := enginetest.Shared(t, 1)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	l := c.CollectLogs(context.Background(), "fusebox-no-such-container", 0, 0)
	defer l.Close()
	select {
	case <-l.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("collector of a missing container still running after 30s")
	}
	if _, _, _, err := l.Result(); !errors.Is(err, engine.ErrNotFound) || engine.IsHostFault(err) {
		t.Fatalf("result err = %v (%s), want ErrNotFound, not a host fault", err, engine.ClassOf(err))
	}
}

// The one-shot read has an inactivity deadline, not a whole-call one: 150
// MiB read through a slow link, for longer than Timeouts.Logs, is read whole.
func TestLogsOneShotOutlastsItsInactivityDeadline(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, "", engine.Timeouts{})
	const total = 150 << 20
	id := startJob(t, c, "flood", strconv.Itoa(total), "stderr", "done")
	waitExit(t, c, id)

	const deadline = 500 * time.Millisecond
	slow := newClient(t, e, e.ProxyHost(), engine.Timeouts{Logs: deadline})
	if err := e.LimitBandwidth(60 << 10); err != nil { // 60 MiB/s: about 3 s for 150 MiB
		t.Fatal(err)
	}
	defer e.ClearFaults()
	start := time.Now()
	stdout, stderr, truncated, err := slow.Logs(context.Background(), id, 1<<20)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("one-shot read of %d MiB (%s): %v", total>>20, engine.ClassOf(err), err)
	}
	t.Logf("one-shot read of %d MiB through a slow link took %v", total>>20, took.Round(time.Millisecond))
	if took < 2*deadline {
		t.Errorf("the read took %v, under twice its inactivity deadline %v: the test proves nothing", took, deadline)
	}
	if !truncated || string(stderr) != "done\n" {
		t.Fatalf("truncated %v stderr %q", truncated, stderr)
	}
	wantTail(t, "stdout", stdout, floodTail('o', total, 1<<20))

	// A stalled one-shot read fails at its inactivity deadline, as the
	// host's fault.
	if err := e.Blackhole(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, _, _, err = slow.Logs(context.Background(), id, 1<<20)
	took = time.Since(start)
	if !engine.IsHostFault(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read: %v (%s), want a host fault at the deadline", err, engine.ClassOf(err))
	}
	if took < deadline || took > deadline+2*time.Second {
		t.Fatalf("stalled read returned after %v, want about %v", took, deadline)
	}
}

// A stream broken while the job prints resumes where it was: with a cap
// above the output, the collection is the output exactly, byte for byte.
func TestCollectLogsResumesAfterABrokenConnection(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, e.ProxyHost(), engine.Timeouts{})
	var args []string
	const rounds = 10
	for range rounds {
		args = append(args, "flood", "2MiB", "flood-stderr", "3000", "sleep", "150ms")
	}
	// The collector lags behind the job, so a resume has much to read.
	if err := e.LimitBandwidth(4 << 10); err != nil {
		t.Fatal(err)
	}
	defer e.ClearFaults()
	id := startJob(t, c, args...)
	l := c.CollectLogs(context.Background(), id, 64<<20, 10*time.Second)
	defer l.Close()

	for round := 0; round < 2; round++ {
		// Wait until more has come, then break the connection: a
		// blackhole holds it, and clearing it closes it.
		before, _, _, _ := l.Result()
		var got int
		enginetest.Eventually(t, time.Minute, fmt.Sprintf("round %d: another MiB of output is collected", round), func() bool {
			out, _, _, _ := l.Result()
			got = len(out)
			return got > len(before)+(1<<20)
		}, func() string { return fmt.Sprintf("round %d: %d bytes collected, %d before", round, got, len(before)) })
		if err := e.Blackhole(); err != nil {
			t.Fatal(err)
		}
		if err := e.ClearFaults(); err != nil {
			t.Fatal(err)
		}
		if err := e.LimitBandwidth(4 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stdout, stderr, truncated, err := l.Wait(ctx)
	if err != nil || truncated {
		t.Fatalf("collect: %v truncated %v", err, truncated)
	}
	if l.Resumes() < 2 {
		t.Fatalf("resumes = %d, want at least 2: the connection was not broken", l.Resumes())
	}
	t.Logf("collected after %d resumes", l.Resumes())
	wantTail(t, "stdout", stdout, floodTail('o', rounds*2<<20, rounds*2<<20))
	wantTail(t, "stderr", stderr, floodTail('e', rounds*3000, rounds*3000))
}

// The engine dies while the job prints (its containers die with it): the
// collector reconnects once it is back and ends with what the engine kept,
// exactly.
func TestCollectLogsAcrossAnEngineRestart(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, "", engine.Timeouts{})
	var args []string
	for range 100 {
		args = append(args, "flood", "1MiB", "flood-stderr", "1000", "sleep", "50ms")
	}
	id := startJob(t, c, args...)
	l := c.CollectLogs(context.Background(), id, 256<<20, 30*time.Second)
	defer l.Close()
	var got int
	enginetest.Eventually(t, time.Minute, "8 MiB of output are collected", func() bool {
		out, _, _, _ := l.Result()
		got = len(out)
		return got > 8<<20
	}, func() string { return fmt.Sprintf("%d bytes collected", got) })
	if err := e.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, truncated, err := l.Wait(ctx)
	if err != nil || truncated {
		t.Fatalf("collect: %v (%s) truncated %v", err, engine.ClassOf(err), truncated)
	}
	if l.Resumes() < 1 {
		t.Fatal("resumes = 0: the stream was not broken")
	}
	wantOut, wantErr, _, err := c.Logs(context.Background(), id, 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d resumes: %d bytes of stdout, %d of stderr", l.Resumes(), len(stdout), len(stderr))
	wantTail(t, "stdout", stdout, wantOut)
	wantTail(t, "stderr", stderr, wantErr)
}

// Once the caller says the container exited, a stalled stream ends Wait at
// the idle deadline as a host fault; the collector goes on, and once the
// stream is mended a later Wait gets it all.
func TestCollectLogsStalledAfterExit(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	local := newClient(t, e, "", engine.Timeouts{})
	id := startJob(t, local, "flood", "1MiB")
	waitExit(t, local, id)

	c := newClient(t, e, e.ProxyHost(), engine.Timeouts{})
	if err := e.Blackhole(); err != nil {
		t.Fatal(err)
	}
	defer e.ClearFaults()
	const idle = 500 * time.Millisecond
	l := c.CollectLogs(context.Background(), id, 2<<20, idle)
	defer l.Close()
	start := time.Now()
	_, _, _, err := l.Wait(context.Background())
	took := time.Since(start)
	if !engine.IsHostFault(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled: %v (%s), want a host fault", err, engine.ClassOf(err))
	}
	if took < idle || took > idle+2*time.Second {
		t.Fatalf("stalled Wait returned after %v, want about %v", took, idle)
	}
	if err := e.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	stdout, _, _, err := l.Wait(context.Background())
	if err != nil {
		t.Fatalf("after the fault cleared: %v", err)
	}
	wantTail(t, "stdout", stdout, floodTail('o', 1<<20, 1<<20))

	// The caller giving up is nobody's fault.
	l2 := c.CollectLogs(context.Background(), id, 2<<20, idle)
	defer l2.Close()
	if err := e.Blackhole(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := l2.Wait(ctx); engine.ClassOf(err) != engine.ClassIgnored {
		t.Fatalf("cancelled wait: %v (%s), want ignored", err, engine.ClassOf(err))
	}
}

// oldLogs is the one-shot read as it was before the collector: the bounded
// client, one deadline on the whole read, stdcopy into growing tails.
func oldLogs(ctx context.Context, cli *client.Client, id string, maxBytes int) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, engine.LogsTimeoutDefault)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	out, errw := &oldTail{max: maxBytes}, &oldTail{max: maxBytes}
	_, err = stdcopy.StdCopy(out, errw, rc)
	return out.bytes(), errw.bytes(), err
}

type oldTail struct {
	max int
	buf []byte
}

func (t *oldTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over >= t.max {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *oldTail) bytes() []byte { return t.buf[max(0, len(t.buf)-t.max):] }

// BenchmarkLogs100MiB reads the 100 MiB output of an exited container with
// the old one-shot read, the new one and a collector, side by side:
//
//	go test -run '^$' -bench Logs100MiB -benchmem -benchtime 5x ./internal/engine
func BenchmarkLogs100MiB(b *testing.B) {
	f := enginetest.Shared(b, 1)
	e := f.Engines[0]
	c := newClient(b, e, "", engine.Timeouts{})
	const total = 100 << 20
	id := startJob(b, c, "flood", strconv.Itoa(total))
	waitExit(b, c, id)
	want := floodTail('o', total, 1<<20)
	raw, err := e.Client()
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		read func() ([]byte, error)
	}{
		{"old-one-shot", func() ([]byte, error) {
			out, _, err := oldLogs(ctx, raw, id, 1<<20)
			return out, err
		}},
		{"Logs", func() ([]byte, error) {
			out, _, _, err := c.Logs(ctx, id, 1<<20)
			return out, err
		}},
		{"CollectLogs", func() ([]byte, error) {
			l := c.CollectLogs(ctx, id, 1<<20, 0)
			defer l.Close()
			out, _, _, err := l.Wait(ctx)
			return out, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			var peak uint64
			for b.Loop() {
				stop := heapPeak()
				out, err := bc.read()
				peak = max(peak, stop())
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Equal(out, want) {
					b.Fatalf("read %d bytes, not the tail", len(out))
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
