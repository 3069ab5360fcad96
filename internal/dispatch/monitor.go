package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow/artifact"
)

// ending is why a running job stops being watched.
type ending struct {
	state   job.State // terminal state, or queued for a retry after a host fault
	reason  string
	outcome string    // the attempt's outcome when it differs from state
	cause   job.Cause // why it ended, when state is terminal
	outputs []job.Output
}

// monitor watches a running job until it ends: an exit event (or a poll
// that finds it exited), its timeout, a cancel, or its host staying
// unreachable past LostAfter (then it is declared lost, and its container
// fenced). It then collects the logs, records the end and removes the
// container. It owns the job's capacity slot.
func (d *Dispatcher) monitor(ctx context.Context, hd *handle, h *fleet.Host) {
	defer hd.slot.release()
	j := hd.job
	cid := j.ContainerID

	var timeout <-chan time.Time
	if j.Spec.Timeout > 0 {
		t := time.NewTimer(time.Until(j.StartedAt.Add(j.Spec.Timeout.Std())))
		defer t.Stop()
		timeout = t.C
	}
	// The output is collected while the job runs, so that a big one costs
	// bounded memory and no single call has to read it all at the end. On a
	// host that is out or slow, collection is deferred (graceful
	// degradation): it starts once the job has ended and the host is back,
	// and the container is kept until then (the engine keeps its log).
	var col *engine.LogCollector
	collect := func() {
		col = h.Client().CollectLogs(fleet.WithLane(ctx, fleet.LaneLogs), cid, d.cfg.LogMaxBytes, 0)
	}
	if !h.Struggling() {
		collect()
	}
	defer func() {
		if col != nil {
			col.Close()
		}
	}()
	poll := time.NewTimer(0) // one look at once: it may have exited already
	defer poll.Stop()
	var unreachableSince time.Time
	var end ending
	exitCode := -1

watch:
	for {
		select {
		case <-ctx.Done():
			return // shutting down: left running; the next Start adopts it
		case <-hd.exited:
			poll.Reset(0) // confirm with an inspect, which also gives the exit code
			continue
		case <-hd.cancel:
			d.stop(ctx, h, cid)
			end = ending{state: job.StateCancelled, reason: "cancelled by user", cause: job.CauseCancelled}
			break watch
		case <-timeout:
			d.stop(ctx, h, cid)
			end = ending{state: job.StateTimedOut, reason: fmt.Sprintf("ran past its timeout of %s", j.Spec.Timeout), cause: job.CauseTimeout}
			break watch
		case <-poll.C:
		}
		var ct *engine.Container
		err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
			var err error
			ct, err = c.Inspect(ctx, cid)
			return err
		})
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && ct.Exited():
			exitCode = ct.ExitCode
			switch {
			case ct.ExitCode == 0:
				end = ending{state: job.StateSucceeded, reason: "exit code 0"}
			case d.stoppedByDaemon(ctx, hd, h, ct):
				// Its daemon went down (restart, crash) and took it along:
				// the host's fault, not the job's.
				end = d.hostFaultEnding(j, fmt.Sprintf("%s: stopped when the Docker daemon on %s went down", exitReason(ct), h.Name()))
				exitCode = -1
			default:
				end = ending{state: job.StateFailed, reason: exitReason(ct), cause: job.CauseExit}
			}
			break watch
		case err == nil:
			unreachableSince = time.Time{}
		case errors.Is(err, engine.ErrNotFound):
			end = ending{state: job.StateLost, reason: "container " + shortID(cid) + " disappeared from " + h.Name(), cause: job.CauseHost}
			break watch
		default:
			// Host fault or breaker open: keep the job, back off, and apply
			// the lost-host policy once the host has been out long enough.
			if unreachableSince.IsZero() {
				unreachableSince = time.Now()
			}
			if time.Since(unreachableSince) >= d.cfg.LostAfter {
				d.declareLost(ctx, hd, h, false, fmt.Sprintf("host %s unreachable for %s while the job ran", h.Name(), d.cfg.LostAfter))
				return
			}
		}
		poll.Reset(d.pollInterval(h))
	}

	var logs *job.Logs
	if end.state == job.StateSucceeded || end.state == job.StateFailed || end.state == job.StateTimedOut || end.state == job.StateCancelled {
		// A user who cancelled is not kept waiting for an unreachable host:
		// one try. Other ends wait for the host (up to LostAfter).
		// Without graceful degradation nobody waits for a host that is out.
		patient := end.state != job.StateCancelled && !d.cfg.NoDegradation
		if col == nil {
			if patient && !d.awaitRecovery(ctx, hd, h) {
				return
			}
			collect()
		}
		logs = d.collectLogs(ctx, hd, h, col, patient)
		if ctx.Err() != nil {
			return
		}
	}
	if end.state == job.StateSucceeded && len(j.Spec.Outputs) > 0 {
		end = d.collectOutputs(ctx, hd, h, end)
		if ctx.Err() != nil {
			return
		}
	}
	if logs != nil {
		if err := d.retryStore(ctx, "store logs of job "+j.ID, func() error { return d.store.LogsSet(ctx, j.ID, *logs) }); err != nil {
			if ctx.Err() == nil {
				d.log.Error("store logs", "job", j.ID, "err", err)
			}
			return
		}
	}
	d.finishRun(ctx, hd, h, end, exitCode)
}

// collectOutputs copies the declared outputs of a job that exited 0 out of
// its container into the artifact store, before the container is removed.
// A declared output the container does not have, or one the store refuses
// (too large, a device file), fails the job (its own fault). While the host cannot be reached it waits, as log collection
// does, up to LostAfter; then the job fails with CauseHost.
func (d *Dispatcher) collectOutputs(ctx context.Context, hd *handle, h *fleet.Host, end ending) ending {
	j := hd.job
	deadline := time.Now().Add(d.cfg.LostAfter)
	wait := time.Second
	for {
		var outs []job.Output
		err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
			var err error
			outs, err = d.cfg.Artifacts.CopyOut(ctx, c, j.ContainerID, j.Spec.Outputs)
			return err
		})
		switch {
		case err == nil:
			end.outputs = outs
			return end
		case ctx.Err() != nil:
			return end
		case errors.Is(err, artifact.ErrMissingOutput), errors.Is(err, artifact.ErrTooLarge), errors.Is(err, artifact.ErrRefused):
			// What the job left is wrong: its own failure.
			return ending{state: job.StateFailed, cause: job.CauseOutput,
				reason: fmt.Sprintf("exit code 0, but its outputs cannot be kept: %v", err)}
		case !engineHostFault(err) && !errors.Is(err, breaker.ErrOpen):
			return ending{state: job.StateFailed, cause: job.CauseArtifact,
				reason: fmt.Sprintf("exit code 0, but its outputs could not be kept: %v", err)}
		case time.Now().After(deadline):
			return ending{state: job.StateFailed, cause: job.CauseHost,
				reason: fmt.Sprintf("exit code 0, but its outputs could not be copied from %s within %s: %v", h.Name(), d.cfg.LostAfter, err)}
		}
		d.log.Warn("outputs not collected yet", "job", j.ID, "host", h.Name(), "retry_in", wait, "err", err)
		if !sleepCtx(ctx, wait) {
			return end
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// hostFaultEnding is the end of a run its host broke: another attempt
// elsewhere while attempts are left, else failed, saying why.
func (d *Dispatcher) hostFaultEnding(j *job.Job, why string) ending {
	if j.Attempt < d.maxAttempts(j) {
		return ending{state: job.StateQueued, reason: why + "; another host will be tried", outcome: outcomeHostFault}
	}
	return ending{state: job.StateFailed, reason: fmt.Sprintf("%s; attempts used up (%d)", why, d.maxAttempts(j)), outcome: outcomeHostFault, cause: job.CauseHost}
}

// finishRun records how a running job ended and removes its container.
func (d *Dispatcher) finishRun(ctx context.Context, hd *handle, h *fleet.Host, end ending, exitCode int) {
	j := hd.job
	now := time.Now()
	p := store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateRunning}, ExpectAttempt: &j.Attempt,
		To: end.state, Reason: end.reason, Now: now,
	}
	p.AttemptOutcome, p.Cause, p.Outputs = end.outcome, end.cause, end.outputs
	if end.state == job.StateQueued {
		p.NotBefore = store.Ptr(now.Add(d.backoff(j)))
	} else {
		p.FinishedAt = &now
	}
	if exitCode >= 0 {
		p.ExitCode = &exitCode
	}
	nj, err := d.commit(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("record end", "job", j.ID, "to", end.state, "err", err)
		}
		return
	}
	d.log.Info("job ended", "job", j.ID, "host", h.Name(), "state", nj.State, "reason", end.reason)
	// The container has stopped: it goes before the slot is given back.
	if end.state != job.StateLost {
		d.removeContainer(ctx, h, j.ContainerID)
	}
	hd.slot.release()
	d.afterRequeue(ctx, nj)
	d.Wake()
}

// collectLogs returns the container's output, collected by col while it
// ran (bounded: the last LogMaxBytes of each stream). Log collection is not
// urgent: while the host is unavailable it waits (the container is kept
// until its logs are read), up to LostAfter; then, or after a few seconds
// when not patient, the job ends with what was collected, and says so in
// its stderr. The size of the output never fails a collection.
func (d *Dispatcher) collectLogs(ctx context.Context, hd *handle, h *fleet.Host, col *engine.LogCollector, patient bool) *job.Logs {
	deadline := time.Now().Add(d.cfg.LostAfter)
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !patient {
			wctx, cancel = context.WithTimeout(ctx, impatientLogs)
		}
		out, errb, truncated, err := col.Wait(wctx)
		cancel()
		if err == nil {
			return collected(col, out, errb, truncated)
		}
		if ctx.Err() != nil {
			return nil
		}
		stopped := false
		select {
		case <-col.Done():
			stopped = true // it cannot go on: the container is gone, say
		default:
		}
		if stopped || !patient || time.Now().After(deadline) {
			d.log.Warn("logs not fully collected", "job", hd.id, "host", h.Name(), "err", err)
			l := collected(col, out, errb, truncated)
			note := "fusebox: logs could not be collected to the end: " + err.Error() + "\n"
			if len(l.StderrMarks) > 0 || len(l.Stderr) == 0 {
				l.StderrMarks = append(l.StderrMarks, job.LogMark{Off: len(l.Stderr), At: time.Now().UTC()})
			}
			l.Stderr = append(l.Stderr, note...)
			return l
		}
	}
}

// impatientLogs is how long a cancelled job waits for the rest of its
// output.
const impatientLogs = 5 * time.Second

// awaitRecovery waits, once a job has ended on a host whose log collection
// was deferred, until the host is no longer struggling: up to LostAfter
// while it is out, up to deferLogsMax while it is in but slow (then its
// logs are read slowly rather than keep the job's end waiting). It returns
// false when ctx ends.
func (d *Dispatcher) awaitRecovery(ctx context.Context, hd *handle, h *fleet.Host) bool {
	start := time.Now()
	logged := false
	for h.Struggling() {
		bound := deferLogsMax
		if !h.Available() {
			bound = d.cfg.LostAfter
		}
		if time.Since(start) >= bound {
			d.log.Warn("host still struggling: collecting the deferred logs anyway", "job", hd.id, "host", h.Name(), "waited", time.Since(start).Round(time.Millisecond))
			return true
		}
		if !logged {
			d.log.Info("log collection deferred until the host recovers", "job", hd.id, "host", h.Name())
			logged = true
		}
		if !sleepCtx(ctx, recoveryCheck) {
			return false
		}
	}
	if logged {
		d.log.Info("host recovered: collecting the deferred logs", "job", hd.id, "host", h.Name(), "deferred", time.Since(start).Round(time.Millisecond))
	}
	return true
}

// How long a job's deferred log collection waits for a slow host to
// recover, and how often it looks (the host's state is in memory).
const (
	deferLogsMax  = 30 * time.Second
	recoveryCheck = 250 * time.Millisecond
)

// stop stops a container: SIGTERM, then SIGKILL after the grace period.
func (d *Dispatcher) stop(ctx context.Context, h *fleet.Host, cid string) {
	err := h.Client().Stop(ctx, cid, d.cfg.StopGrace)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("stop container", "host", h.Name(), "container", shortID(cid), "err", err)
	}
}

// pollInterval stretches status polls when events cover them or the host is
// struggling: launches come first.
func (d *Dispatcher) pollInterval(h *fleet.Host) time.Duration {
	iv := d.cfg.PollInterval
	d.mu.Lock()
	eventsUp := d.events[h.Name()]
	d.mu.Unlock()
	if eventsUp {
		iv *= 5 // a safety net only: exit events arrive on the stream
	}
	if h.Struggling() {
		iv *= 4 // polls stretched (graceful degradation)
	}
	return min(iv, time.Minute)
}

func exitReason(ct *engine.Container) string {
	r := fmt.Sprintf("exit code %d", ct.ExitCode)
	if ct.OOMKilled {
		r += " (killed: out of memory)"
	}
	if ct.Error != "" {
		r += ": " + ct.Error
	}
	return r
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// collected is what col collected, with its marks (when each part was
// logged).
func collected(col *engine.LogCollector, out, errb []byte, truncated bool) *job.Logs {
	l := &job.Logs{Stdout: out, Stderr: errb, Truncated: truncated}
	om, em := col.Marks()
	l.StdoutMarks, l.StderrMarks = logMarks(om), logMarks(em)
	return l
}

func logMarks(ms []engine.LogMark) []job.LogMark {
	if len(ms) == 0 {
		return nil
	}
	out := make([]job.LogMark, len(ms))
	for i, m := range ms {
		out[i] = job.LogMark{Off: m.Off, At: m.At}
	}
	return out
}
