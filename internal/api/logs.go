package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"fusebox/internal/job"
)

// LogOptions are the since and timestamps of a logs request, as docker
// logs' --since and -t: only the lines logged at or after Since (if not
// zero), each prefixed with its time (job.TimestampFormat) and a space.
type LogOptions struct {
	Since      time.Time
	Timestamps bool
}

// jobLogs: GET /v1/jobs/{id}/logs[?since=T][&timestamps=true], and with
// ?follow=true the output as it is written, as newline-delimited JSON
// LogEvents.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request) {
	follow := false
	var opts LogOptions
	for k, vs := range r.URL.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "follow", "timestamps":
			b, err := strconv.ParseBool(v)
			if err != nil {
				s.writeError(w, r, badRequest(k, "must be true or false (got %q)", v))
				return
			}
			if k == "follow" {
				follow = b
			} else {
				opts.Timestamps = b
			}
		case "since":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				s.writeError(w, r, badRequest(k, "must be an RFC 3339 time, such as 2026-12-01T15:04:05Z (got %q)", v))
				return
			}
			opts.Since = t
		default:
			s.writeError(w, r, badRequest(k, "unknown query parameter %q: use follow, since or timestamps", k))
			return
		}
	}
	rj, err := s.resolveJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := rj.ID
	if follow {
		s.followLogs(w, r, id, opts)
		return
	}

	// A plain read is bounded like any other request (the route is marked
	// streaming, so the wrapper did not bound it).
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	logs, err := s.svc.Logs(ctx, id)
	if errors.Is(err, job.ErrNotFound) {
		j, gerr := s.svc.Get(ctx, id)
		if gerr != nil {
			s.writeError(w, r, gerr)
			return
		}
		s.writeError(w, r, noLogs(j))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, errb, err := logs.Render(opts.Since, opts.Timestamps)
	if err != nil {
		s.writeError(w, r, noLogTimes(id, err))
		return
	}
	writeJSON(w, http.StatusOK, LogsResponse{Stdout: string(out), Stderr: string(errb), Truncated: logs.Truncated})
}

// noLogTimes is the error of since or timestamps asked of output kept
// without times.
func noLogTimes(id string, err error) error {
	if !errors.Is(err, job.ErrNoLogTimes) {
		return err
	}
	return &requestError{status: http.StatusConflict, code: CodeNoLogTimes,
		msg: fmt.Sprintf("job %s: %v; ask for its output without since and timestamps", id, err)}
}

// noLogs explains why a job that exists has no collected output.
func noLogs(j *job.Job) error {
	var why string
	switch {
	case j.State == job.StateQueued || j.State == job.StateLaunching:
		why = fmt.Sprintf("it is %s and has not started yet; follow its output with ?follow=true", j.State)
	case j.State == job.StateRunning:
		why = "it is running; follow its output with ?follow=true"
	default:
		why = fmt.Sprintf("it is %s; it may never have started, or its output is not collected yet", j.State)
	}
	return &requestError{status: http.StatusNotFound, code: CodeNoLogs,
		msg: fmt.Sprintf("job %s has no collected output: %s", j.ID, why)}
}

// followLogs streams a job's output until it ends. A terminal job's
// collected output is sent at once. Each token may have
// Config.MaxFollowsPerToken follows open (429 past it), and a follow of a
// job that stays queued or launching for Config.FollowStartTimeout ends
// with an error event.
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, id string, opts LogOptions) {
	// Stop when the client goes away or the server shuts down.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.streams, func() { cancel(errShuttingDown) })
	defer stop()

	gctx, gcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	j, err := s.svc.Get(gctx, id)
	gcancel()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !j.State.Terminal() {
		tok, _ := r.Context().Value(tokenKey{}).(int)
		if !s.follows.acquire(tok) {
			s.writeError(w, r, &requestError{status: http.StatusTooManyRequests, code: CodeTooManyFollows,
				retryAfter: QueueFullRetryAfterDefault,
				msg: fmt.Sprintf("too many log follows: this token already follows %d jobs at once (the most the server allows); "+
					"end one, or read the collected output without follow when the job has ended", s.follows.max)})
			return
		}
		defer s.follows.release(tok)
	}

	if rec, ok := w.(*recorder); ok {
		rec.streamed = true
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.StreamWriteTimeout}
	ew.flush()

	if j.State.Terminal() {
		logs, err := s.svc.Logs(ctx, id)
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			ew.send(LogEvent{Error: err.Error()})
			return
		}
		out, errb, err := logs.Render(opts.Since, opts.Timestamps)
		if err != nil {
			ew.send(LogEvent{Error: noLogTimes(id, err).Error()})
			return
		}
		ew.send(LogEvent{Stream: "stdout", Data: string(out)})
		ew.send(LogEvent{Stream: "stderr", Data: string(errb)})
		ew.send(LogEvent{End: true, State: j.State, ExitCode: j.ExitCode})
		return
	}

	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchStart(ctx, cancel, j)
	}()
	stdout, stderr := ew.stream("stdout"), ew.stream("stderr")
	err = s.svc.FollowLogs(ctx, id, opts, stdout, stderr)
	stdout.close()
	stderr.close()
	cancel(nil)
	<-watched
	var ns *notStartedError
	switch cause := context.Cause(ctx); {
	case r.Context().Err() != nil:
		return // the client left
	case errors.Is(cause, errShuttingDown):
		ew.send(LogEvent{Error: "the server is shutting down; follow again to go on"})
		return
	case errors.As(cause, &ns):
		ew.send(LogEvent{Error: ns.Error()})
		return
	case err != nil:
		s.log.Warn("api: following logs", "job", id, "err", err)
		ew.send(LogEvent{Error: err.Error()})
		return
	}
	gctx, gcancel = context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer gcancel()
	if j2, err := s.svc.Get(gctx, id); err == nil {
		j = j2
	}
	ew.send(LogEvent{End: true, State: j.State, ExitCode: j.ExitCode})
}

var errShuttingDown = errors.New("api: shutting down")

// notStartedError ends a follow whose job has not run for too long.
type notStartedError struct {
	j     *job.Job
	after time.Duration
}

func (e *notStartedError) Error() string {
	why := ""
	if e.j.Reason != "" {
		why = " (" + e.j.Reason + ")"
	}
	return fmt.Sprintf("job %s has been %s%s for %v without running; stopped following it: follow again later, "+
		"or wait for it with GET /v1/jobs/%s", e.j.ID, e.j.State, why, e.after, e.j.ID)
}

// watchStart cancels a follow with a *notStartedError once its job has
// stayed queued or launching for FollowStartTimeout without a break
// (counted from the start of the follow, or from when the job was last
// seen running). It checks the job at most once a second and returns when
// ctx ends.
func (s *Server) watchStart(ctx context.Context, cancel context.CancelCauseFunc, j *job.Job) {
	limit := s.cfg.FollowStartTimeout
	every := min(time.Second, max(limit/4, 10*time.Millisecond))
	since := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		switch {
		case j.State == job.StateRunning || j.State.Terminal():
			since = time.Now()
		case time.Since(since) >= limit:
			cancel(&notStartedError{j: j, after: limit})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		gctx, gcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		j2, err := s.svc.Get(gctx, j.ID)
		gcancel()
		if err == nil {
			j = j2
		}
	}
}

// followLimiter counts the open log follows of each token (by its index in
// Config.Tokens; -1 for every client when there are no tokens).
type followLimiter struct {
	max  int
	mu   sync.Mutex
	open map[int]int
}

func (l *followLimiter) acquire(tok int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[tok] >= l.max {
		return false
	}
	l.open[tok]++
	return true
}

func (l *followLimiter) release(tok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[tok]--; l.open[tok] <= 0 {
		delete(l.open, tok)
	}
}

// eventWriter writes LogEvents to a streaming response, one JSON line each,
// flushed at once. It is safe for concurrent use (stdout and stderr may be
// written from different goroutines).
type eventWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	err     error // the first write error; later sends fail with it
}

func (e *eventWriter) send(ev LogEvent) error {
	if ev.Stream != "" && ev.Data == "" {
		return nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if e.timeout > 0 {
		// Not every ResponseWriter supports deadlines; that only means no bound.
		_ = e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	}
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		e.err = err
		return err
	}
	if err := e.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		e.err = err
		return err
	}
	return nil
}

func (e *eventWriter) flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.rc.Flush()
}

// stream returns an io.Writer that sends what is written to it as events
// of one stream. It holds back the bytes of a UTF-8 character split across
// two writes until the rest arrives, so no character is mangled.
func (e *eventWriter) stream(name string) *streamWriter {
	return &streamWriter{e: e, name: name}
}

type streamWriter struct {
	e     *eventWriter
	name  string
	mu    sync.Mutex
	carry []byte
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	data := append(s.carry, p...)
	cut := completeUTF8(data)
	s.carry = append([]byte(nil), data[cut:]...)
	s.mu.Unlock()
	if cut == 0 {
		return len(p), nil
	}
	if err := s.e.send(LogEvent{Stream: s.name, Data: string(data[:cut])}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// close sends what is held back.
func (s *streamWriter) close() {
	s.mu.Lock()
	rest := s.carry
	s.carry = nil
	s.mu.Unlock()
	if len(rest) > 0 {
		s.e.send(LogEvent{Stream: s.name, Data: string(rest)})
	}
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a UTF-8 character (invalid bytes count as complete).
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
