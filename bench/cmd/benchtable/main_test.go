package main

import (
	"strings"
	"testing"
)

const sample1 = `goos: linux
goarch: amd64
pkg: fusebox/bench
cpu: AMD EPYC
BenchmarkClosedSerial/fusebox-2         	22566914	        30.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/fusebox-2         	18078085	        20.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/fusebox-2         	16732532	        10.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedSerial/failsafe-permit-2 	 1000000	       200.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkClosedSerial/failsafe-permit-2 	 1000000	       100.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkOpenReject/fusebox-2           	 2835512	       130.6 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	fusebox/bench	50.393s
`

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader(sample1), &out, "fusebox"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"Median of 3 runs per cell. goos: linux, goarch: amd64, cpu: AMD EPYC, GOMAXPROCS=2",
		"### ClosedSerial",
		"| fusebox | 20.0 | 0 | 0 | 1.00x | 3 |",
		"| failsafe-permit | 150 | 16.0 | 1.00 | 0.13x | 2 |",
		"### OpenReject",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRunErrors(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader("PASS\n"), &out, "fusebox"); err == nil {
		t.Error("no results: want an error")
	}
	failed := sample1 + "--- FAIL: BenchmarkX\nFAIL\n"
	if err := run(strings.NewReader(failed), &out, "fusebox"); err == nil {
		t.Error("failed run: want an error")
	}
}
