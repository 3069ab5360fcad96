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

// jobLogs: GET /v1/jobs/{id}/logs, and with ?follow=true the output as it
// is written, as newline-delimited JSON LogEvents.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	follow := false
	for k, vs := range r.URL.Query() {
		if k != "follow" {
			s.writeError(w, r, badRequest(k, "unknown query parameter %q: use follow=true", k))
			return
		}
		b, err := strconv.ParseBool(vs[len(vs)-1])
		if err != nil {
			s.writeError(w, r, badRequest("follow", "must be true or false (got %q)", vs[len(vs)-1]))
			return
		}
		follow = b
	}
	if follow {
		s.followLogs(w, r, id)
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
	writeJSON(w, http.StatusOK, LogsResponse{Stdout: string(logs.Stdout), Stderr: string(logs.Stderr), Truncated: logs.Truncated})
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
// collected output is sent at once.
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, id string) {
	// Stop when the client goes away or the server shuts down.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	gctx, gcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	j, err := s.svc.Get(gctx, id)
	gcancel()
	if err != nil {
		s.writeError(w, r, err)
		return
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
		ew.send(LogEvent{Stream: "stdout", Data: string(logs.Stdout)})
		ew.send(LogEvent{Stream: "stderr", Data: string(logs.Stderr)})
		ew.send(LogEvent{End: true, State: j.State, ExitCode: j.ExitCode})
		return
	}

	stdout, stderr := ew.stream("stdout"), ew.stream("stderr")
	err = s.svc.FollowLogs(ctx, id, stdout, stderr)
	stdout.close()
	stderr.close()
	switch {
	case r.Context().Err() != nil:
		return // the client left
	case s.streams.Err() != nil:
		ew.send(LogEvent{Error: "the server is shutting down; follow again to go on"})
		return
	case err != nil:
		s.log.Warn("api: following logs", "job", id, "err", err)
		ew.send(LogEvent{Error: err.Error()})
		return
	}
	gctx, gcancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer gcancel()
	if j2, err := s.svc.Get(gctx, id); err == nil {
		j = j2
	}
	ew.send(LogEvent{End: true, State: j.State, ExitCode: j.ExitCode})
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
