package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: fusebox/bench
cpu: Test CPU
BenchmarkClosedSerial/fusebox-2         	1000	        10.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/gobreaker-2       	1000	        20.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/fusebox-2         	1000	        12.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/fusebox-2         	1000	        30.0 ns/op	       0 B/op	       0 allocs/op
PASS
pkg: fusebox/internal/server
BenchmarkRunWaitAgainstDockerRun-2   	20	 300000000 ns/op	 1.25 ratio	 0.30 fusebox-s	 0.24 docker-s
--- FAIL: BenchmarkOther
pkg: fusebox/internal/sim
BenchmarkScaleSimulated/hosts=10/queued=100000-2 	1	 1 ns/op	 900 place-ns/job	 40 goodput-jobs/s	 50 heap-MB
BenchmarkScaleSimulated/hosts=100/queued=100000-2 	1	 1 ns/op	 1500 place-ns/job	 400 goodput-jobs/s	 90 heap-MB
`

func TestReport(t *testing.T) {
	dir := t.TempDir()
	md, js, svg := filepath.Join(dir, "r.md"), filepath.Join(dir, "r.json"), filepath.Join(dir, "scale.svg")
	var out bytes.Buffer
	if err := run([]string{"-md", md, "-json", js, "-svg", svg}, strings.NewReader(sample), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| fusebox | 12.0 | 0 | 0 | 1.00x | 3 |", // the median of three runs
		"| gobreaker | 20.0 | 0 | 0 | 0.60x | 1 |",
		"| `fusebox run --wait` ÷ `docker run --rm`, median of 20 | <= 1.10 ratio | 1.25 | not met |",
		"| breaker closed-state path allocates nothing | <= 0 allocs/op | 0 | met |",
		"| N jobs at concurrency C: makespan through the API ÷ by the engine client | <= 1.10 makespan-ratio | - | not measured |",
		"--- FAIL: BenchmarkOther",
		"| hosts=100/queued=100000 | 1.00 | 1500 | 400 | 90.0 | 1 |",
		"![how each cost grows with the hosts](scale.svg)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if b, _ := os.ReadFile(md); string(b) != s {
		t.Error("the -md file differs from what was printed")
	}
	var j struct {
		Results []Result
		Targets []Target
	}
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &j); err != nil || len(j.Results) != 5 || len(j.Targets) == 0 {
		t.Fatalf("json: %v, %d results", err, len(j.Results))
	}
	if b, _ := os.ReadFile(svg); !bytes.Contains(b, []byte("<polyline")) || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("svg: %s", b)
	}
}

func TestReportRefusesEmptyInput(t *testing.T) {
	if err := run(nil, strings.NewReader("PASS\n"), &bytes.Buffer{}); err == nil {
		t.Fatal("no error for an input without results")
	}
}
