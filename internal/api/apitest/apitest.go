// Package apitest holds in-memory test doubles of the API's Service and
// Fleet, and a helper that serves them with httptest, for the unit tests of
// the HTTP layer, the API client and the CLI.
//
// They keep jobs and hosts in maps and move them only when a test says so
// (Move, Output, Finish, SetHost). They are not the dispatcher or the fleet
// and must not be used outside tests; end-to-end tests run the real ones.
package apitest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/metrics"
	"fusebox/internal/store"
)

// Env is a running API server backed by a Service and a Fleet.
type Env struct {
	Server  *httptest.Server
	URL     string
	Svc     *Service
	Fleet   *Fleet
	Metrics *metrics.Metrics
}

// Start serves an api.Server for cfg over a new Service (also its event
// stream: the jobs' transitions) and a Fleet of hosts, until the test ends.
func Start(t testing.TB, cfg api.Config, hosts ...fleet.HostStatus) *Env {
	t.Helper()
	e := &Env{Svc: NewService(), Fleet: NewFleet(hosts...), Metrics: metrics.New()}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := api.New(cfg, e.Svc, e.Fleet, e.Metrics, logger)
	srv.SetEvents(e.Svc.Events())
	e.Server = httptest.NewServer(srv.Handler())
	e.URL = e.Server.URL
	t.Cleanup(func() {
		e.Svc.Close()
		e.Server.Close()
	})
	return e
}

// Service is an in-memory api.Service.
type Service struct {
	// MaxQueued bounds the queued jobs (0: unbounded).
	MaxQueued int
	// SubmitErr, if set, is called first by Submit; an error it returns is
	// Submit's.
	SubmitErr func(job.Spec) error
	// OnSubmit, if set, is called (in its own goroutine) with each new job.
	OnSubmit func(*job.Job)

	mu      sync.Mutex
	seq     int
	events  []event.Event // the job.transition events, Seq 1, 2, ...
	jobs    map[string]*entry
	order   []string      // ids, oldest first
	changed chan struct{} // closed and replaced on every change
	closed  chan struct{}
}

type entry struct {
	j           job.Job
	transitions []job.Transition
	attempts    []job.Attempt
	chunks      []chunk // output, in order
	collected   bool    // output collected (set when the job ends)
	truncated   bool
}

type chunk struct {
	stream string // "stdout" or "stderr"
	data   []byte
}

var _ api.Service = (*Service)(nil)

// NewService returns an empty Service.
func NewService() *Service {
	return &Service{jobs: map[string]*entry{}, changed: make(chan struct{}), closed: make(chan struct{})}
}

// Close ends every FollowLogs in progress.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
}

// notify wakes the followers; s.mu must be held.
func (s *Service) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Submit validates spec and queues a job with ids j0001, j0002, ...
func (s *Service) Submit(ctx context.Context, spec job.Spec) (*job.Job, bool, error) {
	if s.SubmitErr != nil {
		if err := s.SubmitErr(spec); err != nil {
			return nil, false, err
		}
	}
	if err := spec.Validate(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	if spec.IdempotencyKey != "" {
		for _, id := range s.order {
			e := s.jobs[id]
			if e.j.Spec.IdempotencyKey == spec.IdempotencyKey {
				s.mu.Unlock()
				if !reflect.DeepEqual(e.j.Spec, spec) {
					return nil, false, job.ErrDuplicate
				}
				cp := e.j
				return &cp, true, nil
			}
		}
	}
	if s.MaxQueued > 0 && s.countLocked(job.StateQueued) >= s.MaxQueued {
		s.mu.Unlock()
		return nil, false, fmt.Errorf("%w (%d jobs queued)", job.ErrQueueFull, s.MaxQueued)
	}
	s.seq++
	now := time.Now().UTC()
	e := &entry{j: job.Job{ID: fmt.Sprintf("j%04d", s.seq), Spec: spec, State: job.StateQueued,
		Reason: "submitted", CreatedAt: now, UpdatedAt: now}}
	e.transitions = []job.Transition{{JobID: e.j.ID, Seq: 1, To: job.StateQueued, Reason: "submitted", At: now}}
	s.appendTransitionLocked(e.transitions[0], "")
	s.jobs[e.j.ID] = e
	s.order = append(s.order, e.j.ID)
	s.notify()
	cp := e.j
	s.mu.Unlock()
	if s.OnSubmit != nil {
		cp2 := cp
		go s.OnSubmit(&cp2)
	}
	return &cp, false, nil
}

// appendTransitionLocked appends t's job.transition event; s.mu is held.
func (s *Service) appendTransitionLocked(t job.Transition, outcome string) {
	s.events = append(s.events, event.Event{Seq: int64(len(s.events) + 1), At: t.At, Type: event.TypeJobTransition,
		JobID: t.JobID, Host: t.Host, Attempt: t.Attempt,
		Data: event.MarshalData(event.JobTransition{From: string(t.From), To: string(t.To), Reason: t.Reason, Outcome: outcome})})
}

// Events returns the Service's event stream: its jobs' transitions.
func (s *Service) Events() api.Events { return serviceEvents{s} }

type serviceEvents struct{ s *Service }

func (e serviceEvents) List(_ context.Context, p event.ListParams) ([]event.Event, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(p), nil
}

func (s *Service) listLocked(p event.ListParams) []event.Event {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []event.Event
	for _, ev := range s.events[min(max(p.AfterSeq, 0), int64(len(s.events))):] {
		if p.Match(ev) {
			if out = append(out, ev); len(out) == limit {
				break
			}
		}
	}
	return out
}

// Subscribe follows the events matching f after afterSeq (event.FromNow:
// the newest) until it is closed or the Service is.
func (e serviceEvents) Subscribe(f event.Filter, afterSeq int64) api.EventSubscription {
	s := e.s
	sub := &subscription{c: make(chan event.Event), done: make(chan struct{})}
	s.mu.Lock()
	if afterSeq == event.FromNow {
		afterSeq = int64(len(s.events))
	}
	s.mu.Unlock()
	go func() {
		defer close(sub.c)
		for {
			s.mu.Lock()
			evs := s.listLocked(event.ListParams{AfterSeq: afterSeq, Filter: f, Limit: len(s.events) + 1})
			afterSeq = int64(len(s.events))
			changed := s.changed
			s.mu.Unlock()
			for _, ev := range evs {
				select {
				case sub.c <- ev:
				case <-sub.done:
					return
				}
			}
			select {
			case <-changed:
			case <-sub.done:
				return
			case <-s.closed:
				return
			}
		}
	}()
	return sub
}

type subscription struct {
	c    chan event.Event
	done chan struct{}
	once sync.Once
}

func (s *subscription) C() <-chan event.Event { return s.c }
func (s *subscription) Close()                { s.once.Do(func() { close(s.done) }) }

func (s *Service) countLocked(st job.State) int {
	n := 0
	for _, e := range s.jobs {
		if e.j.State == st {
			n++
		}
	}
	return n
}

func (s *Service) entry(id string) (*entry, error) {
	e, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, job.ErrNotFound)
	}
	return e, nil
}

func (s *Service) Get(ctx context.Context, id string) (*job.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	cp := e.j
	return &cp, nil
}

func (s *Service) List(ctx context.Context, p store.JobListParams) ([]*job.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []*job.Job
	older := p.BeforeID == ""
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		e := s.jobs[s.order[i]]
		if !older {
			older = e.j.ID == p.BeforeID
			continue
		}
		if len(p.States) > 0 && !slices.Contains(p.States, e.j.State) {
			continue
		}
		if p.Host != "" && e.j.Host != p.Host {
			continue
		}
		if p.Name != "" && e.j.Spec.Name != p.Name {
			continue
		}
		if p.IDPrefix != "" && !strings.HasPrefix(e.j.ID, p.IDPrefix) {
			continue
		}
		cp := e.j
		out = append(out, &cp)
	}
	return out, nil
}

func (s *Service) Transitions(ctx context.Context, id string) ([]job.Transition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.transitions), nil
}

func (s *Service) Attempts(ctx context.Context, id string) ([]job.Attempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.attempts), nil
}

// Cancel cancels a queued job at once and marks a launching or running one
// CancelRequested (a test finishes it with Finish).
func (s *Service) Cancel(ctx context.Context, id string) (*job.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	switch {
	case e.j.State.Terminal():
		return nil, fmt.Errorf("job %s is %s: %w", id, e.j.State, job.ErrTerminal)
	case e.j.State == job.StateQueued:
		s.moveLocked(e, job.StateCancelled, "cancelled by user", "")
	default:
		e.j.CancelRequested = true
		s.notify()
	}
	cp := e.j
	return &cp, nil
}

func (s *Service) Logs(ctx context.Context, id string) (job.Logs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return job.Logs{}, err
	}
	if !e.collected {
		return job.Logs{}, fmt.Errorf("logs of job %s: %w", id, job.ErrNotFound)
	}
	var l job.Logs
	for _, c := range e.chunks {
		if c.stream == "stderr" {
			l.Stderr = append(l.Stderr, c.data...)
		} else {
			l.Stdout = append(l.Stdout, c.data...)
		}
	}
	l.Truncated = e.truncated
	return l, nil
}

// FollowLogs writes the job's output, in order, as it is added, until the
// job is terminal, ctx is done or the Service is closed. It keeps no times:
// opts is not applied.
func (s *Service) FollowLogs(ctx context.Context, id string, _ api.LogOptions, stdout, stderr io.Writer) error {
	next := 0
	for {
		s.mu.Lock()
		e, err := s.entry(id)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		pending := slices.Clone(e.chunks[next:])
		next = len(e.chunks)
		done := e.j.State.Terminal()
		changed := s.changed
		s.mu.Unlock()

		for _, c := range pending {
			w := stdout
			if c.stream == "stderr" {
				w = stderr
			}
			if _, err := w.Write(c.data); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return fmt.Errorf("apitest: service closed")
		}
	}
}

func (s *Service) QueueStats(ctx context.Context) (api.QueueStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.QueueStats{MaxQueued: s.MaxQueued, ByState: map[job.State]int{}}
	for _, e := range s.jobs {
		st.ByState[e.j.State]++
	}
	st.Queued = st.ByState[job.StateQueued]
	st.Running = st.ByState[job.StateLaunching] + st.ByState[job.StateRunning]
	return st, nil
}

// Move moves job id to state to, as the dispatcher would: launching starts a
// new attempt on host; a terminal state finishes the attempt and marks the
// output collected.
func (s *Service) Move(id string, to job.State, reason, host string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return err
	}
	if e.j.State.Terminal() {
		return fmt.Errorf("job %s is %s: %w", id, e.j.State, job.ErrTerminal)
	}
	s.moveLocked(e, to, reason, host)
	return nil
}

func (s *Service) moveLocked(e *entry, to job.State, reason, host string) {
	now := time.Now().UTC()
	from := e.j.State
	switch to {
	case job.StateLaunching:
		e.j.Attempt++
		e.j.Host = host
		e.j.ContainerID = ""
		e.attempts = append(e.attempts, job.Attempt{JobID: e.j.ID, Number: e.j.Attempt, Host: host, StartedAt: now})
	case job.StateRunning:
		e.j.StartedAt = now
		e.j.ContainerID = fmt.Sprintf("c-%s-%d", e.j.ID, e.j.Attempt)
		if n := len(e.attempts); n > 0 {
			e.attempts[n-1].ContainerID = e.j.ContainerID
		}
	}
	if (from == job.StateLaunching || from == job.StateRunning) && to != job.StateRunning {
		if n := len(e.attempts); n > 0 {
			e.attempts[n-1].FinishedAt = now
			e.attempts[n-1].Outcome = string(to)
			if to == job.StateQueued {
				e.attempts[n-1].Outcome = "host_fault"
			}
			e.attempts[n-1].Error = reason
		}
	}
	if to.Terminal() {
		e.j.FinishedAt = now
		e.collected = true
	}
	e.j.State, e.j.Reason, e.j.UpdatedAt = to, reason, now
	e.transitions = append(e.transitions, job.Transition{JobID: e.j.ID, Seq: int64(len(e.transitions) + 1),
		From: from, To: to, Reason: reason, Host: e.j.Host, Attempt: e.j.Attempt, At: now})
	outcome := ""
	if n := len(e.attempts); n > 0 && (from == job.StateLaunching || from == job.StateRunning) && to != job.StateRunning {
		outcome = e.attempts[n-1].Outcome
	}
	s.appendTransitionLocked(e.transitions[len(e.transitions)-1], outcome)
	s.notify()
}

// Output adds output of job id to stream ("stdout" or "stderr").
func (s *Service) Output(id, stream, data string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return err
	}
	e.chunks = append(e.chunks, chunk{stream: stream, data: []byte(data)})
	s.notify()
	return nil
}

// Finish ends job id in state with exitCode (nil for none).
func (s *Service) Finish(id string, state job.State, exitCode *int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return err
	}
	if e.j.State.Terminal() {
		return fmt.Errorf("job %s is %s: %w", id, e.j.State, job.ErrTerminal)
	}
	e.j.ExitCode = exitCode
	s.moveLocked(e, state, reason, "")
	return nil
}

// Run drives job id through a whole life on host: launching, running, the
// output given, then state with exitCode.
func (s *Service) Run(id, host, stdout, stderr string, state job.State, exitCode *int) error {
	steps := []func() error{
		func() error { return s.Move(id, job.StateLaunching, "placed on "+host, host) },
		func() error { return s.Move(id, job.StateRunning, "started", host) },
		func() error { return s.Output(id, "stdout", stdout) },
		func() error { return s.Output(id, "stderr", stderr) },
		func() error {
			reason := string(state)
			if exitCode != nil {
				reason = fmt.Sprintf("exit code %d", *exitCode)
			}
			return s.Finish(id, state, exitCode, reason)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// Fleet is an in-memory api.Fleet.
type Fleet struct {
	mu          sync.Mutex
	hosts       []fleet.HostStatus
	transitions []fleet.Transition
}

var _ api.Fleet = (*Fleet)(nil)

// NewFleet returns a Fleet of hosts.
func NewFleet(hosts ...fleet.HostStatus) *Fleet {
	return &Fleet{hosts: slices.Clone(hosts)}
}

func (f *Fleet) Hosts() []fleet.HostStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hosts)
}

func (f *Fleet) HostTransitions() []fleet.Transition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.transitions)
}

// SetHost replaces the host with h's name (or adds it).
func (f *Fleet) SetHost(h fleet.HostStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.hosts {
		if f.hosts[i].Name == h.Name {
			f.hosts[i] = h
			return
		}
	}
	f.hosts = append(f.hosts, h)
}

// set puts the named host in state, with its breaker in br (nil: as it
// is), recording a transition when the breaker changes.
func (f *Fleet) set(name string, state fleet.HostState, br *breaker.State, reset bool, op fleet.Operator) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.hosts {
		h := &f.hosts[i]
		if h.Name != name {
			continue
		}
		to := h.Breaker.State // drain leaves the breaker alone
		if br != nil {
			to = *br
		}
		if h.Breaker.State != to {
			f.transitions = append(f.transitions, fleet.Transition{Host: name, From: h.Breaker.State, To: to, At: time.Now().UTC()})
		}
		h.State, h.Breaker.State, h.Operator, h.Reason = state, to, &op, ""
		if state == fleet.HostIsolated || state == fleet.HostDraining {
			h.Reason = fmt.Sprintf("%s by %s: %s", state, op.By, op.Reason) // as the fleet says it
		}
		if reset {
			h.Breaker.ConsecutiveFailures, h.Breaker.Trips = 0, 0
			h.Breaker.OpenedAt, h.Breaker.NextProbeAt = time.Time{}, time.Time{}
		}
		return nil
	}
	return fmt.Errorf("host %q: %w", name, api.ErrHostNotFound)
}

// HostAction applies op to the host's state and keeps op as its
// Operator.
func (f *Fleet) HostAction(_ context.Context, name string, op fleet.Operator) error {
	forcedOpen, closed := breaker.StateForcedOpen, breaker.StateClosed
	switch op.Action {
	case fleet.ActionIsolate:
		return f.set(name, fleet.HostIsolated, &forcedOpen, false, op)
	case fleet.ActionDrain:
		return f.set(name, fleet.HostDraining, nil, false, op)
	case fleet.ActionRelease:
		return f.set(name, fleet.HostHealthy, &closed, false, op)
	case fleet.ActionReset:
		return f.set(name, fleet.HostHealthy, &closed, true, op)
	}
	return fmt.Errorf("unknown operator action %q", op.Action)
}
