package main

import (
	"bufio"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results holds every measurement of a run, grouped by scenario and
// library, in the order they first appear.
type results struct {
	env       []string // goos, goarch, cpu lines
	procs     string   // the -N suffix: GOMAXPROCS
	scenarios []string
	libs      map[string][]string            // scenario -> libraries
	runs      map[string]map[string][]sample // scenario -> library -> runs
	failed    bool
}

// sample is one result line.
type sample struct {
	nsPerOp, bytesPerOp, allocsPerOp float64
	hasMem                           bool
}

// benchLine matches "BenchmarkX/lib-2   1000   12.5 ns/op   0 B/op   0 allocs/op".
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-(\d+))?\s+\d+\s+(.*)$`)

func parse(sc *bufio.Scanner) (*results, error) {
	r := &results{libs: map[string][]string{}, runs: map[string]map[string][]sample{}}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "goos:"), strings.HasPrefix(line, "goarch:"), strings.HasPrefix(line, "cpu:"):
			if !slices.Contains(r.env, line) {
				r.env = append(r.env, line)
			}
			continue
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "panic:"):
			r.failed = true
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, procs, rest := m[1], m[2], m[3]
		scenario, lib, ok := strings.Cut(name, "/")
		if !ok {
			lib = "-"
		}
		s, err := parseMetrics(rest)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		if procs != "" {
			r.procs = procs
		}
		if r.runs[scenario] == nil {
			r.scenarios = append(r.scenarios, scenario)
			r.runs[scenario] = map[string][]sample{}
		}
		if _, seen := r.runs[scenario][lib]; !seen {
			r.libs[scenario] = append(r.libs[scenario], lib)
		}
		r.runs[scenario][lib] = append(r.runs[scenario][lib], s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(r.scenarios) == 0 {
		return nil, fmt.Errorf("no benchmark results in the input")
	}
	return r, nil
}

// parseMetrics reads the "value unit" pairs after the iteration count.
func parseMetrics(s string) (sample, error) {
	var out sample
	f := strings.Fields(s)
	found := false
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return out, fmt.Errorf("bad value %q", f[i])
		}
		switch f[i+1] {
		case "ns/op":
			out.nsPerOp, found = v, true
		case "B/op":
			out.bytesPerOp, out.hasMem = v, true
		case "allocs/op":
			out.allocsPerOp = v
		}
	}
	if !found {
		return out, fmt.Errorf("no ns/op")
	}
	return out, nil
}

// median returns the median of the values picked from samples.
func median(samples []sample, pick func(sample) float64) float64 {
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = pick(s)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
