package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"fusebox/internal/fleet"
	"fusebox/internal/image"
)

// Images is what the API needs to get images onto the hosts
// (*image.Distributor is one).
type Images interface {
	Load(ctx context.Context, tarball io.Reader, sel image.Selector, progress func(image.Progress)) ([]image.HostResult, error)
	List(ctx context.Context, sel image.Selector) ([]image.Summary, map[string]string, error)
	PullAll(ctx context.Context, ref string, sel image.Selector) ([]image.HostResult, error)
	Remove(ctx context.Context, ref string, force bool, sel image.Selector) ([]image.HostResult, error)
}

// SetImages serves /v1/images from im. Without it those endpoints answer
// 404.
func (s *Server) SetImages(im Images) { s.images = im }

// ImageHostResult is what an image operation did on one host.
type ImageHostResult struct {
	Host   string        `json:"host"`
	Refs   []string      `json:"refs,omitempty"` // loaded, pulled, untagged or deleted
	Bytes  int64         `json:"bytes,omitempty"`
	Took   time.Duration `json:"took_ns"`
	Error  string        `json:"error,omitempty"`
	Status string        `json:"status"` // "ok", "failed", or "skipped" (host out)
}

// ImageProgress is how far an image load has got on one host.
type ImageProgress struct {
	Host  string `json:"host"`
	Sent  int64  `json:"sent"`
	Total int64  `json:"total"`
}

// ImageSummary is one image of GET /v1/images, by ID across the hosts.
type ImageSummary struct {
	ID      string    `json:"id"`
	Tags    []string  `json:"tags,omitempty"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created,omitzero"`
	Hosts   []string  `json:"hosts"`   // hosts that have it
	Missing []string  `json:"missing"` // hosts asked that lack it
}

func imageResultsOf(rs []image.HostResult) []ImageHostResult {
	out := make([]ImageHostResult, len(rs))
	for i, r := range rs {
		out[i] = ImageHostResult{Host: r.Host, Refs: r.Refs, Bytes: r.Bytes, Took: r.Took, Error: r.Error, Status: r.Status}
	}
	return out
}

func imageSummariesOf(ss []image.Summary) []ImageSummary {
	out := make([]ImageSummary, len(ss))
	for i, m := range ss {
		out[i] = ImageSummary{ID: m.ID, Tags: m.Tags, Size: m.Size, Created: m.Created, Hosts: m.Hosts, Missing: m.Missing}
	}
	return out
}

// ImageList is the body of GET /v1/images.
type ImageList struct {
	Images []ImageSummary `json:"images"`
	// Unreachable names the hosts that could not be asked, with why.
	Unreachable map[string]string `json:"unreachable,omitempty"`
}

// ImageLoadLine is one line of POST /v1/images/load's answer (NDJSON):
// progress of one host while the tarball goes to the hosts, then the
// results, or an error.
type ImageLoadLine struct {
	Progress *ImageProgress    `json:"progress,omitempty"`
	Results  []ImageHostResult `json:"results,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// ImageRequest is the body of POST /v1/images/pull and /v1/images/remove.
type ImageRequest struct {
	Ref    string            `json:"ref"`
	Force  bool              `json:"force,omitempty"`  // remove only: also an image in use by stopped containers or with several tags
	Hosts  []string          `json:"hosts,omitempty"`  // only these hosts (by name)
	Labels map[string]string `json:"labels,omitempty"` // only hosts with these labels
}

// ImageResults is the answer of POST /v1/images/pull and /v1/images/remove.
type ImageResults struct {
	Results []ImageHostResult `json:"results"`
}

var errNoImages = &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "images are not served by this server"}

// selector reads ?host=NAME (repeated) and ?label=k=v (repeated).
func selector(q url.Values, allowed ...string) (image.Selector, error) {
	sel := image.Selector{Hosts: q["host"]}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return sel, badRequest("label", "label %q: want key=value", l)
		}
		if sel.Labels == nil {
			sel.Labels = map[string]string{}
		}
		sel.Labels[k] = v
	}
	for k := range q {
		if k != "host" && k != "label" && !contains(allowed, k) {
			return sel, badRequest(k, "unknown query parameter %q: this endpoint takes host and label", k)
		}
	}
	return sel, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// imageError turns a selection error into a 400 naming the field.
func imageError(err error) error {
	switch {
	case errors.Is(err, fleet.ErrHostNotFound):
		return badRequest("host", "%v", err)
	case errors.Is(err, image.ErrNoHosts):
		return badRequest("host", "%v", err)
	}
	return err
}

// listImages: GET /v1/images.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	if s.images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	sel, err := selector(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	imgs, failed, err := s.images.List(r.Context(), sel)
	if err != nil {
		s.writeError(w, r, imageError(err))
		return
	}
	writeJSON(w, http.StatusOK, ImageList{Images: imageSummariesOf(imgs), Unreachable: failed})
}

// loadImage: POST /v1/images/load, the body a docker-save tarball. The
// answer streams NDJSON lines: each host's progress, then the results.
func (s *Server) loadImage(w http.ResponseWriter, r *http.Request) {
	if s.images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	sel, err := selector(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var (
		mu      sync.Mutex
		started bool
	)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	line := func(l ImageLoadLine) {
		mu.Lock()
		defer mu.Unlock()
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		_ = enc.Encode(l)
		if flusher != nil {
			flusher.Flush()
		}
	}
	res, err := s.images.Load(r.Context(), r.Body, sel, func(p image.Progress) {
		line(ImageLoadLine{Progress: &ImageProgress{Host: p.Host, Sent: p.Sent, Total: p.Total}})
	})
	if err != nil {
		mu.Lock()
		st := started
		mu.Unlock()
		if !st {
			s.writeError(w, r, imageError(err))
			return
		}
		line(ImageLoadLine{Error: err.Error()})
		return
	}
	line(ImageLoadLine{Results: imageResultsOf(res)})
}

// pullImage: POST /v1/images/pull.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	s.imageAction(w, r, func(ctx context.Context, req ImageRequest, sel image.Selector) ([]image.HostResult, error) {
		return s.images.PullAll(ctx, req.Ref, sel)
	})
}

// removeImage: POST /v1/images/remove.
func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	s.imageAction(w, r, func(ctx context.Context, req ImageRequest, sel image.Selector) ([]image.HostResult, error) {
		return s.images.Remove(ctx, req.Ref, req.Force, sel)
	})
}

func (s *Server) imageAction(w http.ResponseWriter, r *http.Request, do func(context.Context, ImageRequest, image.Selector) ([]image.HostResult, error)) {
	if s.images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var req ImageRequest
	if err := decodeObject(r.Body, &req, `{"ref": "alpine:3.20", "hosts": ["e1"]}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Ref = strings.TrimSpace(req.Ref)
	if req.Ref == "" {
		s.writeError(w, r, badRequest("ref", "ref is required: an image reference such as alpine:3.20"))
		return
	}
	if _, err := image.RegistryOf(req.Ref); err != nil && !strings.HasPrefix(req.Ref, "sha256:") {
		s.writeError(w, r, badRequest("ref", "%v", err))
		return
	}
	res, err := do(r.Context(), req, image.Selector{Hosts: req.Hosts, Labels: req.Labels})
	if err != nil {
		s.writeError(w, r, imageError(err))
		return
	}
	writeJSON(w, http.StatusOK, ImageResults{Results: imageResultsOf(res)})
}
