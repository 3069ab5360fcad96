package artifact

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// putPrefix names the temporary files of Puts in the artifacts' directory.
const putPrefix = ".put-"

// epoch is the mtime of every canonical entry.
var epoch = time.Unix(0, 0)

// entry is one entry of an artifact being put. A regular file's content is
// the spool's bytes [off, off+size).
type entry struct {
	typ       byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode      int64
	link      string // a symlink's target, as it was
	off, size int64
	implied   bool // a directory no entry named, made for what is in it
}

// Put reads a tar as the engine's archive API gives it for one path
// (entries named "<base>/..." for a directory, one entry "<base>" for
// anything else), stores its canonical tar (see the package doc) and
// returns its digest and size. Content already stored is not stored again;
// its digest is returned all the same. An archive over the limits returns
// an error wrapping ErrTooLarge and naming the limit; one with what an
// artifact may not hold wraps ErrRefused and names the entry.
func (s *Store) Put(ctx context.Context, tarStream io.Reader) (digest string, size int64, err error) {
	spool, err := os.CreateTemp(s.tmp, "spool-*")
	if err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	entries, err := s.read(ctx, tarStream, spool)
	if err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	return s.write(ctx, entries, spool)
}

// read spools the archive's files into spool and returns its entries by
// their canonical names.
func (s *Store) read(ctx context.Context, r io.Reader, spool *os.File) (map[string]*entry, error) {
	tr := tar.NewReader(bufio.NewReaderSize(ctxReader{ctx, r}, 256<<10))
	entries := map[string]*entry{}
	var base string
	var single bool // the copied path is not a directory: its one entry is named base
	var total int64 // bytes of file content
	buf := make([]byte, 256<<10)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return nil, err
		}
		first, rest, _ := strings.Cut(name, "/")
		if base == "" {
			base = first
		}
		if first != base {
			return nil, fmt.Errorf("entry %q: outside the copied path %q: %w", h.Name, base, ErrRefused)
		}
		if single {
			return nil, fmt.Errorf("entry %q: the copied path %q is not a directory: %w", h.Name, base, ErrRefused)
		}
		rel := rest
		if rest == "" { // the copied path itself
			if h.Typeflag == tar.TypeDir {
				if len(entries) > 0 {
					return nil, fmt.Errorf("entry %q: the copied directory comes after what is in it: %w", h.Name, ErrRefused)
				}
				continue
			}
			if len(entries) > 0 {
				return nil, fmt.Errorf("entry %q: not a directory, with entries under it: %w", h.Name, ErrRefused)
			}
			single, rel = true, base
		}
		if len(entries) >= s.maxEntries {
			return nil, fmt.Errorf("more than %d entries (the limit per artifact, max_entries): %w", s.maxEntries, ErrTooLarge)
		}
		e := &entry{mode: h.Mode & 0o7777}
		switch h.Typeflag {
		case tar.TypeReg, '\x00': // '\x00': the old spelling of a regular file
			if total += h.Size; total > s.maxBytes {
				return nil, fmt.Errorf("more than %d bytes (the limit per artifact, max_bytes): %w", s.maxBytes, ErrTooLarge)
			}
			off, err := spool.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if _, err := io.CopyBuffer(spool, io.LimitReader(tr, h.Size), buf); err != nil {
				return nil, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			e.typ, e.off, e.size = tar.TypeReg, off, h.Size
		case tar.TypeDir:
			e.typ = tar.TypeDir
		case tar.TypeSymlink:
			if h.Linkname == "" || strings.IndexByte(h.Linkname, 0) >= 0 {
				return nil, fmt.Errorf("entry %q: symlink with an empty or invalid target: %w", h.Name, ErrRefused)
			}
			e.typ, e.mode, e.link = tar.TypeSymlink, 0o777, h.Linkname
		case tar.TypeLink:
			// A hard link to a file earlier in the archive: a copy of it.
			target, err := cleanName(h.Linkname)
			if err != nil {
				return nil, err
			}
			tfirst, trel, _ := strings.Cut(target, "/")
			t := entries[trel]
			if tfirst != base || t == nil || t.typ != tar.TypeReg {
				return nil, fmt.Errorf("entry %q: hard link to %q, not a file earlier in the archive: %w", h.Name, h.Linkname, ErrRefused)
			}
			if total += t.size; total > s.maxBytes {
				return nil, fmt.Errorf("more than %d bytes (the limit per artifact, max_bytes): %w", s.maxBytes, ErrTooLarge)
			}
			cp := *t
			e = &cp
		default:
			return nil, fmt.Errorf("entry %q: %s: only regular files, directories and symlinks can be artifacts: %w",
				h.Name, typeName(h.Typeflag), ErrRefused)
		}
		if err := addEntry(entries, rel, e, h.Name); err != nil {
			return nil, err
		}
	}
	if base == "" {
		return nil, fmt.Errorf("the archive is empty: %w", ErrRefused)
	}
	return entries, nil
}

// addEntry adds e as rel, and the directories above it that no entry named
// yet; rel must not be beneath anything but directories.
func addEntry(entries map[string]*entry, rel string, e *entry, name string) error {
	if old, ok := entries[rel]; ok {
		if !(old.implied && e.typ == tar.TypeDir) {
			return fmt.Errorf("entry %q: named twice: %w", name, ErrRefused)
		}
	}
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		p, ok := entries[dir]
		if !ok {
			entries[dir] = &entry{typ: tar.TypeDir, mode: 0o755, implied: true}
			continue
		}
		if p.typ != tar.TypeDir {
			return fmt.Errorf("entry %q: beneath %q, which is not a directory (it would land outside the copied path): %w", name, dir, ErrRefused)
		}
	}
	entries[rel] = e
	return nil
}

// write writes the canonical tar of entries through sha256 into a
// temporary file of the store and renames it to its digest.
func (s *Store) write(ctx context.Context, entries map[string]*entry, spool *os.File) (digest string, size int64, err error) {
	f, err := os.CreateTemp(s.dir, putPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h), max: s.maxBytes}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if err := writeCanonical(ctx, bw, entries, spool); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	final := filepath.Join(s.dir, strings.TrimPrefix(digest, "sha256:"))
	now := time.Now()
	if err := os.Chtimes(final, now, now); err == nil {
		// Stored already: keep that one, and count this Put as a use (GC
		// goes by the time of the last Put).
		f.Close()
		os.Remove(f.Name())
		return digest, cw.n, nil
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return digest, cw.n, nil
}

// writeCanonical writes entries as a tar sorted by name.
func writeCanonical(ctx context.Context, w io.Writer, entries map[string]*entry, spool *os.File) error {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tar.NewWriter(w)
	buf := make([]byte, 256<<10)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := entries[n]
		hdr := &tar.Header{Typeflag: e.typ, Name: n, Mode: e.mode, ModTime: epoch}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = e.link
		case tar.TypeReg:
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("entry %q: %w", n, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.CopyBuffer(tw, io.NewSectionReader(spool, e.off, e.size), buf); err != nil {
				return fmt.Errorf("entry %q: %w", n, err)
			}
		}
	}
	return tw.Close()
}

// cleanName returns an archive entry's name without its trailing slash, or
// an error if it could land outside the copied path.
func cleanName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	if n == "" || strings.HasPrefix(n, "/") || strings.IndexByte(n, 0) >= 0 {
		return "", fmt.Errorf("entry %q: not a relative name: %w", name, ErrRefused)
	}
	c := path.Clean(n)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q: escapes the copied path: %w", name, ErrRefused)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: escapes the copied path: %w", name, ErrRefused)
		}
	}
	return c, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	case tar.TypeFifo:
		return "a fifo"
	case tar.TypeGNUSparse:
		return "a sparse file"
	}
	return fmt.Sprintf("an entry of type %q", t)
}

// countWriter counts what passes and fails past max bytes.
type countWriter struct {
	w   io.Writer
	n   int64
	max int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.max {
		return 0, fmt.Errorf("canonical tar over %d bytes (the limit per artifact, max_bytes): %w", c.max, ErrTooLarge)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
