package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/job"
)

// TestEventsOfJobs: jobs run on a real engine while one SSE client never
// reads its stream; every job ends, and a follower sees each job's
// transitions in order, once, ending with its end.
func TestEventsOfJobs(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	url := startInProcess(t, engines, nil)
	c := apiclient.New(url, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A client that opens a stream and never reads it.
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events?since=0", nil)
	stuck, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Body.Close()

	var mu sync.Mutex
	states := map[string][]string{}
	var seqs []int64
	followed := make(chan error, 1)
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	go func() {
		followed <- c.Events(fctx, apiclient.EventsParams{Types: []string{event.TypeJobTransition}, Since: "0", Follow: true},
			func(ev event.Event) error {
				var d event.JobTransition
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				states[ev.JobID] = append(states[ev.JobID], d.To)
				seqs = append(seqs, ev.Seq)
				return nil
			})
	}()

	img := enginetest.TestImage(t)
	const n = 8
	var ids []string
	for i := range n {
		j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "print", fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		j, err := c.Wait(ctx, id)
		if err != nil || j.State != job.StateSucceeded {
			t.Fatalf("job %s: %v %v", id, j, err)
		}
	}
	// The follower gets every job's end.
	enginetest.Eventually(t, time.Minute, "the follower has every job's end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if s := states[id]; len(s) == 0 || s[len(s)-1] != string(job.StateSucceeded) {
				return false
			}
		}
		return true
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("follower: %v", states)
	})
	fcancel()
	if err := <-followed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Events: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seq %d after %d", seqs[i], seqs[i-1])
		}
	}
	for _, id := range ids {
		if got := fmt.Sprint(states[id]); got != "[queued launching running succeeded]" {
			t.Errorf("job %s: states %s", id, got)
		}
	}
	// Without follow: what there is, then the end.
	var got int
	if err := c.Events(ctx, apiclient.EventsParams{JobID: ids[0]}, func(event.Event) error { got++; return nil }); err != nil || got != 4 {
		t.Fatalf("events of %s without follow: %d, %v; want 4", ids[0], got, err)
	}
	// fusebox_events_total counts them: the n jobs' 4 transitions each.
	var count float64
	enginetest.Eventually(t, 10*time.Second, fmt.Sprintf("fusebox_events_total counts %d job transitions", 4*n), func() bool {
		res, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		count = 0
		for line := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, `fusebox_events_total{type="job.transition"} `); ok {
				count, _ = strconv.ParseFloat(v, 64)
			}
		}
		return count >= 4*n
	}, func() string {
		return fmt.Sprintf("fusebox_events_total of job transitions is %v, want %d", count, 4*n)
	})
}
