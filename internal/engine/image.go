package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
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

// ImagePull pulls ref from its registry. When the daemon answers but cannot
// get the image (no such image, registry unreachable, access denied: a 4xx
// or 5xx, or an error in the progress stream) that is a job fault: the host
// did its part. A host that does not answer is a host fault as usual.
func (c *Client) ImagePull(ctx context.Context, ref string) error {
	err := c.call(ctx, "image pull", c.timeouts.ImagePull, func(ctx context.Context) error {
		res, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{})
		if err != nil {
			return err
		}
		defer res.Close()
		if err := res.Wait(ctx); err != nil && ctx.Err() == nil {
			return &Error{Host: c.name, Op: "image pull", Class: ClassJob, Err: err}
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) && e.Class == ClassHost && (cerrdefs.IsInternal(err) || cerrdefs.IsUnavailable(err) || cerrdefs.IsUnknown(err)) {
		return reclass(err, ClassJob)
	}
	return err
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
