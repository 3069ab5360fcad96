package job

import (
	"testing"
	"time"
)

func TestNewIDSortsByTime(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, b := NewID(t0), NewID(t0.Add(time.Millisecond))
	if len(a) != 16 || a >= b {
		t.Fatalf("ids %q then %q: want 16 characters, sorting by time", a, b)
	}
	if c, d := NewID(t0), NewID(t0); c == d {
		t.Fatalf("two ids of the same millisecond are equal: %s", c)
	}
}
