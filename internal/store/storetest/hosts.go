package storetest

import (
	"encoding/json"
	"reflect"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/store"
)

// testHostActions: each action changes the host's operator state by the
// documented rule, is kept with who, why and when, and appends its
// operator.action event; bad actions are refused and change nothing.
func testHostActions(f *fx) {
	if ops, err := f.s.HostOperatorList(f.ctx); err != nil || len(ops) != 0 {
		f.t.Fatalf("HostOperatorList of an empty store = %+v, %v; want none", ops, err)
	}
	var hooked int64
	f.s.SetEventHook(func(seq int64) { hooked = seq })
	defer f.s.SetEventHook(nil)

	steps := []struct {
		host, action       string
		isolated, draining bool
	}{
		{"h1", store.HostActionIsolate, true, false},
		{"h1", store.HostActionDrain, true, true},
		{"h1", store.HostActionReset, false, true}, // reset closes the breaker: no longer isolated
		{"h2", store.HostActionDrain, false, true},
		{"h1", store.HostActionRelease, false, false},
		{"h2", store.HostActionIsolate, true, true},
	}
	for i, s := range steps {
		a := store.HostAction{Host: s.host, Action: s.action, By: "alice", Reason: "step " + s.action, At: at(time.Duration(i) * time.Second)}
		got, err := f.s.HostActionRecord(f.ctx, a)
		if err != nil {
			f.t.Fatalf("HostActionRecord(%+v): %v", a, err)
		}
		a.At = a.At.UTC()
		want := store.HostOperator{Host: s.host, Isolated: s.isolated, Draining: s.draining, Last: a}
		if !reflect.DeepEqual(got, want) {
			f.t.Fatalf("step %d: HostActionRecord = %+v, want %+v", i, got, want)
		}
	}
	want := []store.HostOperator{
		{Host: "h1", Last: store.HostAction{Host: "h1", Action: store.HostActionRelease, By: "alice", Reason: "step release", At: at(4 * time.Second).UTC()}},
		{Host: "h2", Isolated: true, Draining: true, Last: store.HostAction{Host: "h2", Action: store.HostActionIsolate, By: "alice", Reason: "step isolate", At: at(5 * time.Second).UTC()}},
	}
	ops, err := f.s.HostOperatorList(f.ctx)
	if err != nil || !reflect.DeepEqual(ops, want) {
		f.t.Fatalf("HostOperatorList = %+v, %v\nwant %+v", ops, err, want)
	}

	evs := f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeOperatorAction}}})
	if len(evs) != len(steps) {
		f.t.Fatalf("operator.action events: %d, want %d", len(evs), len(steps))
	}
	for i, ev := range evs {
		var d struct{ Action, By, Reason string }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			f.t.Fatalf("event %d data %s: %v", i, ev.Data, err)
		}
		if ev.Host != steps[i].host || d.Action != steps[i].action || d.By != "alice" || d.Reason != "step "+steps[i].action ||
			!ev.At.Equal(at(time.Duration(i)*time.Second)) || ev.JobID != "" {
			f.t.Fatalf("event %d = %+v (data %+v), want host %s action %s", i, ev, d, steps[i].host, steps[i].action)
		}
	}
	if hooked != evs[len(evs)-1].Seq {
		f.t.Fatalf("event hook saw seq %d, want %d", hooked, evs[len(evs)-1].Seq)
	}

	for _, bad := range []store.HostAction{
		{Action: store.HostActionIsolate, By: "alice", At: base},
		{Host: "h3", Action: "explode", By: "alice", At: base},
		{Host: "h3", Action: store.HostActionIsolate, At: base},
		{Host: "h3", Action: store.HostActionIsolate, By: "alice"},
	} {
		if _, err := f.s.HostActionRecord(f.ctx, bad); err == nil {
			f.t.Fatalf("HostActionRecord(%+v): no error", bad)
		}
	}
	if ops, _ := f.s.HostOperatorList(f.ctx); len(ops) != 2 {
		f.t.Fatalf("after refused actions: %+v", ops)
	}
	if n := len(f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeOperatorAction}}})); n != len(steps) {
		f.t.Fatalf("refused actions appended events: %d, want %d", n, len(steps))
	}
}
