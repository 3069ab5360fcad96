package job_test

import (
	"errors"
	"testing"

	"fusebox/internal/job"
	"fusebox/internal/job/jobtest"
)

// TestHostileSpecs checks the submit side of the hostile corpus: each
// refused spec names its field, each accepted one validates.
func TestHostileSpecs(t *testing.T) {
	for _, h := range jobtest.HostileSpecs("fusebox/testjob:latest") {
		t.Run(h.Name, func(t *testing.T) {
			err := h.Spec.Validate()
			if !h.Refused {
				if err != nil {
					t.Fatalf("accepted spec refused: %v", err)
				}
				if h.WantState == "" || !h.WantState.Terminal() {
					t.Fatalf("accepted spec wants %q", h.WantState)
				}
				return
			}
			if !errors.Is(err, job.ErrInvalid) {
				t.Fatalf("not refused: %v", err)
			}
			var fe *job.FieldError
			if !errors.As(err, &fe) || fe.Field != h.Field {
				t.Fatalf("want the first problem in %q: %v", h.Field, err)
			}
		})
	}
}
