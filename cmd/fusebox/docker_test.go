package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"fusebox/internal/api"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// dockerEnv is a real `fusebox serve` on private engines and the built
// fusebox command that talks to it.
type dockerEnv struct {
	t       *testing.T
	bin     string
	server  string
	engines *enginetest.Fleet
}

// startDockerEnv builds the fusebox command, starts `fusebox serve` with
// it on two private engines (network_mode none), and waits for it.
func startDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	engines := enginetest.ForTest(t, 2)
	enginetest.TestImage(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "fusebox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var hosts strings.Builder
	for _, e := range engines.Engines {
		fmt.Fprintf(&hosts, "  - {name: %s, address: %q, capacity: 4, network_mode: none}\n", e.Name, e.UnixHost())
	}
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nhosts:\n%shealth_check: {interval: 500ms, timeout: 500ms}\npoll_interval: 200ms\n",
		addr, filepath.Join(dir, "data"), hosts.String())
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if t.Failed() {
			t.Logf("fusebox serve log:\n%s", log.String())
		}
	})
	server := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(server + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("fusebox serve exited: %v\n%s", cmd.ProcessState, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fusebox serve did not answer /healthz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &dockerEnv{t: t, bin: bin, server: server, engines: engines}
}

// fusebox runs the built command against the server, in dir (the test's
// temporary directory when ""), and returns its output and exit code.
func (e *dockerEnv) fusebox(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), envServer+"="+e.server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("fusebox %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// detail is `fusebox job REF -o json`.
func (e *dockerEnv) detail(ref string) api.JobDetail {
	e.t.Helper()
	r := e.fusebox("-o", "json", "job", ref)
	var d api.JobDetail
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil {
		e.t.Fatalf("fusebox job %s: exit %d\n%s%s", ref, r.code, r.stdout, r.stderr)
	}
	return d
}

// waitRunning polls the job until it runs (or fails the test at a
// deadline).
func (e *dockerEnv) waitRunning(ref string) *job.Job {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := e.detail(ref).Job
		switch {
		case j.State == job.StateRunning:
			return j
		case j.State.Terminal():
			e.t.Fatalf("job %s ended %s (%s) before it was seen running", ref, j.State, j.Reason)
		case time.Now().After(deadline):
			e.t.Fatalf("job %s still %s after 30s", ref, j.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var idRE = regexp.MustCompile(`^[0-9a-z]{16}\n$`)

// TestDockerConventions runs the built fusebox command as a docker user
// types it, against a real `fusebox serve` on two private engines: each
// invocation gives docker's result and exit code.
func TestDockerConventions(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker engines")
	}
	e := startDockerEnv(t)
	img := enginetest.DefaultImageRef
	envFile := filepath.Join(t.TempDir(), "job.env")
	if err := os.WriteFile(envFile, []byte("# a comment\nGREETING=hello from a file\n\nEMPTY=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := e.engines.Engines[1].Name

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // exact, unless it is a regexp
		stdRE  *regexp.Regexp
		stderr string // contained
		check  func(t *testing.T, r result)
	}{
		{name: "run waits and streams", args: []string{"run", img, "echo", "hello"}, code: 0, stdout: "hello\n"},
		{name: "the container's exit code", args: []string{"run", "-q", img, "sh", "-c", "echo out; exit 3"}, code: 3, stdout: "out\n"},
		{name: "--wait still accepted", args: []string{"run", "--wait", "--rm", img, "true"}, code: 0},
		{name: "missing image", args: []string{"run", "--pull", "never", "fusebox/absent:1", "true"}, code: 125, stderr: "fusebox/absent:1"},
		{name: "missing command", args: []string{"run", img, "/no/such/command"}, code: 127, stderr: "failed"},
		{name: "not executable", args: []string{"run", img, "/tmp"}, code: 126, stderr: "failed"},
		{name: "bad flag", args: []string{"run", "--no-such-flag", img, "true"}, code: 125, stderr: "unknown flag"},
		{name: "-i refused", args: []string{"run", "-i", img, "cat"}, code: 125, stderr: "no stdin"},
		{name: "-t refused", args: []string{"run", "-it", img, "sh"}, code: 125, stderr: "no stdin"},
		{name: "-v refused", args: []string{"run", "-v", "/etc:/etc", img, "true"}, code: 125, stderr: "host paths"},
		{name: "-p refused", args: []string{"run", "-p", "8080:80", img, "true"}, code: 125, stderr: "publishes no ports"},
		{name: "bad image reference", args: []string{"run", "Not/Valid", "true"}, code: 125, stderr: "image"},
		{name: "timeout", args: []string{"run", "--timeout", "1s", img, "sh", "-c", `trap "exit 143" TERM; sleep 60 & wait`}, code: 124},
		{name: "-d prints the id", args: []string{"run", "-d", img, "true"}, code: 0, stdRE: idRE},
		{name: "--entrypoint", args: []string{"run", "-q", "--entrypoint", "/bin/echo", img, "from", "entrypoint"}, code: 0, stdout: "from entrypoint\n"},
		{name: "-u", args: []string{"run", "-q", "-u", "1000:1001", img, "sh", "-c", "echo $(id -u):$(id -g)"}, code: 0, stdout: "1000:1001\n"},
		{name: "--env-file and -e", args: []string{"run", "-q", "--env-file", envFile, "-e", "EMPTY=set", img, "sh", "-c", `echo "$GREETING/$EMPTY"`},
			code: 0, stdout: "hello from a file/set\n"},
		{name: "--network none is within the host's", args: []string{"run", "-q", "--network", "none", img, "true"}, code: 0},
		{name: "--network beyond the host's", args: []string{"run", "--network", "bridge", img, "true"}, code: 125, stderr: "network_mode"},
		{name: "--host pins a fleet host", args: []string{"run", "-d", "--name", "pinned", "--host", e2, img, "true"}, code: 0, stdRE: idRE,
			check: func(t *testing.T, r result) {
				d := e.detail("pinned")
				for i := 0; d.Job.Host == ""; i++ { // launched and placed: its host is known
					if i > 300 {
						t.Fatalf("job pinned was never placed: %+v", d.Job)
					}
					time.Sleep(100 * time.Millisecond)
					d = e.detail("pinned")
				}
				if d.Job.Host != e2 {
					t.Errorf("--host %s ran on %s", e2, d.Job.Host)
				}
			}},
		{name: "--host unknown", args: []string{"run", "--host", "nope", img, "true"}, code: 125, stderr: "constraints"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.fusebox(c.args...)
			if r.code != c.code {
				t.Fatalf("fusebox %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), r.code, c.code, r.stdout, r.stderr)
			}
			switch {
			case c.stdRE != nil && !c.stdRE.MatchString(r.stdout):
				t.Errorf("stdout %q does not match %s", r.stdout, c.stdRE)
			case c.stdRE == nil && c.stdout != "" && r.stdout != c.stdout:
				t.Errorf("stdout %q, want %q\nstderr:\n%s", r.stdout, c.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr does not say %q:\n%s", c.stderr, r.stderr)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}

	// --memory 64m is 64 MiB, as docker reads it, and the container has it.
	t.Run("--memory 64m applied", func(t *testing.T) {
		r := e.fusebox("run", "-d", "--name", "mem", "-m", "64m", "--cpus", "0.5", img, "sleep", "60")
		if r.code != 0 {
			t.Fatalf("run -d -m 64m: exit %d\n%s", r.code, r.stderr)
		}
		j := e.waitRunning("mem")
		if j.Spec.MemoryBytes != 64<<20 {
			t.Errorf("memory_bytes %d, want %d", j.Spec.MemoryBytes, 64<<20)
		}
		eng := e.engines.Engines[0]
		if e.engines.Engines[1].Name == j.Host {
			eng = e.engines.Engines[1]
		}
		cl, err := eng.Client()
		if err != nil {
			t.Fatal(err)
		}
		res, err := cl.ContainerInspect(context.Background(), j.ContainerID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if hc := res.Container.HostConfig; hc == nil || hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 {
			t.Errorf("HostConfig memory %d nano cpus %d, want %d and %d", hc.Memory, hc.NanoCPUs, 64<<20, int64(5e8))
		}
		// The name is held while the job runs.
		if r := e.fusebox("run", "-d", "--name", "mem", img, "true"); r.code != 125 || !strings.Contains(r.stderr, "in use") {
			t.Errorf("a second job named mem: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.fusebox("cancel", "mem"); r.code != 0 {
			t.Errorf("cancel mem: exit %d\n%s", r.code, r.stderr)
		}
	})

	// Names and unique id prefixes work wherever an id does.
	t.Run("names and prefixes", func(t *testing.T) {
		r := e.fusebox("run", "-q", "--name", "counter", "--label", "team=data", img, "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done")
		if r.code != 0 {
			t.Fatalf("run --name counter: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.fusebox("logs", "counter"); r.stdout != "line 1\nline 2\nline 3\nline 4\nline 5\n" {
			t.Errorf("logs counter: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
		}
		if r := e.fusebox("logs", "--tail", "2", "counter"); r.stdout != "line 4\nline 5\n" {
			t.Errorf("logs --tail 2: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
		}
		if r := e.fusebox("logs", "-n", "1", "counter"); r.stdout != "line 5\n" {
			t.Errorf("logs -n 1: %q", r.stdout)
		}
		// -t stamps each line as docker logs -t does; --since keeps the
		// lines logged since then (all of them an hour back, none ahead).
		if r := e.fusebox("logs", "-t", "-n", "1", "counter"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line 5\n$`).MatchString(r.stdout) {
			t.Errorf("logs -t -n 1: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
		}
		if r := e.fusebox("logs", "--since", "1h", "counter"); r.code != 0 || r.stdout != "line 1\nline 2\nline 3\nline 4\nline 5\n" {
			t.Errorf("logs --since 1h: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
		}
		if r := e.fusebox("logs", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "counter"); r.code != 0 || r.stdout != "" {
			t.Errorf("logs --since an hour ahead: %q (exit %d, %s)", r.stdout, r.code, r.stderr)
		}
		if r := e.fusebox("logs", "--since", "yesterday", "counter"); r.code != 125 || !strings.Contains(r.stderr, "--since") {
			t.Errorf("logs --since yesterday: exit %d, %s; want 125 naming --since", r.code, r.stderr)
		}
		id := e.detail("counter").Job.ID
		// The shortest prefix of id that no other job shares.
		all := e.fusebox("jobs", "-aq", "--limit", "500")
		prefix := id
		for n := 1; n <= len(id); n++ {
			shared := 0
			for _, other := range strings.Fields(all.stdout) {
				if strings.HasPrefix(other, id[:n]) {
					shared++
				}
			}
			if shared == 1 {
				prefix = id[:n]
				break
			}
		}
		if d := e.detail(prefix); d.Job.ID != id {
			t.Errorf("job %s (a unique prefix) is %s, want %s", prefix, d.Job.ID, id)
		}
		if r := e.fusebox("logs", "-n", "1", prefix); r.stdout != "line 5\n" {
			t.Errorf("logs by prefix %s: %q (%s)", prefix, r.stdout, r.stderr)
		}
		// Every job here was made within seconds: their first characters
		// (the time) are shared, so one character is ambiguous.
		r = e.fusebox("job", id[:1])
		if r.code == 0 || !strings.Contains(r.stderr, "give more of the id") {
			t.Errorf("job %s (ambiguous): exit %d\n%s", id[:1], r.code, r.stderr)
		}
		r = e.fusebox("job", "no-such-job")
		if r.code != 1 || !strings.Contains(r.stderr, `"no-such-job"`) || strings.Contains(r.stderr, "sqlite") {
			t.Errorf("job no-such-job: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.fusebox("jobs", "-q"); strings.Contains(r.stdout, id) {
			t.Errorf("jobs (active only) lists the finished job %s:\n%s", id, r.stdout)
		}
		if r := e.fusebox("jobs", "-aq", "--filter", "label=team=data"); r.stdout != id+"\n" {
			t.Errorf("jobs -aq --filter label=team=data: %q, want %s", r.stdout, id)
		}
		if r := e.fusebox("jobs", "-aq", "--filter", "name=counter", "--filter", "state=succeeded", "--filter", "image="+img); r.stdout != id+"\n" {
			t.Errorf("jobs -aq --filter name= state= image=: %q, want %s", r.stdout, id)
		}
		if r := e.fusebox("ps", "-a", "--filter", "label=team"); !strings.Contains(r.stdout, "COMMAND") || !strings.Contains(r.stdout, "counter") {
			t.Errorf("ps -a table:\n%s", r.stdout)
		}
		// cancel takes several; one that has ended is reported, the rest cancelled.
		a, b := e.fusebox("run", "-d", img, "sleep", "60"), e.fusebox("run", "-d", img, "sleep", "60")
		r = e.fusebox("cancel", strings.TrimSpace(a.stdout), strings.TrimSpace(b.stdout), "counter")
		if r.code != 1 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "counter: job is already finished") {
			t.Errorf("cancel a b counter: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
