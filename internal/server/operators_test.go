package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// An isolated host is still isolated after fusebox is SIGKILLed and
// restarted, with who, when and why over the API and in the event stream,
// and gets no job.
func TestIsolationSurvivesRestart(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	img := enginetest.TestImage(t)
	dir := t.TempDir()
	bin := buildFusebox(t, dir)
	addr := freeAddr(t)
	e1, e2 := engines.Engines[0], engines.Engines[1]
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
hosts:
  - {name: %s, address: %q, capacity: 2, network_mode: none}
  - {name: %s, address: %q, capacity: 2, network_mode: none}
auth:
  tokens:
    - {name: alice, token: alice-secret-token-0123456789, role: admin}
`, addr, dir, e1.Name, e1.UnixHost(), e2.Name, e2.UnixHost())
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "serve.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fusebox log:\n%s", readFile(logPath))
		}
	})
	p := startServe(t, bin, cfgPath, logPath)
	c := apiclient.New("http://"+addr, "alice-secret-token-0123456789")
	waitHealthy(t, p, c)
	ctx := context.Background()

	before := time.Now()
	if _, err := c.Isolate(ctx, e1.Name, "disk failing"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p = startServe(t, bin, cfgPath, logPath)
	waitHealthy(t, p, c)
	h, err := c.Host(ctx, e1.Name)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != fleet.HostIsolated || h.Breaker.State != breaker.StateForcedOpen || h.Reason != "isolated by alice: disk failing" {
		t.Fatalf("after restart: state %s breaker %s reason %q", h.State, h.Breaker.State, h.Reason)
	}
	if op := h.Operator; op == nil || op.Action != fleet.ActionIsolate || op.By != "alice" || op.Reason != "disk failing" ||
		op.At.Before(before.Add(-time.Second)) || op.At.After(time.Now()) {
		t.Fatalf("after restart: operator %+v", h.Operator)
	}

	var got []event.Event
	err = c.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeOperatorAction}, Host: e1.Name}, func(ev event.Event) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Action, By, Reason string }
	if len(got) != 1 || json.Unmarshal(got[0].Data, &d) != nil || d.Action != "isolate" || d.By != "alice" || d.Reason != "disk failing" {
		t.Fatalf("operator.action events of %s: %+v (data %+v)", e1.Name, got, d)
	}

	// No job goes to the isolated host.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for range 4 {
		j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "print", "ok"}})
		if err != nil {
			t.Fatal(err)
		}
		final, err := c.Wait(wctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if final.State != job.StateSucceeded || final.Host != e2.Name {
			t.Fatalf("job %s: %s on %s (%s); want succeeded on %s", j.ID, final.State, final.Host, final.Reason, e2.Name)
		}
	}

	// Released, and restarted again: it takes jobs.
	if _, err := c.Release(ctx, e1.Name, "disk replaced"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = startServe(t, bin, cfgPath, logPath)
	waitHealthy(t, p, c)
	if h, err := c.Host(ctx, e1.Name); err != nil || h.State == fleet.HostIsolated || h.Operator == nil || h.Operator.Action != fleet.ActionRelease {
		t.Fatalf("after release and restart: %+v %v", h, err)
	}
	if _, err := c.Drain(ctx, "nope", ""); !errors.Is(err, fleet.ErrHostNotFound) {
		t.Fatalf("drain of an unknown host: %v", err)
	}
}
