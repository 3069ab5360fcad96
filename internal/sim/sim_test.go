package sim_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/sim"
	"fusebox/internal/store/sqlite"
)

func client(t *testing.T, e *sim.Engine) *engine.Client {
	t.Helper()
	c, err := engine.New(engine.Config{Name: e.Name(), Address: e.Address(), Dial: e.Dial,
		Timeouts: engine.Timeouts{Ping: 200 * time.Millisecond, Inspect: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The real engine client runs a container's whole life on a simulated
// engine: ping, image, create, start, the die event, inspect, logs, remove.
func TestSimulatedEngineRunsAContainer(t *testing.T) {
	cl := sim.New(1, sim.Model{JobRuntime: 50 * time.Millisecond})
	defer cl.Close()
	c := client(t, cl.Engines()[0])
	ctx := t.Context()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.ImageExists(ctx, "busybox:latest"); err != nil || !ok {
		t.Fatalf("image: %v %v", ok, err)
	}
	evs, _ := c.Events(ctx, map[string]string{"k": "v"})
	id, err := c.Create(ctx, engine.ContainerSpec{Name: "one", Image: "busybox:latest", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, engine.ContainerSpec{Name: "one", Image: "busybox:latest"}); !errors.Is(err, engine.ErrNameConflict) {
		t.Fatalf("second create of one: %v, want a name conflict", err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	var died bool
	for !died {
		select {
		case ev := <-evs:
			died = ev.Action == "die" && ev.ContainerID == id && ev.ExitCode == 0
		case <-time.After(10 * time.Second):
			t.Fatal("no die event")
		}
	}
	ct, err := c.Inspect(ctx, id)
	if err != nil || !ct.Exited() || ct.ExitCode != 0 || ct.Labels["k"] != "v" {
		t.Fatalf("inspect: %+v %v", ct, err)
	}
	out, _, _, err := c.Logs(ctx, id, 1<<20)
	if err != nil || string(out) != "simulated job output\n" {
		t.Fatalf("logs: %q %v", out, err)
	}
	if err := c.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inspect(ctx, id); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("inspect after remove: %v", err)
	}
	if s := cl.Stats(); s.Pings < 1 || s.Creates != 1 || s.Exits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Killed, the engine refuses dials (a host fault, nothing sent); hung, it
// holds calls past their deadline (a host fault); resumed, it answers.
func TestSimulatedEngineFails(t *testing.T) {
	cl := sim.New(1, sim.Model{})
	defer cl.Close()
	e := cl.Engines()[0]
	c := client(t, e)
	ctx := t.Context()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	e.Kill()
	if err := c.Ping(ctx); !engine.IsHostFault(err) {
		t.Fatalf("ping of a killed engine: %v, want a host fault", err)
	}
	e.Resume()
	e.Hang()
	if err := c.Ping(ctx); !engine.IsHostFault(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping of a hung engine: %v, want a host fault past its deadline", err)
	}
	e.Resume()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after resume: %v", err)
	}
}

// The real fleet and dispatcher run jobs to their end on simulated
// engines: what the scale benchmark relies on.
func TestDispatcherRunsJobsOnSimulatedEngines(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fusebox.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cl := sim.New(3, sim.Model{JobRuntime: 20 * time.Millisecond})
	defer cl.Close()
	var hosts []fleet.HostConfig
	for _, e := range cl.Engines() {
		hosts = append(hosts, fleet.HostConfig{Name: e.Name(), Engine: engine.Config{Address: e.Address(), Dial: e.Dial}})
	}
	fl, err := fleet.New(fleet.Config{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(dispatch.Config{}, db, fl)
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	var ids []string
	for range 20 {
		j, _, err := d.Submit(ctx, job.Spec{Image: "busybox:latest", Command: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			j, err := db.JobGetByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State.Terminal() {
				logs, err := db.LogsGet(ctx, id)
				if j.State != job.StateSucceeded || err != nil || string(logs.Stdout) != "simulated job output\n" {
					t.Fatalf("job %s: %s (%s), logs %q %v", id, j.State, j.Reason, logs.Stdout, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s still %s (%s)", id, j.State, j.Reason)
			}
			time.Sleep(20 * time.Millisecond) // polling the store until a deadline
		}
	}
}
