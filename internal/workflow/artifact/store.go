package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fusebox/internal/job"
)

// Defaults of Options.
const (
	MaxBytesDefault   = 1 << 30 // per artifact: the size of its canonical tar
	MaxEntriesDefault = 1 << 18 // per artifact: files, directories and symlinks
)

// Options tune a Store. The zero value of a field means its default.
type Options struct {
	// MaxBytes bounds one artifact's canonical tar (default
	// MaxBytesDefault). A larger one is refused with ErrTooLarge.
	MaxBytes int64
	// MaxEntries bounds the number of entries of one artifact (default
	// MaxEntriesDefault): their headers are what Put holds in memory.
	MaxEntries int
	// TempDir is where an incoming archive's contents are spooled while
	// it is made canonical (default <dir>/tmp).
	TempDir string
}

// Sentinel errors, for errors.Is.
var (
	// ErrUnknownArtifact: no artifact with that digest is stored.
	ErrUnknownArtifact = errors.New("unknown artifact")
	// ErrMissingOutput: a declared output path does not exist in the
	// container (the job's own failure).
	ErrMissingOutput = errors.New("declared output is missing")
	// ErrTooLarge: an artifact is over Options.MaxBytes or MaxEntries.
	ErrTooLarge = errors.New("artifact too large")
	// ErrRefused: an archive holds what an artifact may not (a device, a
	// fifo, an entry that escapes the copied path).
	ErrRefused = errors.New("archive refused")
)

// Store is a content-addressed store of artifacts in a directory.
type Store struct {
	dir        string // the artifacts: <root>/sha256
	tmp        string
	maxBytes   int64
	maxEntries int
}

// Entry is one stored artifact.
type Entry struct {
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"` // when it was last put
}

// Open opens (creating it if needed) the store in dir.
func Open(dir string, opt Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("artifact: store directory is required")
	}
	if opt.MaxBytes < 0 {
		return nil, fmt.Errorf("artifact: max_bytes %d: must not be negative", opt.MaxBytes)
	}
	if opt.MaxEntries < 0 {
		return nil, fmt.Errorf("artifact: max_entries %d: must not be negative", opt.MaxEntries)
	}
	s := &Store{dir: filepath.Join(dir, "sha256"), tmp: opt.TempDir, maxBytes: opt.MaxBytes, maxEntries: opt.MaxEntries}
	if s.tmp == "" {
		s.tmp = filepath.Join(dir, "tmp")
	}
	if s.maxBytes == 0 {
		s.maxBytes = MaxBytesDefault
	}
	if s.maxEntries == 0 {
		s.maxEntries = MaxEntriesDefault
	}
	for _, d := range []string{s.dir, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("artifact: open store: %w", err)
		}
	}
	return s, nil
}

// path returns the file of digest, or an error naming the digest if it is
// not one.
func (s *Store) path(digest string) (string, error) {
	if !job.ValidDigest(digest) {
		return "", fmt.Errorf("artifact: digest %q: want \"sha256:\" and 64 lower-case hex digits", digest)
	}
	return filepath.Join(s.dir, strings.TrimPrefix(digest, "sha256:")), nil
}

// Open returns the canonical tar of the artifact and its size. The caller
// must close it. An unknown digest returns an error wrapping
// ErrUnknownArtifact.
func (s *Store) Open(digest string) (io.ReadCloser, int64, error) {
	p, err := s.path(digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("artifact %s: %w", digest, ErrUnknownArtifact)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("artifact %s: %w", digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("artifact %s: %w", digest, err)
	}
	return f, st.Size(), nil
}

// Has reports whether the artifact is stored.
func (s *Store) Has(digest string) bool {
	p, err := s.path(digest)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Delete removes the artifact. Deleting one that is not stored is not an
// error.
func (s *Store) Delete(digest string) error {
	p, err := s.path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifact %s: delete: %w", digest, err)
	}
	return nil
}

// List returns every stored artifact, by digest.
func (s *Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("artifact: list: %w", err)
	}
	var out []Entry
	for _, de := range des {
		d := "sha256:" + de.Name()
		if !de.Type().IsRegular() || !job.ValidDigest(d) {
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("artifact: list: %w", err)
		}
		out = append(out, Entry{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Digest, b.Digest) })
	return out, nil
}

// GC removes every artifact last put before olderThan that keep does not
// keep (keep nil keeps nothing), and the leftovers of Puts that never
// finished (a crash) from before olderThan. It returns how many artifacts
// it removed and the bytes it freed (leftovers included).
func (s *Store) GC(keep func(digest string) bool, olderThan time.Time) (removed int, freed int64, err error) {
	list, err := s.List()
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, e := range list {
		if !e.ModTime.Before(olderThan) || (keep != nil && keep(e.Digest)) {
			continue
		}
		if err := s.Delete(e.Digest); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
		freed += e.Size
	}
	for _, dir := range []string{s.dir, s.tmp} {
		n, err := removeLeftovers(dir, dir == s.tmp, olderThan)
		freed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, freed, fmt.Errorf("artifact: gc: %w", err)
	}
	return removed, freed, nil
}

// removeLeftovers removes files of unfinished Puts in dir (all of them in
// the temp dir, those named .put-* in the artifacts' dir) from before
// olderThan.
func removeLeftovers(dir string, all bool, olderThan time.Time) (int64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var freed int64
	var errs []error
	for _, de := range des {
		if !all && !strings.HasPrefix(de.Name(), putPrefix) {
			continue
		}
		fi, err := de.Info()
		if err != nil || !fi.ModTime().Before(olderThan) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		freed += fi.Size()
	}
	return freed, errors.Join(errs...)
}
