package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
)

// Archive copies (a container's files as a tar, out and in) go through the
// streaming client, like a log read: no deadline on the whole copy, which
// may be gigabytes, but an inactivity deadline (Timeouts.Archive) on the
// engine's side of it. A download fails when the engine sends no byte for
// that long while the reader waits for one; an upload fails when the engine
// takes no byte for that long (or, once it has them all, does not answer):
// the time spent waiting for the caller's own reader or writer never counts.
// The host's gate covers the opening of a copy, not the transfer.

// PathStat is what the engine says of a path in a container.
type PathStat struct {
	Name       string
	Size       int64
	Mode       os.FileMode
	LinkTarget string // for a symlink: where it points, resolved by the engine
}

// StatPath describes path in container id (created, running or exited). A
// path that does not exist returns an error that errors.Is ErrNotFound,
// class ignored (an expected answer, nobody's fault); so does an unknown
// container.
func (c *Client) StatPath(ctx context.Context, id, path string) (PathStat, error) {
	var st PathStat
	err := c.call(ctx, "container archive stat", c.timeouts.Inspect, func(ctx context.Context) error {
		res, err := c.api.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: path})
		st = PathStat{Name: res.Stat.Name, Size: res.Stat.Size, Mode: res.Stat.Mode, LinkTarget: res.Stat.LinkTarget}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		err = reclass(err, ClassIgnored)
	}
	return st, err
}

// CopyFrom returns path in container id (created, running or exited) as
// the engine's archive API gives it: a tar whose entries are named by the
// path's base name ("out" for a file, "out/" and "out/..." for a
// directory). The caller must close it. It is bounded by ctx and by the
// inactivity deadline, never by its size; a read error is classified like
// any call's (a broken connection is the host's fault).
//
// A path (or container) that does not exist returns an error that
// errors.Is ErrNotFound, class job: the container lacks what was asked of
// it. Anything else the host did wrong is ClassHost as usual.
func (c *Client) CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	const op = "container archive get"
	idle := c.timeouts.Archive
	rctx, cancel := context.WithCancelCause(ctx)
	w := &idleWatch{}
	w.begin() // waiting for the engine's answer
	go watchIdle(rctx, cancel, idle, time.Now(), &w.last, w.waiting.Load)
	rc, err := c.openStream(ctx, op, func() (io.ReadCloser, error) {
		res, err := c.stream.CopyFromContainer(rctx, id, client.CopyFromContainerOptions{SourcePath: path})
		return res.Content, err
	})
	w.end()
	if err != nil {
		err = c.archiveErr(ctx, rctx, op, idle, err)
		cancel(nil)
		return nil, err
	}
	return &archiveReader{c: c, ctx: ctx, rctx: rctx, cancel: cancel, op: op, idle: idle, rc: rc, w: w}, nil
}

// CopyTo unpacks tar into directory dir of container id (created, running
// or exited), which must exist. Existing directories the tar names get its
// modes; an existing directory is never replaced by a non-directory nor the
// other way round. It is bounded by ctx and by the inactivity deadline,
// never by the size. An error reading tar is returned as a job fault (it
// is not the host's), wrapping the reader's error.
func (c *Client) CopyTo(ctx context.Context, id, dir string, tar io.Reader) error {
	const op = "container archive put"
	idle := c.timeouts.Archive
	release := func(time.Duration, Class) {}
	if c.gate != nil {
		r, err := c.gate(ctx, op)
		if err != nil {
			return classify(ctx, c.name, op, err)
		}
		release = r
	}
	start := time.Now()
	var once sync.Once
	opened := func(err error) {
		once.Do(func() {
			d, class := time.Since(start), ClassOf(err)
			release(d, class)
			if c.observe != nil {
				c.observe(c.name, op, d, class)
			}
		})
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	body := &uploadBody{r: tar, first: func() { opened(nil) }}
	body.w.last.Store(start.UnixNano())
	// Armed while the engine, not our reader, holds things up.
	go watchIdle(rctx, cancel, idle, start, &body.w.last, func() bool { return !body.w.waiting.Load() })
	_, err := c.stream.CopyToContainer(rctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: body})
	if err != nil {
		if rerr := body.readErr(); rerr != nil && ctx.Err() == nil {
			err = &Error{Host: c.name, Op: op, Class: ClassJob, Err: fmt.Errorf("reading the archive to copy: %w", rerr)}
		} else {
			err = c.archiveErr(ctx, rctx, op, idle, err)
		}
	}
	opened(err)
	return err
}

// errArchiveIdle is the cause a stalled archive copy is cancelled with.
var errArchiveIdle = errors.New("no progress from the engine within the archive inactivity deadline")

// archiveErr classifies err from an archive copy whose request context is
// rctx: a copy the inactivity watch cancelled is the host's fault.
func (c *Client) archiveErr(ctx, rctx context.Context, op string, idle time.Duration, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && errors.Is(context.Cause(rctx), errArchiveIdle) {
		return &Error{Host: c.name, Op: op, Class: ClassHost,
			Err: fmt.Errorf("no progress from the engine for %v: %w", idle, context.DeadlineExceeded)}
	}
	return classify(ctx, c.name, op, err)
}

// idleWatch is what watchIdle reads: the time of the last progress, and
// whether one side is waiting on the other.
type idleWatch struct {
	last    atomic.Int64 // unix nanoseconds
	waiting atomic.Bool
}

func (w *idleWatch) begin() {
	w.last.Store(time.Now().UnixNano())
	w.waiting.Store(true)
}

func (w *idleWatch) end() {
	w.last.Store(time.Now().UnixNano())
	w.waiting.Store(false)
}

// archiveReader is CopyFrom's stream: the watch is armed while a Read
// waits for the engine, and read errors are classified.
type archiveReader struct {
	c      *Client
	ctx    context.Context // the caller's
	rctx   context.Context // the request's
	cancel context.CancelCauseFunc
	op     string
	idle   time.Duration
	rc     io.ReadCloser
	w      *idleWatch
}

func (r *archiveReader) Read(p []byte) (int, error) {
	r.w.begin()
	n, err := r.rc.Read(p)
	r.w.end()
	if err != nil && err != io.EOF {
		err = r.c.archiveErr(r.ctx, r.rctx, r.op, r.idle, err)
	}
	return n, err
}

func (r *archiveReader) Close() error {
	r.cancel(context.Canceled)
	return r.rc.Close()
}

// uploadBody is CopyTo's request body: the watch is disarmed while a Read
// waits for the caller's reader (that is not the engine's delay), the first
// Read says the request is on its way, and a read error is kept.
type uploadBody struct {
	r     io.Reader
	w     idleWatch
	first func()
	once  sync.Once
	mu    sync.Mutex
	err   error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.once.Do(b.first)
	b.w.waiting.Store(true)
	n, err := b.r.Read(p)
	b.w.end()
	if err != nil && err != io.EOF {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

func (b *uploadBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
