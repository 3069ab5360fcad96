package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// section titles, in report order, by package; packages not listed come
// after them under their own path.
var sections = []struct{ pkg, title string }{
	{"fusebox/bench", "Breaker hot path: fusebox against gobreaker, failsafe-go, go-resiliency, hystrix-go"},
	{"fusebox/internal/server", "Dispatch, fail-fast, workflows (real engines, a real server)"},
	{"fusebox/internal/store/sqlite", "Queue and store (SQLite)"},
	{"fusebox/internal/dispatch", "Scheduler"},
	{"fusebox/internal/workflow/artifact", "Artifacts"},
	{"fusebox/internal/mcpserver", "MCP"},
	{"fusebox/internal/sim", "Scale, by simulation (package sim: simulated engines behind the real fleet and dispatcher)"},
}

// Target is a figure the report checks against a bound.
type Target struct {
	What    string  `json:"what"`
	Package string  `json:"package"`
	Family  string  `json:"family"`
	Case    string  `json:"case,omitempty"` // regexp on the case; "" matches any
	Unit    string  `json:"unit"`
	Max     float64 `json:"max"`
	// Filled in by check:
	Value  *float64 `json:"value,omitempty"`
	Met    bool     `json:"met"`
	Status string   `json:"status"` // met, not met, not measured
}

// targets are the bounds, and the brief's.
func targets() []Target {
	return []Target{
		{What: "`fusebox run --wait` ÷ `docker run --rm`, median of 20", Package: "fusebox/internal/server", Family: "RunWaitAgainstDockerRun", Unit: "ratio", Max: 1.10},
		{What: "N jobs at concurrency C: makespan through the API ÷ by the engine client", Package: "fusebox/internal/server", Family: "APIAgainstEngine", Unit: "makespan-ratio", Max: 1.10},
		{What: "N jobs at concurrency C: p50 submit-to-running, API ÷ engine client", Package: "fusebox/internal/server", Family: "APIAgainstEngine", Unit: "p50-ratio", Max: 1.10},
		{What: "N jobs at concurrency C: p99 submit-to-running, API ÷ engine client", Package: "fusebox/internal/server", Family: "APIAgainstEngine", Unit: "p99-ratio", Max: 1.10},
		{What: "a hung engine is out (breaker open) within 5 s, default config", Package: "fusebox/internal/server", Family: "FailFast", Unit: "hang-to-open-s", Max: 5},
		{What: "a killed engine is out (breaker open) within 2 s, default config", Package: "fusebox/internal/server", Family: "FailFast", Unit: "kill-to-open-s", Max: 2},
		{What: "breaker closed-state path allocates nothing", Package: "fusebox/bench", Family: "ClosedSerial", Case: "^fusebox$", Unit: "allocs/op", Max: 0},
		{What: "breaker closed-state path allocates nothing, in parallel", Package: "fusebox/bench", Family: "ClosedParallel", Case: "^fusebox$", Unit: "allocs/op", Max: 0},
	}
}

// check fills in each target from the results: the worst matching value.
func check(rep *Report, ts []Target) []Target {
	for i := range ts {
		t := &ts[i]
		var re *regexp.Regexp
		if t.Case != "" {
			re = regexp.MustCompile(t.Case)
		}
		for _, r := range rep.Results {
			if r.Package != t.Package || r.Family != t.Family || (re != nil && !re.MatchString(r.Case)) {
				continue
			}
			v, ok := r.Metrics[t.Unit]
			if !ok {
				continue
			}
			if t.Value == nil || v > *t.Value {
				t.Value = &v
			}
		}
		switch {
		case t.Value == nil:
			t.Status = "not measured"
		case *t.Value <= t.Max:
			t.Met, t.Status = true, "met"
		default:
			t.Status = "not met"
		}
	}
	return ts
}

// render writes the report as Markdown: the targets, then one table per
// benchmark family, by section.
func render(w io.Writer, rep *Report, ts []Target, svgName string) {
	if len(rep.Env) > 0 {
		fmt.Fprintf(w, "%s. Each cell is the median of the runs in this report.\n", strings.Join(rep.Env, ", "))
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(w, "\n**%d failure line(s) in the run:**\n\n", len(rep.Failures))
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	fmt.Fprintf(w, "\n## Targets\n\n| target | bound | measured | verdict |\n|---|---:|---:|---|\n")
	for _, t := range ts {
		v := "-"
		if t.Value != nil {
			v = num(*t.Value)
		}
		fmt.Fprintf(w, "| %s | <= %s %s | %s | %s |\n", t.What, num(t.Max), t.Unit, v, t.Status)
	}
	pkgs := []string{}
	for _, s := range sections {
		pkgs = append(pkgs, s.pkg)
	}
	for _, r := range rep.Results {
		if !slices.Contains(pkgs, r.Package) {
			pkgs = append(pkgs, r.Package)
		}
	}
	for _, pkg := range pkgs {
		var rs []*Result
		for _, r := range rep.Results {
			if r.Package == pkg {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		title := pkg
		for _, s := range sections {
			if s.pkg == pkg {
				title = s.title
			}
		}
		fmt.Fprintf(w, "\n## %s\n\n`%s`\n", title, pkg)
		var families []string
		for _, r := range rs {
			if !slices.Contains(families, r.Family) {
				families = append(families, r.Family)
			}
		}
		for _, fam := range families {
			var fr []*Result
			for _, r := range rs {
				if r.Family == fam {
					fr = append(fr, r)
				}
			}
			renderFamily(w, fam, fr)
			if pkg == "fusebox/internal/sim" && svgName != "" {
				fmt.Fprintf(w, "\n![how each cost grows with the hosts](%s)\n", svgName)
			}
		}
	}
}

// renderFamily writes one table: a row per case, a column per unit. A
// family with a "fusebox" case (the breaker comparisons) gets the ratio
// of fusebox's ns/op to each row's.
func renderFamily(w io.Writer, fam string, rs []*Result) {
	var units []string
	for _, r := range rs {
		for _, u := range r.Units {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	base := 0.0
	for _, r := range rs {
		if r.Case == "fusebox" {
			base = r.Metrics["ns/op"]
		}
	}
	fmt.Fprintf(w, "\n### %s\n\n| case |", fam)
	for _, u := range units {
		fmt.Fprintf(w, " %s |", u)
	}
	if base > 0 {
		fmt.Fprint(w, " fusebox ÷ this (ns/op) |")
	}
	fmt.Fprint(w, " runs |\n|---|")
	for range units {
		fmt.Fprint(w, "---:|")
	}
	if base > 0 {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---:|\n")
	for _, r := range rs {
		c := r.Case
		if c == "" {
			c = "-"
		}
		fmt.Fprintf(w, "| %s |", c)
		for _, u := range units {
			if v, ok := r.Metrics[u]; ok {
				fmt.Fprintf(w, " %s |", num(v))
			} else {
				fmt.Fprint(w, " - |")
			}
		}
		if base > 0 {
			if ns := r.Metrics["ns/op"]; ns > 0 {
				fmt.Fprintf(w, " %.2fx |", base/ns)
			} else {
				fmt.Fprint(w, " - |")
			}
		}
		fmt.Fprintf(w, " %d |\n", r.Runs)
	}
}

// num prints a value with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
