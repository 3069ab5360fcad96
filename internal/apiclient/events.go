package apiclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fusebox/internal/event"
)

// EventsParams select the events of Client.Events.
type EventsParams struct {
	Types []string // any of these types; none: all
	JobID string
	Host  string
	// Since is where to start: a sequence number (the events after it), a
	// duration ("10m": the events of the last ten minutes) or an RFC 3339
	// time. "": the next event when following, the oldest otherwise.
	Since string
	// Follow goes on with new events until ctx ends; without it Events
	// returns after the newest matching event.
	Follow bool
}

// reconnectMaxDefault bounds the wait between two reconnections of Events.
const reconnectMaxDefault = 5 * time.Second

// Events calls fn with each event matching p, in sequence order, until the
// newest (without Follow), ctx ends, or fn returns an error (which it
// returns). A connection that drops, or a server that restarts, is
// reconnected with Last-Event-ID, so no event is missed or seen twice;
// only errors the server will not recover from (a bad parameter, a
// refused token) are returned. With Follow and no Since, events committed
// while the first connection is being made again, before it got any event,
// may be missed.
func (c *Client) Events(ctx context.Context, p EventsParams, fn func(event.Event) error) error {
	q := url.Values{"follow": {strconv.FormatBool(p.Follow)}}
	if len(p.Types) > 0 {
		q.Set("type", strings.Join(p.Types, ","))
	}
	if p.JobID != "" {
		q.Set("job", p.JobID)
	}
	if p.Host != "" {
		q.Set("host", p.Host)
	}
	if p.Since != "" {
		q.Set("since", p.Since)
	}
	var last int64 = -1 // the last event seen
	wait := RetryWaitDefault
	for {
		got, done, err := c.eventStream(ctx, q, last, func(ev event.Event) error {
			last = ev.Seq
			return fn(ev)
		})
		switch {
		case done:
			return err // nil, or fn's
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !retryable(err) && !errors.Is(err, errStreamCut):
			return err
		}
		if got {
			wait = RetryWaitDefault // it was working: reconnect at once-ish
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, reconnectMaxDefault)
	}
}

// errStreamCut is an event stream that ended without its end (a follow
// always; a read without follow before ": end").
var errStreamCut = errors.New("apiclient: event stream cut")

// errFn wraps an error of Events' fn, which ends Events.
type errFn struct{ err error }

func (e errFn) Error() string { return e.err.Error() }

// eventStream reads one connection of GET /v1/events, resuming after last
// (when >= 0). got says an event arrived; done that the server ended the
// stream cleanly.
func (c *Client) eventStream(ctx context.Context, q url.Values, last int64, fn func(event.Event) error) (got, done bool, err error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/events", q, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if last >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
	}
	res, err := c.send(req)
	if err != nil {
		return false, false, err
	}
	defer res.Body.Close()
	err = readSSE(res.Body, func(ev event.Event) error {
		got = true
		if err := fn(ev); err != nil {
			return errFn{err}
		}
		return nil
	})
	var fe errFn
	switch {
	case errors.As(err, &fe):
		return got, true, fe.err
	case errors.Is(err, errSSEEnd):
		return got, true, nil
	case err != nil && ctx.Err() == nil:
		return got, false, fmt.Errorf("%w: %w", errStreamCut, err)
	}
	return got, false, errStreamCut
}

var errSSEEnd = errors.New("end of the event stream")

// readSSE parses server-sent events from r, calling fn with each, until
// r ends (nil), the ": end" comment (errSSEEnd), or an error.
func readSSE(r io.Reader, fn func(event.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var ev event.Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("apiclient: events: bad event %q: %w", data.String(), err)
			}
			data.Reset()
			if err := fn(ev); err != nil {
				return err
			}
		case line == ": end":
			return errSSEEnd
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		// id:, event: and comments: the data line carries all of it.
	}
	return sc.Err()
}
