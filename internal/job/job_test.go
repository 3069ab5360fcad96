package job

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateNamesEveryBadField(t *testing.T) {
	s := Spec{CPUs: -1, MemoryBytes: 1024, Timeout: -1, MaxAttempts: 101, RetryBackoff: -1, PullPolicy: "sometimes",
		Labels: map[string]string{"fusebox.job_id": "x"}, Env: map[string]string{"": "v"}}
	err := s.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v does not wrap ErrInvalid", err)
	}
	for _, field := range []string{"image", "cpus", "memory_bytes", "timeout", "max_attempts", "retry_backoff", "pull_policy", "labels.fusebox.job_id", "env"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("no problem named %q in: %v", field, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatal("no *FieldError in the chain")
	}
	if err := (&Spec{Image: "alpine", MemoryBytes: 64 << 20, PullPolicy: PullNever}).Validate(); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"1m30s"`), &d); err != nil || d.Std() != 90*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	// A bare number has no unit: refused, not read as nanoseconds; 0 is 0
	// in every unit.
	if err := json.Unmarshal([]byte(`60`), &d); err == nil || !strings.Contains(err.Error(), "bare number 60") {
		t.Fatalf("bare number: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`0`), &d); err != nil || d != 0 {
		t.Fatalf("0: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil || !strings.Contains(err.Error(), `"90s"`) {
		t.Fatalf("bad duration: %v", err)
	}
	b, _ := json.Marshal(Duration(90 * time.Second))
	if string(b) != `"1m30s"` {
		t.Fatalf("marshal %s", b)
	}
}

func TestStates(t *testing.T) {
	for _, s := range States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if StateQueued.Terminal() || StateRunning.Terminal() || !StateLost.Terminal() || !StateSucceeded.Terminal() {
		t.Fatal("terminal states wrong")
	}
	if got := ContainerName("abc", 2); got != "fusebox-abc-2" {
		t.Fatal(got)
	}
}
