package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/workflow"
	"fusebox/internal/workflow/wfrun"
)

// chain is a -> b -> c, b slow enough to be killed under.
const chain = `name: chain
defaults: {image: %s}
steps:
  - id: a
    command: ["sh", "-c", "mkdir -p /out && echo one > /out/x"]
    outputs: [/out]
  - id: b
    inputs: [{from: a, path: /out, at: /in}]
    command: ["sh", "-c", "sleep 3; mkdir -p /out && cat /in/x > /out/y && echo two >> /out/y"]
    outputs: [/out]
  - id: c
    inputs: [{from: b, path: /out, at: /in}]
    command: ["cat", "/in/y"]
`

// fusebox SIGKILLed while a workflow's middle step runs, and restarted on
// the same data: the run completes, and no step's container was created
// twice (counted from the engines' own events).
func TestWorkflowSurvivesAKilledServer(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	img := enginetest.TestImage(t)
	dir := t.TempDir()
	bin := buildFusebox(t, dir)
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nhosts:\n  - {name: %s, address: %q, network_mode: none}\n  - {name: %s, address: %q, network_mode: none}\npoll_interval: 200ms\n",
		addr, dir, engines.Engines[0].Name, engines.Engines[0].UnixHost(), engines.Engines[1].Name, engines.Engines[1].UnixHost())
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	creates := enginetest.WatchCreates(t, engines, map[string]string{job.LabelManaged: "true"}, func(l map[string]string) string {
		return l[workflow.LabelRun] + "/" + l[workflow.LabelStep]
	})
	logPath := filepath.Join(dir, "serve.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fusebox log:\n%s", readFile(logPath))
		}
	})
	p := startServe(t, bin, cfgPath, logPath)
	c := apiclient.New("http://"+addr, "")
	waitHealthy(t, p, c)
	ctx := context.Background()

	run, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: fmt.Sprintf(chain, img.Ref)})
	if err != nil {
		t.Fatal(err)
	}
	var r *api.WorkflowRun
	enginetest.Eventually(t, 60*time.Second, "step b's job runs", func() bool {
		var err error
		if r, err = c.WorkflowRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if b := stepOf(r, "b"); b.JobID != "" {
			if d, err := c.Get(ctx, b.JobID); err == nil && d.Job.State == job.StateRunning {
				return true // its container runs: the restart must adopt it
			}
		}
		if r.State.Terminal() {
			t.Fatalf("step b never ran: %+v", r)
		}
		return false
	}, func() string { return fmt.Sprintf("step b never ran: %+v", r) })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p = startServe(t, bin, cfgPath, logPath)
	waitHealthy(t, p, c)
	r = waitRun(t, c, run.ID)
	if r.State != wfrun.RunSucceeded {
		t.Fatalf("after the restart the run ended %s (%s): %+v", r.State, r.Reason, r.Steps)
	}
	for _, s := range r.Steps {
		if n := creates.Count(run.ID + "/" + s.ID); n != 1 || s.Try != 1 {
			t.Errorf("step %s: %d containers created, try %d; want one container, one try", s.ID, n, s.Try)
		}
	}
	logs, err := c.Logs(ctx, stepOf(r, "c").JobID)
	if err != nil || string(logs.Stdout) != "one\ntwo\n" {
		t.Errorf("c read %q (%v): the files did not pass through the restart", logs.Stdout, err)
	}
}

// A step whose host hangs while it runs fails over to another host through
// the dispatcher's attempts: the step uses no retry of its own.
func TestStepOnAHungHostFailsOverWithoutAStepRetry(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	img := enginetest.TestImage(t)
	url := startInProcess(t, engines, func(cfg *config.Config) {
		cfg.LostHost.After = 2 * time.Second
		cfg.LostHost.Policy = "reschedule"
	})
	c := apiclient.New(url, "")
	ctx := context.Background()
	def := fmt.Sprintf(`name: slow
defaults: {image: %s}
steps:
  - id: s
    max_retries: 3
    command: ["sh", "-c", "sleep 4; echo done"]
`, img.Ref)
	run, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	var host string
	var r *api.WorkflowRun
	enginetest.Eventually(t, 60*time.Second, "step s runs on a host", func() bool {
		var err error
		if r, err = c.WorkflowRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if s := stepOf(r, "s"); s.State == wfrun.StepRunning && s.Host != "" {
			host = s.Host
		}
		return host != ""
	}, func() string { return fmt.Sprintf("step s never ran: %+v", r) })
	hung := engines.Engines[0]
	if hung.Name != host {
		hung = engines.Engines[1]
	}
	if err := hung.Hang(); err != nil {
		t.Fatal(err)
	}
	defer hung.Resume()
	r = waitRun(t, c, run.ID)
	s := stepOf(r, "s")
	if r.State != wfrun.RunSucceeded || s.Try != 1 || s.Host == host {
		t.Fatalf("run %s (%s); step %+v: want succeeded on the other host in its first try", r.State, r.Reason, s)
	}
	d, err := c.Get(ctx, s.JobID)
	if err != nil || d.Job.Attempt != 2 || d.Job.State != job.StateSucceeded {
		t.Fatalf("the step's job: %+v %v; want it succeeded on its second attempt", d, err)
	}
}
