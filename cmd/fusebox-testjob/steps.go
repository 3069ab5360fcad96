package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op names one kind of step.
type Op string

const (
	OpPrint          Op = "print"            // print TEXT: write TEXT and a newline to stdout
	OpStderr         Op = "stderr"           // stderr TEXT: write TEXT and a newline to stderr
	OpSleep          Op = "sleep"            // sleep DUR
	OpExit           Op = "exit"             // exit CODE: stop with that exit code (must be the last step)
	OpWrite          Op = "write"            // write PATH CONTENT: create PATH (and its directories) holding CONTENT
	OpHang           Op = "hang"             // hang: block until a signal ends the process (SIGTERM exits 143)
	OpHangIgnoreTerm Op = "hang-ignore-term" // hang-ignore-term: ignore SIGTERM and SIGINT, then block until SIGKILL
	OpBurn           Op = "burn"             // burn DUR: keep one CPU busy for DUR
	OpAlloc          Op = "alloc"            // alloc BYTES: allocate BYTES, touch every page, keep it until exit
	OpLines          Op = "lines"            // lines N: print N numbered lines to stdout ("line 1" ... "line N")
	OpEnv            Op = "env"              // env NAME: print the value of NAME (an empty line if unset)
	OpFlood          Op = "flood"            // flood BYTES: write BYTES of numbered 1 KiB records to stdout, fast (see FloodRecord)
	OpFloodStderr    Op = "flood-stderr"     // flood-stderr BYTES: the same to stderr
	OpFill           Op = "fill"             // fill PATH BYTES: create PATH (and its directories) holding BYTES of deterministic data (see FillData)
)

// Step is one parsed step.
type Step struct {
	Op   Op
	Text string        // print, stderr, env (the name), write (the content)
	Path string        // write, fill
	Dur  time.Duration // sleep, burn
	N    int64         // exit (the code), alloc, flood and fill (bytes), lines (count)
}

// arity is the number of arguments each op takes.
var arity = map[Op]int{
	OpPrint: 1, OpStderr: 1, OpSleep: 1, OpExit: 1, OpWrite: 2,
	OpHang: 0, OpHangIgnoreTerm: 0, OpBurn: 1, OpAlloc: 1, OpLines: 1, OpEnv: 1,
	OpFlood: 1, OpFloodStderr: 1, OpFill: 2,
}

// UsageError is a malformed command line; the process exits 2.
type UsageError struct {
	Arg    int    // index of the offending argument
	Reason string // what is wrong, ending with what to try instead
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("argument %d: %s", e.Arg+1, e.Reason)
}

// Parse turns the command line (without the program name) into steps.
func Parse(args []string) ([]Step, error) {
	if len(args) == 0 {
		return nil, &UsageError{Arg: 0, Reason: "no steps given; try: fusebox-testjob print hello exit 0"}
	}
	var steps []Step
	for i := 0; i < len(args); {
		op := Op(args[i])
		n, ok := arity[op]
		if !ok {
			return nil, &UsageError{Arg: i, Reason: fmt.Sprintf("unknown step %q; run fusebox-testjob help for the list", args[i])}
		}
		if len(steps) > 0 && steps[len(steps)-1].Op == OpExit {
			return nil, &UsageError{Arg: i, Reason: fmt.Sprintf("step %q comes after exit and would never run; put exit last", op)}
		}
		if i+1+n > len(args) {
			return nil, &UsageError{Arg: i, Reason: fmt.Sprintf("%s needs %d argument(s): %s", op, n, usageLine(op))}
		}
		st, err := parseStep(op, args[i+1:i+1+n])
		if err != nil {
			return nil, &UsageError{Arg: i + 1, Reason: fmt.Sprintf("%s: %v; usage: %s", op, err, usageLine(op))}
		}
		steps = append(steps, st)
		i += 1 + n
	}
	return steps, nil
}

func parseStep(op Op, a []string) (Step, error) {
	st := Step{Op: op}
	var err error
	switch op {
	case OpPrint, OpStderr:
		st.Text = a[0]
	case OpEnv:
		if a[0] == "" {
			return st, fmt.Errorf("empty variable name")
		}
		st.Text = a[0]
	case OpWrite:
		if a[0] == "" {
			return st, fmt.Errorf("empty path")
		}
		st.Path, st.Text = a[0], a[1]
	case OpSleep, OpBurn:
		st.Dur, err = time.ParseDuration(a[0])
		if err == nil && st.Dur < 0 {
			err = fmt.Errorf("negative duration %q", a[0])
		}
	case OpExit:
		st.N, err = strconv.ParseInt(a[0], 10, 64)
		if err == nil && (st.N < 0 || st.N > 255) {
			err = fmt.Errorf("exit code %d out of range 0-255", st.N)
		}
	case OpLines:
		st.N, err = strconv.ParseInt(a[0], 10, 64)
		if err == nil && st.N < 0 {
			err = fmt.Errorf("negative count %d", st.N)
		}
	case OpAlloc, OpFlood, OpFloodStderr:
		st.N, err = ParseBytes(a[0])
	case OpFill:
		if a[0] == "" {
			return st, fmt.Errorf("empty path")
		}
		st.Path = a[0]
		st.N, err = ParseBytes(a[1])
	}
	return st, err
}

// ParseBytes reads a size such as 1024, 64k, 64KiB, 10M, 10MB, 1GiB. All
// units are powers of 1024.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 1048576, 64k, 10MiB)", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n * mult, nil
}

func usageLine(op Op) string {
	for _, l := range strings.Split(usage, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == string(op) {
			return strings.Join(f, " ")
		}
	}
	return string(op)
}

const usage = `usage: fusebox-testjob STEP [STEP...]

Runs the steps in order. Steps:
  print TEXT             write TEXT and a newline to stdout
  stderr TEXT            write TEXT and a newline to stderr
  sleep DUR              sleep for DUR (Go duration: 500ms, 2s, 1m)
  exit CODE              exit with CODE (0-255); must be the last step
  write PATH CONTENT     create PATH and its directories, holding CONTENT
  hang                   block until a signal ends the process
  hang-ignore-term       ignore SIGTERM/SIGINT, then block until SIGKILL
  burn DUR               keep one CPU busy for DUR
  alloc BYTES            allocate BYTES (1048576, 64k, 10MiB), touch every page, keep it
  lines N                print N numbered lines: "line 1" ... "line N"
  env NAME               print the value of NAME (empty line if unset)
  flood BYTES            write BYTES (10MiB, 1GiB) to stdout as numbered 1 KiB lines
  flood-stderr BYTES     the same to stderr
  fill PATH BYTES        create PATH and its directories, holding BYTES of
                         deterministic data (the same bytes on every run)

Flood line k of a stream (k from 0, counted on across that stream's flood
steps) is k as 19 zero-padded digits, a space, 1003 fill bytes ('o' on
stdout, 'e' on stderr) and a newline; the last line of a step is cut short
when BYTES is not a multiple of 1024.

Without a final exit step the job exits 0. SIGTERM or SIGINT ends it with
128+signal (143 for SIGTERM) unless hang-ignore-term ran.

Example: fusebox-testjob print hello sleep 2s exit 3
`
