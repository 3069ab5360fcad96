package server

import (
	"errors"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/dispatch"
	"fusebox/internal/job"
)

// The dispatcher's QueueFullError reaches the API with its own RetryAfter
// as the RetryHint, and still matches job.ErrQueueFull.
func TestSubmitErrorCarriesTheQueuesRetryAfter(t *testing.T) {
	err := submitError(&dispatch.QueueFullError{Max: 3, RetryAfter: 42 * time.Second})
	var h api.RetryHint
	if !errors.As(err, &h) || h.RetryAfterHint() != 42*time.Second {
		t.Fatalf("submitError = %v: no RetryHint of 42s", err)
	}
	var qf *dispatch.QueueFullError
	if !errors.Is(err, job.ErrQueueFull) || !errors.As(err, &qf) {
		t.Errorf("the adapted error no longer matches: %v", err)
	}
	if other := errors.New("disk full"); submitError(other) != other {
		t.Error("another error was changed")
	}
	if submitError(nil) != nil {
		t.Error("nil became an error")
	}
}
