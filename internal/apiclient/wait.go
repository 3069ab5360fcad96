package apiclient

import (
	"context"
	"errors"
	"net/http"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/job"
)

// Wait polls a job until it is in a terminal state and returns it. It calls
// onChange (if not nil) with the job first and then whenever its state,
// reason, host or attempt changes. Polls start PollInterval apart and slow
// to MaxPollInterval while nothing changes.
//
// Errors the server may recover from (a connection refused while it
// restarts, 5xx, 429) are retried until ctx ends; any other error is
// returned.
func (c *Client) Wait(ctx context.Context, id string, onChange func(*job.Job)) (*job.Job, error) {
	var last *job.Job
	return c.poll(ctx, id, func(d *api.JobDetail) {
		j := d.Job
		if onChange != nil && (last == nil || j.State != last.State || j.Reason != last.Reason ||
			j.Host != last.Host || j.Attempt != last.Attempt) {
			onChange(j)
		}
		last = j
	})
}

// WaitTransitions is Wait that reports each stored transition of the job
// once, in order, instead of the job's changes, so no state is missed
// between two polls.
func (c *Client) WaitTransitions(ctx context.Context, id string, onTransition func(job.Transition)) (*job.Job, error) {
	var seen int64
	return c.poll(ctx, id, func(d *api.JobDetail) {
		for _, t := range d.Transitions {
			if t.Seq > seen {
				seen = t.Seq
				if onTransition != nil {
					onTransition(t)
				}
			}
		}
	})
}

func (c *Client) poll(ctx context.Context, id string, fn func(*api.JobDetail)) (*job.Job, error) {
	interval, maxInterval := c.PollInterval, c.MaxPollInterval
	if interval <= 0 {
		interval = PollIntervalDefault
	}
	if maxInterval < interval {
		maxInterval = max(MaxPollIntervalDefault, interval)
	}
	wait := interval
	var lastUpdate time.Time
	for {
		d, err := c.Get(ctx, id)
		switch {
		case err == nil:
			fn(d)
			if d.Job.State.Terminal() {
				return d.Job, nil
			}
			if !d.Job.UpdatedAt.Equal(lastUpdate) {
				lastUpdate, wait = d.Job.UpdatedAt, interval
			} else {
				wait = min(wait*2, maxInterval)
			}
		case retryable(err):
			wait = min(wait*2, maxInterval)
		default:
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
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
