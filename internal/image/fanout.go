package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
)

// Selector picks hosts: those named (all of them must exist) and carrying
// every label. Zero: every host.
type Selector struct {
	Hosts  []string
	Labels map[string]string
}

// ErrNoHosts is returned when a Selector matches no host.
var ErrNoHosts = errors.New("no host matches")

func (d *Distributor) pick(sel Selector) ([]*fleet.Host, error) {
	var hs []*fleet.Host
	if len(sel.Hosts) > 0 {
		for _, n := range sel.Hosts {
			h := d.fleet.Host(n)
			if h == nil {
				return nil, fmt.Errorf("host %q: %w", n, fleet.ErrHostNotFound)
			}
			hs = append(hs, h)
		}
	} else {
		hs = d.fleet.Hosts()
	}
	var out []*fleet.Host
	for _, h := range hs {
		ok := true
		for k, v := range sel.Labels {
			if h.Labels()[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w the selection (hosts %v, labels %v)", ErrNoHosts, sel.Hosts, sel.Labels)
	}
	return out, nil
}

// HostResult is what one operation did on one host.
type HostResult struct {
	Host   string        `json:"host"`
	Refs   []string      `json:"refs,omitempty"` // loaded, pulled, untagged or deleted
	Bytes  int64         `json:"bytes,omitempty"`
	Took   time.Duration `json:"took_ns"`
	Error  string        `json:"error,omitempty"`
	Status string        `json:"status"` // "ok", "failed", or "skipped" (host out)
}

// Progress is how far an image load has got on one host.
type Progress struct {
	Host  string `json:"host"`
	Sent  int64  `json:"sent"`
	Total int64  `json:"total"`
}

// Load spools tarball (a docker save stream) once to a temporary file in
// the spool dir, then loads it onto every selected host in parallel,
// through each host's breaker and call limiter, calling progress (from
// several goroutines, never concurrently for one host) as each host reads
// it, and returns what happened on each. An error is returned only when
// nothing could be tried (no host matches, the upload broke off, the spool
// failed).
func (d *Distributor) Load(ctx context.Context, tarball io.Reader, sel Selector, progress func(Progress)) ([]HostResult, error) {
	hs, err := d.pick(sel)
	if err != nil {
		return nil, err
	}
	if d.cfg.SpoolDir == "" {
		return nil, errors.New("image load: no spool dir configured")
	}
	if err := os.MkdirAll(d.cfg.SpoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("image load: spool: %w", err)
	}
	f, err := os.CreateTemp(d.cfg.SpoolDir, "image-load-*.tar")
	if err != nil {
		return nil, fmt.Errorf("image load: spool: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	total, err := io.Copy(f, tarball)
	if err != nil {
		return nil, fmt.Errorf("image load: reading the upload: %w", err)
	}
	if total == 0 {
		return nil, errors.New("image load: the tarball is empty")
	}
	res := make([]HostResult, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			res[i] = d.loadOne(ctx, h, f, total, progress)
		})
	}
	wg.Wait()
	return res, nil
}

func (d *Distributor) loadOne(ctx context.Context, h *fleet.Host, f *os.File, total int64, progress func(Progress)) HostResult {
	start := time.Now()
	r := HostResult{Host: h.Name()}
	cr := &countingReader{r: io.NewSectionReader(f, 0, total), host: h.Name(), total: total, fn: progress}
	err := h.Call(fleet.WithLane(ctx, fleet.LaneLogs), func(ctx context.Context, c *engine.Client) error {
		var err error
		r.Refs, err = c.ImageLoadRefs(ctx, cr)
		return err
	})
	cr.report(true)
	r.Took, r.Bytes = time.Since(start), cr.n
	if err != nil {
		r.Status, r.Error = statusOf(err), err.Error()
		return r
	}
	r.Status = "ok"
	for _, ref := range r.Refs {
		h.NoteImage(ref, true)
	}
	d.log.Info("image loaded", "host", h.Name(), "refs", r.Refs, "bytes", cr.n, "took", r.Took.Round(time.Millisecond))
	return r
}

func statusOf(err error) string {
	if errors.Is(err, fleet.ErrProbing) || engine.IsUnreachable(err) {
		return "skipped"
	}
	var w *WaitError
	if errors.As(err, &w) {
		return "skipped"
	}
	if isOpen(err) {
		return "skipped"
	}
	return "failed"
}

// countingReader reports progress at most every 100ms.
type countingReader struct {
	r     io.Reader
	host  string
	n     int64
	total int64
	last  time.Time
	fn    func(Progress)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.report(false)
	return n, err
}

func (c *countingReader) report(final bool) {
	if c.fn == nil || !final && time.Since(c.last) < 100*time.Millisecond {
		return
	}
	c.last = time.Now()
	c.fn(Progress{Host: c.host, Sent: c.n, Total: c.total})
}

// Summary is one image across the hosts.
type Summary struct {
	ID      string    `json:"id"`
	Tags    []string  `json:"tags,omitempty"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created,omitzero"`
	Hosts   []string  `json:"hosts"`   // hosts that have it
	Missing []string  `json:"missing"` // hosts asked that lack it
}

// List returns the images of the selected hosts, by ID, and the hosts that
// could not be asked (out, or the call failed) with why.
func (d *Distributor) List(ctx context.Context, sel Selector) ([]Summary, map[string]string, error) {
	hs, err := d.pick(sel)
	if err != nil {
		return nil, nil, err
	}
	lists := make([][]engine.ImageSummary, len(hs))
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			errs[i] = h.CallBackground(fleet.WithLane(ctx, fleet.LaneStatus), func(ctx context.Context, c *engine.Client) error {
				var err error
				lists[i], err = c.ImageList(ctx)
				return err
			})
		})
	}
	wg.Wait()
	byID := map[string]*Summary{}
	failed := map[string]string{}
	var asked []string
	for i, h := range hs {
		if errs[i] != nil {
			failed[h.Name()] = errs[i].Error()
			continue
		}
		asked = append(asked, h.Name())
		for _, im := range lists[i] {
			s := byID[im.ID]
			if s == nil {
				s = &Summary{ID: im.ID, Size: im.Size, Created: im.Created}
				byID[im.ID] = s
			}
			for _, t := range im.Tags {
				if !slices.Contains(s.Tags, t) {
					s.Tags = append(s.Tags, t)
				}
				h.NoteImage(t, true)
			}
			s.Hosts = append(s.Hosts, h.Name())
		}
	}
	out := make([]Summary, 0, len(byID))
	for _, s := range byID {
		sort.Strings(s.Tags)
		s.Missing = []string{}
		for _, n := range asked {
			if !slices.Contains(s.Hosts, n) {
				s.Missing = append(s.Missing, n)
			}
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := strings.Join(out[i].Tags, ","), strings.Join(out[j].Tags, ",")
		if a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out, failed, nil
}

// PullAll asks every selected host to pull ref, in parallel, through each
// host's breaker and the registry's.
func (d *Distributor) PullAll(ctx context.Context, ref string, sel Selector) ([]HostResult, error) {
	if _, err := RegistryOf(ref); err != nil {
		return nil, err
	}
	return d.each(ctx, sel, fleet.LaneLogs, func(ctx context.Context, h *fleet.Host, r *HostResult) error {
		err := h.Call(ctx, func(ctx context.Context, _ *engine.Client) error { return d.Pull(ctx, h, ref) })
		if err == nil {
			r.Refs = []string{ref}
		}
		return err
	})
}

// Remove removes ref (a tag or an ID) from every selected host; force
// also removes an image stopped containers use or with several tags. A
// host that lacks it reports "ok" with nothing removed.
func (d *Distributor) Remove(ctx context.Context, ref string, force bool, sel Selector) ([]HostResult, error) {
	return d.each(ctx, sel, fleet.LaneLogs, func(ctx context.Context, h *fleet.Host, r *HostResult) error {
		return h.Call(ctx, func(ctx context.Context, c *engine.Client) error {
			untagged, deleted, err := c.ImageRemove(ctx, ref, force)
			if errors.Is(err, engine.ErrNotFound) {
				return nil
			}
			r.Refs = append(untagged, deleted...)
			if err == nil {
				h.NoteImage(ref, false)
			}
			return err
		})
	})
}

// each runs fn on every selected host in parallel.
func (d *Distributor) each(ctx context.Context, sel Selector, lane fleet.Lane, fn func(context.Context, *fleet.Host, *HostResult) error) ([]HostResult, error) {
	hs, err := d.pick(sel)
	if err != nil {
		return nil, err
	}
	res := make([]HostResult, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			start := time.Now()
			r := HostResult{Host: h.Name()}
			err := fn(fleet.WithLane(ctx, lane), h, &r)
			r.Took = time.Since(start)
			if err != nil {
				r.Status, r.Error = statusOf(err), err.Error()
			} else {
				r.Status = "ok"
			}
			res[i] = r
		})
	}
	wg.Wait()
	return res, nil
}

// isOpen reports whether err is a breaker's rejection.
func isOpen(err error) bool { return errors.Is(err, breaker.ErrOpen) }
