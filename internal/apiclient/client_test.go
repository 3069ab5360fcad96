package apiclient_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/apiclient"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

var hosts = []fleet.HostStatus{
	{Name: "h1", Capacity: 2, State: fleet.HostHealthy, Breaker: fleet.BreakerStatus{State: breaker.StateClosed}},
	{Name: "h2", Capacity: 2, State: fleet.HostHealthy, Breaker: fleet.BreakerStatus{State: breaker.StateClosed}},
}

func ptr[T any](v T) *T { return &v }

func start(t *testing.T, cfg api.Config) (*apitest.Env, *apiclient.Client) {
	t.Helper()
	e := apitest.Start(t, cfg, hosts...)
	c := apiclient.New(e.URL+"/", "")
	return e, c
}

func TestJobs(t *testing.T) {
	e, c := start(t, api.Config{})
	ctx := context.Background()

	j, existed, err := c.Submit(ctx, job.Spec{Image: "alpine", Command: []string{"true"}, IdempotencyKey: "k"})
	if err != nil || existed || j.State != job.StateQueued {
		t.Fatalf("Submit: %+v %v %v", j, existed, err)
	}
	j2, existed, err := c.Submit(ctx, job.Spec{Image: "alpine", Command: []string{"true"}, IdempotencyKey: "k"})
	if err != nil || !existed || j2.ID != j.ID {
		t.Fatalf("resubmit: %+v %v %v", j2, existed, err)
	}
	if _, _, err := c.Submit(ctx, job.Spec{Image: "other", IdempotencyKey: "k"}); !errors.Is(err, job.ErrDuplicate) {
		t.Errorf("reused key: %v", err)
	}

	if err := e.Svc.Run(j.ID, "h1", "out", "err", job.StateSucceeded, ptr(0)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Get(ctx, j.ID)
	if err != nil || d.Job.State != job.StateSucceeded || len(d.Transitions) != 4 || len(d.Attempts) != 1 {
		t.Fatalf("Get: %+v %v", d, err)
	}
	logs, err := c.Logs(ctx, j.ID)
	if err != nil || string(logs.Stdout) != "out" || string(logs.Stderr) != "err" {
		t.Fatalf("Logs: %+v %v", logs, err)
	}
	other, _, _ := c.Submit(ctx, job.Spec{Image: "alpine"})
	list, err := c.List(ctx, store.JobListParams{States: []job.State{job.StateSucceeded}, Host: "h1", Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != j.ID {
		t.Fatalf("List: %v %v", list, err)
	}
	if _, err := c.Logs(ctx, other.ID); err == nil || errors.Is(err, job.ErrNotFound) {
		t.Errorf("Logs before any output: %v (want no_logs, not job-not-found)", err)
	} else if e := (*apiclient.Error)(nil); !errors.As(err, &e) || e.Code != api.CodeNoLogs {
		t.Errorf("Logs before any output: %#v", err)
	}

	cj, err := c.Cancel(ctx, other.ID)
	if err != nil || cj.State != job.StateCancelled {
		t.Fatalf("Cancel: %+v %v", cj, err)
	}
	if _, err := c.Cancel(ctx, other.ID); !errors.Is(err, job.ErrTerminal) {
		t.Errorf("Cancel twice: %v", err)
	}
	q, err := c.Queue(ctx)
	if err != nil || q.ByState[job.StateSucceeded] != 1 || q.ByState[job.StateCancelled] != 1 {
		t.Errorf("Queue: %+v %v", q, err)
	}
}

func TestErrors(t *testing.T) {
	e, c := start(t, api.Config{})
	ctx := context.Background()

	_, err := c.Get(ctx, "nope")
	if !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeNotFound {
		t.Errorf("Get unknown: %#v", err)
	}

	_, _, err = c.Submit(ctx, job.Spec{MemoryBytes: -1})
	if !errors.Is(err, job.ErrInvalid) || !errors.As(err, &ae) || ae.Field != "image" || len(ae.Problems) != 2 {
		t.Errorf("Submit invalid: %#v", err)
	}

	e.Svc.MaxQueued = 1
	c.Submit(ctx, job.Spec{Image: "alpine"})
	_, _, err = c.Submit(ctx, job.Spec{Image: "alpine"})
	if !errors.Is(err, job.ErrQueueFull) || !errors.As(err, &ae) || ae.RetryAfter != 5*time.Second {
		t.Errorf("Submit to a full queue: %#v", err)
	}

	if _, err := c.Isolate(ctx, "h9", ""); !errors.Is(err, api.ErrHostNotFound) || errors.Is(err, job.ErrNotFound) {
		t.Errorf("Isolate unknown host: %v", err)
	}
	if _, err := c.Drain(ctx, "h9", strings.Repeat("x", api.MaxReasonBytes+1)); !errors.As(err, &ae) || ae.Field != "reason" {
		t.Errorf("Drain with a reason too long: %#v", err)
	}

	// Not a fusebox server: errors still come back as *Error, by status.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nothing here", http.StatusNotFound)
	}))
	defer plain.Close()
	_, err = apiclient.New(plain.URL, "").Get(ctx, "x")
	if !errors.Is(err, job.ErrNotFound) || !strings.Contains(err.Error(), "nothing here") {
		t.Errorf("plain 404: %v", err)
	}

	// Nobody listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = apiclient.New("http://"+addr, "").Hosts(ctx)
	var ce *apiclient.ConnError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cannot reach fusebox at http://"+addr) {
		t.Errorf("no server: %v", err)
	}
}

func TestToken(t *testing.T) {
	_, c := start(t, api.Config{Tokens: []api.Token{{Value: "rt", Role: api.RoleRead}}})
	ctx := context.Background()
	_, err := c.Hosts(ctx)
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("no token: %v", err)
	}
	c.Token = "rt"
	if _, err := c.Hosts(ctx); err != nil {
		t.Fatalf("read token: %v", err)
	}
	if _, _, err := c.Submit(ctx, job.Spec{Image: "alpine"}); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("read token submitting: %v", err)
	}
}

func TestHosts(t *testing.T) {
	_, c := start(t, api.Config{})
	ctx := context.Background()
	hs, err := c.Hosts(ctx)
	if err != nil || len(hs) != 2 {
		t.Fatalf("Hosts: %v %v", hs, err)
	}
	for _, step := range []struct {
		do     func(context.Context, string, string) (*api.Host, error)
		state  fleet.HostState
		action string
	}{
		{c.Isolate, fleet.HostIsolated, fleet.ActionIsolate}, {c.Release, fleet.HostHealthy, fleet.ActionRelease},
		{c.Drain, fleet.HostDraining, fleet.ActionDrain}, {c.Reset, fleet.HostHealthy, fleet.ActionReset},
	} {
		h, err := step.do(ctx, "h2", "because "+step.action)
		if err != nil || h.State != step.state {
			t.Fatalf("want %s: %+v %v", step.state, h, err)
		}
		if op := h.Operator; op == nil || op.Action != step.action || op.Reason != "because "+step.action || op.By != api.ActorLocal {
			t.Fatalf("after %s: operator %+v", step.action, op)
		}
	}
	h, err := c.Host(ctx, "h2")
	if err != nil || h.Name != "h2" {
		t.Fatalf("Host: %+v %v", h, err)
	}
	ts, err := c.HostTransitions(ctx)
	if err != nil || len(ts) != 2 || ts[0].From != breaker.StateClosed || ts[0].To != breaker.StateForcedOpen {
		t.Fatalf("HostTransitions: %+v %v", ts, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFollowLogsAndWait(t *testing.T) {
	e, c := start(t, api.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, _, err := c.Submit(ctx, job.Spec{Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var seen []string
	waited := make(chan *job.Job, 1)
	go func() {
		fj, err := c.WaitTransitions(ctx, j.ID, func(t job.Transition) {
			mu.Lock()
			seen = append(seen, string(t.To)+"@"+t.Host)
			mu.Unlock()
		})
		if err != nil {
			t.Error(err)
		}
		waited <- fj
	}()

	e.Svc.Move(j.ID, job.StateLaunching, "placed on h1", "h1")
	e.Svc.Move(j.ID, job.StateRunning, "started", "h1")
	var stdout, stderr bytes.Buffer
	followed := make(chan error, 1)
	go func() { followed <- c.FollowLogs(ctx, j.ID, &stdout, &stderr) }()
	e.Svc.Output(j.ID, "stdout", "a\n")
	e.Svc.Output(j.ID, "stderr", "b\n")
	e.Svc.Output(j.ID, "stdout", "c\n")
	e.Svc.Finish(j.ID, job.StateFailed, ptr(7), "exit code 7")

	if err := <-followed; err != nil {
		t.Fatalf("FollowLogs: %v", err)
	}
	if stdout.String() != "a\nc\n" || stderr.String() != "b\n" {
		t.Errorf("followed stdout %q stderr %q", stdout.String(), stderr.String())
	}
	fj := <-waited
	if fj.State != job.StateFailed || *fj.ExitCode != 7 {
		t.Errorf("Wait: %+v", fj)
	}
	mu.Lock()
	defer mu.Unlock()
	// Following the job's events, every transition is seen once, in order.
	if got := strings.Join(seen, ">"); got != "queued@>launching@h1>running@h1>failed@h1" {
		t.Errorf("transitions seen while waiting: %s", got)
	}

	// Of a job that has ended, its transitions are all reported too.
	var path []string
	if _, err := c.WaitTransitions(ctx, j.ID, func(tr job.Transition) { path = append(path, string(tr.To)) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(path, ">") != "queued>launching>running>failed" {
		t.Errorf("transitions %v", path)
	}
}

func TestFollowLogsCut(t *testing.T) {
	// A server whose stream stops without an end event.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte(`{"stream":"stdout","data":"x"}` + "\n"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := apiclient.New(srv.URL, "").FollowLogs(context.Background(), "j1", &out, &out)
	if err == nil || !strings.Contains(err.Error(), "ended before the job did") || out.String() != "x" {
		t.Errorf("cut stream: %v (output %q)", err, out.String())
	}
	srvErr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"error":"the server is shutting down; follow again to go on"}` + "\n"))
	}))
	defer srvErr.Close()
	err = apiclient.New(srvErr.URL, "").FollowLogs(context.Background(), "j1", &out, &out)
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("error event: %v", err)
	}
}

func TestWaitRetriesServerErrors(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n < 3 {
			http.Error(w, `{"error":"busy","code":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"job":{"id":"j1","state":"succeeded","exit_code":0},"transitions":[],"attempts":[]}`))
	}))
	defer srv.Close()
	c := apiclient.New(srv.URL, "")
	j, err := c.Wait(context.Background(), "j1")
	if err != nil || j.State != job.StateSucceeded {
		t.Fatalf("Wait: %+v %v", j, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"job":{"id":"j1","state":"running"},"transitions":[],"attempts":[]}`))
	}))
	defer never.Close()
	if _, err := apiclient.New(never.URL, "").Wait(ctx, "j1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait past its context: %v", err)
	}
}
