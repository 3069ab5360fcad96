package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		want []Step
	}{
		{[]string{"print", "hello"}, []Step{{Op: OpPrint, Text: "hello"}}},
		{[]string{"print", "hello", "sleep", "2s", "exit", "3"}, []Step{
			{Op: OpPrint, Text: "hello"}, {Op: OpSleep, Dur: 2 * time.Second}, {Op: OpExit, N: 3}}},
		{[]string{"stderr", "oops", "env", "HOME"}, []Step{{Op: OpStderr, Text: "oops"}, {Op: OpEnv, Text: "HOME"}}},
		{[]string{"write", "/tmp/a/b", "x y", "hang"}, []Step{{Op: OpWrite, Path: "/tmp/a/b", Text: "x y"}, {Op: OpHang}}},
		{[]string{"hang-ignore-term"}, []Step{{Op: OpHangIgnoreTerm}}},
		{[]string{"burn", "100ms", "alloc", "10MiB", "lines", "5"}, []Step{
			{Op: OpBurn, Dur: 100 * time.Millisecond}, {Op: OpAlloc, N: 10 << 20}, {Op: OpLines, N: 5}}},
		{[]string{"print", ""}, []Step{{Op: OpPrint}}},
		{[]string{"print", "exit"}, []Step{{Op: OpPrint, Text: "exit"}}},
		{[]string{"exit", "0"}, []Step{{Op: OpExit}}},
		{[]string{"exit", "255"}, []Step{{Op: OpExit, N: 255}}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantArg int
		want    string
	}{
		{nil, 0, "no steps"},
		{[]string{"frobnicate"}, 0, `unknown step "frobnicate"`},
		{[]string{"print"}, 0, "print needs 1 argument"},
		{[]string{"print", "a", "write", "/x"}, 2, "write needs 2 argument"},
		{[]string{"sleep", "soon"}, 1, "sleep: time: invalid duration"},
		{[]string{"sleep", "-1s"}, 1, "negative duration"},
		{[]string{"exit", "256"}, 1, "out of range"},
		{[]string{"exit", "-1"}, 1, "out of range"},
		{[]string{"exit", "x"}, 1, "exit:"},
		{[]string{"exit", "0", "print", "x"}, 2, "comes after exit"},
		{[]string{"alloc", "lots"}, 1, "bad size"},
		{[]string{"lines", "-3"}, 1, "negative count"},
		{[]string{"env", ""}, 1, "empty variable name"},
		{[]string{"write", "", "x"}, 1, "empty path"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q) error = %v, want a *UsageError", tt.args, err)
			continue
		}
		if ue.Arg != tt.wantArg || !strings.Contains(ue.Reason, tt.want) {
			t.Errorf("Parse(%q) = arg %d %q, want arg %d containing %q", tt.args, ue.Arg, ue.Reason, tt.wantArg, tt.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	good := map[string]int64{"0": 0, "1024": 1024, "64k": 64 << 10, "64KiB": 64 << 10, "10M": 10 << 20,
		"10MB": 10 << 20, "1GiB": 1 << 30, "7b": 7}
	for in, want := range good {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5M", "1T", "99999999999999999G"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) succeeded, want an error", in)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b.txt")
	t.Setenv("FUSEBOX_TESTJOB_X", "xval")
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{
		"print", "hello", "stderr", "warn", "write", path, "content", "env", "FUSEBOX_TESTJOB_X",
		"lines", "3", "alloc", "64k", "burn", "1ms", "sleep", "1ms", "exit", "3"}, &out, &errOut)
	if code != 3 {
		t.Fatalf("exit code = %d, want 3 (stderr %q)", code, errOut.String())
	}
	if want := "hello\nxval\nline 1\nline 2\nline 3\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if errOut.String() != "warn\n" {
		t.Errorf("stderr = %q, want %q", errOut.String(), "warn\n")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "content" {
		t.Errorf("written file = %q, %v", b, err)
	}
}

func TestRunFlood(t *testing.T) {
	var out, errOut bytes.Buffer
	// 1500 bytes, then 3<<20 more: the second step goes on mid-line.
	code := Run(context.Background(), []string{"flood", "1500", "flood-stderr", "10", "flood", "3MiB"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code = %d (stderr %q)", code, errOut.String())
	}
	var want bytes.Buffer
	line := make([]byte, floodLineLen)
	for k := int64(0); want.Len() < 1500+3<<20; k++ {
		floodLine(line, k, 'o')
		want.Write(line)
	}
	if got := out.Bytes(); !bytes.Equal(got, want.Bytes()[:1500+3<<20]) {
		t.Errorf("stdout: %d bytes, not the flood lines in order", len(got))
	}
	if got := errOut.String(); got != "0000000000" {
		t.Errorf("stderr = %q, want the first 10 bytes of line 0", got)
	}
	if l := string(out.Bytes()[1024 : 1024+20]); l != "0000000000000000001 " {
		t.Errorf("line 1 starts %q", l)
	}
}

func TestRunUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), nil, &out, &errOut); code != 2 {
		t.Errorf("no args: exit code = %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "usage: fusebox-testjob") {
		t.Errorf("no args: stderr %q lacks the usage", errOut.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "hang-ignore-term") {
		t.Errorf("help: code %d, stdout %q", code, out.String())
	}
}

func TestRunHangEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	if code := Run(ctx, []string{"print", "x", "hang"}, &out, &errOut); code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
}

func TestRunFill(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "x", "a.bin"), filepath.Join(dir, "b.bin")
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"fill", a, "3MiB", "fill", b, "1000"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code = %d (stderr %q)", code, errOut.String())
	}
	ab, err := os.ReadFile(a)
	if err != nil || len(ab) != 3<<20 {
		t.Fatalf("a: %d bytes, %v; want %d", len(ab), err, 3<<20)
	}
	bb, err := os.ReadFile(b)
	if err != nil || !bytes.Equal(bb, ab[:1000]) {
		t.Fatalf("b: %d bytes, %v; want the first 1000 bytes of a", len(bb), err)
	}
	var again bytes.Buffer
	if err := FillData(&again, 3<<20); err != nil || !bytes.Equal(again.Bytes(), ab) {
		t.Fatalf("FillData is not what fill wrote (err %v)", err)
	}
	// Not a repeated pattern: the second MiB differs from the first.
	if bytes.Equal(ab[:1<<20], ab[1<<20:2<<20]) {
		t.Fatal("fill data repeats every MiB")
	}
	if _, err := Parse([]string{"fill", "", "1k"}); err == nil {
		t.Fatal("fill with an empty path parsed")
	}
	if _, err := Parse([]string{"fill", "/x", "lots"}); err == nil {
		t.Fatal("fill with a bad size parsed")
	}
}
