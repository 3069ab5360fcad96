package alert

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// evalTypes are the events that wake the evaluator: what can change a
// condition, and the job transitions it reads lost jobs from.
var evalTypes = []string{event.TypeJobTransition, event.TypeHostBreaker, event.TypeHostState, event.TypeOperatorAction}

// minPassGap is the least time between two passes woken by events, so that
// a storm of job transitions costs a pass per gap, not per event.
const minPassGap = 100 * time.Millisecond

// evaluator compares the conditions with the stored alert states and
// enqueues what changed.
type evaluator struct {
	m         *Manager
	sub       Subscription
	cursor    int64         // the last event taken
	stored    int64         // the last cursor stored
	lastWrite time.Time     // of the cursor
	lastPass  time.Time     // when the last pass began
	lost      []event.Event // transitions to lost not yet enqueued
	// pending holds, by fingerprint, since when the condition of an alert
	// that must hold for a while (FuseboxHostDegraded: DegradedFor) has
	// held without firing yet.
	pending map[string]time.Time
}

func (e *evaluator) run(ctx context.Context) {
	t := time.NewTicker(e.m.opt.EvalInterval)
	defer t.Stop()
	c := e.sub.C()
	e.pass(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-c:
			if !ok {
				c = nil // the bus stopped: the ticker still evaluates
				continue
			}
			e.take(ev)
			if d := time.Until(e.lastPass.Add(minPassGap)); d > 0 && !sleep(ctx, d, nil) {
				return
			}
			c = e.drain(c)
		case <-t.C:
		}
		e.pass(ctx)
	}
}

// drain takes the events already waiting in c; it returns nil if c closed.
func (e *evaluator) drain(c <-chan event.Event) <-chan event.Event {
	for range event.PageSize * 4 {
		select {
		case ev, ok := <-c:
			if !ok {
				return nil
			}
			e.take(ev)
		default:
			return c
		}
	}
	return c
}

// take notes one event.
func (e *evaluator) take(ev event.Event) {
	e.cursor = max(e.cursor, ev.Seq)
	if ev.Type != event.TypeJobTransition || ev.JobID == "" {
		return
	}
	var d event.JobTransition
	if json.Unmarshal(ev.Data, &d) == nil && d.To == string(job.StateLost) {
		e.lost = append(e.lost, ev)
	}
}

// hold removes from wants the alerts whose condition must hold for a while
// before they fire (FuseboxHostDegraded: a host passes through degraded on
// its way out and back in), until it has, and then dates them from when it
// began.
func (e *evaluator) hold(wants map[string]want, states map[string]store.AlertState, now time.Time) {
	if e.pending == nil {
		e.pending = map[string]time.Time{}
	}
	for fp := range e.pending {
		if _, ok := wants[fp]; !ok {
			delete(e.pending, fp) // the condition ended before it fired
		}
	}
	for fp, w := range wants {
		if w.labels[LabelAlertName] != NameHostDegraded || e.m.opt.DegradedFor <= 0 {
			continue
		}
		if s, ok := states[fp]; ok && s.Status == store.AlertFiring {
			continue
		}
		since, ok := e.pending[fp]
		if !ok {
			e.pending[fp], since = now, now
		}
		if now.Sub(since) < e.m.opt.DegradedFor {
			delete(wants, fp)
			continue
		}
		delete(e.pending, fp)
		w.since = since
		wants[fp] = w
	}
}

// pass evaluates every alert once and enqueues the changes with the
// cursor, in one transaction.
func (e *evaluator) pass(ctx context.Context) {
	m := e.m
	now := time.Now()
	e.lastPass = now
	list, err := m.st.AlertStates(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alerts: read alert states", "err", err)
		}
		return
	}
	states := make(map[string]store.AlertState, len(list))
	for _, s := range list {
		states[s.Fingerprint] = s
	}
	changed := map[string]store.AlertState{}
	repeat := func(s store.AlertState, annotations map[string]string) {
		if now.Sub(s.SentAt) >= m.opt.RepeatInterval {
			s.SentAt = now
			if annotations != nil {
				s.Annotations = annotations
			}
			changed[s.Fingerprint] = s
		}
	}
	resolve := func(s store.AlertState, at time.Time) {
		s.Status, s.EndsAt, s.SentAt = store.AlertResolved, at, now
		changed[s.Fingerprint] = s
	}

	if snap, err := m.src.Snapshot(ctx); err != nil {
		// Without a snapshot nothing is known about the level alerts: they
		// stay as they are (resolving them would be a lie).
		if ctx.Err() == nil {
			m.log.Warn("alerts: snapshot", "err", err)
		}
	} else {
		wants := evaluate(snap, m.opt.QueueThreshold)
		e.hold(wants, states, now)
		for fp, w := range wants {
			if s, ok := states[fp]; ok && s.Status == store.AlertFiring {
				repeat(s, w.annotations)
			} else {
				s := firing(w, now)
				if !w.since.IsZero() {
					s.StartsAt = w.since
				}
				changed[fp] = s
			}
		}
		for fp, s := range states {
			if _, still := wants[fp]; !still && s.Status == store.AlertFiring && levelAlerts[s.Labels[LabelAlertName]] {
				resolve(s, now)
			}
		}
	}

	for _, ev := range e.lost {
		var d event.JobTransition
		_ = json.Unmarshal(ev.Data, &d) // take checked it
		w := jobLost(ev.JobID, ev.Host, d.Reason, m.lostTimeout)
		fp := Fingerprint(w.labels)
		if _, known := states[fp]; known {
			continue // a job is lost once: this event was seen before a restart
		}
		if _, known := changed[fp]; known {
			continue
		}
		s := firing(w, ev.At)
		s.SentAt = now
		changed[fp] = s
	}
	for _, s := range states {
		if s.Status != store.AlertFiring || s.Labels[LabelAlertName] != NameJobLost {
			continue
		}
		if end := s.StartsAt.Add(m.lostTimeout); !now.Before(end) {
			resolve(s, end)
		} else {
			repeat(s, nil)
		}
	}

	p := store.AlertEnqueueParams{At: now}
	if e.cursor > e.stored {
		p.Cursor = e.cursor
	}
	if len(changed) == 0 {
		e.lost = nil
		if p.Cursor == 0 || now.Sub(e.lastWrite) < m.opt.EvalInterval {
			return // only the cursor moved: written with the next change, or at most once per interval
		}
	}
	for _, fp := range slices.Sorted(maps.Keys(changed)) {
		s := changed[fp]
		p.States = append(p.States, s)
		for _, r := range m.recv {
			p.Notices = append(p.Notices, store.AlertNotice{Receiver: r.Name, WebhookID: newWebhookID(),
				Body: render(message(s, r.Name, m.opt.ExternalURL)), CreatedAt: now})
		}
	}
	if err := m.st.AlertEnqueue(ctx, p); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alerts: enqueue", "alerts", len(p.States), "err", err)
		}
		return // the next pass finds the same changes again
	}
	e.lost = nil
	e.lastWrite = now
	if p.Cursor > 0 {
		e.stored = p.Cursor
	}
	for _, s := range p.States {
		m.log.Info("alert", "alert", s.Labels[LabelAlertName], "status", s.Status, "labels", labelText(s.Labels), "fingerprint", s.Fingerprint)
	}
	if len(p.Notices) > 0 {
		m.wakeAll()
	}
}

// labelText is labels as k=v pairs in name order, for logs.
func labelText(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, " ")
}
