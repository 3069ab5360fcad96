package server_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/store"
	"fusebox/internal/workflow/wfrun"
)

// diamond is a -> (b, c) -> d; b and c sleep a second so that, on two hosts
// of capacity 1, they provably run at the same time.
const diamond = `name: diamond-test
params:
  - {name: lines, type: int, default: 20}
  - {name: cprefix, default: c-}
defaults:
  image: %s
steps:
  - id: a
    command: ["sh", "-c", "mkdir -p /out && seq 1 ${params.lines} > /out/a.txt"]
    outputs: [/out]
  - id: b
    inputs: [{from: a, path: /out, at: /in}]
    command: ["sh", "-c", "sleep 1; mkdir -p /out && sed 's/^/b-/' /in/a.txt > /out/b.txt"]
    outputs: [/out]
  - id: c
    inputs: [{from: a, path: /out, at: /in}]
    command: ["sh", "-c", "sleep 1; mkdir -p /out && sort -rn /in/a.txt | sed 's/^/${params.cprefix}/' > /out/c.txt"]
    outputs: [/out]
  - id: d
    inputs: [{from: b, path: /out, at: /in/b}, {from: c, path: /out, at: /in/c}]
    command: ["sh", "-c", "mkdir -p /out && cat /in/b/b.txt /in/c/c.txt > /out/combined.txt && cd /out && busybox sha256sum combined.txt > combined.txt.sha256"]
    outputs: [/out]
`

// waitRun follows a run on the event stream until it ends.
func waitRun(t *testing.T, c *apiclient.Client, id string) *api.WorkflowRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errEnded := errors.New("ended")
	var last *api.WorkflowRun
	check := func() error {
		r, err := c.WorkflowRun(ctx, id)
		if err != nil {
			return err
		}
		last = r
		if r.State.Terminal() {
			return errEnded
		}
		return nil
	}
	if err := check(); errors.Is(err, errEnded) {
		return last
	}
	err := c.Events(ctx, apiclient.EventsParams{Types: []string{"workflow.run", "workflow.step"}, Since: "0", Follow: true},
		func(event.Event) error { return check() })
	if !errors.Is(err, errEnded) {
		t.Fatalf("run %s did not end: %v (last: %+v)", id, err, last)
	}
	return last
}

func stepOf(r *api.WorkflowRun, id string) api.WorkflowStep {
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	return api.WorkflowStep{}
}

// A diamond DAG across two hosts: b and c run at the same time on
// different hosts, files pass from a to b and c and from both to d, and
// d's checksum is right. Run again unchanged: nothing runs, same digests.
// Change what only c reads: c and d run again, each saying why.
func TestDiamondWorkflowAcrossHosts(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	img := enginetest.TestImage(t)
	url := startInProcess(t, engines, func(cfg *config.Config) {
		for i := range cfg.Hosts {
			cfg.Hosts[i].Capacity = 1
		}
	})
	c := apiclient.New(url, "")
	ctx := context.Background()
	src := fmt.Sprintf(diamond, img.Ref)

	start := func(params map[string]string) *api.WorkflowRun {
		t.Helper()
		r, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: src, TaskID: "diamond-1", Params: params})
		if err != nil {
			t.Fatal(err)
		}
		r = waitRun(t, c, r.ID)
		if r.State != wfrun.RunSucceeded {
			t.Fatalf("run %s: %s (%s): %+v", r.ID, r.State, r.Reason, r.Steps)
		}
		return r
	}
	first := start(nil)
	b, cc := stepOf(first, "b"), stepOf(first, "c")
	if b.Host == cc.Host || b.Host == "" {
		t.Errorf("b ran on %q and c on %q: want two hosts", b.Host, cc.Host)
	}
	if !b.StartedAt.Before(cc.FinishedAt) || !cc.StartedAt.Before(b.FinishedAt) {
		t.Errorf("b ran %v..%v and c %v..%v: not at the same time", b.StartedAt, b.FinishedAt, cc.StartedAt, cc.FinishedAt)
	}
	files := download(t, c, first.ID, "d", "/out")
	sum := sha256.Sum256([]byte(files["combined.txt"]))
	if want := hex.EncodeToString(sum[:]) + "  combined.txt\n"; files["combined.txt.sha256"] != want {
		t.Fatalf("d's checksum %q, want %q", files["combined.txt.sha256"], want)
	}
	if !strings.HasPrefix(files["combined.txt"], "b-1\nb-2\n") || !strings.Contains(files["combined.txt"], "b-20\nc-20\nc-19\n") {
		t.Fatalf("d's combined.txt:\n%s", files["combined.txt"])
	}

	jobsBefore := countJobs(t, c)
	again := start(nil)
	if n := countJobs(t, c); n != jobsBefore {
		t.Errorf("the unchanged re-run ran %d jobs, want none", n-jobsBefore)
	}
	for _, s := range again.Steps {
		if s.State != wfrun.StepCached || !s.Cached {
			t.Errorf("re-run step %s: %s (cached %v), want cached", s.ID, s.State, s.Cached)
		}
		if got, want := digests(s), digests(stepOf(first, s.ID)); got != want {
			t.Errorf("re-run step %s outputs %s, want %s", s.ID, got, want)
		}
	}

	changed := start(map[string]string{"cprefix": "C-"})
	for id, want := range map[string]wfrun.StepState{"a": wfrun.StepCached, "b": wfrun.StepCached, "c": wfrun.StepSucceeded, "d": wfrun.StepSucceeded} {
		if s := stepOf(changed, id); s.State != want {
			t.Errorf("after changing c's prefix, step %s: %s (%s), want %s", id, s.State, s.WhyRan, want)
		}
	}
	if why := stepOf(changed, "c").WhyRan; !strings.Contains(why, "command") {
		t.Errorf("c says it ran because %q, want its command changed", why)
	}
	if why := stepOf(changed, "d").WhyRan; !strings.Contains(why, "input") {
		t.Errorf("d says it ran because %q, want an input changed", why)
	}
}

// download fetches a step's output and returns its files by name.
func download(t *testing.T, c *apiclient.Client, run, step, path string) map[string]string {
	t.Helper()
	rc, err := c.WorkflowArtifact(context.Background(), run, step, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func countJobs(t *testing.T, c *apiclient.Client) int {
	t.Helper()
	js, err := c.List(context.Background(), store.JobListParams{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(js)
}

func digests(s api.WorkflowStep) string {
	var ds []string
	for _, o := range s.Outputs {
		ds = append(ds, o.Path+"="+o.Digest)
	}
	return strings.Join(ds, ",")
}

// A workflow whose step always fails trips its own breaker after
// failure_threshold runs: the next start is refused at once with 503 and
// Retry-After, the operators' alert fires, and the hosts' breakers are
// untouched.
func TestFailingWorkflowIsRefusedFast(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	url := startInProcess(t, engines, func(cfg *config.Config) { cfg.Alerts.EvalInterval = 100 * time.Millisecond })
	c := apiclient.New(url, "")
	ctx := context.Background()
	src := fmt.Sprintf(`name: always-fails
circuit_breaker: {failure_threshold: 2, reset_timeout: 1m}
steps:
  - {id: s, image: %s, command: ["sh", "-c", "exit 3"]}
`, img.Ref)
	for i := range 2 {
		r, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: src})
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if r = waitRun(t, c, r.ID); r.State != wfrun.RunFailed || r.Cause != wfrun.CauseOwn {
			t.Fatalf("run %d: %s (%s, cause %s)", i+1, r.State, r.Reason, r.Cause)
		}
	}
	start := time.Now()
	_, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: src})
	took := time.Since(start)
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter <= 0 || !strings.Contains(ae.Message, "always-fails") {
		t.Fatalf("third start: %v; want 503 with Retry-After naming the workflow", err)
	}
	t.Logf("refused in %v, retry after %v: %s", took, ae.RetryAfter, ae.Message)
	if _, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: src, UseCircuitBreaker: new(bool)}); err != nil {
		t.Errorf("a run without the breaker was refused: %v", err)
	}
	waitAlertFiring(t, c, "FuseboxWorkflowBreakerOpen", "workflow", "always-fails")
	hs, err := c.Hosts(ctx)
	if err != nil || hs[0].Breaker.State != breaker.StateClosed || hs[0].Breaker.ConsecutiveFailures != 0 {
		t.Fatalf("the host's breaker counted the workflow's failures: %+v %v", hs, err)
	}
}

// waitAlertFiring polls GET /v1/alerts until alert name fires with label
// key=value.
func waitAlertFiring(t *testing.T, c *apiclient.Client, name, key, value string) {
	t.Helper()
	var firing []api.FiringAlert
	enginetest.Eventually(t, 30*time.Second, fmt.Sprintf("alert %s{%s=%s} fires", name, key, value), func() bool {
		st, err := c.Alerts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		firing = st.Firing
		for _, f := range firing {
			if f.Name == name && f.Labels[key] == value {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("firing: %+v", firing) })
}

// `fusebox workflow run TEMPLATE` shows each step's progress as it happens
// and ends with the step table, exit 0; the second run is all cached; a
// definition with problems exits 125 listing them with their lines.
func TestWorkflowRunCommand(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	enginetest.TestImage(t) // the template's default image
	url := startInProcess(t, engines, nil)
	bin := buildFusebox(t, t.TempDir())
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "FUSEBOX_SERVER="+url)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	code, out, errs := run("workflow", "run", "diamond", "--param", "lines=5", "--task-id", "cli-1")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(errs, " d: running") || !strings.Contains(errs, " a: succeeded") {
		t.Fatalf("workflow run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, out, _ = run("workflow", "run", "diamond", "--param", "lines=5")
	if code != 0 || strings.Count(out, "cached") != 4 {
		t.Fatalf("second run: exit %d, want 4 steps cached:\n%s", code, out)
	}
	code, out, _ = run("workflow", "runs", "--task-id", "cli-1")
	if code != 0 || strings.Count(out, "diamond") != 1 {
		t.Fatalf("workflow runs --task-id: exit %d:\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nsteps:\n  - id: a\n    image: x\n    depends_on: [nope]\n"), 0o644)
	code, _, errs = run("workflow", "run", bad)
	if code != 125 || !strings.Contains(errs, "nope") || !strings.Contains(errs, ":5:") {
		t.Fatalf("a definition with a problem: exit %d:\n%s", code, errs)
	}
}

// Outputs are bounded per artifact and per run: a run whose steps' outputs
// together pass workflows.max_run_bytes fails, its own fault.
func TestRunOutputsAreBounded(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	url := startInProcess(t, engines, func(cfg *config.Config) {
		cfg.Workflows.MaxArtifactBytes = 64 << 10
		cfg.Workflows.MaxRunBytes = 96 << 10
	})
	c := apiclient.New(url, "")
	src := fmt.Sprintf(`name: big-outputs
defaults: {image: %s, cache: false}
steps:
  - {id: a, command: ["sh", "-c", "mkdir -p /out && head -c 50000 /dev/zero > /out/a"], outputs: [/out]}
  - {id: b, depends_on: [a], command: ["sh", "-c", "mkdir -p /out && head -c 50000 /dev/zero > /out/b"], outputs: [/out]}
`, img.Ref)
	r, err := c.StartWorkflow(context.Background(), api.WorkflowRunRequest{Definition: src})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRun(t, c, r.ID)
	if r.State != wfrun.RunFailed || r.Cause != wfrun.CauseOwn || !strings.Contains(r.Reason, "max_run_bytes") {
		t.Fatalf("run %s (cause %s): %s", r.State, r.Cause, r.Reason)
	}
}
