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

	ctx, cancel := context.WithCancel(context.Background())
	cfg := demoConfig(engines, filepath.Join(dir, "data"))
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
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

	sctx, stop := context.WithTimeout(ctx, 90*time.Second)
	defer stop()
	cmd := exec.CommandContext(sctx, bash, "../../examples/circuit-breaker-workflow/run.sh")
	cmd.Env = append(os.Environ(), "FUSEBOX="+bin, "FUSEBOX_SERVER=http://"+ln.Addr().String(), "FUSEBOX_TOKEN=")
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
