package fleet

import (
	"errors"
	"testing"
	"time"
)

func TestActKeepsWhoAndWhy(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"})
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := f.Act("a", Operator{Action: ActionIsolate, By: "alice", Reason: "disk failing", At: at}); err != nil {
		t.Fatal(err)
	}
	st := f.Host("a").Status()
	if st.State != HostIsolated || st.Reason != "isolated by alice: disk failing" || st.Operator == nil || st.Operator.By != "alice" || !st.Operator.At.Equal(at) {
		t.Fatalf("after isolate: state %s reason %q operator %+v", st.State, st.Reason, st.Operator)
	}
	if _, err := f.Place(Request{}); err != nil {
		t.Fatal(err) // b takes it
	}
	if err := f.Act("a", Operator{Action: ActionRelease, By: "bob", At: at}); err != nil {
		t.Fatal(err)
	}
	if st := f.Host("a").Status(); st.State == HostIsolated || st.Operator == nil || st.Operator.Action != ActionRelease || st.Operator.By != "bob" {
		t.Fatalf("after release: state %s operator %+v", st.State, st.Operator)
	}
	if err := f.Act("a", Operator{Action: "explode", By: "bob"}); err == nil {
		t.Fatal("unknown action accepted")
	}
	if err := f.Act("zz", Operator{Action: ActionIsolate}); !errors.Is(err, ErrHostNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
	if err := f.Act("b", Operator{Action: ActionDrain, By: "carol", Reason: "kernel upgrade"}); err != nil {
		t.Fatal(err)
	}
	if st := f.Host("b").Status(); st.State != HostDraining || st.Reason != "draining by carol: kernel upgrade" {
		t.Fatalf("after drain: state %s reason %q", st.State, st.Reason)
	}
}

func TestRestore(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"})
	if err := f.Restore("a", true, false, Operator{Action: ActionIsolate, By: "alice", Reason: "disk failing"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore("b", false, true, Operator{Action: ActionDrain, By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if st := f.Host("a").Status(); st.State != HostIsolated || st.Reason != "isolated by alice: disk failing" {
		t.Fatalf("a: state %s reason %q", st.State, st.Reason)
	}
	if st := f.Host("b").Status(); st.State != HostDraining || st.Reason != "draining by bob" {
		t.Fatalf("b: state %s reason %q", st.State, st.Reason)
	}
	var nh *NoHostError
	if _, err := f.Place(Request{}); !errors.As(err, &nh) {
		t.Fatalf("placed on an isolated or draining host: %v", err)
	}
	if err := f.Restore("zz", true, false, Operator{}); !errors.Is(err, ErrHostNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
}
