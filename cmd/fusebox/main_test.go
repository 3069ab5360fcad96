package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of run
// --wait, whose contents a test can wait for.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor blocks until the buffer contains s. It may be called from any
// goroutine (it reports with t.Errorf, and returns false on a timeout).
func (b *syncBuffer) waitFor(t *testing.T, s string) bool {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		has, changed := strings.Contains(b.buf.String(), s), b.changed
		b.mu.Unlock()
		if has {
			return true
		}
		select {
		case <-changed:
		case <-timeout:
			t.Errorf("output never contained %q:\n%s", s, b.String())
			return false
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the command line in-process against env's server.
func cli(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := cliTo(t, env, stdout, stderr, args...)
	return result{stdout.String(), stderr.String(), code}
}

func cliTo(t *testing.T, env map[string]string, stdout, stderr *syncBuffer, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return execute(ctx, args, func(k string) string { return env[k] }, stdout, stderr)
}

// testHosts are the hosts of the test API, made afresh for each test so
// that h2's next probe is 90 s from when the test starts, whenever that is.
func testHosts() []fleet.HostStatus {
	return []fleet.HostStatus{
		{Name: "h1", Capacity: 4, Running: 1, State: fleet.HostHealthy, Breaker: fleet.BreakerStatus{State: breaker.StateClosed}},
		{Name: "h2", Capacity: 2, State: fleet.HostUnavailable, LastError: "engine h2: container create: host: context deadline exceeded",
			Breaker: fleet.BreakerStatus{State: breaker.StateOpen, ConsecutiveFailures: 5, Trips: 2, NextProbeAt: time.Now().Add(90 * time.Second)}},
	}
}

func start(t *testing.T, cfg api.Config) (*apitest.Env, map[string]string) {
	t.Helper()
	e := apitest.Start(t, cfg, testHosts()...)
	return e, map[string]string{envServer: e.URL}
}

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, r result, code int, stderrHas ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
		}
	}
}

func TestRunSubmits(t *testing.T) {
	e, env := start(t, api.Config{})
	env["SECRET"] = "s3"
	r := cli(t, env, "run", "-d", "--env", "A=1", "-e", "SECRET", "--label", "team=data", "--host-label", "zone=eu",
		"--cpus", "1.5", "--memory", "512MiB", "--timeout", "10m", "--priority", "7", "--max-attempts", "3",
		"--retry-backoff", "2s", "--pull", "never", "--workdir", "/w", "--idempotency-key", "k1",
		"alpine:3", "sh", "-c", "echo hi --wait")
	wantCode(t, r, 0)
	if r.stdout != "j0001\n" {
		t.Fatalf("stdout %q, want the job id", r.stdout)
	}
	j, err := e.Svc.Get(context.Background(), "j0001")
	if err != nil {
		t.Fatal(err)
	}
	want := job.Spec{
		Image: "alpine:3", Command: []string{"sh", "-c", "echo hi --wait"},
		Env: map[string]string{"A": "1", "SECRET": "s3"}, Labels: map[string]string{"team": "data"},
		Constraints: map[string]string{"zone": "eu"}, CPUs: 1.5, MemoryBytes: 512 << 20,
		Timeout: job.Duration(10 * time.Minute), Priority: 7, MaxAttempts: 3, RetryBackoff: job.Duration(2 * time.Second),
		PullPolicy: "never", Workdir: "/w", IdempotencyKey: "k1",
	}
	got, _ := json.Marshal(j.Spec)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("spec\n got %s\nwant %s", got, wantJSON)
	}

	// The same key again: the same job, and a note.
	r = cli(t, env, "run", "-d", "--idempotency-key", "k1", "--env", "A=1", "-e", "SECRET", "--label", "team=data", "--host-label", "zone=eu",
		"--cpus", "1.5", "--memory", "512MiB", "--timeout", "10m", "--priority", "7", "--max-attempts", "3",
		"--retry-backoff", "2s", "--pull", "never", "--workdir", "/w", "alpine:3", "sh", "-c", "echo hi --wait")
	wantCode(t, r, 0, "already exists")
	if r.stdout != "j0001\n" {
		t.Errorf("resubmission printed %q", r.stdout)
	}

	// '--' ends fusebox's flags too.
	r = cli(t, env, "-o", "json", "run", "-d", "--", "alpine", "--version")
	wantCode(t, r, 0)
	var sr api.SubmitResponse
	if err := json.Unmarshal([]byte(r.stdout), &sr); err != nil || sr.Job.Spec.Image != "alpine" || strings.Join(sr.Job.Spec.Command, " ") != "--version" {
		t.Errorf("json output %q: %+v %v", r.stdout, sr.Job, err)
	}
}

func TestRunUsageErrors(t *testing.T) {
	_, env := start(t, api.Config{})
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"run"}, "needs an image"},
		{[]string{"run", "--memory", "lots", "alpine"}, "--memory 64m"},
		{[]string{"run", "-i", "alpine"}, "no stdin"},
		{[]string{"run", "-it", "alpine", "sh"}, "no stdin"},
		{[]string{"run", "-t", "alpine"}, "no terminal"},
		{[]string{"run", "-v", "/data:/data", "alpine"}, "host paths mean nothing"},
		{[]string{"run", "-p", "80:80", "alpine"}, "publishes no ports"},
		{[]string{"run", "-d", "--wait", "alpine"}, "contradict"},
		{[]string{"run", "--bogus", "alpine"}, "unknown flag"},
		{[]string{"run", "--env-file", "/no/such/file", "alpine"}, "--env-file"},
		{[]string{"run", "--cpus", "-1", "alpine"}, "--cpus"},
		{[]string{"run", "--env", "UNSET", "alpine"}, "UNSET is not set"},
		{[]string{"run", "--label", "novalue", "alpine"}, "--label novalue=VALUE"},
		{[]string{"run", "--pull", "sometimes", "alpine"}, "--pull missing"},
		{[]string{"run", "--timeout", "soon", "alpine"}, "Run 'fusebox run --help'"},
		{[]string{"run", "--docker-host", "h2", "alpine"}, "--host-label"},
		{[]string{"run", "-H", "h2", "alpine"}, "not an engine address"},
		{[]string{"run", "-H", "unix:///nope.sock", "--host", "h1", "alpine"}, "--host has no meaning"},
		{[]string{"run", "--docker-host", "unix:///nope.sock", "--priority", "3", "alpine"}, "--priority has no meaning"},
		{[]string{"-o", "xml", "jobs"}, "-o json"},
		{[]string{"jobs", "--state", "runing"}, "States: queued"},
		{[]string{"jobs", "--limit", "0"}, "--limit from 1"},
		{[]string{"job"}, "Usage: fusebox job ID"},
		{[]string{"logs", "a", "b"}, "Usage: fusebox logs"},
		{[]string{"hosts", "h1", "h2"}, "at most one host"},
		{[]string{"isolate"}, "Usage: fusebox isolate NAME"},
		{[]string{"bogus"}, "fusebox --help"},
		{[]string{"--server", "localhost:7070", "jobs"}, "--server http://127.0.0.1:7070"},
	} {
		r := cli(t, env, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.says) {
			t.Errorf("%v: exit %d, stderr:\n%s(want exit 125 and %q)", c.args, r.code, r.stderr, c.says)
		}
	}
}

func TestRunRefused(t *testing.T) {
	e, env := start(t, api.Config{})
	r := cli(t, env, "run", "-d", "--memory", "1KiB", "alpine")
	wantCode(t, r, exitCantRun, "memory_bytes", "6 MiB")

	e.Svc.MaxQueued = 1
	cli(t, env, "run", "-d", "alpine")
	r = cli(t, env, "run", "--wait", "alpine")
	wantCode(t, r, exitCantRun, "queue is full", "retry in 5s")
}

// TestRunWait follows a job through a failover to its end and checks the
// progress, the output and the exit code.
func TestRunWait(t *testing.T) {
	e, env := start(t, api.Config{})
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	e.Svc.OnSubmit = func(j *job.Job) {
		s := e.Svc
		s.Move(j.ID, job.StateQueued, "no host available", "")
		if !stderr.waitFor(t, "queued (no host available)") {
			return
		}
		s.Move(j.ID, job.StateLaunching, "placed", "h2")
		s.Move(j.ID, job.StateQueued, "backoff after host fault on h2", "")
		s.Move(j.ID, job.StateLaunching, "placed", "h1")
		s.Move(j.ID, job.StateRunning, "started", "h1")
		if !stderr.waitFor(t, "running on h1") {
			return
		}
		s.Output(j.ID, "stdout", "result=42\n")
		s.Output(j.ID, "stderr", "warning: slow\n")
		stdout.waitFor(t, "result=42")
		s.Finish(j.ID, job.StateFailed, ptr(3), "exit code 3")
	}
	code := cliTo(t, env, stdout, stderr, "run", "--wait", "alpine", "sh", "-c", "exit 3")
	if code != 3 {
		t.Fatalf("exit code %d, want the container's 3\nstderr:\n%s", code, stderr.String())
	}
	if stdout.String() != "result=42\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	for _, want := range []string{
		"j0001 queued (submitted)",
		"j0001 queued (no host available)",
		"j0001 launching on h2 (attempt 1)",
		"j0001 queued (backoff after host fault on h2)",
		"j0001 launching on h1 (attempt 2)",
		"j0001 running on h1",
		"warning: slow\n",
		"j0001 failed (exit code 3)",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
}

func TestRunWaitExitCodes(t *testing.T) {
	for _, c := range []struct {
		state job.State
		code  *int
		want  int
	}{
		{job.StateSucceeded, ptr(0), 0},
		{job.StateFailed, ptr(42), 42},
		{job.StateFailed, nil, 125},
		{job.StateTimedOut, ptr(137), 124},
		{job.StateCancelled, nil, 130},
		{job.StateLost, nil, 125},
	} {
		t.Run(string(c.state), func(t *testing.T) {
			e, env := start(t, api.Config{})
			// The whole life happens at once: the output is printed from
			// the collected logs, exactly once.
			e.Svc.OnSubmit = func(j *job.Job) {
				e.Svc.Run(j.ID, "h1", "out\n", "", c.state, c.code)
			}
			r := cli(t, env, "run", "--wait", "alpine")
			wantCode(t, r, c.want, string(c.state))
			if r.stdout != "out\n" {
				t.Errorf("stdout %q, want the output once", r.stdout)
			}
		})
	}
}

func TestRunWaitJSON(t *testing.T) {
	e, env := start(t, api.Config{})
	e.Svc.OnSubmit = func(j *job.Job) { e.Svc.Run(j.ID, "h1", "out\n", "", job.StateFailed, ptr(5)) }
	r := cli(t, env, "-o", "json", "run", "--wait", "alpine")
	wantCode(t, r, 5)
	var j job.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.State != job.StateFailed {
		t.Errorf("stdout is not the final job: %q %v", r.stdout, err)
	}
}

func TestJobs(t *testing.T) {
	e, env := start(t, api.Config{})
	for range 3 {
		cli(t, env, "run", "-d", "alpine")
	}
	e.Svc.Run("j0001", "h1", "", "", job.StateSucceeded, ptr(0))
	e.Svc.Move("j0002", job.StateLaunching, "placed", "h2")

	// As docker ps: only the jobs that have not ended, unless -a.
	r := cli(t, env, "ps")
	wantCode(t, r, 0)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("ps table:\n%s", r.stdout)
	}
	r = cli(t, env, "jobs", "-a")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "REASON") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for _, f := range []string{"ID", "NAME", "STATE", "HOST", "ATTEMPT", "AGE", "IMAGE", "COMMAND", "REASON"} {
		if !strings.Contains(lines[0], f) {
			t.Errorf("header lacks %s: %q", f, lines[0])
		}
	}
	if !strings.HasPrefix(lines[1], "j0003") || !strings.Contains(lines[3], "succeeded") || !strings.Contains(lines[2], "h2") {
		t.Errorf("rows:\n%s", r.stdout)
	}

	r = cli(t, env, "jobs", "--state", "succeeded,launching", "-o", "json")
	wantCode(t, r, 0)
	var jobs []job.Job
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil || len(jobs) != 2 {
		t.Fatalf("json: %v %s", err, r.stdout)
	}
	r = cli(t, env, "jobs", "--host", "h9", "-o", "json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty json list: %q", r.stdout)
	}
	r = cli(t, env, "jobs", "-a", "--limit", "2")
	wantCode(t, r, 0, "--before j0002")
	r = cli(t, env, "jobs", "-aq")
	if r.stdout != "j0003\nj0002\nj0001\n" {
		t.Errorf("jobs -aq: %q", r.stdout)
	}
	r = cli(t, env, "jobs", "-q", "--filter", "state=launching")
	if r.stdout != "j0002\n" {
		t.Errorf("jobs -q --filter state=launching: %q", r.stdout)
	}
	r = cli(t, env, "jobs", "-a", "-o", "yaml")
	if !strings.Contains(r.stdout, "- id: j0003") {
		t.Errorf("jobs -o yaml:\n%s", r.stdout)
	}
	wantCode(t, cli(t, env, "jobs", "--filter", "colour=red"), exitUsage, "unknown key")
}

func TestJob(t *testing.T) {
	e, env := start(t, api.Config{})
	cli(t, env, "run", "-d", "alpine", "echo", "hi")
	e.Svc.Run("j0001", "h1", "hi\n", "", job.StateFailed, ptr(2))

	r := cli(t, env, "job", "j0001")
	wantCode(t, r, 0)
	for _, want := range []string{"ID:", "j0001", "failed (exit code 2)", "echo hi", "TRANSITIONS", "ATTEMPTS", "launching", "c-j0001-1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("details lack %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, env, "job", "j0001", "-o", "json")
	var d api.JobDetail
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Transitions) != 4 || len(d.Attempts) != 1 {
		t.Errorf("json: %v %+v", err, d)
	}
	wantCode(t, cli(t, env, "job", "j0404"), exitError, `no job with id, name or id prefix "j0404"`, "fusebox jobs")
}

func TestLogs(t *testing.T) {
	e, env := start(t, api.Config{})
	cli(t, env, "run", "-d", "alpine")
	e.Svc.Move("j0001", job.StateLaunching, "placed", "h1")
	e.Svc.Move("j0001", job.StateRunning, "started", "h1")

	wantCode(t, cli(t, env, "logs", "j0001"), exitUsage, "fusebox logs -f j0001")

	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan int)
	go func() { done <- cliTo(t, env, stdout, stderr, "logs", "-f", "j0001") }()
	e.Svc.Output("j0001", "stdout", "line 1\n")
	stdout.waitFor(t, "line 1\n")
	e.Svc.Output("j0001", "stderr", "oops\n")
	e.Svc.Finish("j0001", job.StateSucceeded, ptr(0), "exit code 0")
	if code := <-done; code != 0 || stdout.String() != "line 1\n" || stderr.String() != "oops\n" {
		t.Errorf("logs -f: exit %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}

	r := cli(t, env, "logs", "j0001")
	wantCode(t, r, 0)
	if r.stdout != "line 1\n" || r.stderr != "oops\n" {
		t.Errorf("logs: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = cli(t, env, "logs", "-o", "json", "j0001")
	var l api.LogsResponse
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l.Stdout != "line 1\n" || l.Stderr != "oops\n" {
		t.Errorf("logs -o json: %v %q", err, r.stdout)
	}
	r = cli(t, env, "logs", "-f", "-o", "json", "j0001")
	if n := strings.Count(r.stdout, "\n"); n != 3 || !strings.Contains(r.stdout, `"end":true`) {
		t.Errorf("logs -f -o json: %q", r.stdout)
	}
	wantCode(t, cli(t, env, "logs", "nope"), exitError, "fusebox jobs")
}

func TestCancel(t *testing.T) {
	e, env := start(t, api.Config{})
	cli(t, env, "run", "-d", "alpine")
	cli(t, env, "run", "-d", "alpine")
	e.Svc.Move("j0002", job.StateLaunching, "placed", "h1")

	r := cli(t, env, "cancel", "j0001")
	wantCode(t, r, 0)
	if r.stdout != "job j0001 cancelled\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	r = cli(t, env, "cancel", "j0002")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "cancel requested") || !strings.Contains(r.stdout, "h1") {
		t.Errorf("stdout %q", r.stdout)
	}
	wantCode(t, cli(t, env, "cancel", "j0001"), exitError, "already finished", "fusebox job ID")
	r = cli(t, env, "jobs")
	if !strings.Contains(r.stdout, "launching (cancelling)") {
		t.Errorf("jobs does not show the pending cancel:\n%s", r.stdout)
	}
}

func TestHosts(t *testing.T) {
	e, env := start(t, api.Config{})
	r := cli(t, env, "hosts")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, f := range []string{"NAME", "STATE", "BREAKER", "RUNNING/CAPACITY", "CALLS/LIMIT", "FAILURES", "TRIPS", "NEXT PROBE", "LABELS", "REASON"} {
		if !strings.Contains(lines[0], f) {
			t.Errorf("header lacks %s: %q", f, lines[0])
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[1], "1/4") || !strings.Contains(lines[2], "open") ||
		!strings.Contains(lines[2], "in 1m") || !strings.Contains(lines[2], "context deadline") {
		t.Errorf("table:\n%s", r.stdout)
	}
	r = cli(t, env, "hosts", "-o", "json")
	var hs []api.Host
	if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil || len(hs) != 2 || hs[1].Breaker.State != breaker.StateOpen {
		t.Errorf("json: %v %s", err, r.stdout)
	}

	r = cli(t, env, "hosts", "-o", "wide")
	if !strings.Contains(r.stdout, "ADDRESS") || !strings.Contains(r.stdout, "WEIGHT") {
		t.Errorf("wide table:\n%s", r.stdout)
	}
	r = cli(t, env, "hosts", "h2")
	wantCode(t, r, 0)
	for _, want := range []string{"Name:", "h2", "Breaker:", "open, 5 consecutive failures, 2 trips", "Calls:", "Operator:", "context deadline"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("hosts h2 lacks %q:\n%s", want, r.stdout)
		}
	}
	wantCode(t, cli(t, env, "hosts", "h9"), exitError, "fusebox hosts")

	r = cli(t, env, "hosts", "isolate", "h1", "--reason", "disk failing")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "host h1 isolated") || !strings.Contains(r.stdout, "fusebox release h1") {
		t.Errorf("isolate: %q", r.stdout)
	}
	r = cli(t, env, "hosts")
	if !strings.Contains(r.stdout, "isolated by local: disk failing (0s ago)") {
		t.Errorf("hosts does not say who isolated h1 and why:\n%s", r.stdout)
	}
	wantCode(t, cli(t, env, "drain", "h1", "--reason", strings.Repeat("x", api.MaxReasonBytes+1)), exitUsage, "--reason", "fewer words")
	if h := e.Fleet.Hosts()[0]; h.Operator == nil || h.Operator.Reason != "disk failing" || h.Operator.By != api.ActorLocal {
		t.Errorf("operator of h1: %+v", h.Operator)
	}
	for _, act := range []string{"release", "drain", "reset", "isolate"} {
		wantCode(t, cli(t, env, act, "h2"), 0)
	}
	r = cli(t, env, "-o", "json", "release", "h2")
	var h api.Host
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h.State != fleet.HostHealthy {
		t.Errorf("release -o json: %v %s", err, r.stdout)
	}
	wantCode(t, cli(t, env, "drain", "h9"), exitError, "host not found", "fusebox hosts")

	r = cli(t, env, "hosts", "transitions")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "forced-open") {
		t.Errorf("transitions:\n%s", r.stdout)
	}
}

func TestQueue(t *testing.T) {
	e, env := start(t, api.Config{})
	e.Svc.MaxQueued = 4
	cli(t, env, "run", "-d", "alpine")
	r := cli(t, env, "queue")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "queued 1 of 4 (25%), running 0") {
		t.Errorf("queue:\n%s", r.stdout)
	}
}

func TestAuth(t *testing.T) {
	_, env := start(t, api.Config{Tokens: []api.Token{{Value: "reader", Role: api.RoleRead}, {Value: "boss", Role: api.RoleAdmin}}})
	wantCode(t, cli(t, env, "hosts"), exitError, "authentication required", "--token or $FUSEBOX_TOKEN")
	wantCode(t, cli(t, env, "--token", "reader", "hosts"), 0)
	wantCode(t, cli(t, env, "--token", "reader", "isolate", "h1"), exitError, "needs role admin", "role")
	env[envToken] = "boss"
	wantCode(t, cli(t, env, "isolate", "h1"), 0)
	// --help never shows the token.
	if r := cli(t, env, "--help"); strings.Contains(r.stdout, "boss") {
		t.Errorf("--help shows the token:\n%s", r.stdout)
	}
}

func TestUnreachableServer(t *testing.T) {
	r := cli(t, map[string]string{envServer: "http://127.0.0.1:1"}, "jobs")
	wantCode(t, r, exitError, "cannot reach fusebox at http://127.0.0.1:1", "--server")
	r = cli(t, map[string]string{envServer: "http://127.0.0.1:1"}, "run", "--wait", "alpine")
	wantCode(t, r, exitCantRun, "cannot reach")
}

func TestVersionAndConfigCheck(t *testing.T) {
	r := cli(t, nil, "version")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "fusebox ") || !strings.Contains(r.stdout, " go1.") {
		t.Errorf("version: %q", r.stdout)
	}
	if flag := cli(t, nil, "--version"); flag.stdout != r.stdout {
		t.Errorf("--version %q, version %q", flag.stdout, r.stdout)
	}
	r = cli(t, nil, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || v.Go == "" {
		t.Errorf("version json: %q %v", r.stdout, err)
	}
	wantCode(t, cli(t, nil, "config", "check", "/nonexistent/fusebox.yaml"), exitError, "/nonexistent/fusebox.yaml")
	wantCode(t, cli(t, nil, "config", "check"), exitUsage, "Usage: fusebox config check FILE")
}

// config check applies serve's rules too, and warns about FUSEBOX_*
// variables that match no setting; config show prints the configuration
// in force with the environment applied and secrets redacted.
func TestConfigCheckAndShow(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notDir := write("file", "")
	t.Setenv("FUSEBOX_POLL_INTERVALL", "1s")
	r := cli(t, nil, "config", "check", write("open.yaml", "listen: 0.0.0.0:7070\n"))
	wantCode(t, r, exitError, "beyond loopback without auth tokens", "$FUSEBOX_POLL_INTERVALL matches no setting", "FUSEBOX_POLL_INTERVAL?")
	r = cli(t, nil, "config", "check", write("datadir.yaml", "data_dir: "+notDir+"/data\n"))
	wantCode(t, r, exitError, "data_dir", "is not a directory")
	r = cli(t, nil, "config", "check", write("net.yaml", "hosts:\n  - {name: e1, address: \"unix:///x.sock\", network_mode: \"container:abc\"}\n"))
	wantCode(t, r, exitError, "hosts[0].network_mode")
	wantCode(t, cli(t, nil, "config", "check", write("ok.yaml", "data_dir: "+dir+"/data\n")), 0)

	t.Setenv("FUSEBOX_POLL_INTERVAL", "3s")
	cfg := write("tokens.yaml", "auth:\n  tokens:\n    - {name: ci, token: s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t, role: admin}\n")
	r = cli(t, nil, "config", "show", cfg)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "poll_interval: 3s") || strings.Contains(r.stdout, "s3cr3t") || !strings.Contains(r.stdout, "<redacted>") {
		t.Errorf("config show:\n%s", r.stdout)
	}
	r = cli(t, nil, "-o", "json", "config", "show", cfg)
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown["poll_interval"] != "3s" || strings.Contains(r.stdout, "s3cr3t") {
		t.Errorf("config show -o json: %v\n%s", err, r.stdout)
	}
}
