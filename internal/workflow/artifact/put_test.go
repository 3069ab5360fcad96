package artifact_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fusebox/internal/workflow/artifact"
)

// ent is one entry of a test archive.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string, mode int64) ent {
	return ent{name: name, body: body, typ: tar.TypeReg, mode: mode}
}
func dir(name string, mode int64) ent { return ent{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, to string) ent {
	return ent{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}

// makeTar writes ents as a tar, with the owner, names and time given.
func makeTar(t *testing.T, ents []ent, uid int, uname string, mtime time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)),
			Uid: uid, Gid: uid, Uname: uname, Gname: uname, ModTime: mtime, AccessTime: mtime, ChangeTime: mtime,
			Format: tar.FormatPAX, PAXRecords: map[string]string{"SCHILY.xattr.user.x": uname}}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(t *testing.T, opt artifact.Options) *artifact.Store {
	t.Helper()
	s, err := artifact.Open(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *artifact.Store, b []byte) (string, int64) {
	t.Helper()
	d, n, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d, n
}

// stored reads an artifact's canonical tar back.
func stored(t *testing.T, s *artifact.Store, digest string) []*tar.Header {
	t.Helper()
	rc, _, err := s.Open(digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hs []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

func TestCanonicalIgnoresOrderTimesAndOwners(t *testing.T) {
	s := open(t, artifact.Options{})
	a := []ent{dir("out/", 0o755), dir("out/a/", 0o750), file("out/a/b.txt", "bee", 0o644),
		file("out/c.sh", "#!/bin/sh", 0o4755), symlink("out/link", "a/b.txt")}
	b := []ent{dir("out/", 0o700), symlink("out/link", "a/b.txt"), file("out/c.sh", "#!/bin/sh", 0o4755),
		dir("out/a/", 0o750), file("out/a/b.txt", "bee", 0o644)}
	d1, n1 := put(t, s, makeTar(t, a, 1000, "alice", time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)))
	d2, n2 := put(t, s, makeTar(t, b, 0, "root", time.Now()))
	if d1 != d2 || n1 != n2 {
		t.Fatalf("same content, different digests: %s (%d) and %s (%d)", d1, n1, d2, n2)
	}
	// The copied directory's name is not content either.
	renamed := makeTar(t, []ent{dir("results/", 0o755), dir("results/a/", 0o750), file("results/a/b.txt", "bee", 0o644),
		file("results/c.sh", "#!/bin/sh", 0o4755), symlink("results/link", "a/b.txt")}, 5, "x", time.Now())
	if d3, _ := put(t, s, renamed); d3 != d1 {
		t.Fatalf("a directory copied from another path has digest %s, want %s", d3, d1)
	}
	// A different mode is different content.
	a[2].mode = 0o600
	if d4, _ := put(t, s, makeTar(t, a, 0, "", time.Now())); d4 == d1 {
		t.Fatal("a file's mode changed and the digest did not")
	}

	hs := stored(t, s, d1)
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) || len(h.PAXRecords) != 0 {
			t.Errorf("entry %s: uid %d gid %d uname %q gname %q mtime %v pax %v: want all zero", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime, h.PAXRecords)
		}
	}
	if got, want := strings.Join(names, " "), "a/ a/b.txt c.sh link"; got != want {
		t.Fatalf("canonical entries %q, want %q", got, want)
	}
	if hs[0].Mode != 0o750 || hs[2].Mode != 0o4755 || hs[3].Linkname != "a/b.txt" {
		t.Fatalf("modes or link not kept: %+v", hs)
	}

	entries, err := s.List()
	if err != nil || len(entries) != 2 {
		t.Fatalf("List = %+v, %v; want 2 artifacts (the same content stored once)", entries, err)
	}
}

func TestCanonicalSingleFile(t *testing.T) {
	s := open(t, artifact.Options{})
	d1, _ := put(t, s, makeTar(t, []ent{file("report.txt", "ok", 0o644)}, 7, "u", time.Now()))
	d2, _ := put(t, s, makeTar(t, []ent{file("report.txt", "ok", 0o644)}, 0, "", time.Unix(99, 0)))
	if d1 != d2 {
		t.Fatal("same file, different digests")
	}
	if hs := stored(t, s, d1); len(hs) != 1 || hs[0].Name != "report.txt" || hs[0].Size != 2 {
		t.Fatalf("canonical tar of a file = %+v", hs)
	}
	// A hard link is a copy of its file.
	withLink := []ent{dir("o/", 0o755), file("o/a", "same", 0o644), {name: "o/b", link: "o/a", typ: tar.TypeLink}}
	copies := []ent{dir("o/", 0o755), file("o/a", "same", 0o644), file("o/b", "same", 0o644)}
	if d3, d4 := mustPut(t, s, withLink), mustPut(t, s, copies); d3 != d4 {
		t.Fatal("a hard link and a copy of its file differ")
	}
}

// An archive in canonical order is written as it is read; one out of order
// (here after a file and a hard link to it were written) or missing a
// directory is rewritten: the same content has the same digest either way.
func TestCanonicalStreamedAndRewrittenAgree(t *testing.T) {
	s := open(t, artifact.Options{})
	inOrder := []ent{dir("o/", 0o755), file("o/0", "zero", 0o644), file("o/a", "same", 0o644), file("o/b", "same", 0o644),
		dir("o/d/", 0o755), file("o/d/y", "why", 0o600), file("o/d-e", "dash", 0o644)}
	late := []ent{dir("o/", 0o755), file("o/a", "same", 0o644), {name: "o/b", link: "o/a", typ: tar.TypeLink},
		file("o/0", "zero", 0o644), file("o/d-e", "dash", 0o644), file("o/d/y", "why", 0o600), dir("o/d/", 0o755)}
	noDirs := []ent{file("o/0", "zero", 0o644), file("o/a", "same", 0o644), file("o/b", "same", 0o644),
		file("o/d/y", "why", 0o600), file("o/d-e", "dash", 0o644)}
	d1, d2, d3 := mustPut(t, s, inOrder), mustPut(t, s, late), mustPut(t, s, noDirs)
	if d1 != d2 || d1 != d3 {
		t.Fatalf("digests %s, %s, %s: want one", d1, d2, d3)
	}
	var names []string
	for _, h := range stored(t, s, d1) {
		names = append(names, h.Name)
	}
	// A directory's entries right after it: "d/y" before "d-e".
	if got, want := strings.Join(names, " "), "0 a b d/ d/y d-e"; got != want {
		t.Fatalf("canonical order %q, want %q", got, want)
	}
}

func mustPut(t *testing.T, s *artifact.Store, ents []ent) string {
	d, _ := put(t, s, makeTar(t, ents, 0, "", time.Now()))
	return d
}

func TestPutRefuses(t *testing.T) {
	s := open(t, artifact.Options{MaxBytes: 4096})
	tests := []struct {
		name string
		ents []ent
		want error
		text string
	}{
		{"dotdot", []ent{dir("out/", 0o755), file("out/../../etc/passwd", "x", 0o644)}, artifact.ErrRefused, "escapes"},
		{"absolute", []ent{file("/etc/passwd", "x", 0o644)}, artifact.ErrRefused, "not a relative name"},
		{"other root", []ent{dir("out/", 0o755), file("other/x", "x", 0o644)}, artifact.ErrRefused, "outside the copied path"},
		{"beneath a symlink", []ent{dir("out/", 0o755), symlink("out/l", "/etc"), file("out/l/passwd", "x", 0o644)}, artifact.ErrRefused, "not a directory"},
		{"beneath a file", []ent{dir("out/", 0o755), file("out/f", "x", 0o644), file("out/f/g", "x", 0o644)}, artifact.ErrRefused, "not a directory"},
		{"char device", []ent{dir("out/", 0o755), {name: "out/null", typ: tar.TypeChar, mode: 0o666}}, artifact.ErrRefused, "character device"},
		{"block device", []ent{dir("out/", 0o755), {name: "out/sda", typ: tar.TypeBlock, mode: 0o660}}, artifact.ErrRefused, "block device"},
		{"fifo", []ent{dir("out/", 0o755), {name: "out/p", typ: tar.TypeFifo, mode: 0o644}}, artifact.ErrRefused, "fifo"},
		{"dangling hard link", []ent{dir("out/", 0o755), {name: "out/h", link: "/etc/shadow", typ: tar.TypeLink}}, artifact.ErrRefused, "not a relative name"},
		{"twice", []ent{dir("out/", 0o755), file("out/a", "x", 0o644), file("out/a", "y", 0o644)}, artifact.ErrRefused, "named twice"},
		{"too large", []ent{dir("out/", 0o755), file("out/big", strings.Repeat("x", 5000), 0o644)}, artifact.ErrTooLarge, "4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Put(context.Background(), bytes.NewReader(makeTar(t, tt.ents, 0, "", time.Now())))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Put = %v; want %v containing %q", err, tt.want, tt.text)
			}
		})
	}
	if entries, _ := s.List(); len(entries) != 0 {
		t.Fatalf("refused archives left artifacts: %+v", entries)
	}
	if _, _, err := s.Put(context.Background(), strings.NewReader("not a tar at all, just some text that is long enough")); err == nil {
		t.Fatal("Put of garbage succeeded")
	}
}

func TestOpenHasDeleteGC(t *testing.T) {
	dir := t.TempDir()
	s, err := artifact.Open(dir, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d1 := mustPut(t, s, []ent{file("a", "1", 0o644)})
	d2 := mustPut(t, s, []ent{file("b", "2", 0o644)})
	if !s.Has(d1) || !s.Has(d2) || s.Has("sha256:"+strings.Repeat("0", 64)) || s.Has("nope") {
		t.Fatal("Has is wrong")
	}
	unknown := "sha256:" + strings.Repeat("ab", 32)
	if _, _, err := s.Open(unknown); !errors.Is(err, artifact.ErrUnknownArtifact) {
		t.Fatalf("Open(unknown) = %v, want ErrUnknownArtifact", err)
	}
	if _, _, err := s.Open("sha256:XYZ"); err == nil || !strings.Contains(err.Error(), "64 lower-case hex") {
		t.Fatalf("Open(bad digest) = %v", err)
	}
	if err := s.Delete(unknown); err != nil {
		t.Fatalf("Delete(unknown) = %v, want nil", err)
	}
	// A leftover of a crashed Put, and GC keeping d2.
	leftover := filepath.Join(dir, "tmp", "spool-crashed")
	if err := os.WriteFile(leftover, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if removed, _, err := s.GC(nil, time.Now().Add(-time.Hour)); err != nil || removed != 0 {
		t.Fatalf("GC of nothing old = %d, %v", removed, err)
	}
	removed, freed, err := s.GC(func(d string) bool { return d == d2 }, time.Now().Add(time.Minute))
	if err != nil || removed != 1 || freed <= 5 {
		t.Fatalf("GC = %d, %d, %v; want 1 removed, its bytes and the leftover's freed", removed, freed, err)
	}
	if s.Has(d1) || !s.Has(d2) {
		t.Fatal("GC removed the wrong artifact")
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover spool not removed: %v", err)
	}
	if err := s.Delete(d2); err != nil || s.Has(d2) {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := artifact.Open("", artifact.Options{}); err == nil {
		t.Fatal("Open with no directory succeeded")
	}
	if _, err := artifact.Open(dir, artifact.Options{MaxBytes: -1}); err == nil || !strings.Contains(err.Error(), "max_bytes") {
		t.Fatalf("Open with negative max bytes = %v", err)
	}
}
