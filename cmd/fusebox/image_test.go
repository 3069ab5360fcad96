package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/enginetest"
	"fusebox/internal/server/servertest"
)

// serveOn runs a real fusebox server (internal/server, as fusebox serve
// does) on engines and returns the CLI's environment for it.
func serveOn(t *testing.T, engines *enginetest.Fleet) map[string]string {
	t.Helper()
	_, url := servertest.Start(t, engines, nil)
	return map[string]string{envServer: url}
}

// fusebox image load puts a docker save tarball on three engines (each
// reports the image's own ID), fusebox images shows it on every host, and
// a job pinned to each host runs it.
func TestImageLoadThenAJobOnEachHost(t *testing.T) {
	engines := enginetest.ForTest(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := enginetest.BuildImage(ctx, enginetest.ImageOptions{Ref: "fusebox/loaded:1", Variant: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "loaded.tar")
	if err := os.WriteFile(tarball, img.Tar, 0o644); err != nil {
		t.Fatal(err)
	}
	env := serveOn(t, engines)

	r := cli(t, env, "image", "load", tarball)
	if r.code != 0 || !strings.Contains(r.stdout, "3 of 3 hosts loaded") {
		t.Fatalf("image load: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, e := range engines.Engines {
		if !strings.Contains(r.stdout, e.Name+": ") || !strings.Contains(r.stdout, "(100%)") {
			t.Errorf("no plain progress line for %s:\n%s", e.Name, r.stdout)
		}
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		got, err := cli.ImageInspect(ctx, img.Ref)
		cli.Close()
		if err != nil || got.ID != img.ID {
			t.Errorf("%s: %s is %q (%v), want %s", e.Name, img.Ref, got.ID, err, img.ID)
		}
	}

	r = cli(t, env, "images", "-o", "json")
	var l api.ImageList
	if err := json.Unmarshal([]byte(r.stdout), &l); r.code != 0 || err != nil {
		t.Fatalf("images: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	found := false
	for _, im := range l.Images {
		if im.ID == img.ID {
			found = true
			if len(im.Hosts) != 3 || len(im.Missing) != 0 {
				t.Errorf("images: %+v, want on all three hosts", im)
			}
		}
	}
	if !found {
		t.Errorf("images does not list %s: %s", img.ID, r.stdout)
	}
	r = cli(t, env, "images")
	if r.code != 0 || !strings.Contains(r.stdout, img.Ref) || !strings.Contains(r.stdout, "MISSING ON") {
		t.Errorf("images table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, e := range engines.Engines {
		r := cli(t, env, "run", "--host", e.Name, "--pull", "never", img.Ref, "cat", "/variant")
		if r.code != 0 || strings.TrimSpace(r.stdout) != t.Name() {
			t.Errorf("run on %s: exit %d, stdout %q, stderr %q", e.Name, r.code, r.stdout, r.stderr)
		}
	}

	r = cli(t, env, "image", "rm", "-f", img.Ref, "--host", engines.Engines[2].Name)
	if r.code != 0 || !strings.Contains(r.stdout, "1 of 1 hosts removed") {
		t.Errorf("image rm: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "image", "load", tarball, "--host", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("image load --host nope: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
