package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/server"
)

// examples/circuit-breaker-workflow/run.sh, for real: against a fusebox
// server on a private engine, the failing workflow trips its breaker, the
// next start is refused fast with a retry-after, and after the reset
// timeout one probe run closes the breaker again. The script checks each
// act itself and exits 0 only if all went as told.
func TestCircuitBreakerWorkflowExample(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		if enginetest.InCI() {
			t.Fatalf("CI=true and no bash: %v", err)
		}
		t.Skipf("no bash: %v", err)
	}
	engines := enginetest.ForTest(t, 1)
	dir := t.TempDir()
	bin := filepath.Join(dir, "fusebox")
	if out, err := exec.Command("go", "build", "-o", bin, "../fusebox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url := serve(t, engines, filepath.Join(dir, "data"))
	sctx, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	cmd := exec.CommandContext(sctx, bash, "../../examples/circuit-breaker-workflow/run.sh")
	cmd.Env = append(os.Environ(), "FUSEBOX="+bin, "FUSEBOX_SERVER="+url, "FUSEBOX_TOKEN=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("run.sh took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("run.sh: %v", err)
	}
	m := regexp.MustCompile(`refused in (\d+) ms`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("run.sh did not say how fast the refusal was")
	}
	for _, want := range []string{"closed -> open", "half-open -> closed", "ok: tripped after 2 failed runs"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("run.sh's output lacks %q", want)
		}
	}
}

// The demo's second act: the diamond template across the engines, then
// the same run again, every step cached with the same outputs.
func TestDemoWorkflowAct(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	var out strings.Builder
	d := &demo{out: &out, start: time.Now(), api: apiclient.New(serve(t, engines, t.TempDir()), "")}
	err := d.workflows(context.Background())
	t.Logf("the act:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"at the same time: true", "(checked)", "4 of 4 steps cached", "same outputs: true"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the act's output lacks %q", want)
		}
	}
}

// serve runs the demo's server on engines until the test ends and returns
// its URL.
func serve(t *testing.T, engines *enginetest.Fleet, dataDir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, demoConfig(engines, dataDir), server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
