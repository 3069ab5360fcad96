package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/job"
)

// Wait follows a job until it is in a terminal state and returns it.
func (c *Client) Wait(ctx context.Context, id string) (*job.Job, error) {
	return c.WaitTransitions(ctx, id, nil)
}

// WaitTransitions follows a job on the event stream until it is in a
// terminal state, and returns it as it ended. It calls onTransition (if not
// nil) with each of the job's transitions, from its submission on, once and
// in order, as each is committed: nothing is polled, and the end is seen as
// soon as the server records it. A dropped connection or a restarting
// server is reconnected where the stream was (see Events).
//
// Errors the server may recover from (a connection refused while it
// restarts, 5xx, 429) are retried until ctx ends; any other error (an
// unknown job, a refused token) is returned.
func (c *Client) WaitTransitions(ctx context.Context, id string, onTransition func(job.Transition)) (*job.Job, error) {
	d, err := c.getRetrying(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Job.State.Terminal() {
		// Its events may be gone with it; its transitions are in the detail.
		if onTransition != nil {
			for _, t := range d.Transitions {
				onTransition(t)
			}
		}
		return d.Job, nil
	}
	var n int64
	err = c.Events(ctx, EventsParams{Types: []string{event.TypeJobTransition}, JobID: id, Since: "0", Follow: true},
		func(ev event.Event) error {
			t, err := transitionOf(ev)
			if err != nil {
				return err
			}
			n++
			t.Seq = n
			if onTransition != nil {
				onTransition(t)
			}
			if t.To.Terminal() {
				return errJobEnded
			}
			return nil
		})
	if !errors.Is(err, errJobEnded) {
		return nil, err
	}
	d, err = c.getRetrying(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.Job, nil
}

// errJobEnded ends the event stream of WaitTransitions.
var errJobEnded = errors.New("apiclient: the job ended")

// transitionOf reads a job.transition event as the job's transition.
func transitionOf(ev event.Event) (job.Transition, error) {
	var d event.JobTransition
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return job.Transition{}, fmt.Errorf("apiclient: event %d: bad %s data: %w", ev.Seq, ev.Type, err)
	}
	return job.Transition{JobID: ev.JobID, From: job.State(d.From), To: job.State(d.To), Reason: d.Reason,
		Host: ev.Host, Attempt: ev.Attempt, At: ev.At}, nil
}

// getRetrying is Get, retried with backoff while the error may go away by
// itself, until ctx ends.
func (c *Client) getRetrying(ctx context.Context, id string) (*api.JobDetail, error) {
	wait := RetryWaitDefault
	for {
		d, err := c.Get(ctx, id)
		if err == nil || !retryable(err) {
			return d, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, reconnectMaxDefault)
	}
}

// retryable reports whether err may go away by itself.
func retryable(err error) bool {
	var ce *ConnError
	if errors.As(err, &ce) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return errors.Is(err, context.DeadlineExceeded) // one request timed out, not ctx
}
