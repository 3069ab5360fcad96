package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
)

// errNoSource: no host but the destination has the image.
var errNoSource = errors.New("no other host has the image")

// errLoadEnded is given to a source whose destination stopped reading.
var errLoadEnded = errors.New("the destination's image load ended")

// flight is one transfer of an image to a host, shared by the launches
// that need it there at the same time.
type flight struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelCauseFunc
}

// Stats count the transfers a distributor made.
type Stats struct {
	Transfers int64 // transfers that ran (one per flight)
	Shared    int64 // callers that joined a transfer already under way
	Bytes     int64 // bytes streamed by successful transfers
}

type counters struct{ transfers, shared, bytes atomic.Int64 }

// Stats returns the transfer counts so far.
func (d *Distributor) Stats() Stats {
	return Stats{Transfers: d.stats.transfers.Load(), Shared: d.stats.shared.Load(), Bytes: d.stats.bytes.Load()}
}

// Transfer streams ref to dst from another host that has it and checks
// that dst then has the same image ID. Concurrent calls for the same ref
// and dst share one transfer; it is cancelled only when every caller has
// gone. The calls on dst go straight to its engine (the caller holds its
// lease); each source is asked through its breaker and limiter
// (CallBackground), and a source that fails is replaced by the next.
// Errors: errNoSource (wrapped) when no other host has ref; a *WaitError
// when every source failed; dst's own error otherwise.
func (d *Distributor) Transfer(ctx context.Context, dst *fleet.Host, ref string) error {
	key := dst.Name() + "\x00" + ref
	d.mu.Lock()
	f := d.flights[key]
	if f == nil {
		fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		d.flights[key] = f
		d.stats.transfers.Add(1)
		go func() {
			err := d.transfer(fctx, dst, ref)
			d.mu.Lock()
			f.err = err
			delete(d.flights, key)
			d.mu.Unlock()
			cancel(nil)
			close(f.done)
		}()
	} else {
		d.stats.shared.Add(1)
	}
	f.waiters++
	d.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		d.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel(context.Cause(ctx))
		}
		d.mu.Unlock()
		return &engine.Error{Host: dst.Name(), Op: "image transfer", Class: engine.ClassIgnored, Err: context.Cause(ctx)}
	}
}

// transfer finds sources and copies from the first that works.
func (d *Distributor) transfer(ctx context.Context, dst *fleet.Host, ref string) error {
	var failed []string
	tried := 0
	for _, src := range d.candidates(dst, ref) {
		var id string
		err := src.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
			var err error
			id, err = c.ImageID(ctx, ref)
			return err
		})
		if errors.Is(err, engine.ErrNotFound) {
			src.NoteImage(ref, false)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return &engine.Error{Host: dst.Name(), Op: "image transfer", Class: engine.ClassIgnored, Err: context.Cause(ctx)}
			}
			failed = append(failed, fmt.Sprintf("%s: %v", src.Name(), err))
			continue
		}
		src.NoteImage(ref, true)
		tried++
		start := time.Now()
		n, err := d.copy(ctx, src, dst, ref)
		if err == nil {
			got, ierr := dst.Client().ImageID(ctx, ref)
			if ierr != nil {
				return ierr
			}
			if got != id {
				return &engine.Error{Host: dst.Name(), Op: "image transfer", Class: engine.ClassJob,
					Err: fmt.Errorf("image %s is %s on %s after the transfer from %s, which has %s", ref, got, dst.Name(), src.Name(), id)}
			}
			dst.NoteImage(ref, true)
			d.stats.bytes.Add(n)
			d.log.Info("image transferred", "image", ref, "id", id, "from", src.Name(), "to", dst.Name(), "bytes", n, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		var se *sourceError
		if !errors.As(err, &se) {
			return err // dst's own failure, or the caller's
		}
		d.log.Warn("image transfer: source failed; trying another", "image", ref, "from", src.Name(), "to", dst.Name(), "err", se.err)
		failed = append(failed, fmt.Sprintf("%s: %v", src.Name(), se.err))
	}
	if tried == 0 && len(failed) == 0 {
		return fmt.Errorf("image %s: %w", ref, errNoSource)
	}
	return &WaitError{Err: fmt.Errorf("no host could send image %s (%s)", ref, strings.Join(failed, "; "))}
}

// candidates are the hosts but dst that may be asked now, those known to
// have ref first.
func (d *Distributor) candidates(dst *fleet.Host, ref string) []*fleet.Host {
	var out []*fleet.Host
	for _, h := range d.fleet.Hosts() {
		if h != dst && h.Reachable() {
			out = append(out, h)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].HasImage(ref) && !out[j].HasImage(ref) })
	return out
}

// sourceError is a copy that failed on the source's side.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "source: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// copy pipes ImageSave on src into ImageLoad on dst: the image is never
// held whole. It returns the bytes sent; a *sourceError when src failed.
func (d *Distributor) copy(ctx context.Context, src, dst *fleet.Host, ref string) (int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	saved := make(chan result, 1)
	go func() {
		var n int64
		err := src.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
			var err error
			n, err = c.ImageSave(ctx, []string{ref}, pw)
			return err
		})
		pw.CloseWithError(err) // nil: the load reads EOF
		saved <- result{n, err}
	}()
	_, lerr := dst.Client().ImageLoadRefs(ctx, pr)
	pr.CloseWithError(errLoadEnded)
	s := <-saved
	switch {
	case lerr == nil:
		return s.n, nil
	case s.err != nil && !errors.Is(s.err, engine.ErrSource):
		return 0, &sourceError{s.err}
	}
	return 0, lerr
}

// NoImageError is an image no host has and none can get, for a job placed
// on Host: its own failure. Error is one sentence saying what to do.
type NoImageError struct {
	Ref, Host, Why string
	Transfer       bool // images.transfer is on: no host of the fleet has it
}

func (e *NoImageError) Error() string {
	where := "on no host of the fleet"
	if !e.Transfer {
		where = "not on " + e.Host + " (images.transfer is off)"
	}
	return fmt.Sprintf("image %s is %s and %s; load it with `fusebox image load` or push it to a registry", e.Ref, where, e.Why)
}

// Is makes errors.Is(err, ErrNoImage) true.
func (e *NoImageError) Is(target error) bool { return target == ErrNoImage }

// noImage wraps a NoImageError as the job-class error the launch fails with.
func noImage(h *fleet.Host, ref, why string, transfer bool) error {
	return &engine.Error{Host: h.Name(), Op: "image", Class: engine.ClassJob, Answered: true,
		Err: &NoImageError{Ref: ref, Host: h.Name(), Why: why, Transfer: transfer}}
}

// isRefusal reports whether err is a pull the registry or engine refused:
// the job's own fault.
func isRefusal(err error) bool {
	var w *WaitError
	return err != nil && !errors.As(err, &w) && engine.ClassOf(err) == engine.ClassJob
}

// errMessage is the engine's (or registry's) own words in err.
func errMessage(err error) string {
	msg := err.Error()
	const daemon = "Error response from daemon: "
	if i := strings.LastIndex(msg, daemon); i >= 0 {
		return msg[i+len(daemon):]
	}
	if i := strings.LastIndex(msg, "engine reported: "); i >= 0 {
		return msg[i+len("engine reported: "):]
	}
	return msg
}
