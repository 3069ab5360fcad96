package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/dispatch"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/job/jobtest"
)

// Scenario 9: no input a user controls can count against a host. Every
// spec of the hostile corpus is refused at submit with an error naming its
// field, or runs and fails as the job's own doing; afterwards every
// breaker is closed with no failure counted.
func TestHostileSpecsNeverTripAHost(t *testing.T) {
	// No health checks: the breakers count only what the jobs do.
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{noHealth: true})
	var accepted []jobtest.Hostile
	ids := map[string]string{}
	for _, h := range jobtest.HostileSpecs(r.img.Ref) {
		j, _, err := r.d.Submit(context.Background(), h.Spec)
		if h.Refused {
			var fe *job.FieldError
			if !errors.Is(err, job.ErrInvalid) || !errors.As(err, &fe) || fe.Field != h.Field {
				t.Errorf("%s: submit = %v; want its first problem to name %s", h.Name, err, h.Field)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: submit refused a spec that should be accepted: %v", h.Name, err)
			continue
		}
		accepted = append(accepted, h)
		ids[h.Name] = j.ID
	}
	for _, h := range accepted {
		j := r.wait(ids[h.Name], 60*time.Second)
		if j.State != h.WantState || j.Attempt != 1 {
			t.Errorf("%s (%s): ended %s on attempt %d (%s); want %s on attempt 1", h.Name, h.Why, j.State, j.Attempt, j.Reason, h.WantState)
		}
	}
	for _, h := range r.fleet.Statuses() {
		if h.Breaker.State != breaker.StateClosed || h.Breaker.ConsecutiveFailures != 0 || h.Breaker.Failures != 0 || h.Breaker.Trips != 0 {
			t.Errorf("host %s breaker after the hostile corpus: %+v", h.Name, h.Breaker)
		}
	}
}

// Scenario 11: a job that prints far more than logs.max_bytes keeps the
// tail of each stream, collected while it runs, and trips nothing.
func TestLargeOutputKeepsItsTailAndTripsNothing(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{noHealth: true, dispatch: dispatch.Config{LogMaxBytes: 64 << 10}})
	j := r.submit(r.spec("flood", "157286400", "print", "the end"))
	done := r.wait(j.ID, 120*time.Second)
	if done.State != job.StateSucceeded {
		t.Fatalf("job %+v", done)
	}
	logs, err := r.d.Logs(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !logs.Truncated || len(logs.Stdout) != 64<<10 || !strings.HasSuffix(string(logs.Stdout), "the end\n") {
		t.Fatalf("stdout: %d bytes, truncated %v, ends %q; want the last 64 KiB ending with the last line", len(logs.Stdout), logs.Truncated, tail(logs.Stdout))
	}
	for _, h := range r.fleet.Statuses() {
		if h.Breaker.ConsecutiveFailures != 0 || h.Breaker.Failures != 0 {
			t.Fatalf("host %s breaker after a big log: %+v", h.Name, h.Breaker)
		}
	}
}

func tail(b []byte) string {
	if len(b) > 40 {
		b = b[len(b)-40:]
	}
	return string(b)
}
