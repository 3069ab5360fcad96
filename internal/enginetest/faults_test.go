package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// pingVia pings host once with a fresh client (no kept-alive connection)
// bounded by timeout, and reports how long it took.
func pingVia(host string, timeout time.Duration) (time.Duration, error) {
	cli, err := client.New(client.WithHost(host), client.WithAPIVersion("1.41"))
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	began := time.Now()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return time.Since(began), err
}

// getVia GETs path from a Docker host through a plain HTTP client on its tcp
// address.
func getVia(addr, path string, timeout time.Duration) (time.Duration, int, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	began := time.Now()
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return time.Since(began), 0, err
	}
	defer resp.Body.Close()
	n := 0
	buf := make([]byte, 4096)
	for {
		m, err := resp.Body.Read(buf)
		n += m
		if err != nil {
			break
		}
	}
	return time.Since(began), n, nil
}

func TestProcessFaults(t *testing.T) {
	f := ForTest(t, 1)
	RequireFaults(t, f)
	e := f.Engines[0]
	img := TestImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("Kill", func(t *testing.T) {
		pid := e.Pid()
		if err := e.Kill(); err != nil {
			t.Fatal(err)
		}
		if alive(pid) {
			t.Errorf("dockerd %d still alive after Kill", pid)
		}
		if e.Pid() != 0 {
			t.Errorf("Pid() = %d after Kill, want 0", e.Pid())
		}
		took, err := pingVia(e.UnixHost(), 5*time.Second)
		if err == nil {
			t.Fatal("ping after Kill succeeded")
		}
		if !client.IsErrConnectionFailed(err) {
			t.Errorf("ping after Kill: %v, want client.IsErrConnectionFailed", err)
		}
		// The moby client does not wrap the syscall error; a plain dial
		// shows it.
		if err := e.Ping(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("raw ping after Kill: %v, want ECONNREFUSED", err)
		}
		if took > time.Second {
			t.Errorf("ping after Kill took %v, want it to fail fast", took)
		}
		if err := e.Hang(); err == nil {
			t.Error("Hang on a killed engine succeeded")
		}
	})

	t.Run("RestartAfterKill", func(t *testing.T) {
		if err := e.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := pingVia(e.UnixHost(), 5*time.Second); err != nil {
			t.Fatalf("ping after Restart: %v", err)
		}
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ins, err := cli.ImageInspect(ctx, img.Ref)
		if err != nil || ins.ID != img.ID {
			t.Fatalf("image after Restart: %v %v, want %s", ins.ID, err, img.ID)
		}
		if r, err := runJob(ctx, cli, img.Ref, "print", "again"); err != nil || r.Stdout != "again\n" {
			t.Fatalf("run after Restart: %+v %v", r, err)
		}
		if _, err := pingVia(e.TCPHost(), 5*time.Second); err != nil {
			t.Errorf("tcp listener after Restart: %v", err)
		}
	})

	t.Run("HangResume", func(t *testing.T) {
		if err := e.Hang(); err != nil {
			t.Fatal(err)
		}
		const deadline = 500 * time.Millisecond
		took, err := pingVia(e.UnixHost(), deadline)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ping of a hung engine: %v, want context.DeadlineExceeded", err)
		}
		if took > deadline+time.Second {
			t.Errorf("ping of a hung engine returned after %v, want about %v", took, deadline)
		}
		if err := e.Resume(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "ping after Resume", func() error {
			_, err := pingVia(e.UnixHost(), 2*time.Second)
			return err
		})
	})

	t.Run("RestartWhileHung", func(t *testing.T) {
		if err := e.Hang(); err != nil {
			t.Fatal(err)
		}
		if err := e.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := pingVia(e.UnixHost(), 5*time.Second); err != nil {
			t.Fatalf("ping after Restart: %v", err)
		}
	})
}

func TestProxyFaults(t *testing.T) {
	f := ForTest(t, 1)
	RequireFaults(t, f)
	e := f.Engines[0]

	// Warm up, then take the best of a few as the baseline.
	base := time.Hour
	for range 3 {
		took, err := pingVia(e.ProxyHost(), 5*time.Second)
		if err != nil {
			t.Fatalf("ping through the proxy: %v", err)
		}
		base = min(base, took)
	}
	t.Logf("ping through the proxy: %v", base)

	t.Run("AddLatency", func(t *testing.T) {
		const latency = 300 * time.Millisecond
		if err := e.AddLatency(latency); err != nil {
			t.Fatal(err)
		}
		took, err := pingVia(e.ProxyHost(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < base+latency {
			t.Errorf("ping with %v latency took %v (baseline %v)", latency, took, base)
		}
		// The direct path is untouched.
		if _, err := pingVia(e.TCPHost(), 5*time.Second); err != nil {
			t.Errorf("direct ping: %v", err)
		}
		// Adding it again replaces it.
		if err := e.AddLatency(latency); err != nil {
			t.Fatal(err)
		}
		clear(t, e, base)
	})

	t.Run("Blackhole", func(t *testing.T) {
		if err := e.Blackhole(); err != nil {
			t.Fatal(err)
		}
		const deadline = 500 * time.Millisecond
		took, err := pingVia(e.ProxyHost(), deadline)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ping into a blackhole: %v, want context.DeadlineExceeded", err)
		}
		if took > deadline+time.Second {
			t.Errorf("ping into a blackhole returned after %v", took)
		}
		clear(t, e, base)
	})

	t.Run("ResetPeer", func(t *testing.T) {
		if err := e.ResetPeer(); err != nil {
			t.Fatal(err)
		}
		took, err := pingVia(e.ProxyHost(), 5*time.Second)
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ping with peers reset: %v, want a connection error", err)
		}
		if took > time.Second {
			t.Errorf("ping with peers reset took %v, want it to fail fast", took)
		}
		t.Logf("ping with peers reset: %v", err)
		clear(t, e, base)
	})

	t.Run("ResetSomePeers", func(t *testing.T) {
		if err := e.ResetSomePeers(0.3); err != nil {
			t.Fatal(err)
		}
		failed := 0
		const n = 40
		for range n {
			if _, err := pingVia(e.ProxyHost(), 5*time.Second); err != nil {
				failed++
			}
		}
		// All 40 passing (0.7^40) or failing (0.3^40) is all but impossible.
		if failed == 0 || failed == n {
			t.Errorf("%d of %d fresh connections reset with a share of 0.3", failed, n)
		}
		t.Logf("%d of %d fresh connections reset with a share of 0.3", failed, n)
		for _, bad := range []float64{0, -0.1, 1.5} {
			if err := e.ResetSomePeers(bad); err == nil {
				t.Errorf("ResetSomePeers(%v) succeeded", bad)
			}
		}
		clear(t, e, base)
	})

	t.Run("LimitBandwidth", func(t *testing.T) {
		_, size, err := getVia(e.ProxyAddr, "/v1.41/info", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		const kbps = 1
		if err := e.LimitBandwidth(kbps); err != nil {
			t.Fatal(err)
		}
		want := time.Duration(size/1024) * time.Second / kbps
		took, _, err := getVia(e.ProxyAddr, "/v1.41/info", want+30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want < time.Second || took < want {
			t.Errorf("%d bytes at %d KB/s took %v, want at least %v", size, kbps, took, want)
		}
		if err := e.LimitBandwidth(0); err == nil {
			t.Error("LimitBandwidth(0) succeeded")
		}
		clear(t, e, base)
	})
}

// clear removes the faults and waits until a ping through the proxy is
// about as fast as the baseline again.
func clear(t *testing.T, e *Engine, base time.Duration) {
	t.Helper()
	if err := e.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "ping after ClearFaults", func() error {
		took, err := pingVia(e.ProxyHost(), 5*time.Second)
		if err != nil {
			return err
		}
		if took > base+200*time.Millisecond {
			return fmt.Errorf("took %v, baseline %v", took, base)
		}
		return nil
	})
}
