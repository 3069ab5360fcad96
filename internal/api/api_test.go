package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

var testHosts = []fleet.HostStatus{
	{Name: "h1", Address: "unix:///run/h1.sock", Capacity: 4, Weight: 1, State: fleet.HostHealthy, Breaker: fleet.BreakerStatus{State: breaker.StateClosed}},
	{Name: "h2", Address: "tcp://10.0.0.2:2376", Capacity: 2, Weight: 1, State: fleet.HostUnavailable,
		Breaker: fleet.BreakerStatus{State: breaker.StateOpen, ConsecutiveFailures: 5, Trips: 1}, LastError: "dial tcp: connection refused"},
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errBody(t *testing.T) api.ErrorResponse {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v\n%s", err, r.body)
	}
	if e.Error == "" {
		t.Fatalf("error body has no error: %s", r.body)
	}
	return e
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, r.body)
	}
	return v
}

// do sends one request; header pairs are "Name", "value".
func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func wantStatus(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d\n%s", r.status, status, r.body)
	}
	if code != "" {
		if e := r.errBody(t); e.Code != code {
			t.Fatalf("code %q, want %q (%s)", e.Code, code, e.Error)
		}
	}
}

func submit(t *testing.T, e *apitest.Env, body string) *job.Job {
	t.Helper()
	r := do(t, "POST", e.URL+"/v1/jobs", body)
	wantStatus(t, r, http.StatusCreated, "")
	return decode[api.SubmitResponse](t, r).Job
}

func ptr[T any](v T) *T { return &v }

func TestHealthz(t *testing.T) {
	e := apitest.Start(t, api.Config{Tokens: []api.Token{{Value: "secret", Role: api.RoleAdmin}}})
	r := do(t, "GET", e.URL+"/healthz", "")
	if r.status != 200 || string(r.body) != "ok\n" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
}

func TestSubmit(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	r := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine","command":["echo","hi"],"env":{"A":"1"},"timeout":"10m","memory_bytes":67108864}`)
	wantStatus(t, r, http.StatusCreated, "")
	sr := decode[api.SubmitResponse](t, r)
	if sr.Existed || sr.Job.ID == "" || sr.Job.State != job.StateQueued {
		t.Fatalf("response: %+v", sr)
	}
	if got := r.header.Get("Location"); got != "/v1/jobs/"+sr.Job.ID {
		t.Errorf("Location %q", got)
	}
	if sr.Job.Spec.Timeout.Std() != 10*time.Minute || sr.Job.Spec.MemoryBytes != 64<<20 || sr.Job.Spec.Env["A"] != "1" {
		t.Errorf("spec not decoded: %+v", sr.Job.Spec)
	}
}

func TestSubmitIdempotency(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	body := `{"image":"alpine"}`
	r1 := do(t, "POST", e.URL+"/v1/jobs", body, "Idempotency-Key", "k1")
	wantStatus(t, r1, http.StatusCreated, "")
	r2 := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine","idempotency_key":"k1"}`)
	wantStatus(t, r2, http.StatusOK, "")
	a, b := decode[api.SubmitResponse](t, r1), decode[api.SubmitResponse](t, r2)
	if !b.Existed || a.Job.ID != b.Job.ID {
		t.Fatalf("resubmission: existed=%v ids %s %s", b.Existed, a.Job.ID, b.Job.ID)
	}

	r3 := do(t, "POST", e.URL+"/v1/jobs", `{"image":"busybox"}`, "Idempotency-Key", "k1")
	wantStatus(t, r3, http.StatusConflict, api.CodeDuplicate)

	r4 := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine","idempotency_key":"k2"}`, "Idempotency-Key", "k3")
	wantStatus(t, r4, http.StatusBadRequest, api.CodeInvalid)
	if f := r4.errBody(t).Field; f != "idempotency_key" {
		t.Errorf("field %q", f)
	}
}

func TestSubmitBadRequests(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	for _, c := range []struct {
		name   string
		body   string
		field  string   // first field
		fields []string // every field named in problems, if checked
		inMsg  string
	}{
		{name: "not JSON", body: `{"image":`, inMsg: "not valid JSON"},
		{name: "empty", body: ``, inMsg: "empty"},
		{name: "array", body: `["alpine"]`, inMsg: "must be a JSON object"},
		{name: "trailing data", body: `{"image":"alpine"} {}`, inMsg: "nothing after it"},
		{name: "unknown field", body: `{"image":"alpine","memory":"1g"}`, field: "memory", inMsg: "not a field"},
		{name: "wrong type", body: `{"image":"alpine","memory_bytes":"512MiB"}`, field: "memory_bytes", inMsg: "must be an integer"},
		{name: "fraction for integer", body: `{"image":"alpine","memory_bytes":1.5}`, field: "memory_bytes", inMsg: "must be an integer"},
		{name: "env value type", body: `{"image":"alpine","env":{"A":1}}`, field: "env.A", inMsg: "must be a string"},
		{name: "command element type", body: `{"image":"alpine","command":["echo",1]}`, field: "command[1]", inMsg: "must be a string"},
		{name: "command type", body: `{"image":"alpine","command":"echo hi"}`, field: "command", inMsg: "must be an array of strings"},
		{name: "bad duration", body: `{"image":"alpine","timeout":"ten minutes"}`, field: "timeout", inMsg: "invalid duration"},
		{name: "bare number duration", body: `{"image":"alpine","timeout":60}`, field: "timeout", inMsg: "bare number 60"},
		{name: "bad name", body: `{"image":"alpine","name":"a b"}`, field: "name", inMsg: "docker container name"},
		{name: "bad image reference", body: `{"image":"Alpine:latest"}`, field: "image", inMsg: "not a valid image reference"},
		{name: "bad user", body: `{"image":"alpine","user":"a b"}`, field: "user", inMsg: "user[:group]"},
		{name: "several", body: `{"image":1,"cpus":"two","bogus":true}`, field: "bogus", fields: []string{"bogus", "cpus", "image"}},
		{name: "validation", body: `{"memory_bytes":-1,"pull_policy":"sometimes"}`, field: "image",
			fields: []string{"image", "memory_bytes", "pull_policy"}, inMsg: "invalid job spec"},
		{name: "reserved label", body: `{"image":"alpine","labels":{"fusebox.job_id":"x"}}`, field: "labels.fusebox.job_id", inMsg: "reserved"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "POST", e.URL+"/v1/jobs", c.body)
			wantStatus(t, r, http.StatusBadRequest, api.CodeInvalid)
			eb := r.errBody(t)
			if eb.Field != c.field {
				t.Errorf("field %q, want %q (%s)", eb.Field, c.field, eb.Error)
			}
			if c.inMsg != "" && !strings.Contains(eb.Error, c.inMsg) {
				t.Errorf("error %q does not say %q", eb.Error, c.inMsg)
			}
			if c.fields != nil {
				var got []string
				for _, p := range eb.Problems {
					got = append(got, p.Field)
					if p.Message == "" {
						t.Errorf("problem %q without message", p.Field)
					}
				}
				if strings.Join(got, ",") != strings.Join(c.fields, ",") {
					t.Errorf("problems %v, want %v", got, c.fields)
				}
			}
		})
	}
}

func TestSubmitTooLarge(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	big := `{"image":"alpine","env":{"A":"` + strings.Repeat("x", 1<<20) + `"}}`
	r := do(t, "POST", e.URL+"/v1/jobs", big)
	wantStatus(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)

	e2 := apitest.Start(t, api.Config{MaxBodyBytes: 64})
	r = do(t, "POST", e2.URL+"/v1/jobs", `{"image":"alpine","command":["a long enough command line to pass 64 bytes"]}`)
	wantStatus(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
}

type retryErr struct{ d time.Duration }

func (e retryErr) Error() string                 { return "queue is full, try later" }
func (e retryErr) Unwrap() error                 { return job.ErrQueueFull }
func (e retryErr) RetryAfterHint() time.Duration { return e.d }

func TestSubmitQueueFull(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	e.Svc.MaxQueued = 1
	submit(t, e, `{"image":"alpine"}`)
	r := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusTooManyRequests, api.CodeQueueFull)
	if got := r.header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want 5 (the default)", got)
	}

	e.Svc.SubmitErr = func(job.Spec) error { return retryErr{d: 1500 * time.Millisecond} }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusTooManyRequests, api.CodeQueueFull)
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (the error's 1.5s, rounded up)", got)
	}
}

// noHostError is what the dispatcher returns when no configured host can
// ever satisfy a job's constraints.
type noHostError struct{ constraints map[string]string }

func (e *noHostError) Error() string {
	return fmt.Sprintf("no configured host has labels %v", e.constraints)
}
func (e *noHostError) Unwrap() []error {
	return []error{job.ErrInvalid, &job.FieldError{Field: "constraints", Value: e.constraints, Reason: "no configured host matches"}}
}

func TestSubmitServiceErrors(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	e.Svc.SubmitErr = func(s job.Spec) error { return &noHostError{s.Constraints} }
	r := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine","constraints":{"gpu":"yes"}}`)
	wantStatus(t, r, http.StatusBadRequest, api.CodeInvalid)
	if f := r.errBody(t).Field; f != "constraints" {
		t.Errorf("field %q, want constraints", f)
	}

	e.Svc.SubmitErr = func(job.Spec) error { return errors.New("disk I/O error") }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusInternalServerError, api.CodeInternal)

	e.Svc.SubmitErr = func(job.Spec) error { return fmt.Errorf("insert: %w", context.DeadlineExceeded) }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusServiceUnavailable, api.CodeUnavailable)

	e.Svc.SubmitErr = func(job.Spec) error { return job.ErrConflict }
	r = do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine"}`)
	wantStatus(t, r, http.StatusConflict, api.CodeConflict)
}

func TestListJobs(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	var ids []string
	for range 5 {
		ids = append(ids, submit(t, e, `{"image":"alpine"}`).ID)
	}
	e.Svc.Move(ids[0], job.StateLaunching, "placed", "h1")
	e.Svc.Move(ids[1], job.StateLaunching, "placed", "h2")
	e.Svc.Move(ids[1], job.StateRunning, "started", "h2")

	list := func(query string) api.JobList {
		t.Helper()
		r := do(t, "GET", e.URL+"/v1/jobs"+query, "")
		wantStatus(t, r, 200, "")
		return decode[api.JobList](t, r)
	}
	idsOf := func(l api.JobList) string {
		var s []string
		for _, j := range l.Jobs {
			s = append(s, j.ID)
		}
		return strings.Join(s, ",")
	}
	if got, want := idsOf(list("")), strings.Join([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}, ","); got != want {
		t.Errorf("all: %s, want %s", got, want)
	}
	if got := idsOf(list("?state=running&state=launching")); got != ids[1]+","+ids[0] {
		t.Errorf("running+launching: %s", got)
	}
	if got := idsOf(list("?state=running,launching&host=h2")); got != ids[1] {
		t.Errorf("host h2: %s", got)
	}
	page := list("?limit=2")
	if idsOf(page) != ids[4]+","+ids[3] || page.NextBefore != ids[3] {
		t.Errorf("page 1: %s next %q", idsOf(page), page.NextBefore)
	}
	page = list("?limit=2&before=" + page.NextBefore)
	if idsOf(page) != ids[2]+","+ids[1] {
		t.Errorf("page 2: %s", idsOf(page))
	}
	if l := list("?state=lost"); l.Jobs == nil || len(l.Jobs) != 0 || l.NextBefore != "" {
		t.Errorf("empty list: %+v (want jobs: [])", l)
	}

	for _, c := range []struct{ query, field string }{
		{"?state=runing", "state"}, {"?limit=0", "limit"}, {"?limit=x", "limit"}, {"?limit=5000", "limit"}, {"?status=running", "status"},
	} {
		r := do(t, "GET", e.URL+"/v1/jobs"+c.query, "")
		wantStatus(t, r, 400, api.CodeInvalid)
		if f := r.errBody(t).Field; f != c.field {
			t.Errorf("%s: field %q, want %q", c.query, f, c.field)
		}
	}
}

func TestGetJob(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	j := submit(t, e, `{"image":"alpine"}`)
	e.Svc.Run(j.ID, "h1", "out\n", "err\n", job.StateFailed, ptr(3))

	r := do(t, "GET", e.URL+"/v1/jobs/"+j.ID, "")
	wantStatus(t, r, 200, "")
	d := decode[api.JobDetail](t, r)
	if d.Job.State != job.StateFailed || *d.Job.ExitCode != 3 {
		t.Errorf("job: %+v", d.Job)
	}
	var path []string
	for _, tr := range d.Transitions {
		path = append(path, string(tr.To))
	}
	if got := strings.Join(path, ">"); got != "queued>launching>running>failed" {
		t.Errorf("transitions %s", got)
	}
	if len(d.Attempts) != 1 || d.Attempts[0].Host != "h1" || d.Attempts[0].Outcome != "failed" {
		t.Errorf("attempts %+v", d.Attempts)
	}

	// A new job has no attempts: [] not null.
	j2 := submit(t, e, `{"image":"alpine"}`)
	r = do(t, "GET", e.URL+"/v1/jobs/"+j2.ID, "")
	if !strings.Contains(string(r.body), `"attempts":[]`) {
		t.Errorf("attempts not []: %s", r.body)
	}

	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/nope", ""), 404, api.CodeNotFound)
}

// {id} in the job routes is an id, a name, or a unique id prefix; an
// ambiguous prefix is a 400 listing the ids, and no match a 404 that names
// what was asked for and not the store.
func TestJobRefs(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	j1 := submit(t, e, `{"image":"alpine","name":"nightly"}`)
	j2 := submit(t, e, `{"image":"alpine"}`)
	for _, c := range []struct{ ref, want string }{
		{j1.ID, j1.ID}, {"nightly", j1.ID}, {j2.ID, j2.ID},
	} {
		r := do(t, "GET", e.URL+"/v1/jobs/"+c.ref, "")
		wantStatus(t, r, 200, "")
		if got := decode[api.JobDetail](t, r).Job.ID; got != c.want {
			t.Errorf("GET /v1/jobs/%s = %s, want %s", c.ref, got, c.want)
		}
	}
	// apitest ids are j0001, j0002, ...: "j000" is a prefix of both.
	r := do(t, "GET", e.URL+"/v1/jobs/j000", "")
	wantStatus(t, r, 400, api.CodeAmbiguous)
	if eb := r.errBody(t); !strings.Contains(eb.Error, j1.ID) || !strings.Contains(eb.Error, j2.ID) {
		t.Errorf("ambiguous error does not list the ids: %s", eb.Error)
	}
	r = do(t, "GET", e.URL+"/v1/jobs/j0002/logs", "")
	if r.status == 404 && r.errBody(t).Code == api.CodeNotFound {
		t.Errorf("logs of a job by its id: %s", r.body)
	}
	r = do(t, "GET", e.URL+"/v1/jobs/zzz", "")
	wantStatus(t, r, 404, api.CodeNotFound)
	if eb := r.errBody(t); !strings.Contains(eb.Error, `"zzz"`) || strings.Contains(eb.Error, "sqlite") {
		t.Errorf("not found: %s", eb.Error)
	}
	wantStatus(t, do(t, "POST", e.URL+"/v1/jobs/nightly/cancel", ""), 200, "")
}

func TestCancel(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	queued := submit(t, e, `{"image":"alpine"}`)
	running := submit(t, e, `{"image":"alpine"}`)
	e.Svc.Move(running.ID, job.StateLaunching, "placed", "h1")
	e.Svc.Move(running.ID, job.StateRunning, "started", "h1")

	r := do(t, "POST", e.URL+"/v1/jobs/"+queued.ID+"/cancel", "")
	wantStatus(t, r, 200, "")
	if j := decode[job.Job](t, r); j.State != job.StateCancelled {
		t.Errorf("queued job after cancel: %s", j.State)
	}
	r = do(t, "POST", e.URL+"/v1/jobs/"+running.ID+"/cancel", "")
	wantStatus(t, r, 200, "")
	if j := decode[job.Job](t, r); j.State != job.StateRunning || !j.CancelRequested {
		t.Errorf("running job after cancel: %s cancel_requested=%v", j.State, j.CancelRequested)
	}
	wantStatus(t, do(t, "POST", e.URL+"/v1/jobs/"+queued.ID+"/cancel", ""), 409, api.CodeTerminal)
	wantStatus(t, do(t, "POST", e.URL+"/v1/jobs/nope/cancel", ""), 404, api.CodeNotFound)
}

func TestLogs(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	j := submit(t, e, `{"image":"alpine"}`)

	r := do(t, "GET", e.URL+"/v1/jobs/"+j.ID+"/logs", "")
	wantStatus(t, r, 404, api.CodeNoLogs)
	if msg := r.errBody(t).Error; !strings.Contains(msg, "follow") {
		t.Errorf("no-logs error does not say what to do: %q", msg)
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/nope/logs", ""), 404, api.CodeNotFound)
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/"+j.ID+"/logs?follow=maybe", ""), 400, api.CodeInvalid)
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/"+j.ID+"/logs?tail=5", ""), 400, api.CodeInvalid)

	e.Svc.Run(j.ID, "h1", "héllo\n", "oops\n", job.StateSucceeded, ptr(0))
	r = do(t, "GET", e.URL+"/v1/jobs/"+j.ID+"/logs", "")
	wantStatus(t, r, 200, "")
	if l := decode[api.LogsResponse](t, r); l.Stdout != "héllo\n" || l.Stderr != "oops\n" {
		t.Errorf("logs %+v", l)
	}
}

// readEvents reads NDJSON log events until the stream ends.
func readEvents(t *testing.T, body io.Reader) []api.LogEvent {
	t.Helper()
	var evs []api.LogEvent
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var ev api.LogEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestFollowLogs(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	j := submit(t, e, `{"image":"alpine"}`)
	e.Svc.Move(j.ID, job.StateLaunching, "placed", "h1")
	e.Svc.Move(j.ID, job.StateRunning, "started", "h1")
	e.Svc.Output(j.ID, "stdout", "one\n")

	res, err := http.Get(e.URL + "/v1/jobs/" + j.ID + "/logs?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(res.Body)
	// The first event arrives while the job still runs: it was flushed.
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line != `{"stream":"stdout","data":"one\n"}`+"\n" {
		t.Fatalf("first event %q", line)
	}
	e.Svc.Output(j.ID, "stderr", "two\n")
	e.Svc.Finish(j.ID, job.StateFailed, ptr(2), "exit code 2")
	evs := readEvents(t, br)
	if len(evs) != 2 || evs[0].Stream != "stderr" || evs[0].Data != "two\n" {
		t.Fatalf("events %+v", evs)
	}
	if end := evs[1]; !end.End || end.State != job.StateFailed || end.ExitCode == nil || *end.ExitCode != 2 {
		t.Errorf("end event %+v", end)
	}

	// A finished job: its collected output at once.
	res2, err := http.Get(e.URL + "/v1/jobs/" + j.ID + "/logs?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	evs = readEvents(t, res2.Body)
	if len(evs) != 3 || evs[0].Data != "one\n" || evs[1].Data != "two\n" || !evs[2].End {
		t.Errorf("finished job events %+v", evs)
	}

	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/nope/logs?follow=true", ""), 404, api.CodeNotFound)
}

func TestFollowLogsClientLeaves(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	j := submit(t, e, `{"image":"alpine"}`)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/v1/jobs/"+j.ID+"/logs?follow=true", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	res.Body.Close()
	// The server side must still serve other requests; the test's cleanup
	// (httptest.Server.Close) would hang on a leaked handler.
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs/"+j.ID, ""), 200, "")
}

func TestHosts(t *testing.T) {
	e := apitest.Start(t, api.Config{}, testHosts...)
	r := do(t, "GET", e.URL+"/v1/hosts", "")
	wantStatus(t, r, 200, "")
	hl := decode[api.HostList](t, r)
	if len(hl.Hosts) != 2 || hl.Hosts[1].Breaker.State != breaker.StateOpen || hl.Hosts[1].LastError == "" {
		t.Errorf("hosts %+v", hl)
	}
	r = do(t, "GET", e.URL+"/v1/hosts/h1", "")
	wantStatus(t, r, 200, "")
	if h := decode[api.HostResponse](t, r); h.Host.Name != "h1" {
		t.Errorf("host %+v", h)
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/hosts/h9", ""), 404, api.CodeHostNotFound)

	for _, c := range []struct {
		action  string
		state   fleet.HostState
		breaker breaker.State
	}{
		{"isolate", fleet.HostIsolated, breaker.StateForcedOpen},
		{"release", fleet.HostHealthy, breaker.StateClosed},
		{"drain", fleet.HostDraining, breaker.StateClosed},
		{"reset", fleet.HostHealthy, breaker.StateClosed},
	} {
		r := do(t, "POST", e.URL+"/v1/hosts/h1/"+c.action, "")
		wantStatus(t, r, 200, "")
		if h := decode[api.HostResponse](t, r).Host; h.State != c.state || h.Breaker.State != c.breaker {
			t.Errorf("after %s: state %s breaker %s", c.action, h.State, h.Breaker.State)
		}
		wantStatus(t, do(t, "POST", e.URL+"/v1/hosts/h9/"+c.action, ""), 404, api.CodeHostNotFound)
	}

	r = do(t, "GET", e.URL+"/v1/hosts/transitions", "")
	wantStatus(t, r, 200, "")
	tl := decode[api.HostTransitionList](t, r)
	if len(tl.Transitions) != 2 || tl.Transitions[0].To != breaker.StateForcedOpen || tl.Transitions[1].To != breaker.StateClosed {
		t.Errorf("transitions %+v", tl.Transitions)
	}
}

func TestQueue(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	e.Svc.MaxQueued = 10
	submit(t, e, `{"image":"alpine"}`)
	j := submit(t, e, `{"image":"alpine"}`)
	e.Svc.Move(j.ID, job.StateLaunching, "placed", "h1")
	r := do(t, "GET", e.URL+"/v1/queue", "")
	wantStatus(t, r, 200, "")
	q := decode[api.QueueStats](t, r)
	if q.Queued != 1 || q.Running != 1 || q.MaxQueued != 10 || q.ByState[job.StateLaunching] != 1 {
		t.Errorf("queue %+v", q)
	}
}

func TestAuth(t *testing.T) {
	e := apitest.Start(t, api.Config{Tokens: []api.Token{
		{Value: "r-token", Role: api.RoleRead},
		{Value: "s-token", Role: api.RoleSubmit},
		{Value: "a-token", Role: api.RoleAdmin, Name: "ops"},
	}}, testHosts...)
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	r := do(t, "GET", e.URL+"/v1/jobs", "")
	wantStatus(t, r, 401, api.CodeUnauthorized)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs", "", bearer("wrong")...), 401, api.CodeUnauthorized)
	wantStatus(t, do(t, "GET", e.URL+"/v1/jobs", "", "Authorization", "Basic cjpy"), 401, api.CodeUnauthorized)

	for _, c := range []struct {
		method, path, body string
		ok                 string // lowest role allowed: "" = open
	}{
		{"GET", "/healthz", "", ""},
		{"GET", "/v1/openapi.json", "", ""},
		{"GET", "/metrics", "", "read"},
		{"GET", "/v1/jobs", "", "read"},
		{"GET", "/v1/queue", "", "read"},
		{"GET", "/v1/hosts", "", "read"},
		{"POST", "/v1/jobs", `{"image":"alpine"}`, "submit"},
		{"POST", "/v1/hosts/h1/isolate", "", "admin"},
		{"POST", "/v1/hosts/h1/release", "", "admin"},
	} {
		levels := map[string]int{"": 0, "read": 1, "submit": 2, "admin": 3}
		for _, tok := range []struct{ role, value string }{{"read", "r-token"}, {"submit", "s-token"}, {"admin", "a-token"}} {
			r := do(t, c.method, e.URL+c.path, c.body, bearer(tok.value)...)
			allowed := levels[tok.role] >= levels[c.ok]
			if allowed && r.status >= 400 {
				t.Errorf("%s %s as %s: %d %s", c.method, c.path, tok.role, r.status, r.body)
			}
			if !allowed {
				wantStatus(t, r, 403, api.CodeForbidden)
				if msg := r.errBody(t).Error; !strings.Contains(msg, "needs role "+c.ok) {
					t.Errorf("403 does not name the role needed: %q", msg)
				}
			}
		}
		if c.ok == "" {
			if r := do(t, c.method, e.URL+c.path, c.body); r.status != 200 {
				t.Errorf("%s %s without token: %d", c.method, c.path, r.status)
			}
		}
	}
}

func TestNoRouteAndMethod(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	r := do(t, "GET", e.URL+"/v1/nothing", "")
	wantStatus(t, r, 404, api.CodeNoRoute)
	r = do(t, "DELETE", e.URL+"/v1/jobs", "")
	wantStatus(t, r, 405, api.CodeMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow %q", got)
	}
	r = do(t, "GET", e.URL+"/v1/jobs/x/cancel", "")
	wantStatus(t, r, 405, api.CodeMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	submit(t, e, `{"image":"alpine"}`)
	r := do(t, "GET", e.URL+"/metrics", "")
	wantStatus(t, r, 200, "")
	if !strings.Contains(string(r.body), `fusebox_http_requests_total{code="201",route="POST /v1/jobs"} 1`) {
		t.Errorf("request not counted:\n%s", r.body)
	}

	srv := api.New(api.Config{}, apitest.NewService(), apitest.NewFleet(), nil, nil)
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	r = do(t, "GET", "http://"+ln.Addr().String()+"/metrics", "")
	wantStatus(t, r, 404, api.CodeNoRoute)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	r := do(t, "GET", e.URL+"/v1/openapi.json", "")
	wantStatus(t, r, 200, "")
	doc := decode[map[string]any](t, r)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
}

func TestCheckListen(t *testing.T) {
	tokens := []api.Token{{Value: "x", Role: api.RoleRead}}
	tlsFiles := &api.TLSFiles{CertFile: "cert.pem", KeyFile: "key.pem"}
	for _, c := range []struct {
		addr string
		cfg  api.Config
		ok   bool
		want string // what the refusal says to do instead
	}{
		{"127.0.0.1:7070", api.Config{}, true, ""},
		{"[::1]:7070", api.Config{}, true, ""},
		{"localhost:7070", api.Config{}, true, ""},
		{"127.0.0.2:7070", api.Config{}, true, ""},
		{"0.0.0.0:7070", api.Config{}, false, "127.0.0.1"},
		{":7070", api.Config{}, false, "127.0.0.1"},
		{"[::]:7070", api.Config{}, false, "127.0.0.1"},
		{"10.1.2.3:7070", api.Config{}, false, "127.0.0.1"},
		{"fusebox.example.com:7070", api.Config{}, false, "127.0.0.1"},
		// Tokens beyond loopback need TLS, or insecure_http in so many words.
		{"0.0.0.0:7070", api.Config{Tokens: tokens}, false, "api.insecure_http: true"},
		{"0.0.0.0:7070", api.Config{Tokens: tokens, TLS: tlsFiles}, true, ""},
		{"0.0.0.0:7070", api.Config{Tokens: tokens, InsecureHTTP: true}, true, ""},
		// TLS or insecure_http never stand in for tokens.
		{"0.0.0.0:7070", api.Config{TLS: tlsFiles}, false, "configure tokens"},
		{"0.0.0.0:7070", api.Config{InsecureHTTP: true}, false, "configure tokens"},
		{"nonsense", api.Config{}, false, ""},
	} {
		err := c.cfg.CheckListen(c.addr)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q) with %d tokens, tls %v, insecure_http %v = %v", c.addr, len(c.cfg.Tokens), c.cfg.TLS != nil, c.cfg.InsecureHTTP, err)
		}
		if err != nil && c.want != "" {
			if !errors.Is(err, api.ErrInsecureListen) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal of %q does not say %q: %v", c.addr, c.want, err)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := api.Config{Tokens: []api.Token{
		{Value: "a", Role: api.RoleRead},
		{Value: "", Role: api.RoleAdmin},
		{Value: "a", Role: "root"},
	}, RequestTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"tokens[1].value: is empty", "tokens[2].value: is the same as tokens[0]", `tokens[2].role: must be one of read, submit, admin (got "root")`, "request_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err := (api.Config{Tokens: []api.Token{{Value: "a", Role: api.RoleAdmin}}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestServeRefusesOpenNetworkWithoutTokens(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{}, apitest.NewService(), apitest.NewFleet(), nil, nil)
	err = srv.Serve(context.Background(), ln)
	if !errors.Is(err, api.ErrInsecureListen) {
		t.Fatalf("Serve on 0.0.0.0 without tokens: %v", err)
	}

	bad := api.New(api.Config{Tokens: []api.Token{{Value: "x", Role: "boss"}}}, apitest.NewService(), apitest.NewFleet(), nil, nil)
	if err := bad.Serve(context.Background(), listen(t)); err == nil || !strings.Contains(err.Error(), "tokens[0].role") {
		t.Fatalf("Serve with a bad config: %v", err)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	svc := apitest.NewService()
	j, _, err := svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := api.New(api.Config{ShutdownTimeout: 5 * time.Second}, svc, apitest.NewFleet(), nil, logger)
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	wantStatus(t, do(t, "GET", base+"/healthz", ""), 200, "")

	// A follow in progress is told the server is going away, and does not
	// hold the shutdown.
	res, err := http.Get(base + "/v1/jobs/" + j.ID + "/logs?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	evs := readEvents(t, res.Body)
	if len(evs) != 1 || !strings.Contains(evs[0].Error, "shutting down") {
		t.Errorf("events at shutdown: %+v", evs)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestHostActionReason(t *testing.T) {
	e := apitest.Start(t, api.Config{}, testHosts...)
	r := do(t, "POST", e.URL+"/v1/hosts/h1/isolate", `{"reason":"  disk failing "}`)
	wantStatus(t, r, 200, "")
	h := decode[api.HostResponse](t, r).Host
	if op := h.Operator; op == nil || op.Action != "isolate" || op.By != api.ActorLocal || op.Reason != "disk failing" || op.At.IsZero() {
		t.Fatalf("operator after isolate: %+v", h.Operator)
	}
	// No body: no reason.
	r = do(t, "POST", e.URL+"/v1/hosts/h1/release", "")
	wantStatus(t, r, 200, "")
	if op := decode[api.HostResponse](t, r).Host.Operator; op == nil || op.Action != "release" || op.Reason != "" {
		t.Fatalf("operator after release: %+v", op)
	}
	for _, c := range []struct{ body, field string }{
		{`{"reason":"` + strings.Repeat("x", api.MaxReasonBytes+1) + `"}`, "reason"},
		{`{"reason":"two\nlines"}`, "reason"},
		{`{"reason":42}`, "reason"},
		{`{"why":"x"}`, "why"},
		{`{"reason":"x"} {}`, ""},
		{`not json`, ""},
	} {
		r := do(t, "POST", e.URL+"/v1/hosts/h1/drain", c.body)
		wantStatus(t, r, 400, api.CodeInvalid)
		if f := r.errBody(t).Field; f != c.field {
			t.Errorf("body %.40q: field %q, want %q", c.body, f, c.field)
		}
	}
	if h := e.Fleet.Hosts()[0]; h.State != fleet.HostHealthy {
		t.Fatalf("a refused action changed the host: %s", h.State)
	}
}

func TestHostActionActorIsTokenName(t *testing.T) {
	e := apitest.Start(t, api.Config{Tokens: []api.Token{
		{Value: "a-token", Role: api.RoleAdmin, Name: "alice"},
		{Value: "b-token", Role: api.RoleAdmin},
	}}, testHosts...)
	for _, c := range []struct{ token, who string }{{"a-token", "alice"}, {"b-token", "token-2"}} {
		r := do(t, "POST", e.URL+"/v1/hosts/h1/drain", `{"reason":"upgrade"}`, "Authorization", "Bearer "+c.token)
		wantStatus(t, r, 200, "")
		if op := decode[api.HostResponse](t, r).Host.Operator; op == nil || op.By != c.who {
			t.Errorf("token %s: operator %+v, want by %s", c.token, op, c.who)
		}
	}
}

func TestWhoAmI(t *testing.T) {
	e := apitest.Start(t, api.Config{Tokens: []api.Token{
		{Value: "r-token", Role: api.RoleRead, Name: "bot"},
		{Value: "a-token", Role: api.RoleAdmin},
	}}, testHosts...)
	for _, c := range []struct {
		token string
		want  api.WhoAmI
	}{{"r-token", api.WhoAmI{Name: "bot", Role: api.RoleRead}}, {"a-token", api.WhoAmI{Name: "token-2", Role: api.RoleAdmin}}} {
		r := do(t, "GET", e.URL+"/v1/whoami", "", "Authorization", "Bearer "+c.token)
		wantStatus(t, r, 200, "")
		if got := decode[api.WhoAmI](t, r); got != c.want {
			t.Errorf("token %s: %+v, want %+v", c.token, got, c.want)
		}
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/whoami", ""), 401, api.CodeUnauthorized)

	open := apitest.Start(t, api.Config{}, testHosts...)
	r := do(t, "GET", open.URL+"/v1/whoami", "")
	wantStatus(t, r, 200, "")
	if got := decode[api.WhoAmI](t, r); got != (api.WhoAmI{Name: api.ActorLocal, Role: api.RoleAdmin}) {
		t.Errorf("without tokens: %+v", got)
	}
}

// POST /v1/jobs/{id}/retry submits an ended job's spec again as a new job
// (without its idempotency key); a job that has not ended is a 409.
func TestRetryJob(t *testing.T) {
	e := apitest.Start(t, api.Config{})
	r := do(t, "POST", e.URL+"/v1/jobs", `{"image":"alpine","command":["false"],"idempotency_key":"k1"}`)
	wantStatus(t, r, 201, "")
	var sub api.SubmitResponse
	if err := json.Unmarshal(r.body, &sub); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, do(t, "POST", e.URL+"/v1/jobs/"+sub.Job.ID+"/retry", ""), 409, api.CodeConflict)
	if err := e.Svc.Finish(sub.Job.ID, job.StateFailed, ptr(1), "exit code 1"); err != nil {
		t.Fatal(err)
	}
	r = do(t, "POST", e.URL+"/v1/jobs/"+sub.Job.ID+"/retry", "")
	wantStatus(t, r, 201, "")
	var again api.SubmitResponse
	if err := json.Unmarshal(r.body, &again); err != nil {
		t.Fatal(err)
	}
	if again.RetryOf != sub.Job.ID || again.Job.ID == sub.Job.ID || again.Job.Spec.Image != "alpine" ||
		again.Job.Spec.IdempotencyKey != "" || again.Job.State != job.StateQueued {
		t.Fatalf("retry: %+v (job %+v)", again, again.Job)
	}
	wantStatus(t, do(t, "POST", e.URL+"/v1/jobs/nope/retry", ""), 404, api.CodeNotFound)
}
