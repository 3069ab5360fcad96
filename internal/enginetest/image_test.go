package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

func TestBuildImageIsDeterministic(t *testing.T) {
	ctx := context.Background()
	a := TestImage(t)
	b, err := BuildImage(ctx, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || !bytes.Equal(a.Tar, b.Tar) {
		t.Fatalf("two builds differ: %s vs %s", a.ID, b.ID)
	}
	if a.Ref != DefaultImageRef || !strings.HasPrefix(a.ID, "sha256:") || len(a.ID) != 71 {
		t.Errorf("Ref %q, ID %q", a.Ref, a.ID)
	}
	c, err := BuildImage(ctx, ImageOptions{Ref: "fusebox/other:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != a.ID {
		t.Errorf("the tag changed the image ID: %s vs %s", c.ID, a.ID)
	}
}

func TestBuildImageLayout(t *testing.T) {
	img := TestImage(t)
	files := map[string]bool{}
	var layer []byte
	tr := tar.NewReader(bytes.NewReader(img.Tar))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = true
		if strings.HasSuffix(h.Name, "/layer.tar") {
			layer, _ = io.ReadAll(tr)
		}
	}
	for _, want := range []string{"manifest.json", "repositories", strings.TrimPrefix(img.ID, "sha256:") + ".json"} {
		if !files[want] {
			t.Errorf("image tarball lacks %s (has %v)", want, files)
		}
	}
	type entry struct {
		typ  byte
		mode int64
		link string
	}
	got := map[string]entry{}
	var names []string
	tr = tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(imageEpoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want fixed", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		got[h.Name] = entry{h.Typeflag, h.Mode, h.Linkname}
		names = append(names, h.Name)
	}
	want := map[string]entry{
		"bin/busybox":                   {tar.TypeReg, 0o755, ""},
		"bin/sh":                        {tar.TypeSymlink, 0o777, "busybox"},
		"bin/sleep":                     {tar.TypeSymlink, 0o777, "busybox"},
		"usr/local/bin/fusebox-testjob": {tar.TypeReg, 0o755, ""},
		"tmp/":                          {tar.TypeDir, 0o1777, ""},
		"usr/local/bin/":                {tar.TypeDir, 0o755, ""},
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("layer entry %s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("layer entries not sorted: %s before %s", names[i-1], names[i])
		}
	}
}

func TestBuildImageRejectsDynamicBinary(t *testing.T) {
	const dynamic = "/bin/ls"
	if _, err := os.Stat(dynamic); err != nil {
		t.Skipf("no %s: %v", dynamic, err)
	}
	_, err := BuildImage(context.Background(), ImageOptions{Busybox: dynamic})
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("BuildImage with a dynamic busybox: err = %v, want dynamically linked", err)
	}
}

func TestBuildImageBadRef(t *testing.T) {
	for _, ref := range []string{"noTag", "repo:", ":tag", "repo:a/b"} {
		if _, err := BuildImage(context.Background(), ImageOptions{Ref: ref}); err == nil {
			t.Errorf("BuildImage(Ref %q) succeeded, want an error", ref)
		}
	}
}

func TestLoadImageAndRun(t *testing.T) {
	f := Shared(t, 1)
	e := f.Engines[0]
	img := TestImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Loading again is harmless and checks the ID again.
	if err := e.LoadImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := LoadImage(ctx, e.TCPHost(), img); err != nil {
		t.Fatal(err)
	}

	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	r, err := runJob(ctx, cli, img.Ref, "print", "hello", "stderr", "warn", "env", "PATH", "exit", "3")
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 3 || !strings.HasPrefix(r.Stdout, "hello\n/usr/local/sbin:") || r.Stderr != "warn\n" {
		t.Errorf("run = %+v, want exit 3, hello and PATH on stdout, warn on stderr", r)
	}

	// The default command is fusebox-testjob without steps.
	def, err := runCmd(ctx, cli, img.Ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Code != 2 || !strings.Contains(def.Stderr, "usage: fusebox-testjob") {
		t.Errorf("default command: %+v, want usage and exit 2", def)
	}

	// The busybox applets work, /tmp is writable.
	sh, err := runCmd(ctx, cli, img.Ref, []string{"sh", "-c", "echo hi > /tmp/x && cat /tmp/x && ls -ld /tmp"})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Code != 0 || !strings.HasPrefix(sh.Stdout, "hi\ndrwxrwxrwt") {
		t.Errorf("sh: %+v, want hi and a sticky /tmp", sh)
	}

	var best time.Duration
	for i := range 5 {
		r, err := runJob(ctx, cli, img.Ref, "exit", "0")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 || r.Took < best {
			best = r.Took
		}
	}
	t.Logf("container create+start+wait+logs+remove: best of 5 %v", best.Round(time.Millisecond))
}

// TestJobSignals checks how fusebox-testjob, as PID 1 of a container, ends
// on docker stop: hang exits 143 on SIGTERM, hang-ignore-term is killed
// (137) after the stop timeout.
func TestJobSignals(t *testing.T) {
	f := Shared(t, 1)
	e := f.Engines[0]
	img := TestImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, tc := range []struct {
		step string
		want int
	}{{"hang", 143}, {"hang-ignore-term", 137}} {
		id := startHanging(t, ctx, e, img.Ref, tc.step)
		timeout := 1
		if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ins.Container.State.ExitCode; got != tc.want {
			t.Errorf("%s: exit code after stop = %d, want %d", tc.step, got, tc.want)
		}
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
}
