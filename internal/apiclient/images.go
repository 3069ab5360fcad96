package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"fusebox/internal/api"
)

// ImageSelector picks the hosts of an image operation: those named and
// carrying every label. Zero: every host.
type ImageSelector struct {
	Hosts  []string
	Labels map[string]string
}

func (s ImageSelector) query() url.Values {
	q := url.Values{}
	for _, h := range s.Hosts {
		q.Add("host", h)
	}
	for k, v := range s.Labels {
		q.Add("label", k+"="+v)
	}
	return q
}

// Images lists the images of the selected hosts, by ID.
func (c *Client) Images(ctx context.Context, sel ImageSelector) (*api.ImageList, error) {
	var out api.ImageList
	if _, err := c.do(ctx, http.MethodGet, "/v1/images", sel.query(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoadImage sends a docker-save tarball to the server, which loads it onto
// the selected hosts; progress is called with each host's progress as it
// comes. The tarball is streamed, never held whole. It is not bounded by
// Client.Timeout: ctx bounds it.
func (c *Client) LoadImage(ctx context.Context, tarball io.Reader, sel ImageSelector, progress func(api.ImageProgress)) ([]api.ImageHostResult, error) {
	u := c.BaseURL + "/v1/images/load"
	if q := sel.query(); len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, tarball)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("Accept", "application/x-ndjson")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var l api.ImageLoadLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("apiclient: image load: the server's answer ended without results")
			}
			return nil, fmt.Errorf("apiclient: image load: reading the answer: %w", err)
		}
		switch {
		case l.Error != "":
			return nil, fmt.Errorf("image load: %s", l.Error)
		case l.Progress != nil:
			if progress != nil {
				progress(*l.Progress)
			}
		case l.Results != nil:
			return l.Results, nil
		}
	}
}

// PullImage asks the selected hosts to pull ref. Bounded by ctx only.
func (c *Client) PullImage(ctx context.Context, ref string, sel ImageSelector) ([]api.ImageHostResult, error) {
	var out api.ImageResults
	cc := *c
	cc.Timeout = -1
	if _, err := cc.do(ctx, http.MethodPost, "/v1/images/pull", nil, api.ImageRequest{Ref: ref, Hosts: sel.Hosts, Labels: sel.Labels}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// RemoveImage removes ref from the selected hosts.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool, sel ImageSelector) ([]api.ImageHostResult, error) {
	var out api.ImageResults
	if _, err := c.do(ctx, http.MethodPost, "/v1/images/remove", nil, api.ImageRequest{Ref: ref, Force: force, Hosts: sel.Hosts, Labels: sel.Labels}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}
