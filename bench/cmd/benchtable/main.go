// Command benchtable reads `go test -bench` output on standard input and
// prints, for every scenario, a Markdown table of ns/op, B/op and allocs/op
// per library (the median over -count runs) and the reference library's
// ns/op as a ratio of each.
//
// Benchmarks must be named BenchmarkScenario/library, as in fusebox/bench.
// It exits non-zero if the input holds no benchmark results or reports a
// failure, so a Makefile can chain it after `go test`.
//
//	go test -run '^$' -bench . -benchmem -count 5 . | go run ./cmd/benchtable
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	base := flag.String("base", "fusebox", "library whose ns/op is divided by each library's")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *base); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, base string) error {
	res, err := parse(bufio.NewScanner(in))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	render(w, res, base)
	if err := w.Flush(); err != nil {
		return err
	}
	if res.failed {
		return fmt.Errorf("the benchmark run reported a failure")
	}
	return nil
}
