package dispatch

import (
	"context"
	"time"

	"fusebox/internal/store"
)

// Retention of finished jobs.
const (
	// retentionBatch is the most jobs deleted in one transaction, so that
	// submissions and transitions are never held up for long.
	retentionBatch = 200
	// retentionMaxInterval bounds how long a job outlives its retention.
	retentionMaxInterval = 10 * time.Minute
)

// retentionInterval is how often the retention loop looks: a hundredth of
// the retention, between a second and retentionMaxInterval.
func retentionInterval(retention time.Duration) time.Duration {
	return min(max(retention/100, time.Second), retentionMaxInterval)
}

// startRetention starts the loop that deletes finished jobs (with their
// transitions, attempts and logs) once they are older than
// Config.Retention; with Retention 0 jobs are kept forever and nothing
// starts. Start calls it; the loop ends with the dispatcher's context and
// Stop waits for it.
func (d *Dispatcher) startRetention() {
	if d.cfg.Retention <= 0 {
		return
	}
	d.goBackground(func() { d.retentionLoop(d.ctx) })
}

// retentionLoop prunes at once, then every retentionInterval, until ctx
// ends.
func (d *Dispatcher) retentionLoop(ctx context.Context) {
	t := time.NewTicker(retentionInterval(d.cfg.Retention))
	defer t.Stop()
	for {
		d.prune(ctx, time.Now().Add(-d.cfg.Retention))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune deletes the jobs that finished before cutoff, a batch at a time.
func (d *Dispatcher) prune(ctx context.Context, cutoff time.Time) {
	total := 0
	for ctx.Err() == nil {
		n, err := d.store.JobDeleteFinished(ctx, store.JobDeleteFinishedParams{Before: cutoff, Limit: retentionBatch})
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("retention: delete finished jobs", "err", err)
			}
			return
		}
		total += n
		if n < retentionBatch {
			break
		}
	}
	if total > 0 {
		d.log.Info("retention: deleted finished jobs", "jobs", total, "finished_before", cutoff)
	}
}
