package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
)

// runToExit creates a container of the test image running cmd, runs it to
// exit 0 and returns its ID (removed when the test ends).
func runToExit(t *testing.T, c *engine.Client, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	id, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: enginetest.TestImage(t).Ref, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), id) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx, id); err != nil || code != 0 {
		out, errOut, _, _ := c.Logs(ctx, id, 1<<16)
		t.Fatalf("wait = %d, %v; stdout %q stderr %q", code, err, out, errOut)
	}
	return id
}

func readTar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	got := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			got[h.Name] = "dir"
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		default:
			got[h.Name] = string(b)
		}
	}
}

func TestCopyFromAndTo(t *testing.T) {
	f := enginetest.Shared(t, 1)
	c := newClient(t, f.Engines[0], "", engine.Timeouts{})
	ctx := context.Background()
	id := runToExit(t, c, testjob, "write", "/out/a/b.txt", "bee", "write", "/out/c.txt", "sea")

	rc, err := c.CopyFrom(ctx, id, "/out")
	if err != nil {
		t.Fatal(err)
	}
	got := readTar(t, rc)
	rc.Close()
	want := map[string]string{"out/": "dir", "out/a/": "dir", "out/a/b.txt": "bee", "out/c.txt": "sea"}
	if len(got) != len(want) {
		t.Fatalf("archive of a directory = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("archive of a directory = %v, want %v", got, want)
		}
	}
	rc, err = c.CopyFrom(ctx, id, "/out/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTar(t, rc); len(got) != 1 || got["c.txt"] != "sea" {
		t.Fatalf("archive of a file = %v", got)
	}
	rc.Close()

	st, err := c.StatPath(ctx, id, "/out/a")
	if err != nil || !st.Mode.IsDir() || st.Name != "a" {
		t.Fatalf("StatPath(/out/a) = %+v, %v", st, err)
	}

	// Missing: ErrNotFound, never a host fault; a missing container too.
	for _, tc := range []struct{ id, path string }{{id, "/no/such/path"}, {"fusebox-no-such-container", "/out"}} {
		_, err = c.CopyFrom(ctx, tc.id, tc.path)
		if !errors.Is(err, engine.ErrNotFound) || engine.IsHostFault(err) {
			t.Fatalf("CopyFrom(%s, %s) = %v; want ErrNotFound, not a host fault", tc.id, tc.path, err)
		}
		_, err = c.StatPath(ctx, tc.id, tc.path)
		if !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("StatPath(%s, %s) = %v; want ErrNotFound", tc.id, tc.path, err)
		}
		wantClass(t, err, engine.ClassIgnored)
	}

	// CopyTo into a created container, then run it to read what landed.
	id2, err := c.Create(ctx, engine.ContainerSpec{Name: uniq(t), Image: enginetest.TestImage(t).Ref,
		Cmd: []string{"cat", "/tmp/in/x.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), id2) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "in/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "in/x.txt", Mode: 0o644, Size: 5})
	tw.Write([]byte("hello"))
	tw.Close()
	if err := c.CopyTo(ctx, id2, "/tmp", &buf); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx, id2); err != nil || code != 0 {
		t.Fatalf("wait = %d, %v", code, err)
	}
	out, _, _, err := c.Logs(ctx, id2, 1<<16)
	if err != nil || string(out) != "hello" {
		t.Fatalf("cat of the copied file = %q, %v", out, err)
	}

	// Into a directory that does not exist: not found, not a host fault.
	err = c.CopyTo(ctx, id2, "/no/such/dir", strings.NewReader(""))
	if !errors.Is(err, engine.ErrNotFound) || engine.IsHostFault(err) {
		t.Fatalf("CopyTo a missing dir = %v; want ErrNotFound, not a host fault", err)
	}
	// A failing reader is not the host's fault either.
	err = c.CopyTo(ctx, id2, "/tmp", io.MultiReader(bytes.NewReader(make([]byte, 512)), errReader{}))
	if err == nil || engine.IsHostFault(err) || !errors.Is(err, errBroken) {
		t.Fatalf("CopyTo with a broken reader = %v; want a non-host error wrapping the reader's", err)
	}
}

var errBroken = errors.New("broken reader")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// A copy from an engine that hangs mid-transfer fails at the inactivity
// deadline as a host fault, however long the copy was meant to take.
func TestCopyFromHungEngineIsHostFaultAtInactivityDeadline(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]
	c := newClient(t, e, "", engine.Timeouts{Archive: time.Second})
	ctx := context.Background()
	id := runToExit(t, c, testjob, "fill", "/out/big", "64MiB")
	rc, err := c.CopyFrom(ctx, id, "/out/big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := e.Hang(); err != nil {
		t.Fatal(err)
	}
	defer e.Resume()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	took := time.Since(start)
	if !engine.IsHostFault(err) {
		t.Fatalf("read from a hung engine = %v; want a host fault", err)
	}
	if took > 10*time.Second {
		t.Fatalf("read from a hung engine failed after %v; want about the 1s inactivity deadline", took)
	}
}
