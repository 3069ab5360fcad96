package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// A 429 or 503 carries Retry-After from the error's own value: a RetryHint
// (what internal/server wraps dispatch's QueueFullError in), or a
// *breaker.OpenError's RetryAfter field.
func TestRetryAfterComesFromTheError(t *testing.T) {
	e := apitest.Start(t, api.Config{QueueFullRetryAfter: 3 * time.Second})

	e.Svc.SubmitErr = func(job.Spec) error {
		return api.WithRetryAfter(fmt.Errorf("queue is full: %w", job.ErrQueueFull), 42*time.Second)
	}
	r := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusTooManyRequests, api.CodeQueueFull)
	if got := r.header.Get("Retry-After"); got != "42" {
		t.Errorf("queue full: Retry-After %q, want 42 (the error's)", got)
	}

	// A real breaker, tripped: its RetryAfter is the rest of its open time.
	b := breaker.MustNew("workflow nightly", breaker.Settings{ConsecutiveFailures: 1, OpenDuration: 90 * time.Second, Jitter: -1})
	b.Execute(context.Background(), func(context.Context) error { return errors.New("step failed") })
	openErr := b.Execute(context.Background(), func(context.Context) error { return nil })
	var oe *breaker.OpenError
	if !errors.As(openErr, &oe) || oe.RetryAfter <= 0 {
		t.Fatalf("the breaker did not refuse with a RetryAfter: %v", openErr)
	}
	e.Svc.SubmitErr = func(job.Spec) error { return fmt.Errorf("run workflow: %w", openErr) }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusServiceUnavailable, api.CodeUnavailable)
	want := strconv.Itoa(int((oe.RetryAfter + time.Second - 1) / time.Second))
	if got := r.header.Get("Retry-After"); got != want {
		t.Errorf("breaker open: Retry-After %q, want %s (its RetryAfter %v)", got, want, oe.RetryAfter)
	}
	if msg := r.errBody(t).Error; !strings.Contains(msg, "workflow nightly") {
		t.Errorf("breaker open: the error does not name the breaker: %q", msg)
	}

	// Forced open: no time to give, so no Retry-After.
	b.Isolate()
	forced := b.Execute(context.Background(), func(context.Context) error { return nil })
	e.Svc.SubmitErr = func(job.Spec) error { return forced }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusServiceUnavailable, api.CodeUnavailable)
	if got := r.header.Get("Retry-After"); got != "" {
		t.Errorf("forced open: Retry-After %q, want none", got)
	}
}

// GET /v1/jobs refuses a page bigger than the documented maximum, naming
// limit; the maximum itself is served.
func TestListLimitIsCapped(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	r := do(t, "GET", e.URL+"/v1/jobs?limit="+strconv.Itoa(api.ListLimitMax+1), "")
	wantStatus(t, r, http.StatusBadRequest, api.CodeInvalid)
	if body := r.errBody(t); body.Field != "limit" || !strings.Contains(body.Error, strconv.Itoa(api.ListLimitMax)) {
		t.Errorf("refusal %+v does not name limit and its maximum", body)
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs?limit="+strconv.Itoa(api.ListLimitMax), ""), http.StatusOK, "")
}

// openFollow starts a follow and returns its response once the server has
// answered (the header is flushed before any output).
func openFollow(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url+"/logs?follow=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// Each token may have MaxFollowsPerToken follows open; the next is refused
// with 429 and a message saying why, while other tokens still follow, and a
// slot is free again once a follow ends.
func TestFollowsAreBoundedPerToken(t *testing.T) {
	tokens := []api.Token{{Value: "alice-token", Role: api.RoleRead, Name: "alice"}, {Value: "bob-token", Role: api.RoleSubmit, Name: "bob"}}
	e := apitest.Start(t, api.Config{Tokens: tokens, MaxFollowsPerToken: 2})
	j, _, err := e.Svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}
	url := e.URL + "/v1/jobs/" + j.ID
	first := openFollow(t, url, "alice-token")
	openFollow(t, url, "alice-token")
	third := openFollow(t, url, "alice-token")
	if third.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third follow of one token: status %d, want 429", third.StatusCode)
	}
	b, _ := io.ReadAll(third.Body)
	if !strings.Contains(string(b), api.CodeTooManyFollows) || !strings.Contains(string(b), "too many log follows") || third.Header.Get("Retry-After") == "" {
		t.Errorf("refusal: %s (Retry-After %q)", b, third.Header.Get("Retry-After"))
	}
	if res := openFollow(t, url, "bob-token"); res.StatusCode != http.StatusOK {
		t.Errorf("another token's follow: status %d", res.StatusCode)
	}
	// A finished job's logs are served at once and need no slot.
	// End alice's first follow: her slot comes back.
	first.Body.Close()
	status := 0
	enginetest.Eventually(t, 5*time.Second, "a closed follow gives its slot back", func() bool {
		res := openFollow(t, url, "alice-token") // the server notices the close in its own time
		if status = res.StatusCode; status == http.StatusOK {
			return true
		}
		res.Body.Close()
		return false
	}, func() string { return fmt.Sprintf("alice's follow: status %d", status) })
}

// A follow of a job that never starts ends, after FollowStartTimeout, with
// an error event that says so; a running job's follow is not cut by it.
func TestFollowOfAJobThatNeverStartsEnds(t *testing.T) {
	e := apitest.Start(t, api.Config{FollowStartTimeout: 300 * time.Millisecond})
	queued, _, _ := e.Svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	running, _, _ := e.Svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	e.Svc.Move(running.ID, job.StateLaunching, "placed", "h1")
	e.Svc.Move(running.ID, job.StateRunning, "started", "h1")

	start := time.Now()
	res := openFollow(t, e.URL+"/v1/jobs/"+queued.ID, "")
	evs := readEvents(t, res.Body)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the follow of a queued job took %v to end", took)
	}
	if len(evs) != 1 || !strings.Contains(evs[0].Error, "queued") || !strings.Contains(evs[0].Error, "without running") {
		t.Fatalf("events of a queued job's follow: %+v", evs)
	}

	res = openFollow(t, e.URL+"/v1/jobs/"+running.ID, "")
	br := bufio.NewReader(res.Body)
	time.Sleep(600 * time.Millisecond) // longer than FollowStartTimeout: the running job's follow must still be open
	e.Svc.Output(running.ID, "stdout", "late\n")
	e.Svc.Finish(running.ID, job.StateSucceeded, ptr(0), "exit code 0")
	evs = readEvents(t, br)
	if len(evs) != 2 || evs[0].Data != "late\n" || !evs[1].End {
		t.Errorf("events of a running job's follow: %+v", evs)
	}
}

// blockingService holds List until released, to keep a non-streaming
// handler busy past the write deadline.
type blockingService struct {
	*apitest.Service
	release chan struct{}
}

func (s blockingService) List(ctx context.Context, p store.JobListParams) ([]*job.Job, error) {
	<-s.release
	return s.Service.List(ctx, p)
}

// Non-streaming routes have a write deadline, and log follows do not: a
// follow outlives WriteTimeout, a list that answers after it is cut.
func TestWriteDeadlineSparesFollows(t *testing.T) {
	svc := blockingService{Service: apitest.NewService(), release: make(chan struct{})}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(svc.release) }); svc.Close() })
	cfg := api.Config{WriteTimeout: 300 * time.Millisecond, RequestTimeout: 5 * time.Second, ReadTimeout: 300 * time.Millisecond}
	srv := api.New(cfg, svc, apitest.NewFleet(), nil, slog.New(slog.DiscardHandler))
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()

	j, _, _ := svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	svc.Move(j.ID, job.StateLaunching, "placed", "h1")
	svc.Move(j.ID, job.StateRunning, "started", "h1")
	res := openFollow(t, base+"/v1/jobs/"+j.ID, "")

	listed := make(chan error, 1)
	go func() {
		res, err := http.Get(base + "/v1/jobs")
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		listed <- err
	}()
	time.Sleep(700 * time.Millisecond) // past the write deadline and the read timeout
	once.Do(func() { close(svc.release) })
	if err := <-listed; err == nil {
		t.Error("a list answered after its write deadline reached the client")
	}

	svc.Output(j.ID, "stdout", "still here\n")
	svc.Finish(j.ID, job.StateSucceeded, ptr(0), "exit code 0")
	evs := readEvents(t, res.Body)
	if len(evs) != 2 || evs[0].Data != "still here\n" || !evs[1].End {
		t.Errorf("a follow longer than the write deadline: events %+v", evs)
	}
}
