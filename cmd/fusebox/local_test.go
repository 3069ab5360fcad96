package main

import (
	"context"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
)

// TestRunDockerHost runs containers with run --docker-host on a real
// engine: output, exit code, --timeout, and removal afterwards.
func TestRunDockerHost(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Docker engine")
	}
	f := enginetest.ForTest(t, 1)
	img := enginetest.TestImage(t)
	addr := f.Engines[0].UnixHost()

	r := cli(t, nil, "run", "--docker-host", addr, "--network", "none", "--pull", "never", "--env", "WHO=fusebox",
		img.Ref, "sh", "-c", `echo "hello $WHO"; echo warn >&2; exit 7`)
	wantCode(t, r, 7)
	if r.stdout != "hello fusebox\n" || r.stderr != "warn\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = cli(t, nil, "run", "-H", addr, "--network", "none", "--pull", "never", img.Ref, "true")
	wantCode(t, r, 0)

	start := time.Now()
	r = cli(t, nil, "run", "--docker-host", addr, "--network", "none", "--pull", "never", "--timeout", "1s",
		img.Ref, "sh", "-c", `trap "exit 143" TERM; echo started; sleep 60 & wait`)
	wantCode(t, r, exitTimedOut, "timed out after 1s")
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("timed-out run took %v", took)
	}

	r = cli(t, nil, "run", "--docker-host", addr, "--network", "none", "--pull", "never", "fusebox/absent:1", "true")
	wantCode(t, r, exitCantRun, "fusebox/absent:1")

	// Every container was removed.
	eng, err := engine.New(engine.Config{Name: "e1", Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	left, err := eng.List(context.Background(), map[string]string{localLabel: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d containers left behind: %+v", len(left), left[0])
	}
}
