package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// render writes one Markdown table per scenario.
func render(w io.Writer, r *results, base string) {
	runs := 0
	for _, byLib := range r.runs {
		for _, s := range byLib {
			runs = max(runs, len(s))
		}
	}
	env := strings.Join(r.env, ", ")
	if r.procs != "" {
		env += ", GOMAXPROCS=" + r.procs
	}
	fmt.Fprintf(w, "Median of %d runs per cell. %s\n", runs, env)
	fmt.Fprintf(w, "Ratio: %s ns/op ÷ library ns/op (below 1.00x means %s is faster).\n", base, base)
	for _, sc := range r.scenarios {
		byLib := r.runs[sc]
		baseNs := 0.0
		if s, ok := byLib[base]; ok {
			baseNs = median(s, func(s sample) float64 { return s.nsPerOp })
		}
		fmt.Fprintf(w, "\n### %s\n\n", sc)
		fmt.Fprintf(w, "| library | ns/op | B/op | allocs/op | %s ÷ library | runs |\n", base)
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		for _, lib := range r.libs[sc] {
			s := byLib[lib]
			ns := median(s, func(s sample) float64 { return s.nsPerOp })
			mem, allocs := "-", "-"
			if s[0].hasMem {
				mem = num(median(s, func(s sample) float64 { return s.bytesPerOp }))
				allocs = num(median(s, func(s sample) float64 { return s.allocsPerOp }))
			}
			ratio := "-"
			if baseNs > 0 && ns > 0 {
				ratio = fmt.Sprintf("%.2fx", baseNs/ns)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d |\n", lib, num(ns), mem, allocs, ratio, len(s))
		}
	}
}

// num prints a value with about three significant digits.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
