package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server/servertest"
	"fusebox/internal/store"
)

// startInProcess runs a fusebox server on engines and returns its URL.
func startInProcess(t testing.TB, engines *enginetest.Fleet, edit func(*config.Config)) string {
	t.Helper()
	_, url := servertest.Start(t, engines, edit)
	return url
}

// Bad submissions over HTTP get a clear error naming the field, and nothing
// of them is stored.
func TestBadInputIsRefusedByFieldAndNothingIsStored(t *testing.T) {
	url := startInProcess(t, enginetest.Shared(t, 1), nil)
	for _, c := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"unknown field", `{"image":"alpine","memroy_bytes":5}`, 400, "memroy_bytes"},
		{"wrong type", `{"image":"alpine","cpus":"two"}`, 400, "cpus"},
		{"empty image", `{"image":""}`, 400, "image"},
		{"negative limit", `{"image":"alpine","memory_bytes":-1}`, 400, "memory_bytes"},
		{"bad duration", `{"image":"alpine","timeout":"soon"}`, 400, "timeout"},
		{"malformed JSON", `{"image":`, 400, "not valid JSON"},
		{"unsatisfiable constraints", `{"image":"alpine","constraints":{"zone":"mars"}}`, 400, "constraints"},
		{"oversized body", `{"image":"alpine","env":{"A":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(url+"/v1/jobs", "application/json", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			var e struct{ Error, Field string }
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Fatalf("error body %s", b)
			}
			if !strings.Contains(e.Error+" "+e.Field, c.want) {
				t.Fatalf("error %q (field %q) does not name %q", e.Error, e.Field, c.want)
			}
		})
	}
	jobs, err := apiclient.New(url, "").List(context.Background(), store.JobListParams{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("after refused submissions the store holds %d jobs (%v)", len(jobs), err)
	}
}

// A submission past the queue bound is refused with 429 and Retry-After.
func TestQueueFullOverHTTP(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	url := startInProcess(t, engines, func(c *config.Config) {
		c.Queue.MaxQueuedJobs = 2
	})
	api := apiclient.New(url, "")
	ctx := context.Background()
	if _, err := api.Drain(ctx, engines.Engines[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	img := enginetest.TestImage(t)
	for range 2 {
		if _, _, err := api.Submit(ctx, job.Spec{Image: img.Ref}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url+"/v1/jobs", "application/json", strings.NewReader(`{"image":"`+img.Ref+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "queue is full") {
		t.Fatalf("status %d Retry-After %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	jobs, _ := api.List(ctx, store.JobListParams{})
	if len(jobs) != 2 {
		t.Fatalf("%d jobs stored, want the 2 accepted", len(jobs))
	}
	// The metrics say so too.
	mresp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		"fusebox_queue_capacity 2", "fusebox_queue_depth 2", "fusebox_jobs_submitted_total 2",
		`fusebox_jobs_rejected_total{reason="queue_full"} 1`,
		`fusebox_breaker_state{host="` + engines.Engines[0].Name + `"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if _, err := api.Release(ctx, engines.Engines[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, j := range jobs {
		final, err := api.Wait(wctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !final.State.Terminal() {
			t.Fatalf("%+v", final)
		}
	}
}
