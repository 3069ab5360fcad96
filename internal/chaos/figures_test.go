package chaos

import (
	"strings"
	"testing"
	"time"
)

// The verdict keeps each rule on its own: a clean run passes, and each
// breach alone fails it, saying which.
func TestVerdict(t *testing.T) {
	clean := func() *Figures {
		return &Figures{Scenario: "x", Submitted: 10, Accepted: 7, Refused: map[string]int{"queue_full": 3}, Jobs: 7, Succeeded: 6, FailedOwn: 1}
	}
	f := clean()
	f.Verdict()
	if !f.Pass() {
		t.Fatalf("a clean run failed: %v", f.Problems)
	}
	for _, c := range []struct {
		name   string
		breach func(*Figures)
		want   string
	}{
		{"lost", func(f *Figures) { f.Lost = 1 }, "lost"},
		{"overlap", func(f *Figures) { f.Overlaps = 1 }, "alive at once"},
		{"two containers for one attempt", func(f *Figures) { f.DupAttempts = 1 }, "duplicates"},
		{"a container of no attempt", func(f *Figures) { f.Unrecorded = 1 }, "duplicates"},
		{"two jobs for one key", func(f *Figures) { f.Strays = 1 }, "duplicates"},
		{"unanswered", func(f *Figures) { f.Accepted, f.Unanswered = 6, 1 }, "!= submitted"},
		{"unfinished", func(f *Figures) { f.Unfinished = 1 }, "not terminal"},
	} {
		f := clean()
		c.breach(f)
		f.Verdict()
		if f.Pass() || !strings.Contains(strings.Join(f.Problems, "; "), c.want) {
			t.Errorf("%s: verdict %v, want a failure saying %q", c.name, f.Problems, c.want)
		}
	}
}

func TestTable(t *testing.T) {
	f := &Figures{Scenario: "engine-kill", Fault: "e1 SIGKILLed", Submitted: 3, Accepted: 2, Refused: map[string]int{"queue_full": 1},
		Succeeded: 2, S2RMax: 1500 * time.Millisecond, S2RP99: 900 * time.Millisecond, Breaker: []string{"e1 C>O>H>C (3)"}}
	f.Verdict()
	var b strings.Builder
	if err := Table(&b, []*Figures{f}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table of one row has %d lines:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"| engine-kill | e1 SIGKILLed | 3 | 2 | 1 (queue_full 1) |", "| 1.5s | 900ms | e1 C>O>H>C (3) |", "| PASS |"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("row lacks %q:\n%s", want, lines[2])
		}
	}
	if n, m := strings.Count(lines[0], "|"), strings.Count(lines[2], "|"); n != m {
		t.Errorf("header has %d cells' bars, row %d", n, m)
	}
	if !strings.Contains(f.Line(), "chaos engine-kill: submitted 3, accepted 2, refused 1 (queue_full 1)") || !strings.HasSuffix(f.Line(), "PASS") {
		t.Errorf("line: %s", f.Line())
	}
}
