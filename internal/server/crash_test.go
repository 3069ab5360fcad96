package server_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// buildFusebox compiles the fusebox command into dir.
func buildFusebox(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fusebox")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/fusebox")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is one `fusebox serve`.
type process struct {
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{} // closed when it exits
}

func startServe(t testing.TB, bin, cfgPath, logPath string) *process {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done; p.out.Close() })
	return p
}

func waitHealthy(t testing.TB, p *process, c *apiclient.Client) {
	t.Helper()
	var err error
	enginetest.Eventually(t, 30*time.Second, "fusebox answers /healthz", func() bool {
		select {
		case <-p.done:
			t.Fatalf("fusebox serve exited: %v", p.cmd.ProcessState)
		default:
		}
		err = c.Health(context.Background())
		return err == nil
	}, func() string { return fmt.Sprintf("/healthz: %v", err) })
}

// fusebox is killed with SIGKILL while jobs run and wait; restarted on the
// same database, it brings every job to a terminal state, and each job's
// container was created exactly once (counted from the engines' events).
func TestKilledServerRestartsWithoutLosingOrDuplicatingJobs(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	img := enginetest.TestImage(t)
	dir := t.TempDir()
	bin := buildFusebox(t, dir)
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
log_level: debug
hosts:
  - {name: %s, address: %q, capacity: 2, network_mode: none}
  - {name: %s, address: %q, capacity: 2, network_mode: none}
health_check: {interval: 500ms, timeout: 500ms}
poll_interval: 200ms
`, addr, dir, engines.Engines[0].Name, engines.Engines[0].UnixHost(), engines.Engines[1].Name, engines.Engines[1].UnixHost())
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	creates := countCreates(t, engines)
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
	var ids []string
	for i := range 10 {
		j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "sleep", "2s", "print", fmt.Sprint("job ", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	running := 0
	enginetest.Eventually(t, 30*time.Second, "3 jobs run", func() bool {
		js, err := c.List(ctx, store.JobListParams{States: []job.State{job.StateRunning}})
		if err != nil {
			t.Fatal(err)
		}
		running = len(js)
		return running >= 3
	}, func() string { return fmt.Sprintf("%d running; log:\n%s", running, readFile(logPath)) })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if c.Health(ctx) == nil {
		t.Fatal("fusebox still answers after SIGKILL")
	}

	p = startServe(t, bin, cfgPath, logPath)
	waitHealthy(t, p, c)
	for _, id := range ids {
		var d *api.JobDetail
		enginetest.Eventually(t, 90*time.Second, "job "+id+" is terminal", func() bool {
			var err error
			if d, err = c.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			return d.Job.State.Terminal()
		}, func() string {
			return fmt.Sprintf("job %s still %s (%s); log:\n%s", id, d.Job.State, d.Job.Reason, readFile(logPath))
		})
		if len(d.Attempts) != 1 {
			t.Errorf("job %s: %d attempts, want 1 (the running ones adopted, the queued ones launched once)", id, len(d.Attempts))
		}
		for _, a := range d.Attempts {
			if n := creates.Count(id + "/" + strconv.Itoa(a.Number)); n != 1 {
				t.Errorf("job %s attempt %d: %d containers created, want exactly 1", id, a.Number, n)
			}
		}
		if d.Job.State != job.StateSucceeded {
			t.Errorf("job %s ended %s: %s", id, d.Job.State, d.Job.Reason)
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// countCreates counts container creations per job attempt (key
// "<job id>/<attempt>") from the engines' own events.
func countCreates(t *testing.T, engines *enginetest.Fleet) *enginetest.Creates {
	return enginetest.WatchCreates(t, engines, map[string]string{job.LabelManaged: "true"}, func(l map[string]string) string {
		return l[job.LabelJobID] + "/" + l[job.LabelAttempt]
	})
}
