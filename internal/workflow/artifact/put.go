package artifact

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
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
// the bytes [off, off+size) of src.
type entry struct {
	typ       byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode      int64
	link      string // a symlink's target, as it was
	src       *os.File
	off, size int64
	implied   bool // a directory no entry named, made for what is in it
}

// sortKey orders canonical entries: by name, component by component (a
// directory's entries right after it, each directory's in byte order), as
// a depth-first walk of sorted directories lists them, which is the order
// the engine's archive gives them in. '/' becomes NUL, below any byte a
// name may hold.
func sortKey(rel string) string { return strings.ReplaceAll(rel, "/", "\x00") }

// Put reads a tar as the engine's archive API gives it for one path
// (entries named "<base>/..." for a directory, one entry "<base>" for
// anything else), stores its canonical tar (see the package doc) and
// returns its digest and size. Content already stored is not stored again;
// its digest is returned all the same. An archive over the limits returns
// an error wrapping ErrTooLarge and naming the limit; one with what an
// artifact may not hold wraps ErrRefused and names the entry.
//
// An archive whose entries come in canonical order (the engine's do) is
// written as it is read, through sha256, into a temporary file that is then
// renamed: one pass. Otherwise, from the first entry out of order on, the
// contents are spooled to a temporary file and the canonical tar is
// written from both once the archive is read: a second pass.
func (s *Store) Put(ctx context.Context, tarStream io.Reader) (digest string, size int64, err error) {
	p := &putter{s: s}
	defer p.cleanup()
	if err := p.read(ctx, tarStream); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if !p.streaming {
		if err := p.rewrite(ctx); err != nil {
			return "", 0, fmt.Errorf("artifact: put: %w", err)
		}
	} else if err := p.out.tw.Close(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	return s.commit(p.out)
}

// putter is one Put in progress.
type putter struct {
	s         *Store
	entries   map[string]*entry
	streaming bool   // every entry so far came in canonical order and is written to out
	lastKey   string // sortKey of the last entry written
	out       *output
	spool     *os.File // contents of entries read once out of order
	old       *output  // the first output, kept as a source once out of order
}

// output is a canonical tar being written through sha256 to a temporary
// file of the store.
type output struct {
	f   *os.File
	h   hash.Hash
	cw  *countWriter
	bw  *bufio.Writer
	tw  *tar.Writer
	pos *countWriter // what passed to bw: the offset in f of the next byte
	// renamed: f is the artifact now, under its digest.
	renamed bool
}

func (s *Store) newOutput() (*output, error) {
	f, err := os.CreateTemp(s.dir, putPrefix+"*")
	if err != nil {
		return nil, err
	}
	o := &output{f: f, h: sha256.New()}
	o.cw = &countWriter{w: io.MultiWriter(f, o.h), max: s.maxBytes}
	o.bw = bufio.NewWriterSize(o.cw, 256<<10)
	o.pos = &countWriter{w: o.bw, max: math.MaxInt64}
	o.tw = tar.NewWriter(o.pos)
	return o, nil
}

func (o *output) remove() {
	o.f.Close()
	if !o.renamed {
		os.Remove(o.f.Name())
	}
}

func (p *putter) cleanup() {
	for _, o := range []*output{p.out, p.old} {
		if o != nil {
			o.remove()
		}
	}
	if p.spool != nil {
		p.spool.Close()
		os.Remove(p.spool.Name())
	}
}

// read reads the archive, writing it to out while it is in canonical
// order, and keeps its entries by their canonical names.
func (p *putter) read(ctx context.Context, r io.Reader) error {
	s := p.s
	out, err := s.newOutput()
	if err != nil {
		return err
	}
	p.out, p.streaming, p.entries = out, true, map[string]*entry{}
	tr := tar.NewReader(bufio.NewReaderSize(ctxReader{ctx, r}, 256<<10))
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
			return fmt.Errorf("reading the archive: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		first, rest, _ := strings.Cut(name, "/")
		if base == "" {
			base = first
		}
		if first != base {
			return fmt.Errorf("entry %q: outside the copied path %q: %w", h.Name, base, ErrRefused)
		}
		if single {
			return fmt.Errorf("entry %q: the copied path %q is not a directory: %w", h.Name, base, ErrRefused)
		}
		rel := rest
		if rest == "" { // the copied path itself
			if h.Typeflag == tar.TypeDir {
				if len(p.entries) > 0 {
					return fmt.Errorf("entry %q: the copied directory comes after what is in it: %w", h.Name, ErrRefused)
				}
				continue
			}
			if len(p.entries) > 0 {
				return fmt.Errorf("entry %q: not a directory, with entries under it: %w", h.Name, ErrRefused)
			}
			single, rel = true, base
		}
		if len(p.entries) >= s.maxEntries {
			return fmt.Errorf("more than %d entries (the limit per artifact, max_entries): %w", s.maxEntries, ErrTooLarge)
		}
		e := &entry{mode: h.Mode & 0o7777}
		var content io.Reader // a regular file's
		switch h.Typeflag {
		case tar.TypeReg, '\x00': // '\x00': the old spelling of a regular file
			e.typ, e.size, content = tar.TypeReg, h.Size, io.LimitReader(tr, h.Size)
		case tar.TypeDir:
			e.typ = tar.TypeDir
		case tar.TypeSymlink:
			if h.Linkname == "" || strings.IndexByte(h.Linkname, 0) >= 0 {
				return fmt.Errorf("entry %q: symlink with an empty or invalid target: %w", h.Name, ErrRefused)
			}
			e.typ, e.mode, e.link = tar.TypeSymlink, 0o777, h.Linkname
		case tar.TypeLink:
			// A hard link to a file earlier in the archive: a copy of it.
			target, err := cleanName(h.Linkname)
			if err != nil {
				return err
			}
			tfirst, trel, _ := strings.Cut(target, "/")
			t := p.entries[trel]
			if tfirst != base || t == nil || t.typ != tar.TypeReg {
				return fmt.Errorf("entry %q: hard link to %q, not a file earlier in the archive: %w", h.Name, h.Linkname, ErrRefused)
			}
			cp := *t
			e = &cp
			if err := p.out.bw.Flush(); err != nil { // so that its content can be read back
				return err
			}
			content = io.NewSectionReader(t.src, t.off, t.size)
		default:
			return fmt.Errorf("entry %q: %s: only regular files, directories and symlinks can be artifacts: %w",
				h.Name, typeName(h.Typeflag), ErrRefused)
		}
		if e.typ == tar.TypeReg {
			if total += e.size; total > s.maxBytes {
				return fmt.Errorf("more than %d bytes (the limit per artifact, max_bytes): %w", s.maxBytes, ErrTooLarge)
			}
		}
		implied, err := addEntry(p.entries, rel, e, h.Name)
		if err != nil {
			return err
		}
		key := sortKey(rel)
		if p.streaming && (implied || key <= p.lastKey) {
			p.streaming = false // from here on, spool
			if p.spool, err = os.CreateTemp(s.tmp, "spool-*"); err != nil {
				return err
			}
		}
		if p.streaming {
			p.lastKey = key
			if err := p.out.tw.WriteHeader(header(rel, e)); err != nil {
				return fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if content != nil {
				e.src, e.off = p.out.f, p.out.pos.n
				if _, err := io.CopyBuffer(p.out.tw, content, buf); err != nil {
					return fmt.Errorf("entry %q: %w", h.Name, err)
				}
			}
			continue
		}
		if content != nil {
			off, err := p.spool.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(p.spool, content, buf); err != nil {
				return fmt.Errorf("entry %q: %w", h.Name, err)
			}
			e.src, e.off = p.spool, off
		}
	}
	if base == "" {
		return fmt.Errorf("the archive is empty: %w", ErrRefused)
	}
	return nil
}

// addEntry adds e as rel, and the directories above it that no entry named
// yet (implied reports whether there were any); rel must not be beneath
// anything but directories.
func addEntry(entries map[string]*entry, rel string, e *entry, name string) (implied bool, err error) {
	if old, ok := entries[rel]; ok {
		if !(old.implied && e.typ == tar.TypeDir) {
			return false, fmt.Errorf("entry %q: named twice: %w", name, ErrRefused)
		}
	}
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		p, ok := entries[dir]
		if !ok {
			entries[dir] = &entry{typ: tar.TypeDir, mode: 0o755, implied: true}
			implied = true
			continue
		}
		if p.typ != tar.TypeDir {
			return false, fmt.Errorf("entry %q: beneath %q, which is not a directory (it would land outside the copied path): %w", name, dir, ErrRefused)
		}
	}
	entries[rel] = e
	return implied, nil
}

// header is the canonical tar header of e, named rel.
func header(rel string, e *entry) *tar.Header {
	hdr := &tar.Header{Typeflag: e.typ, Name: rel, Mode: e.mode, ModTime: epoch}
	switch e.typ {
	case tar.TypeDir:
		hdr.Name += "/"
	case tar.TypeSymlink:
		hdr.Linkname = e.link
	case tar.TypeReg:
		hdr.Size = e.size
	}
	return hdr
}

// rewrite writes the canonical tar of every entry to a new output, reading
// contents from the first output and the spool.
func (p *putter) rewrite(ctx context.Context) error {
	if err := p.out.bw.Flush(); err != nil {
		return err
	}
	p.old = p.out
	out, err := p.s.newOutput()
	if err != nil {
		return err
	}
	p.out = out
	names := make([]string, 0, len(p.entries))
	for n := range p.entries {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(sortKey(a), sortKey(b)) })
	buf := make([]byte, 256<<10)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := p.entries[n]
		if err := out.tw.WriteHeader(header(n, e)); err != nil {
			return fmt.Errorf("entry %q: %w", n, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.CopyBuffer(out.tw, io.NewSectionReader(e.src, e.off, e.size), buf); err != nil {
				return fmt.Errorf("entry %q: %w", n, err)
			}
		}
	}
	return out.tw.Close()
}

// commit flushes o, and renames it to its digest unless that is stored
// already.
func (s *Store) commit(o *output) (digest string, size int64, err error) {
	if err := o.bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	digest = "sha256:" + hex.EncodeToString(o.h.Sum(nil))
	final := filepath.Join(s.dir, strings.TrimPrefix(digest, "sha256:"))
	now := time.Now()
	if err := os.Chtimes(final, now, now); err == nil {
		// Stored already: keep that one, and count this Put as a use (GC
		// goes by the time of the last Put).
		return digest, o.cw.n, nil
	}
	if err := o.f.Sync(); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	if err := os.Rename(o.f.Name(), final); err != nil {
		return "", 0, fmt.Errorf("artifact: put: %w", err)
	}
	o.renamed = true
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return digest, o.cw.n, nil
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
