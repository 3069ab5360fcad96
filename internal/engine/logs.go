package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Logs of a container are read through the streaming client (no
// whole-request timeout) under an inactivity deadline instead: a read fails
// only when the engine sends nothing for Timeouts.Logs, however long the
// whole transfer takes, so a job that printed gigabytes still has its logs
// read. The fleet's gate (the per-host call limiter) covers the opening of a
// read, up to the engine's answer, not the transfer: a long transfer is not
// a slow call.

// LogsMaxBytesDefault is what a maxBytes of 0 or less means.
const LogsMaxBytesDefault = 1 << 20

// Logs returns the output of a container, stdout and stderr separately,
// each capped at maxBytes (the last maxBytes are kept: the end of a log is
// where the error is). truncated reports whether anything was dropped. It
// reads what the engine has without following, in bounded memory, and fails
// (ClassHost) only if the engine sends no byte for Timeouts.Logs. For a
// container that is still running, use CollectLogs.
func (c *Client) Logs(ctx context.Context, id string, maxBytes int) (stdout, stderr []byte, truncated bool, err error) {
	out, errw := newTailBuffer(maxBytes), newTailBuffer(maxBytes)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var sysErr []byte
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	err = c.readLogs(ctx, "container logs", id, opts, c.timeouts.Logs, &last, func() bool { return true },
		func(s stdcopy.StdType, _ time.Time, p []byte) error {
			switch s {
			case stdcopy.Stdout:
				out.Write(p)
			case stdcopy.Stderr:
				errw.Write(p)
			default:
				sysErr = clone(p)
			}
			return nil
		})
	if err == nil && sysErr != nil {
		err = c.engineLogError("container logs", sysErr)
	}
	return out.Bytes(), errw.Bytes(), out.dropped || errw.dropped, err
}

// FollowLogs copies a container's output to stdout and stderr as it is
// written, until the container exits or ctx is done. Bounded only by ctx.
func (c *Client) FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	return c.FollowLogsWith(ctx, id, FollowOptions{}, stdout, stderr)
}

// FollowOptions are what docker logs -f takes besides the container.
type FollowOptions struct {
	Since      time.Time // only output logged at or after it (zero: all)
	Timestamps bool      // each line prefixed with its time (RFC 3339, nine digits) and a space
}

// FollowLogsWith is FollowLogs with options.
func (c *Client) FollowLogsWith(ctx context.Context, id string, fo FollowOptions, stdout, stderr io.Writer) error {
	const op = "container logs follow"
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: fo.Timestamps}
	if !fo.Since.IsZero() {
		opts.Since = fo.Since.UTC().Format(time.RFC3339Nano)
	}
	rc, err := c.openStream(ctx, op, func() (io.ReadCloser, error) {
		return c.stream.ContainerLogs(ctx, id, opts)
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err = stdcopy.StdCopy(stdout, stderr, rc); err != nil {
		return classify(ctx, c.name, op, err)
	}
	return nil
}

// openStream opens a stream that is bounded only by ctx. Its opening passes
// the host's gate (the call limiter) and is observed like any call; the
// transfer after it holds no slot.
func (c *Client) openStream(ctx context.Context, op string, open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	release := func(time.Duration, Class) {}
	if c.gate != nil {
		r, err := c.gate(ctx, op)
		if err != nil {
			return nil, classify(ctx, c.name, op, err)
		}
		release = r
	}
	start := time.Now()
	rc, err := open()
	err = classify(ctx, c.name, op, err)
	d, class := time.Since(start), ClassOf(err)
	release(d, class)
	if c.observe != nil {
		c.observe(c.name, op, d, class)
	}
	return rc, err
}

// A LogCollector follows one container's stdout and stderr from its start
// until it exits, keeping the last maxBytes of each: its memory is bounded
// (at most about 2*maxBytes per stream) however much the container prints.
//
// It survives a broken stream: on a host fault it reconnects, with backoff,
// while its context lives, and resumes where it was. The engine resumes only
// by time (since), so the collector asks for its frames with timestamps,
// strips them, and on a resume asks for everything since the last frame it
// received (or, when one stream has been quiet for long, since resumeWindow
// before the last frame of the other) and drops what it already has: per
// stream, every frame timestamped before that stream's last frame, and as
// many frames stamped with exactly that time as it had. Within one stream
// the engine's log is in time order, so nothing is duplicated; a frame is
// lost only if the engine stamped it more than resumeWindow/2 before a frame
// of the other stream that it wrote to its log earlier (a delay inside the
// daemon, not seen in practice), or if the engine's clock stepped back.
//
// While the container runs, a quiet stream is fine (a job may print nothing
// for hours). Once the caller says the container has exited (Wait), no byte
// for idle means the read is stalled: the collector drops that connection
// and reconnects, and Wait returns what it has.
//
// When the follow ends and the container has exited, the collector reads
// the log's last frames once more (a follow can end just before the engine
// logs the last output) and keeps what it lacked; if those do not reach back
// to what it has, it reads since its position instead. A collector started
// after the container exited reads to the end in the same way. The output's
// size never makes a collection fail: there is no deadline on the whole
// read. A resume by time makes the engine scan its log file from the start
// (json-file has no index), so it costs a read of the whole log so far.
type LogCollector struct {
	c    *Client
	id   string
	idle time.Duration

	stop     context.CancelFunc
	done     chan struct{} // closed when run returns
	exitOnce sync.Once
	exited   atomic.Bool
	last     atomic.Int64 // unix nanoseconds of the last byte read, or of the exit mark

	mu      sync.Mutex
	out     *tailBuffer
	errb    *tailBuffer
	pos     [2]streamPos // stdout, stderr: where each stream is
	err     error        // why the collection is not complete (yet)
	sysErr  []byte       // the engine's last report that it could not read the log
	resumes int
}

// streamPos is the timestamp of a stream's last frame received, and how
// many of its frames had exactly that timestamp.
type streamPos struct {
	ts time.Time
	n  int
}

// resumeWindow bounds how far back a resume reads when one stream has been
// quiet for longer than it; see LogCollector.
const resumeWindow = time.Second

// Reconnection backoff of a LogCollector.
const (
	logsBackoffMin = 100 * time.Millisecond
	logsBackoffMax = 5 * time.Second
)

// CollectLogs starts collecting the output of container id (see
// LogCollector), keeping the last maxBytes of each stream (0 or less:
// LogsMaxBytesDefault); idle is the inactivity deadline once the container
// has exited (0 or less: Timeouts.Logs). It collects until the output ends,
// a fault that reconnecting cannot mend (the container is gone), ctx ends,
// or Close. Calls it makes pass the client's gate with ctx.
func (c *Client) CollectLogs(ctx context.Context, id string, maxBytes int, idle time.Duration) *LogCollector {
	if idle <= 0 {
		idle = c.timeouts.Logs
	}
	ctx, stop := context.WithCancel(ctx)
	l := &LogCollector{c: c, id: id, idle: idle, stop: stop, done: make(chan struct{}),
		out: newTailBuffer(maxBytes), errb: newTailBuffer(maxBytes)}
	l.last.Store(time.Now().UnixNano())
	go l.run(ctx)
	return l
}

// Done is closed when the collector has stopped: the container's output
// ended (Result's err is nil), or collection cannot go on (err says why).
func (l *LogCollector) Done() <-chan struct{} { return l.done }

// Result returns what the collector has so far: the last maxBytes of each
// stream, whether anything was dropped to keep to that, and, if the
// collection is not complete, why (an *Error: ClassHost for a broken or
// stalled stream, ClassIgnored once its context ended, ErrNotFound once the
// container is gone). Before Done, err is nil unless the last connection
// broke (the collector is reopening it); only after Done is a nil err a
// complete collection.
func (l *LogCollector) Result() (stdout, stderr []byte, truncated bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return clone(l.out.Bytes()), clone(l.errb.Bytes()), l.out.dropped || l.errb.dropped, l.err
}

// Marks returns when the parts of what Result returns were logged by the
// engine: per stream, in order of offset, the first at 0 (none for an
// empty stream). Output logged within one millisecond shares a mark, and a
// stream of many tiny lines keeps at most about one mark per 32 bytes.
func (l *LogCollector) Marks() (stdout, stderr []LogMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Marks(), l.errb.Marks()
}

// Resumes returns how many times the collector reopened the stream.
func (l *LogCollector) Resumes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resumes
}

// Wait tells the collector that the container has exited and waits until
// the output has ended (Done), ctx ends, or no byte came for the idle
// deadline; then it returns Result. When the wait ended before Done, err
// says so: the last fault of the stream (a stalled one: ClassHost), or
// ClassIgnored when ctx ended first. The collector goes on after such a
// return (it reconnects), so a later Wait may get more.
func (l *LogCollector) Wait(ctx context.Context) (stdout, stderr []byte, truncated bool, err error) {
	l.exitOnce.Do(func() {
		l.last.Store(time.Now().UnixNano())
		l.exited.Store(true)
	})
	t := time.NewTimer(l.idle)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return l.Result()
		case <-ctx.Done():
			stdout, stderr, truncated, err = l.Result()
			if err == nil {
				err = classify(ctx, l.c.name, "container logs follow", ctx.Err())
			}
			return stdout, stderr, truncated, err
		case <-t.C:
		}
		quiet := time.Since(time.Unix(0, l.last.Load()))
		if quiet < l.idle {
			t.Reset(l.idle - quiet)
			continue
		}
		stdout, stderr, truncated, err = l.Result()
		if err == nil {
			err = l.idleError()
		}
		return stdout, stderr, truncated, err
	}
}

// Close stops the collector and waits for it to stop. Safe to call twice.
func (l *LogCollector) Close() {
	l.stop()
	<-l.done
}

// engineLogError is the error of a log the engine reported it could not
// read: the host's.
func (c *Client) engineLogError(op string, msg []byte) error {
	return &Error{Host: c.name, Op: op, Class: ClassHost, Err: fmt.Errorf("the engine could not read the log: %s", bytes.TrimSpace(msg))}
}

func (l *LogCollector) idleError() error {
	return &Error{Host: l.c.name, Op: "container logs follow", Class: ClassHost,
		Err: fmt.Errorf("no byte from the engine for %v after the container exited: %w", l.idle, context.DeadlineExceeded)}
}

func (l *LogCollector) setErr(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *LogCollector) run(ctx context.Context) {
	defer close(l.done)
	defer l.stop()
	backoff := logsBackoffMin
	mode := readFollow
	for {
		before := l.last.Load()
		err := l.read(ctx, mode)
		switch {
		case err == nil && mode == readFollow:
			// The engine ended the stream: the container is no longer
			// running, or the daemon is going away. Only an exited
			// container's output is complete.
			var ct *Container
			ct, err = l.c.Inspect(ctx, l.id)
			if err == nil && ct.Exited() {
				mode = readTail
				continue
			}
			if err == nil {
				err = &Error{Host: l.c.name, Op: "container logs follow", Class: ClassHost,
					Err: fmt.Errorf("the engine ended the log stream of a container that is %s", ct.Status)}
			}
		case err == nil:
			l.mu.Lock()
			l.err = nil
			if l.sysErr != nil {
				l.err = l.c.engineLogError("container logs follow", l.sysErr)
			}
			l.mu.Unlock()
			return
		case mode == readTail && errors.Is(err, errTailShort):
			mode = readSince
			continue
		}
		if ctx.Err() != nil {
			l.setErr(classify(ctx, l.c.name, "container logs follow", ctx.Err()))
			return
		}
		l.setErr(err)
		if errors.Is(err, ErrNotFound) || ClassOf(err) != ClassHost {
			return // the container is gone, or retrying cannot help
		}
		if l.last.Load() != before {
			backoff = logsBackoffMin // that connection made progress
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			l.setErr(classify(ctx, l.c.name, "container logs follow", ctx.Err()))
			return
		case <-t.C:
		}
		backoff = min(2*backoff, logsBackoffMax)
		if mode == readTail {
			mode = readSince
		}
		l.mu.Lock()
		l.resumes++
		l.mu.Unlock()
	}
}

// readMode is how a LogCollector reads the stream.
type readMode int

const (
	// readFollow follows the stream (since where the collector is) until
	// the engine ends it.
	readFollow readMode = iota
	// readTail reads the last tailFrames frames of an exited container's
	// log: a follow can end a moment before the engine has logged the
	// container's last output (Docker 20.10 then drops a final partial
	// line), and reading the tail to catch up is cheap where reading
	// since a time makes the engine scan its whole log file. It fails
	// with errTailShort unless the tail overlaps what the collector has
	// without ambiguity.
	readTail
	// readSince reads an exited container's log since where the
	// collector is, to the end.
	readSince
)

// tailFrames is how many frames a catch-up reads from the end of the log.
const tailFrames = 64

// errTailShort: the tail read does not provably reach back to what the
// collector has.
var errTailShort = errors.New("the log's tail does not reach what was collected")

// read reads the container's log stream once (see readMode), from where
// the collector is, until it ends (nil) or fails.
func (l *LogCollector) read(ctx context.Context, mode readMode) error {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: mode == readFollow, Timestamps: true}
	l.mu.Lock()
	since, resuming := resumeSince(l.pos)
	l.mu.Unlock()
	switch {
	case mode == readTail:
		opts.Tail = strconv.Itoa(tailFrames)
		resuming = true
	case resuming:
		opts.Since = since.UTC().Format(time.RFC3339Nano)
	}
	// A resumed read starts at or before the collector's last frame of
	// each stream: per stream, drop what came before it and as many
	// frames with its exact timestamp as the collector has. A tail read
	// may start anywhere: it must start with a frame the collector has,
	// and it cannot tell how many of a stream's frames with the last
	// timestamp it holds unless it also holds one from before.
	var caughtUp [2]bool  // a new frame of the stream came on this connection
	var skipped [2]int    // frames with the stream's last timestamp skipped
	var sawBefore [2]bool // a frame of the stream from before its last one came
	first, flowing := true, false
	return l.c.readLogs(ctx, "container logs follow", l.id, opts, l.idle, &l.last, l.exited.Load,
		func(s stdcopy.StdType, ts time.Time, p []byte) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !flowing {
				flowing = true
				l.err = nil // the stream is mended
			}
			if s == stdcopy.Systemerr {
				l.sysErr = clone(p)
				return nil
			}
			i := 0
			if s == stdcopy.Stderr {
				i = 1
			}
			pos := &l.pos[i]
			if mode == readTail && first && !ts.Before(pos.ts) {
				return errTailShort
			}
			first = false
			if resuming && !caughtUp[i] {
				if ts.Before(pos.ts) {
					sawBefore[i] = true
					return nil // had it
				}
				if ts.Equal(pos.ts) {
					if mode == readTail && !sawBefore[i] {
						return errTailShort
					}
					if skipped[i] < pos.n {
						skipped[i]++
						return nil // had it
					}
				}
				caughtUp[i] = true
			}
			if ts.Equal(pos.ts) {
				pos.n++
			} else {
				*pos = streamPos{ts: ts, n: 1}
			}
			if i == 0 {
				l.out.WriteAt(p, ts)
			} else {
				l.errb.WriteAt(p, ts)
			}
			return nil
		})
}

// resumeSince returns where a resumed stream starts: the earlier of the
// streams' last frames, but no more than resumeWindow before the later one;
// false if no frame was received yet (read from the start).
func resumeSince(pos [2]streamPos) (time.Time, bool) {
	a, b := pos[0].ts, pos[1].ts
	if a.IsZero() && b.IsZero() {
		return time.Time{}, false
	}
	lo, hi := a, b
	if lo.After(hi) {
		lo, hi = hi, lo
	}
	if floor := hi.Add(-resumeWindow); lo.Before(floor) {
		lo = floor
	}
	return lo, true
}

// errLogsIdle is the cause a stalled log read is cancelled with.
var errLogsIdle = errors.New("no byte from the engine within the logs inactivity deadline")

// maxLogFrame bounds one frame of a log stream. The engine writes a log
// message of at most 16 KiB per frame.
const maxLogFrame = 16 << 20

// readLogs makes one logs request and passes each frame to frame: its
// stream, its timestamp (when opts.Timestamps; stripped from p) and its
// payload, which frame must not keep; an error from frame ends the read
// with it. A Systemerr frame is the engine's
// report that it could not read its log; its payload is the message. Every read stores the time in last.
// Once armed reports true, no byte for idle (counted from the later of last
// and the request's start) cancels the request with a ClassHost error. It
// returns nil when the engine ends the stream.
func (c *Client) readLogs(ctx context.Context, op, id string, opts client.ContainerLogsOptions, idle time.Duration,
	last *atomic.Int64, armed func() bool, frame func(s stdcopy.StdType, ts time.Time, p []byte) error) (err error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go watchIdle(rctx, cancel, idle, time.Now(), last, armed)
	defer func() {
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errLogsIdle) {
			err = &Error{Host: c.name, Op: op, Class: ClassHost,
				Err: fmt.Errorf("no byte from the engine for %v: %w", idle, context.DeadlineExceeded)}
		}
		err = classify(ctx, c.name, op, err)
	}()

	rc, err := c.openStream(ctx, op, func() (io.ReadCloser, error) { return c.stream.ContainerLogs(rctx, id, opts) })
	if err != nil {
		return err
	}
	defer rc.Close()
	return demuxLogs(bufio.NewReaderSize(progressReader{rc, last}, 64<<10), opts.Timestamps, frame)
}

// watchIdle cancels ctx with errLogsIdle once armed and no byte came for
// idle since the later of start and last.
func watchIdle(ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration, start time.Time, last *atomic.Int64, armed func() bool) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wait := idle
		if armed() {
			quiet := time.Since(time.Unix(0, max(start.UnixNano(), last.Load())))
			if quiet >= idle {
				cancel(errLogsIdle)
				return
			}
			wait = idle - quiet
		}
		t.Reset(wait)
	}
}

// progressReader stores the time of every read that returned bytes.
type progressReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// demuxLogs reads a multiplexed log stream (see stdcopy) frame by frame.
// It returns nil at a clean end of the stream.
func demuxLogs(r *bufio.Reader, timestamps bool, frame func(s stdcopy.StdType, ts time.Time, p []byte) error) error {
	var hdr [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		s := stdcopy.StdType(hdr[0])
		size := binary.BigEndian.Uint32(hdr[4:])
		if size > maxLogFrame {
			return fmt.Errorf("log stream: frame of %d bytes (at most %d expected)", size, maxLogFrame)
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size, max(int(size), 32<<10))
		}
		p := buf[:size]
		if _, err := io.ReadFull(r, p); err != nil {
			return fmt.Errorf("log stream: %w", noEOF(err))
		}
		var ts time.Time
		switch s {
		case stdcopy.Stdout, stdcopy.Stderr:
		case stdcopy.Systemerr:
			// The engine could not read (part of) its log; it goes on.
			if err := frame(s, ts, p); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("log stream: frame of unknown stream %d", s)
		}
		if timestamps {
			var err error
			if ts, p, err = cutTimestamp(p); err != nil {
				return err
			}
		}
		if err := frame(s, ts, p); err != nil {
			return err
		}
	}
}

// noEOF turns an EOF in the middle of a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// cutTimestamp splits "TIMESTAMP payload", as the engine writes a frame
// asked for with timestamps, into the time and the payload.
func cutTimestamp(p []byte) (time.Time, []byte, error) {
	// RFC3339Nano with nine fixed digits: 30 bytes in UTC, more with a zone.
	for i := 0; i < len(p) && i < 40; i++ {
		if p[i] == ' ' {
			if ts, ok := parseUTCFixed(p[:i]); ok {
				return ts, p[i+1:], nil
			}
			ts, err := time.Parse(time.RFC3339Nano, string(p[:i]))
			if err != nil {
				return time.Time{}, nil, fmt.Errorf("log stream: frame timestamp: %w", err)
			}
			return ts, p[i+1:], nil
		}
	}
	return time.Time{}, nil, fmt.Errorf("log stream: frame without a timestamp: %.40q", p)
}

// parseUTCFixed parses "2006-01-02T15:04:05.000000000Z", the engine's
// timestamp of a log message, without allocating (a log has millions).
func parseUTCFixed(b []byte) (time.Time, bool) {
	if len(b) != 30 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != '.' || b[29] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	t := time.Date(num(0, 4), time.Month(num(5, 7)), num(8, 10), num(11, 13), num(14, 16), num(17, 19), num(20, 29), time.UTC)
	return t, ok
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// tailBuffer keeps the last max bytes written to it, in at most 2*max
// bytes of memory.
type tailBuffer struct {
	max     int
	buf     []byte
	dropped bool
	total   int       // bytes ever written
	marks   []LogMark // when the kept bytes were written (Off counts from the first byte ever written); only with WriteAt
}

// LogMark times part of a collected stream: its bytes from Off on were
// logged by the engine at At, up to the next mark (see
// LogCollector.Marks).
type LogMark struct {
	Off int
	At  time.Time
}

// maxMarks bounds the marks a tailBuffer keeps, so that tiny lines cost
// little more memory than their bytes: past it, every other mark is
// dropped (a line then takes the time of an earlier one).
func (t *tailBuffer) maxMarks() int { return max(1024, t.max/32) }

// WriteAt writes p, logged by the engine at ts. A write within a
// millisecond of the last mark shares it.
func (t *tailBuffer) WriteAt(p []byte, ts time.Time) {
	if len(p) == 0 {
		return
	}
	if n := len(t.marks); n == 0 || ts.Sub(t.marks[n-1].At) >= time.Millisecond || ts.Before(t.marks[n-1].At) {
		t.marks = append(t.marks, LogMark{Off: t.total, At: ts})
	}
	t.Write(p)
	// Drop the marks of bytes no longer kept (all but the one covering the
	// first kept byte), then thin them out if there are still too many.
	start := t.total - len(t.Bytes())
	i := 0
	for i+1 < len(t.marks) && t.marks[i+1].Off <= start {
		i++
	}
	if i > 0 {
		t.marks = t.marks[:copy(t.marks, t.marks[i:])]
	}
	if len(t.marks) > t.maxMarks() {
		k := 1
		for j := 2; j < len(t.marks); j += 2 {
			t.marks[k] = t.marks[j]
			k++
		}
		t.marks = t.marks[:k]
	}
}

// Marks returns the marks of Bytes, offsets counted from its first byte.
func (t *tailBuffer) Marks() []LogMark {
	if len(t.marks) == 0 {
		return nil
	}
	start := t.total - len(t.Bytes())
	out := make([]LogMark, len(t.marks))
	for i, m := range t.marks {
		out[i] = LogMark{Off: max(m.Off-start, 0), At: m.At}
	}
	return out
}

func newTailBuffer(max int) *tailBuffer {
	if max <= 0 {
		max = LogsMaxBytesDefault
	}
	return &tailBuffer{max: max}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.total += n
	if len(p) >= t.max {
		// p alone fills the buffer.
		t.dropped = t.dropped || len(t.buf) > 0 || len(p) > t.max
		p = p[len(p)-t.max:]
		t.buf = t.buf[:0]
	}
	if len(t.buf)+len(p) > t.max {
		t.dropped = true
	}
	if len(t.buf)+len(p) > 2*t.max {
		// Compact: keep only what is still within the last max. Amortised:
		// this happens once per max bytes written at most.
		keep := t.max - len(p)
		t.buf = t.buf[:copy(t.buf, t.buf[len(t.buf)-keep:])]
	}
	if need := len(t.buf) + len(p); need > cap(t.buf) {
		nb := make([]byte, len(t.buf), min(max(need, 2*cap(t.buf)), 2*t.max))
		copy(nb, t.buf)
		t.buf = nb
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) Bytes() []byte {
	if len(t.buf) > t.max {
		return t.buf[len(t.buf)-t.max:]
	}
	return t.buf
}
