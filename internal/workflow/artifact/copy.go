package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"fusebox/internal/engine"
	"fusebox/internal/job"
)

// CopyOut copies each of paths out of container containerID (exited, not
// yet removed) into the store, in order, and returns them as outputs. A path
// that does not exist in the container returns an error wrapping
// ErrMissingOutput and naming the path (the job's own failure); an engine
// error is returned wrapped as it came (engine.IsHostFault tells whose it
// is).
func (s *Store) CopyOut(ctx context.Context, c *engine.Client, containerID string, paths []string) ([]job.Output, error) {
	outs := make([]job.Output, 0, len(paths))
	for _, p := range paths {
		rc, err := c.CopyFrom(ctx, containerID, p)
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				// The path, or the whole container? Only the first is the
				// job's doing.
				if _, ierr := c.Inspect(ctx, containerID); ierr == nil {
					return nil, fmt.Errorf("artifact: output %s: %w (%w)", p, ErrMissingOutput, err)
				}
			}
			return nil, fmt.Errorf("artifact: output %s: %w", p, err)
		}
		digest, size, err := s.Put(ctx, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("artifact: output %s: %w", p, err)
		}
		outs = append(outs, job.Output{Path: p, Digest: digest, Size: size})
	}
	return outs, nil
}

// CopyIn unpacks each input's artifact into container containerID (created,
// not yet started) under input.Path, which need not exist: the directories
// missing on the way are created (mode 0755), and those that exist are left
// as they are. An unknown digest returns an error wrapping
// ErrUnknownArtifact, before anything is copied for that input.
func (s *Store) CopyIn(ctx context.Context, c *engine.Client, containerID string, inputs []job.Input) error {
	for i, in := range inputs {
		if err := s.copyIn(ctx, c, containerID, in); err != nil {
			return fmt.Errorf("artifact: inputs[%d] (%s at %s): %w", i, in.Digest, in.Path, err)
		}
	}
	return nil
}

func (s *Store) copyIn(ctx context.Context, c *engine.Client, id string, in job.Input) error {
	if !path.IsAbs(in.Path) {
		return fmt.Errorf("path %q: must be absolute", in.Path)
	}
	f, _, err := s.Open(in.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	// Unpack into the deepest directory on the way that exists, and
	// create the rest with the archive: so no existing directory's mode or
	// times change (an entry for /tmp would make it 0755).
	dest := path.Clean(in.Path)
	var missing []string
	for {
		_, err := c.StatPath(ctx, id, dest)
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrNotFound) || dest == "/" {
			return err
		}
		missing = append([]string{path.Base(dest)}, missing...)
		dest = path.Dir(dest)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := relocate(pw, f, missing)
		pw.CloseWithError(err)
		done <- err
	}()
	err = c.CopyTo(ctx, id, dest, pr)
	pr.CloseWithError(errors.New("copy ended")) // unblocks relocate if the engine stopped reading
	if rerr := <-done; err == nil && rerr != nil {
		err = rerr
	}
	return err
}

// relocate writes the canonical tar read from r to w with its entries
// under the directories prefix (each of which gets an entry of its own).
func relocate(w io.Writer, r io.Reader, prefix []string) error {
	tw := tar.NewWriter(w)
	for i := range prefix {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(prefix[:i+1], "/") + "/", Mode: 0o755, ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	under := strings.Join(prefix, "/")
	tr := tar.NewReader(r)
	buf := make([]byte, 256<<10)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the stored artifact: %w", err)
		}
		// A fresh header: only what the canonical tar carries.
		hdr := &tar.Header{Typeflag: h.Typeflag, Name: path.Join(under, h.Name), Mode: h.Mode, ModTime: epoch,
			Linkname: h.Linkname, Size: h.Size}
		if h.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(tw, tr, buf); err != nil {
			return fmt.Errorf("reading the stored artifact: %w", err)
		}
	}
	return tw.Close()
}
