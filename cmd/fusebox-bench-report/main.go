// Command fusebox-bench-report turns the output of `make bench` (any
// number of `go test -bench` runs, concatenated) into one report: Markdown
// on standard output and in -md, JSON in -json, and the plot of the
// simulated scale benchmark in -svg. Every benchmark in the input appears,
// one table per benchmark family, each cell the median of its runs; the
// issue's targets are checked against the figures they name.
//
//	go test -run '^$' -bench . ./... | fusebox-bench-report -md bench-report.md -json bench-report.json -svg bench-scale.svg
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fusebox-bench-report:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("fusebox-bench-report", flag.ContinueOnError)
	in := fs.String("in", "", "go test -bench output to read (default: standard input)")
	md := fs.String("md", "", "write the Markdown report here too")
	js := fs.String("json", "", "write the report as JSON here")
	svg := fs.String("svg", "", "write the scale plot (SVG) here; the Markdown links it by its base name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var r io.Reader = stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	rep, err := Parse(r)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(rep.Results) == 0 {
		return errors.New("no benchmark results in the input")
	}
	ts := check(rep, targets())
	svgName := ""
	if *svg != "" {
		var b bytes.Buffer
		if writeSVG(&b, scaleSeries(rep)) {
			if err := os.WriteFile(*svg, b.Bytes(), 0o644); err != nil {
				return err
			}
			svgName = filepath.Base(*svg)
		}
	}
	var out bytes.Buffer
	render(&out, rep, ts, svgName)
	if *md != "" {
		if err := os.WriteFile(*md, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if *js != "" {
		b, err := json.MarshalIndent(struct {
			*Report
			Targets []Target `json:"targets"`
		}{rep, ts}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*js, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	_, err = stdout.Write(out.Bytes())
	return err
}
