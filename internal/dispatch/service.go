package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// QueueFullError is returned when a submission would pass the queue bound.
// It matches job.ErrQueueFull.
type QueueFullError struct {
	Max        int
	RetryAfter time.Duration
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue is full (%d jobs waiting); retry after %s", e.Max, e.RetryAfter)
}

func (e *QueueFullError) Is(target error) bool { return target == job.ErrQueueFull }

// Submit validates spec, commits it as a queued job and returns it. With an
// idempotency key already used for the same spec, it returns the existing
// job and existed == true.
func (d *Dispatcher) Submit(ctx context.Context, spec job.Spec) (j *job.Job, existed bool, err error) {
	if err := spec.ValidateWith(d.cfg.SpecLimits); err != nil {
		d.rejected("invalid")
		return nil, false, err
	}
	if d.cfg.Artifacts == nil && (len(spec.Inputs) > 0 || len(spec.Outputs) > 0) {
		d.rejected("invalid")
		field := "inputs"
		if len(spec.Inputs) == 0 {
			field = "outputs"
		}
		return nil, false, errors.Join(job.ErrInvalid, &job.FieldError{Field: field, Reason: "this server keeps no artifacts"})
	}
	if !d.fleet.Matches(spec.Constraints) {
		d.rejected("no_host")
		return nil, false, errors.Join(job.ErrInvalid, &job.FieldError{Field: "constraints", Value: spec.Constraints, Reason: "no configured host carries these labels"})
	}
	if spec.PullPolicy == "" {
		spec.PullPolicy = job.PullMissing
	}
	now := time.Now().UTC()
	j = &job.Job{ID: job.NewID(now), Spec: spec, State: job.StateQueued, CreatedAt: now}
	j, existed, err = d.store.JobInsert(ctx, store.JobInsertParams{Job: j, MaxQueued: d.cfg.MaxQueued})
	if errors.Is(err, job.ErrQueueFull) {
		d.rejected("queue_full")
		return nil, false, &QueueFullError{Max: d.cfg.MaxQueued, RetryAfter: d.cfg.RetryAfter}
	}
	if err != nil {
		return nil, false, err
	}
	if !existed {
		if d.cfg.Hooks.Submitted != nil {
			d.cfg.Hooks.Submitted(j)
		}
		d.Wake()
	}
	return j, existed, nil
}

func (d *Dispatcher) rejected(reason string) {
	if d.cfg.Hooks.Rejected != nil {
		d.cfg.Hooks.Rejected(reason)
	}
}

// Cancel cancels a job: a queued job at once, a launching or running one by
// stopping its container (the job reaches cancelled when it has stopped).
func (d *Dispatcher) Cancel(ctx context.Context, id string) (*job.Job, error) {
	for {
		j, err := d.store.JobGetByID(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State.Terminal() {
			return j, job.ErrTerminal
		}
		if j.State == job.StateQueued {
			now := time.Now()
			nj, err := d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: id, From: []job.State{job.StateQueued}, To: job.StateCancelled, Reason: "cancelled by user", Now: now, FinishedAt: &now,
				Cause: job.CauseCancelled,
			})
			if errors.Is(err, job.ErrConflict) {
				continue // placed meanwhile: cancel it as a launching job
			}
			if err == nil {
				d.finished(nj)
			}
			return nj, err
		}
		nj, err := d.store.JobSetCancelRequested(ctx, id)
		if errors.Is(err, job.ErrConflict) {
			continue // back in the queue meanwhile: cancel it there
		}
		if err != nil {
			return nj, err
		}
		d.mu.Lock()
		hd := d.handles[id]
		d.mu.Unlock()
		if hd != nil {
			signal(hd.cancel)
		}
		return nj, nil
	}
}

// Get returns one job.
func (d *Dispatcher) Get(ctx context.Context, id string) (*job.Job, error) {
	return d.store.JobGetByID(ctx, id)
}

// List returns jobs matching p.
func (d *Dispatcher) List(ctx context.Context, p store.JobListParams) ([]*job.Job, error) {
	return d.store.JobList(ctx, p)
}

// Transitions returns a job's recorded transitions.
func (d *Dispatcher) Transitions(ctx context.Context, id string) ([]job.Transition, error) {
	if _, err := d.store.JobGetByID(ctx, id); err != nil {
		return nil, err
	}
	return d.store.JobTransitionList(ctx, id)
}

// Attempts returns a job's attempts.
func (d *Dispatcher) Attempts(ctx context.Context, id string) ([]job.Attempt, error) {
	if _, err := d.store.JobGetByID(ctx, id); err != nil {
		return nil, err
	}
	return d.store.AttemptList(ctx, id)
}

// Logs returns a finished job's collected output.
func (d *Dispatcher) Logs(ctx context.Context, id string) (job.Logs, error) {
	if _, err := d.store.JobGetByID(ctx, id); err != nil {
		return job.Logs{}, err
	}
	return d.store.LogsGet(ctx, id)
}

// FollowLogs writes a job's output as it is produced: it waits while the
// job is queued or launching, streams from the container while it runs
// (the stream's opening passes the host's call limiter, in the logs lane),
// streams the next attempt's container after a failover, and returns once
// the job has ended: woken by the job's own events, it sees each change as
// it is committed. A job that has already ended gets its stored output.
// The caller bounds how long it waits for a job that does not start.
// opts asks, as docker logs -f does, for output logged since a time only,
// and for each line prefixed with its time; a job whose output was kept
// without times then fails with job.ErrNoLogTimes.
func (d *Dispatcher) FollowLogs(ctx context.Context, id string, opts engine.FollowOptions, stdout, stderr io.Writer) error {
	w := d.watchJob(id)
	defer w.stop()
	streamed := 0 // the attempt whose output was streamed
	for {
		j, err := d.store.JobGetByID(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case j.State.Terminal():
			if streamed > 0 && streamed == j.Attempt {
				return nil
			}
			logs, err := d.store.LogsGet(ctx, id)
			if errors.Is(err, job.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			out, errb, err := logs.Render(opts.Since, opts.Timestamps)
			if err != nil {
				return err
			}
			if _, err := stdout.Write(out); err != nil {
				return err
			}
			_, err = stderr.Write(errb)
			return err
		case j.State == job.StateRunning && streamed != j.Attempt:
			if h := d.fleet.Host(j.Host); h != nil {
				err := h.Client().FollowLogsWith(fleet.WithLane(ctx, fleet.LaneLogs), j.ContainerID, opts, stdout, stderr)
				if err == nil {
					streamed = j.Attempt
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !errors.Is(err, engine.ErrNotFound) {
					d.log.Debug("follow logs", "job", id, "err", err)
				}
				// The stream broke while the job runs: look again soon,
				// whether or not the job changes.
				if !sleepCtx(ctx, FollowPollInterval) {
					return ctx.Err()
				}
				continue
			}
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
}

// jobWatch wakes a follower of one job: on each of its committed events
// (Config.Events), or every FollowPollInterval without them.
type jobWatch struct {
	sub  *event.Subscription
	tick *time.Ticker
}

// watchJob starts watching job id. It subscribes before the caller first
// reads the job, so no change after that read is missed.
func (d *Dispatcher) watchJob(id string) jobWatch {
	if d.cfg.Events == nil {
		return jobWatch{tick: time.NewTicker(FollowPollInterval)}
	}
	return jobWatch{sub: d.cfg.Events.Subscribe(event.Filter{JobID: id, Types: []string{event.TypeJobTransition}}, event.FromNow)}
}

// wait returns when the job may have changed, or with ctx's error.
func (w jobWatch) wait(ctx context.Context) error {
	if w.tick != nil {
		select {
		case <-w.tick.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case _, ok := <-w.sub.C():
		if !ok {
			return errors.New("dispatch: the event stream stopped")
		}
		for range len(w.sub.C()) { // one look covers every event already here
			<-w.sub.C()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w jobWatch) stop() {
	if w.tick != nil {
		w.tick.Stop()
		return
	}
	w.sub.Close()
}

// QueueStats counts jobs by state.
type QueueStats struct {
	Queued    int
	Running   int // launching or running
	MaxQueued int
	ByState   map[job.State]int
}

// Stats returns the queue's counts.
func (d *Dispatcher) Stats(ctx context.Context) (QueueStats, error) {
	by, err := d.store.JobCountByState(ctx)
	if err != nil {
		return QueueStats{}, err
	}
	return QueueStats{
		Queued: by[job.StateQueued], Running: by[job.StateLaunching] + by[job.StateRunning],
		MaxQueued: d.cfg.MaxQueued, ByState: by,
	}, nil
}
