package dispatch

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// How the scheduler reads the queue.
const (
	// maxWait is the longest the scheduler sleeps between passes when
	// nothing wakes it (a safety net: submissions, job ends and breaker
	// closes wake it, and it wakes for the earliest backoff end).
	maxWait = time.Second
	// maxBatch is the most light rows read at once for one constraints key;
	// reads start at one (the key's head) and double while jobs get placed.
	maxBatch = 128
	// reasonBatch is the most waiting reasons written in one transaction;
	// a pass that leaves more to write is followed by another at once.
	reasonBatch = 1000
)

// scheduleLoop places ready queued jobs whenever woken, when the earliest
// backoff ends, and at least every maxWait.
func (d *Dispatcher) scheduleLoop(ctx context.Context) {
	s := &scheduler{d: d, launch: d.startLaunch}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		next := s.pass(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// scheduler runs the passes of scheduleLoop.
//
// Whether a queued job can be placed now depends only on its constraints
// (the image and the host to avoid only order the candidate hosts), so a
// pass works on constraint keys, not on jobs: it learns the keys of the
// queued jobs from the store (kept as jobs change state, not scanned),
// and reads each key's ready jobs in dispatch order, a few light rows at a
// time (never a spec), merging the keys into one global order (priority
// desc, created asc, id asc). The first job of a key that finds no host
// stands for all of them: the key is dropped for this pass and its jobs'
// waiting reason is set, only where it differs, by one statement per key
// once the placements of the pass are done (so that a long queue whose
// reason changes delays no placement). A pass
// therefore costs the jobs it places plus one look per key, however many
// jobs wait behind a host that is out, and every queued job is looked at
// in every pass, through its key's head.
type scheduler struct {
	d      *Dispatcher
	launch func(*job.Job, *fleet.Lease) // d.startLaunch; a stand-in in the benchmark
}

// keyQueue is one constraints key's ready jobs in a pass, read a batch at
// a time.
type keyQueue struct {
	key   store.QueueKey
	buf   []store.QueuedJob // read, not yet tried; buf[0] is the head
	after *store.QueuedJob  // the last job read: the next read starts after it
	batch int               // size of the next read
	end   bool              // the store has no more ready jobs of the key
}

// pass places as many ready jobs as the fleet takes and returns when to look
// again.
func (s *scheduler) pass(ctx context.Context) time.Duration {
	now := time.Now()
	keys, err := s.d.store.QueueKeyList(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.d.log.Error("list queue keys", "err", err)
		}
		return maxWait
	}
	var (
		h     keyHeap
		waits []wait
	)
	for _, k := range keys {
		kq := &keyQueue{key: k, batch: 1}
		if s.fill(ctx, kq, now) {
			h = append(h, kq)
		}
	}
	heap.Init(&h)
	for h.Len() > 0 && ctx.Err() == nil {
		kq := h[0]
		if out, reason := s.place(ctx, kq.key, kq.buf[0]); out == outcomeNoHost {
			heap.Pop(&h) // no host for this key now: its other jobs wait too
			waits = append(waits, wait{kq.key, reason})
			continue
		}
		kq.buf = kq.buf[1:]
		if s.fill(ctx, kq, now) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if s.recordWaits(ctx, waits, now) {
		return 0
	}
	return s.nextWait(ctx, now)
}

// wait is a key whose jobs found no host in a pass, and why.
type wait struct {
	key    store.QueueKey
	reason string
}

// recordWaits sets the waiting reason of each key's ready jobs where it
// differs: not a transition (the state does not change), and no write at
// all where every reason is already right. It reports whether some are
// left to write.
func (s *scheduler) recordWaits(ctx context.Context, waits []wait, now time.Time) (more bool) {
	for _, w := range waits {
		n, err := s.d.store.JobSetWaitReason(ctx, store.JobSetWaitReasonParams{Key: w.key.Key, Reason: w.reason, Now: now, Limit: reasonBatch})
		if err != nil {
			if ctx.Err() == nil {
				s.d.log.Error("record waiting reason", "constraints", w.key.Constraints, "err", err)
			}
			continue
		}
		more = more || n == reasonBatch
	}
	return more
}

// fill reads the next batch of kq's ready jobs if its buffer is empty; it
// reports whether kq has a job to try.
func (s *scheduler) fill(ctx context.Context, kq *keyQueue, now time.Time) bool {
	if len(kq.buf) > 0 {
		return true
	}
	if kq.end {
		return false
	}
	js, err := s.d.store.JobListReady(ctx, store.JobListReadyParams{Key: kq.key.Key, Now: now, After: kq.after, Limit: kq.batch})
	if err != nil {
		if ctx.Err() == nil {
			s.d.log.Error("list ready jobs", "constraints", kq.key.Constraints, "err", err)
		}
		return false
	}
	kq.end = len(js) < kq.batch
	kq.batch = min(2*kq.batch, maxBatch)
	if len(js) == 0 {
		return false
	}
	kq.buf, kq.after = js, &js[len(js)-1]
	return true
}

// nextWait is how long to sleep after a pass that began at start: until the
// earliest backoff that had not ended by then, at most maxWait.
func (s *scheduler) nextWait(ctx context.Context, start time.Time) time.Duration {
	t, err := s.d.store.JobNextNotBefore(ctx, start)
	if err != nil {
		if ctx.Err() == nil {
			s.d.log.Error("next backoff end", "err", err)
		}
		return maxWait
	}
	if t.IsZero() {
		return maxWait
	}
	return min(max(time.Until(t), 0), maxWait)
}

// outcome is what became of one job a pass tried to place.
type outcome int

const (
	outcomePlaced outcome = iota // on its way to a host
	outcomeNoHost                // no host for its constraints now: it waits, and so does its key
	outcomeOther                 // failed (graceful degradation off), or cancelled meanwhile, or the store failed
)

// place tries to put one queued job on a host. With outcomeNoHost it
// returns the job's waiting reason.
func (s *scheduler) place(ctx context.Context, key store.QueueKey, j store.QueuedJob) (outcome, string) {
	d := s.d
	// The host of the last launch, which failed: it is used only if no
	// other fits. (A launch that never reached its host is undone, so the
	// attempt can be 0 with a host to avoid.)
	avoid := j.Host
	lease, err := d.fleet.Place(fleet.Request{Constraints: key.Constraints, Image: j.Image, Avoid: avoid})
	if err != nil {
		var nh *fleet.NoHostError
		if d.cfg.NoDegradation && errors.As(err, &nh) && !nh.AnyFull() {
			now := time.Now()
			nj, terr := d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateFailed, Now: now, FinishedAt: &now,
				Reason: err.Error() + "; not queued: graceful degradation is off", Cause: job.CauseNoHost,
			})
			if terr == nil {
				d.finished(nj)
			}
			return outcomeOther, ""
		}
		return outcomeNoHost, "waiting for a host: " + err.Error()
	}
	h := lease.Host()
	attempt := j.Attempt + 1
	nj, err := d.store.JobTransition(ctx, store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateQueued}, ExpectAttempt: &j.Attempt,
		To: job.StateLaunching, Reason: fmt.Sprintf("placed on %s (attempt %d)", h.Name(), attempt), Now: time.Now(),
		Host: store.Ptr(h.Name()), SetAttempt: &attempt, ContainerID: store.Ptr(""), NotBefore: &time.Time{},
	})
	if err != nil {
		// Cancelled meanwhile, or the store failed: give the slot back.
		lease.Done(context.Canceled)
		h.Release()
		if !errors.Is(err, job.ErrConflict) && ctx.Err() == nil {
			d.log.Error("record placement", "job", j.ID, "err", err)
		}
		return outcomeOther, ""
	}
	if d.cfg.Hooks.Placed != nil {
		d.cfg.Hooks.Placed(nj, h.Name())
	}
	s.launch(nj, lease)
	return outcomePlaced, ""
}

// keyHeap orders the keys of a pass by their head jobs in dispatch order.
type keyHeap []*keyQueue

func (h keyHeap) Len() int { return len(h) }
func (h keyHeap) Less(i, j int) bool {
	a, b := &h[i].buf[0], &h[j].buf[0]
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}
func (h keyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)   { *h = append(*h, x.(*keyQueue)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
