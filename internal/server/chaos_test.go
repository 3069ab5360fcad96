package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// The short chaos run of make test: a stream of jobs over three engines
// while fusebox loses start and create answers, an operator isolates and
// releases a host, a daemon restarts, and fusebox itself is SIGKILLed and
// started again. Counted from the engines' own events: no two containers
// of one job ever ran at once; every job ends, and ends well.
func TestChaosNoJobRunsTwiceNoneIsLost(t *testing.T) {
	engines := enginetest.ForTest(t, 3)
	enginetest.RequireFaults(t, engines)
	img := enginetest.TestImage(t)
	dir := t.TempDir()
	bin := buildFusebox(t, dir)
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nlog_level: debug\npoll_interval: 200ms\nhosts:\n", addr, dir)
	for _, e := range engines.Engines {
		cfg += fmt.Sprintf("  - {name: %s, address: %q, capacity: 3, network_mode: none}\n", e.Name, e.AnswerProxyHost())
	}
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	lives := enginetest.WatchLifetimes(t, engines, map[string]string{job.LabelManaged: "true"}, func(l map[string]string) string {
		return l[job.LabelJobID]
	})
	logPath := filepath.Join(dir, "serve.log")
	p := startServe(t, bin, cfgPath, logPath)
	c := apiclient.New("http://"+addr, "")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fusebox log:\n%s", readFile(logPath))
		}
	})
	waitHealthy(t, p, c)
	ctx := context.Background()
	e0, e1, e2 := engines.Engines[0], engines.Engines[1], engines.Engines[2]

	const total = 40
	var ids []string
	// submit retries with the job's idempotency key until fusebox takes it
	// (it may be down): accepted once, whatever the retries.
	submit := func(i int) {
		spec := job.Spec{Image: img.Ref, IdempotencyKey: fmt.Sprintf("chaos-%d", i),
			Command: []string{"/usr/local/bin/fusebox-testjob", "sleep", "300ms", "print", fmt.Sprint("job ", i)}}
		var last error
		enginetest.Eventually(t, 60*time.Second, fmt.Sprintf("fusebox accepts job %d", i), func() bool {
			j, _, err := c.Submit(ctx, spec)
			if err != nil {
				last = err // fusebox is restarting
				return false
			}
			ids = append(ids, j.ID)
			return true
		}, func() string { return fmt.Sprintf("submit %d: %v", i, last) })
	}
	faults := map[int]func(){
		4: func() {
			if _, err := e0.DropAnswers(enginetest.Route{Method: "POST", Path: `^/containers/[^/]+/start$`}, 2); err != nil {
				t.Fatal(err)
			}
			if _, err := e1.DropAnswers(enginetest.Route{Method: "POST", Path: `^/containers/create$`}, 2); err != nil {
				t.Fatal(err)
			}
		},
		10: func() {
			if _, err := c.Isolate(ctx, e2.Name, "chaos"); err != nil {
				t.Fatal(err)
			}
		},
		16: func() {
			if _, err := c.Release(ctx, e2.Name, "chaos over"); err != nil {
				t.Fatal(err)
			}
			if err := e1.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		},
		24: func() {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p = startServe(t, bin, cfgPath, logPath)
			waitHealthy(t, p, c)
		},
		30: func() {
			if _, err := e2.ResetAnswers(enginetest.Route{Method: "POST", Path: `^/containers/[^/]+/start$`}, 1); err != nil {
				t.Fatal(err)
			}
		},
	}
	for i := range total {
		if f := faults[i]; f != nil {
			f()
		}
		submit(i)
		time.Sleep(100 * time.Millisecond) // a steady submit rate, not synchronisation
	}

	states := map[job.State]int{}
	attempts := 0
	for _, id := range ids {
		d := waitTerminal(t, c, id, 120*time.Second)
		states[d.Job.State]++
		attempts += len(d.Attempts)
		if d.Job.State != job.StateSucceeded {
			t.Errorf("job %s ended %s: %s", id, d.Job.State, d.Job.Reason)
		}
	}
	if len(ids) != total {
		t.Fatalf("%d jobs accepted of %d submitted", len(ids), total)
	}
	over := lives.Overlaps()
	for key, pairs := range over {
		for _, pr := range pairs {
			t.Errorf("job %s: containers %.12s on %s (%v..%v) and %.12s on %s (%v..%v) ran at once", key,
				pr[0].ID, pr[0].Engine, pr[0].Started.Format(time.StampMilli), pr[0].Died.Format(time.StampMilli),
				pr[1].ID, pr[1].Engine, pr[1].Started.Format(time.StampMilli), pr[1].Died.Format(time.StampMilli))
		}
	}
	var runs []string
	for _, id := range ids {
		if n := lives.Count(id); n != 1 {
			runs = append(runs, fmt.Sprintf("%s:%d", id, n))
		}
	}
	sort.Strings(runs)
	t.Logf("chaos: submitted %d, accepted %d, states %v, attempts %d, jobs whose containers started other than once (in turn): %s, overlapping: %d",
		total, len(ids), states, attempts, strings.Join(runs, " "), len(over))
}

func waitTerminal(t *testing.T, c *apiclient.Client, id string, timeout time.Duration) *api.JobDetail {
	t.Helper()
	var d *api.JobDetail
	var err error
	enginetest.Eventually(t, timeout, "job "+id+" is terminal", func() bool {
		d, err = c.Get(context.Background(), id)
		return err == nil && d.Job.State.Terminal()
	}, func() string { return "job " + id + ": " + lastState(d, err) })
	return d
}

// lastState says what a poll of a job last saw: its state and reason, or
// the error.
func lastState(d *api.JobDetail, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s (%s)", d.Job.State, d.Job.Reason)
}
