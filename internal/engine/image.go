package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// ImageExists reports whether the host has the image ref (name:tag or ID).
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	err := c.call(ctx, "image inspect", c.timeouts.ImageInspect, func(ctx context.Context) error {
		_, err := c.api.ImageInspect(ctx, ref)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ImageID returns the ID (the "sha256:..." digest of its config) of the
// image ref on the host: what a container of ref would run. ErrNotFound if
// the host lacks it.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	var id string
	err := c.call(ctx, "image inspect", c.timeouts.ImageInspect, func(ctx context.Context) error {
		res, err := c.api.ImageInspect(ctx, ref)
		id = res.ID
		return err
	})
	return id, err
}

// ImageLoad loads an image tarball (docker save format) into the host,
// reading the engine's answer to the end and failing on an error in it.
func (c *Client) ImageLoad(ctx context.Context, tarball io.Reader) error {
	_, err := c.ImageLoadRefs(ctx, tarball)
	return err
}

// ImageLoadRefs is ImageLoad that also returns what the engine says it
// loaded ("name:tag", or an image ID for an untagged image). The tarball
// is streamed to the engine as it is read, never held whole. An error
// reading tarball (the caller's source: a file, a pipe from another host)
// is ignored, not the host's fault: the engine only saw its input end.
func (c *Client) ImageLoadRefs(ctx context.Context, tarball io.Reader) ([]string, error) {
	var loaded []string
	src := &sourceReader{r: tarball, host: c.name}
	err := c.call(ctx, "image load", c.timeouts.ImageLoad, func(ctx context.Context) error {
		res, err := c.api.ImageLoad(ctx, src, client.ImageLoadWithQuiet(false))
		if err != nil {
			return src.blame(err)
		}
		defer res.Close()
		loaded, err = readLoadStream(res)
		var e *Error
		if errors.As(err, &e) {
			e.Host = c.name
		}
		return src.blame(err)
	})
	return loaded, err
}

// sourceReader remembers the error of the reader it wraps, so that a call
// fed by it can tell the source's failure from the engine's.
type sourceReader struct {
	r    io.Reader
	host string
	err  error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// blame returns err as ignored (wrapping ErrSource) when the source
// failed: the engine is not at fault for an input that broke off.
func (s *sourceReader) blame(err error) error {
	if err == nil || s.err == nil {
		return err
	}
	return &Error{Host: s.host, Op: "image load", Class: ClassIgnored, Err: fmt.Errorf("%w: %w", ErrSource, s.err)}
}

// ErrSource is wrapped by an image load or save that failed because the
// other end, not this engine, broke off: the tarball's source (a load) or
// its destination (a save). It is ignored for this host's breaker.
var ErrSource = errors.New("the other end of the image stream failed")

// ImageSave writes the docker-save tarball of refs (names or IDs) to w as
// the engine streams it, within the ImageLoad deadline. A failure writing
// to w (the destination of a transfer) is ignored, wrapping ErrSource; a
// stream from the engine that breaks off is the host's fault; an image the
// host lacks is ErrNotFound.
func (c *Client) ImageSave(ctx context.Context, refs []string, w io.Writer) (int64, error) {
	var n int64
	dst := &sinkWriter{w: w}
	err := c.call(ctx, "image save", c.timeouts.ImageLoad, func(ctx context.Context) error {
		res, err := c.api.ImageSave(ctx, refs)
		if err != nil {
			return err
		}
		defer res.Close()
		n, err = io.Copy(dst, res)
		if err != nil && dst.err != nil {
			return &Error{Host: c.name, Op: "image save", Class: ClassIgnored, Err: fmt.Errorf("%w: %w", ErrSource, dst.err)}
		}
		if err != nil {
			return fmt.Errorf("save stream broke off after %d bytes: %w", n, err)
		}
		return nil
	})
	return n, err
}

// sinkWriter remembers the error of the writer it wraps.
type sinkWriter struct {
	w   io.Writer
	err error
}

func (s *sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// ImageSummary is one image on a host.
type ImageSummary struct {
	ID      string   // "sha256:..."
	Tags    []string // "name:tag"; none for an untagged image
	Digests []string // "name@sha256:..." for a pulled image
	Size    int64    // bytes
	Created time.Time
}

// ImageList lists the host's images (top-level ones: no intermediate
// layers).
func (c *Client) ImageList(ctx context.Context) ([]ImageSummary, error) {
	var out []ImageSummary
	err := c.call(ctx, "image list", c.timeouts.List, func(ctx context.Context) error {
		res, err := c.api.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return err
		}
		out = make([]ImageSummary, 0, len(res.Items))
		for _, it := range res.Items {
			var tags []string
			for _, t := range it.RepoTags {
				if t != "<none>:<none>" {
					tags = append(tags, t)
				}
			}
			var digests []string
			for _, d := range it.RepoDigests {
				if d != "<none>@<none>" {
					digests = append(digests, d)
				}
			}
			out = append(out, ImageSummary{ID: it.ID, Tags: tags, Digests: digests, Size: it.Size, Created: time.Unix(it.Created, 0).UTC()})
		}
		return nil
	})
	return out, err
}

// ImageRemove removes ref (a tag: only that tag goes while the image has
// others; an ID: the image). force also removes an image that stopped
// containers use or that has several tags. It returns what the engine
// untagged and deleted. ErrNotFound (a job fault) if the host lacks it; a
// conflict (the image in use) is a job fault with the engine's message.
func (c *Client) ImageRemove(ctx context.Context, ref string, force bool) (untagged, deleted []string, err error) {
	err = c.call(ctx, "image remove", c.timeouts.Remove, func(ctx context.Context) error {
		res, err := c.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: force, PruneChildren: true})
		if cerrdefs.IsConflict(err) {
			// The engine refuses to remove an image in use: the caller's
			// to settle (force), not an expected name conflict.
			return &Error{Host: c.name, Op: "image remove", Class: ClassJob, Answered: true, Err: err}
		}
		if err != nil {
			return err
		}
		for _, it := range res.Items {
			if it.Untagged != "" {
				untagged = append(untagged, it.Untagged)
			}
			if it.Deleted != "" {
				deleted = append(deleted, it.Deleted)
			}
		}
		return nil
	})
	return untagged, deleted, err
}

// ErrRegistry is wrapped by a pull that failed on the registry's side
// while the engine did its part: the registry refused or failed (an error
// in the progress stream, a 5xx relayed by the engine), or the pull did
// not finish within its deadline while the engine still answers (a slow or
// stalled registry). It is a job fault, never the host's: a registry
// outage must not move a host's breaker.
var ErrRegistry = errors.New("the registry did not deliver the image")

// ImagePull pulls ref from its registry and reports success only once the
// engine's progress stream has ended normally. Classes:
//
//   - ref not a valid reference, or an image ID: job fault, nothing sent.
//   - the engine's answer is an error (4xx, or a 5xx it relays from the
//     registry), or an error message in the progress stream: job fault
//     (ErrRegistry for the latter two). The host did its part.
//   - the caller cancelled or its own deadline passed: ignored.
//   - the pull's own deadline (Timeouts.ImagePull) passed with the caller
//     still waiting: the engine is pinged; if it answers, the registry was
//     too slow (job fault, ErrRegistry); if not, the host is (host fault).
//   - the connection to the engine broke mid-stream (EOF, reset: the
//     daemon died): host fault.
//
// In every error case the image may be absent; the caller must not record
// the host as having it.
func (c *Client) ImagePull(ctx context.Context, ref string) error {
	return c.ImagePullWith(ctx, ref, PullOptions{})
}

// PullOptions are the options of ImagePullWith.
type PullOptions struct {
	// RegistryAuth is the credentials for the image's registry as the
	// engine takes them (base64url-encoded JSON of an auth config); empty:
	// anonymous. It is never logged or put in an error.
	RegistryAuth string
}

// ImagePullWith is ImagePull with options (the registry's credentials).
func (c *Client) ImagePullWith(ctx context.Context, ref string, o PullOptions) error {
	const op = "image pull"
	if strings.HasPrefix(ref, "sha256:") {
		// It would parse as the repository "sha256" on Docker Hub.
		return &Error{Host: c.name, Op: op, Class: ClassJob, NotSent: true, Err: fmt.Errorf("%q is an image ID: an ID cannot be pulled", ref)}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return &Error{Host: c.name, Op: op, Class: ClassJob, NotSent: true, Err: fmt.Errorf("invalid image reference %q: %w", ref, err)}
	}
	err := c.call(ctx, op, c.timeouts.ImagePull, func(ctx context.Context) error {
		res, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: o.RegistryAuth})
		if err != nil {
			return err
		}
		defer res.Close()
		return c.readPull(ctx, res)
	})
	var e *Error
	switch {
	case err == nil || !errors.As(err, &e) || e.Class != ClassHost:
		return err
	case e.Answered && (cerrdefs.IsInternal(err) || cerrdefs.IsUnavailable(err) || cerrdefs.IsUnknown(err)):
		// The engine answered with a 5xx before streaming: it could not
		// reach or use the registry.
		return &Error{Host: c.name, Op: op, Class: ClassJob, Answered: true, Err: errors.Join(ErrRegistry, e.Err)}
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		// Our deadline, not the caller's. A hung engine fails the ping
		// too; a live one was waiting for its registry.
		if perr := c.Ping(ctx); perr != nil {
			return err
		}
		return &Error{Host: c.name, Op: op, Class: ClassJob, Err: fmt.Errorf("%w: the pull did not finish within %v while the engine still answers: %w",
			ErrRegistry, c.timeouts.ImagePull, e.Err)}
	}
	return err
}

// readPull reads a pull's progress stream to its end. An error message in
// it is the registry's refusal (a job fault); a stream that breaks off is
// returned as is for classify (a broken connection: the daemon's fault; a
// done ctx: the deadline's or the caller's).
func (c *Client) readPull(ctx context.Context, r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		err := dec.Decode(&m)
		if ctx.Err() != nil {
			// Whatever the read says, the stream was cut off by ctx.
			return fmt.Errorf("pull cut off before it finished: %w", context.Cause(ctx))
		}
		if errors.Is(err, io.EOF) {
			return nil // the engine ended the stream: the pull is done
		}
		if err != nil {
			return fmt.Errorf("pull stream broke off: %w", err)
		}
		if m.Error != nil {
			return &Error{Host: c.name, Op: "image pull", Class: ClassJob, Answered: true,
				Err: fmt.Errorf("%w: engine reported: %s", ErrRegistry, m.Error.Message)}
		}
	}
}

// readLoadStream drains an image load's stream of JSON messages, returns
// what it says was loaded, and fails on the first error message in it.
func readLoadStream(r io.Reader) ([]string, error) {
	var loaded []string
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return loaded, nil
			}
			return loaded, err
		}
		if m.Error != nil {
			// The engine read the request and refused it: the input's fault.
			return loaded, &Error{Op: "image load", Class: ClassJob, Err: fmt.Errorf("engine reported: %s", m.Error.Message)}
		}
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if ref, ok := strings.CutPrefix(strings.TrimSpace(m.Stream), prefix); ok {
				loaded = append(loaded, ref)
			}
		}
	}
}
