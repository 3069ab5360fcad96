package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Result is one benchmark (one name in one package): the median of each
// metric over the runs the input holds.
type Result struct {
	Package string             `json:"package"`
	Name    string             `json:"name"` // without "Benchmark" and the -N suffix
	Family  string             `json:"family"`
	Case    string             `json:"case"` // the sub-benchmark path, "" for a top-level one
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // unit -> median
	Units   []string           `json:"units"`   // the units in the order printed

	samples map[string][]float64
}

// Report is everything read from the go test output.
type Report struct {
	Env      []string  `json:"env"` // goos, goarch, cpu lines
	Results  []*Result `json:"results"`
	Failures []string  `json:"failures,omitempty"` // FAIL and panic lines
}

// benchLine matches "BenchmarkX/case-2   10   12.5 ns/op   3 B/op   1.05 ratio".
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// Parse reads `go test -bench` output: any number of runs of any packages,
// concatenated. Lines that are not results are skipped; "pkg:" lines say
// which package the results that follow belong to.
func Parse(r io.Reader) (*Report, error) {
	rep := &Report{}
	byKey := map[string]*Result{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "pkg:"):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg:"))
			continue
		case strings.HasPrefix(line, "goos:"), strings.HasPrefix(line, "goarch:"), strings.HasPrefix(line, "cpu:"):
			if !slices.Contains(rep.Env, line) {
				rep.Env = append(rep.Env, line)
			}
			continue
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "panic:"), strings.HasPrefix(line, "FAIL\t"), line == "FAIL":
			rep.Failures = append(rep.Failures, line)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		metrics, units, err := parseMetrics(m[2])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		key := pkg + " " + m[1]
		res := byKey[key]
		if res == nil {
			family, cs, _ := strings.Cut(m[1], "/")
			res = &Result{Package: pkg, Name: m[1], Family: family, Case: cs, samples: map[string][]float64{}}
			byKey[key] = res
			rep.Results = append(rep.Results, res)
		}
		res.Runs++
		for _, u := range units {
			if !slices.Contains(res.Units, u) {
				res.Units = append(res.Units, u)
			}
			res.samples[u] = append(res.samples[u], metrics[u])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, res := range rep.Results {
		res.Metrics = map[string]float64{}
		for u, v := range res.samples {
			res.Metrics[u] = median(v)
		}
	}
	return rep, nil
}

// parseMetrics reads the "value unit" pairs after the iteration count.
func parseMetrics(s string) (map[string]float64, []string, error) {
	out := map[string]float64{}
	var units []string
	f := strings.Fields(s)
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("bad value %q", f[i])
		}
		if _, dup := out[f[i+1]]; !dup {
			units = append(units, f[i+1])
		}
		out[f[i+1]] = v
	}
	if len(units) == 0 {
		return nil, nil, fmt.Errorf("no metrics")
	}
	return out, units, nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
