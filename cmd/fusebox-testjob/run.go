package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// held keeps alloc'ed memory reachable until the process exits.
var held [][]byte

// floods is how many bytes of flood output each stream has had in one
// run, so that the numbering of flood lines carries on from one flood step
// to the next.
type floods struct{ stdout, stderr int64 }

// floodLineLen is the length of one flood line.
const floodLineLen = 1024

// floodLine writes flood line k of a stream whose fill byte is fill into b.
func floodLine(b []byte, k int64, fill byte) {
	for i := 18; i >= 0; i-- {
		b[i] = byte('0' + k%10)
		k /= 10
	}
	b[19] = ' '
	for i := 20; i < floodLineLen-1; i++ {
		b[i] = fill
	}
	b[floodLineLen-1] = '\n'
}

// flood writes n bytes of flood lines to w, going on from *pos (the bytes
// of flood output this stream has had) and advancing it. It writes in large
// chunks: the point is volume, fast.
func flood(w io.Writer, pos *int64, fill byte, n int64) error {
	const chunk = 1 << 20 // a whole number of lines
	buf := make([]byte, chunk)
	for n > 0 {
		// Build the chunk of lines starting at line *pos/floodLineLen.
		first := *pos / floodLineLen
		for i := 0; i < chunk/floodLineLen; i++ {
			floodLine(buf[i*floodLineLen:], first+int64(i), fill)
		}
		off := *pos % floodLineLen // a previous step may have stopped mid-line
		m := min(int64(chunk)-off, n)
		if _, err := w.Write(buf[off : off+m]); err != nil {
			return err
		}
		*pos += m
		n -= m
	}
	return nil
}

// FillData writes the first n bytes of the fill op's data to w: a
// pseudo-random stream (xorshift64 from a fixed seed, little-endian), the
// same on every run and incompressible, so that an artifact made by fill
// has the same digest wherever it is made.
func FillData(w io.Writer, n int64) error {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	x := uint64(0x9e3779b97f4a7c15)
	for n > 0 {
		for i := 0; i < chunk; i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(buf[i:], x)
		}
		m := min(int64(chunk), n)
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

// fill creates path (and its directories) holding n bytes of FillData.
func fill(path string, n int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := FillData(f, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// exitError carries the code of an exit step.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Run parses args and runs the steps; it returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, usage)
		return 0
	}
	steps, err := Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "fusebox-testjob: %v\n\n%s", err, usage)
		return 2
	}

	// As PID 1 in a container a process only gets the signals it handles,
	// so handle SIGTERM and SIGINT explicitly and exit the way a shell would.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		n := int(s.(syscall.Signal))
		fmt.Fprintf(stderr, "fusebox-testjob: got %v, exiting %d\n", s, 128+n)
		os.Exit(128 + n)
	}()

	var fl floods
	for _, st := range steps {
		if err := runStep(ctx, st, stdout, stderr, &fl); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				return ee.code
			}
			fmt.Fprintf(stderr, "fusebox-testjob: %s: %v\n", st.Op, err)
			return 1
		}
	}
	return 0
}

func runStep(ctx context.Context, st Step, stdout, stderr io.Writer, fl *floods) error {
	switch st.Op {
	case OpPrint:
		_, err := fmt.Fprintln(stdout, st.Text)
		return err
	case OpStderr:
		_, err := fmt.Fprintln(stderr, st.Text)
		return err
	case OpEnv:
		_, err := fmt.Fprintln(stdout, os.Getenv(st.Text))
		return err
	case OpSleep:
		t := time.NewTimer(st.Dur)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case OpExit:
		return &exitError{code: int(st.N)}
	case OpWrite:
		if err := os.MkdirAll(filepath.Dir(st.Path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(st.Path, []byte(st.Text), 0o644)
	case OpHangIgnoreTerm:
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		<-ctx.Done()
		return ctx.Err()
	case OpHang:
		<-ctx.Done()
		return ctx.Err()
	case OpBurn:
		deadline := time.Now().Add(st.Dur)
		x := uint64(1)
		for time.Now().Before(deadline) {
			for range 100000 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		runtime.KeepAlive(x)
		return nil
	case OpAlloc:
		b := make([]byte, st.N)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		held = append(held, b)
		return nil
	case OpFill:
		return fill(st.Path, st.N)
	case OpFlood:
		return flood(stdout, &fl.stdout, 'o', st.N)
	case OpFloodStderr:
		return flood(stderr, &fl.stderr, 'e', st.N)
	case OpLines:
		w := bufio.NewWriter(stdout)
		for i := int64(1); i <= st.N; i++ {
			fmt.Fprintf(w, "line %d\n", i)
		}
		return w.Flush()
	}
	return fmt.Errorf("unknown step %q", st.Op)
}
