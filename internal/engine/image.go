package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

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
	return c.call(ctx, "image load", c.timeouts.ImageLoad, func(ctx context.Context) error {
		res, err := c.api.ImageLoad(ctx, tarball, client.ImageLoadWithQuiet(true))
		if err != nil {
			return err
		}
		defer res.Close()
		err = readJSONStream(res)
		var e *Error
		if errors.As(err, &e) {
			e.Host = c.name
		}
		return err
	})
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
	const op = "image pull"
	if strings.HasPrefix(ref, "sha256:") {
		// It would parse as the repository "sha256" on Docker Hub.
		return &Error{Host: c.name, Op: op, Class: ClassJob, NotSent: true, Err: fmt.Errorf("%q is an image ID: an ID cannot be pulled", ref)}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return &Error{Host: c.name, Op: op, Class: ClassJob, NotSent: true, Err: fmt.Errorf("invalid image reference %q: %w", ref, err)}
	}
	err := c.call(ctx, op, c.timeouts.ImagePull, func(ctx context.Context) error {
		res, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{})
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

// readJSONStream drains a stream of JSON messages and returns the first
// error message in it.
func readJSONStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != nil {
			// The engine read the request and refused it: the input's fault.
			return &Error{Op: "image load", Class: ClassJob, Err: fmt.Errorf("engine reported: %s", m.Error.Message)}
		}
	}
}
