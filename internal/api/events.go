package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fusebox/internal/event"
)

// Events is what the API needs of the event stream: the store's log for a
// read that ends, the bus for a stream that follows. internal/server adapts
// the store and the event bus to it.
type Events interface {
	// List returns up to p.Limit events matching p after p.AfterSeq, in Seq
	// order.
	List(ctx context.Context, p event.ListParams) ([]event.Event, error)
	// Subscribe follows the events matching f after afterSeq
	// (event.FromNow: the newest).
	Subscribe(f event.Filter, afterSeq int64) EventSubscription
}

// EventSubscription is one follow of the stream (*event.Subscription).
type EventSubscription interface {
	C() <-chan event.Event
	Close()
}

// SetEvents serves GET /v1/events from ev. Call it before Serve; without
// it the endpoint answers 404.
func (s *Server) SetEvents(ev Events) { s.events = ev }

// eventsQuery is a parsed GET /v1/events request.
type eventsQuery struct {
	filter event.Filter
	after  int64 // event.FromNow: not given
	follow bool
}

// parseEventsQuery reads the filters, the starting point (Last-Event-ID
// wins over since, as a reconnecting client sends it) and follow.
func parseEventsQuery(r *http.Request, now time.Time) (eventsQuery, error) {
	q := eventsQuery{after: event.FromNow, follow: true}
	for k, vs := range r.URL.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "type":
			for _, v := range vs {
				for t := range strings.SplitSeq(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						q.filter.Types = append(q.filter.Types, t)
					}
				}
			}
		case "job":
			q.filter.JobID = v
		case "host":
			q.filter.Host = v
		case "since":
			if err := q.since(v, now); err != nil {
				return q, err
			}
		case "follow":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return q, badRequest("follow", "follow %q: must be true or false", v)
			}
			q.follow = b
		default:
			return q, badRequest(k, "unknown query parameter %q: use type, job, host, since or follow", k)
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		seq, err := strconv.ParseInt(id, 10, 64)
		if err != nil || seq < 0 {
			return q, badRequest("Last-Event-ID", "Last-Event-ID %q: must be the id of an event, a sequence number", id)
		}
		q.after = seq
	}
	if q.after == event.FromNow && !q.follow {
		q.after = 0 // a read that ends reads what there is
	}
	return q, nil
}

// since is ?since=: a sequence number (the events after it), a duration
// (the events of that long ago and later) or an RFC 3339 time.
func (q *eventsQuery) since(v string, now time.Time) error {
	if seq, err := strconv.ParseInt(v, 10, 64); err == nil && seq >= 0 {
		q.after = seq
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		q.after, q.filter.Since = 0, now.Add(-d)
		return nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		q.after, q.filter.Since = 0, t
		return nil
	}
	return badRequest("since", "since %q: must be a sequence number, a duration (10m) or an RFC 3339 time", v)
}

// listEvents: GET /v1/events, server-sent events. Each event is sent as
//
//	id: <seq>
//	event: <type>
//	data: <the event as JSON>
//
// With follow (the default) the stream goes on until the client leaves, a
// comment line every Config.EventHeartbeat while idle; a client that
// reconnects with Last-Event-ID gets every event after that one, once.
// With follow=false it ends after the newest matching event, with the
// comment ": end".
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		s.writeError(w, r, &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "the event stream is not enabled on this server"})
		return
	}
	q, err := parseEventsQuery(r, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	var sub EventSubscription
	if q.follow {
		tok, _ := r.Context().Value(tokenKey{}).(int)
		if !s.eventStreams.acquire(tok) {
			s.writeError(w, r, &requestError{status: http.StatusTooManyRequests, code: CodeTooManyFollows,
				retryAfter: QueueFullRetryAfterDefault,
				msg:        fmt.Sprintf("too many event streams: this token already has %d open (the most the server allows); end one", s.eventStreams.max)})
			return
		}
		defer s.eventStreams.release(tok)
		sub = s.events.Subscribe(q.filter, q.after) // before the answer starts: nothing after it is missed
		defer sub.Close()
	}

	if rec, ok := w.(*recorder); ok {
		rec.streamed = true
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.StreamWriteTimeout}
	if sw.comment("fusebox events") != nil {
		return
	}

	if !q.follow {
		for after := q.after; ; {
			evs, err := s.events.List(ctx, event.ListParams{AfterSeq: after, Filter: q.filter, Limit: 500})
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("api: listing events", "err", err)
					sw.comment("error: " + err.Error())
				}
				return
			}
			for _, ev := range evs {
				if sw.send(ev) != nil {
					return
				}
				after = ev.Seq
			}
			if len(evs) < 500 {
				sw.comment("end") // a clean end, not a cut connection
				return
			}
		}
	}

	beat := time.NewTicker(s.cfg.EventHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if sw.send(ev) != nil {
				return
			}
		case <-beat.C:
			if sw.comment("heartbeat") != nil {
				return
			}
		}
	}
}

// sseWriter writes server-sent events, each flushed at once and bounded by
// timeout, so a client that stops reading cannot hold the stream.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *sseWriter) send(ev event.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return s.write(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b))
}

// comment writes a comment line, which clients ignore.
func (s *sseWriter) comment(text string) error {
	return s.write(": " + strings.ReplaceAll(text, "\n", " ") + "\n\n")
}

func (s *sseWriter) write(text string) error {
	if s.timeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) // not every writer has deadlines
	}
	if _, err := s.w.Write([]byte(text)); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
