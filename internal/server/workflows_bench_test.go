package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/workflow/wfrun"
)

// BenchmarkDiamondAgainstByHand measures, in the same run on the same
// engines: the shipped diamond template through fusebox (two engines: b and
// c in parallel), its fully cached re-run, and the same four containers run
// by hand in sequence through one engine with the docker CLI (run, docker cp
// the output out, create the next, docker cp it in, start), as one would
// without fusebox.
//
//	go test -run '^$' -bench DiamondAgainstByHand -benchtime 3x ./internal/server/
func BenchmarkDiamondAgainstByHand(b *testing.B) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		b.Fatalf("the docker command is needed (Debian: docker.io): %v", err)
	}
	engines := enginetest.Shared(b, 2)
	img := enginetest.TestImage(b)
	c := apiclient.New(startInProcess(b, engines, nil), "")
	ctx := context.Background()
	const lines = "20000"
	runOnce := func(skipCache bool) time.Duration {
		start := time.Now()
		r, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Template: "diamond", SkipCache: skipCache,
			Params: map[string]string{"lines": lines, "image": img.Ref}})
		if err != nil {
			b.Fatal(err)
		}
		for !r.State.Terminal() {
			time.Sleep(5 * time.Millisecond) // polling: the benchmark measures the run, not the client
			if r, err = c.WorkflowRun(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
		if r.State != wfrun.RunSucceeded {
			b.Fatalf("run %s: %s (%s)", r.ID, r.State, r.Reason)
		}
		return time.Since(start)
	}
	e := engines.Engines[0]
	sh := func(args ...string) {
		cmd := exec.Command(docker, append([]string{"-H", e.UnixHost()}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	byHand := func(n int) time.Duration {
		dir := b.TempDir()
		name := func(s string) string { return fmt.Sprintf("byhand-%d-%s", n, s) }
		start := time.Now()
		sh("run", "--network", "none", "--name", name("a"), img.Ref, "sh", "-c", "mkdir -p /out && seq 1 "+lines+" > /out/a.txt")
		sh("cp", name("a")+":/out", filepath.Join(dir, "a"))
		for _, s := range []struct{ id, cmd string }{
			{"b", "mkdir -p /out && sed 's/^/b-/' /in/a.txt > /out/b.txt"},
			{"c", "mkdir -p /out && sort -rn /in/a.txt | sed 's/^/c-/' > /out/c.txt"},
		} {
			sh("create", "--network", "none", "--name", name(s.id), img.Ref, "sh", "-c", s.cmd)
			sh("cp", filepath.Join(dir, "a")+"/.", name(s.id)+":/in")
			sh("start", "-a", name(s.id))
			sh("cp", name(s.id)+":/out", filepath.Join(dir, s.id))
		}
		sh("create", "--network", "none", "--name", name("d"), img.Ref, "sh", "-c",
			"mkdir -p /out && cat /in/b/b.txt /in/c/c.txt > /out/combined.txt && cd /out && busybox sha256sum combined.txt > combined.txt.sha256")
		os.MkdirAll(filepath.Join(dir, "in"), 0o755)
		os.Rename(filepath.Join(dir, "b"), filepath.Join(dir, "in", "b"))
		os.Rename(filepath.Join(dir, "c"), filepath.Join(dir, "in", "c"))
		sh("cp", filepath.Join(dir, "in")+"/.", name("d")+":/in")
		sh("start", "-a", name("d"))
		sh("cp", name("d")+":/out", filepath.Join(dir, "d"))
		took := time.Since(start)
		sh("rm", "-f", name("a"), name("b"), name("c"), name("d"))
		return took
	}
	runOnce(true) // warm-up: the image on both engines, the server
	var fb, cached, hand []time.Duration
	n := 0
	for b.Loop() {
		fb = append(fb, runOnce(true))
		cached = append(cached, runOnce(false))
		hand = append(hand, byHand(n))
		n++
	}
	b.ReportMetric(float64(median(fb))/1e6, "fusebox-ms")
	b.ReportMetric(float64(median(cached))/1e6, "cached-ms")
	b.ReportMetric(float64(median(hand))/1e6, "byhand-ms")
	b.ReportMetric(float64(median(fb))/float64(median(hand)), "ratio")
	b.ReportMetric(0, "ns/op")
}
