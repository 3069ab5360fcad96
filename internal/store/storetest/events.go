package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

func (f *fx) events(p store.EventListParams) []event.Event {
	f.t.Helper()
	evs, err := f.s.EventList(f.ctx, p)
	if err != nil {
		f.t.Fatalf("EventList(%+v): %v", p, err)
	}
	return evs
}

func seqs(evs []event.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// testEventAppendList: sequence numbers grow, the filters select, the
// hook learns each commit's last sequence, bad events are refused.
func testEventAppendList(f *fx) {
	if last, err := f.s.EventLastSeq(f.ctx); err != nil || last != 0 {
		f.t.Fatalf("EventLastSeq of an empty store = %d, %v; want 0", last, err)
	}
	var mu sync.Mutex
	var hooked []int64
	f.s.SetEventHook(func(seq int64) { mu.Lock(); hooked = append(hooked, seq); mu.Unlock() })
	defer f.s.SetEventHook(nil)

	in := []event.Event{
		{At: at(0), Type: event.TypeHostBreaker, Host: "h1", Data: json.RawMessage(`{"from":"closed","to":"open"}`)},
		{At: at(time.Second), Type: event.TypeOperatorAction, Host: "h2", Data: json.RawMessage(`{"action":"isolate"}`)},
		{At: at(2 * time.Second), Type: event.TypeHostBreaker, Host: "h2"},
	}
	var got []int64
	for _, ev := range in {
		seq, err := f.s.EventAppend(f.ctx, ev)
		if err != nil {
			f.t.Fatalf("EventAppend(%+v): %v", ev, err)
		}
		if len(got) > 0 && seq <= got[len(got)-1] {
			f.t.Fatalf("EventAppend: seq %d after %d, want greater", seq, got[len(got)-1])
		}
		got = append(got, seq)
	}
	mu.Lock()
	if !reflect.DeepEqual(hooked, got) {
		f.t.Errorf("hook got %v, want %v", hooked, got)
	}
	mu.Unlock()

	if last, err := f.s.EventLastSeq(f.ctx); err != nil || last != got[len(got)-1] {
		f.t.Fatalf("EventLastSeq = %d, %v; want %d", last, err, got[len(got)-1])
	}
	all := f.events(store.EventListParams{})
	if !reflect.DeepEqual(seqs(all), got) {
		f.t.Fatalf("EventList() seqs = %v, want %v", seqs(all), got)
	}
	for i, ev := range all {
		want := in[i]
		want.Seq, want.At = got[i], want.At.UTC()
		if ev.At.Location() != time.UTC {
			f.t.Errorf("event %d: At in %v, want UTC", ev.Seq, ev.At.Location())
		}
		if !ev.At.Equal(want.At) || ev.Type != want.Type || ev.Host != want.Host || string(ev.Data) != string(want.Data) || ev.Seq != want.Seq {
			f.t.Errorf("event %d = %+v, want %+v", i, ev, want)
		}
	}
	for _, c := range []struct {
		p    store.EventListParams
		want []int64
	}{
		{store.EventListParams{AfterSeq: got[0]}, got[1:]},
		{store.EventListParams{Limit: 2}, got[:2]},
		{store.EventListParams{Filter: event.Filter{Types: []string{event.TypeHostBreaker}}}, []int64{got[0], got[2]}},
		{store.EventListParams{Filter: event.Filter{Types: []string{event.TypeHostBreaker, event.TypeOperatorAction}}}, got},
		{store.EventListParams{Filter: event.Filter{Host: "h2"}}, got[1:]},
		{store.EventListParams{Filter: event.Filter{Host: "h2", Types: []string{event.TypeHostBreaker}}}, got[2:]},
		{store.EventListParams{Filter: event.Filter{JobID: "nope"}}, []int64{}},
		{store.EventListParams{Filter: event.Filter{Since: at(time.Second)}}, got[1:]},
	} {
		if s := seqs(f.events(c.p)); !reflect.DeepEqual(s, c.want) {
			f.t.Errorf("EventList(%+v) = %v, want %v", c.p, s, c.want)
		}
	}

	for _, bad := range []event.Event{
		{At: at(0)},                   // no type
		{Type: event.TypeHostBreaker}, // no time
		{At: at(0), Type: "x", Data: json.RawMessage(`{`)},
	} {
		if _, err := f.s.EventAppend(f.ctx, bad); err == nil {
			f.t.Errorf("EventAppend(%+v) succeeded, want an error", bad)
		}
	}
	if n := len(f.events(store.EventListParams{})); n != len(in) {
		f.t.Fatalf("after refused appends: %d events, want %d", n, len(in))
	}
}

// testTransitionEvents: every transition appends its event in its own
// transaction; a refused transition appends none.
func testTransitionEvents(f *fx) {
	var mu sync.Mutex
	var hooked []int64
	f.s.SetEventHook(func(seq int64) { mu.Lock(); hooked = append(hooked, seq); mu.Unlock() })
	defer f.s.SetEventHook(nil)

	f.insert(newJob("j1", at(0)))
	f.launch("j1", "h1", 1, at(time.Second))
	if _, err := f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j1", From: []job.State{job.StateQueued},
		To: job.StateRunning, Now: at(2 * time.Second)}); !errors.Is(err, job.ErrConflict) {
		f.t.Fatalf("conflicting transition: %v, want job.ErrConflict", err)
	}
	f.move("j1", job.StateLaunching, job.StateQueued, at(3*time.Second), func(p *store.JobTransitionParams) {
		p.AttemptOutcome = "host_fault"
	})
	f.insert(newJob("j2", at(4*time.Second)))

	evs := f.events(store.EventListParams{Filter: event.Filter{JobID: "j1"}})
	want := []struct {
		host    string
		attempt int
		data    event.JobTransition
	}{
		{"", 0, event.JobTransition{From: "", To: "queued", Reason: "submitted"}},
		{"h1", 1, event.JobTransition{From: "queued", To: "launching", Reason: "queued to launching"}},
		{"h1", 1, event.JobTransition{From: "launching", To: "queued", Reason: "launching to queued", Outcome: "host_fault"}},
	}
	if len(evs) != len(want) {
		f.t.Fatalf("events of j1: %+v, want %d", evs, len(want))
	}
	ts := f.transitions("j1")
	for i, ev := range evs {
		var d event.JobTransition
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			f.t.Fatalf("event %d data %s: %v", ev.Seq, ev.Data, err)
		}
		w := want[i]
		if ev.Type != event.TypeJobTransition || ev.JobID != "j1" || ev.Host != w.host || ev.Attempt != w.attempt || d != w.data {
			f.t.Errorf("event %d = %+v %+v, want %+v", i, ev, d, w)
		}
		if !ev.At.Equal(ts[i].At) {
			f.t.Errorf("event %d at %v, its transition at %v", i, ev.At, ts[i].At)
		}
	}
	all := f.events(store.EventListParams{})
	if len(all) != 4 || all[3].JobID != "j2" {
		f.t.Fatalf("all events: %+v, want j1's three then j2's", all)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(hooked, seqs(all)) {
		f.t.Errorf("hook got %v, want one call per commit: %v", hooked, seqs(all))
	}
}

// testEventRetention: a deleted job's events go with it; events of no job
// older than the cutoff are pruned with the jobs, younger ones kept.
func testEventRetention(f *fx) {
	f.insert(newJob("old", at(0)))
	f.move("old", job.StateQueued, job.StateCancelled, at(time.Second))
	f.insert(newJob("young", at(0)))
	for i := range 3 {
		if _, err := f.s.EventAppend(f.ctx, event.Event{At: at(time.Duration(i) * time.Hour), Type: event.TypeHostBreaker,
			Host: fmt.Sprintf("h%d", i)}); err != nil {
			f.t.Fatal(err)
		}
	}
	n, err := f.s.JobDeleteFinished(f.ctx, store.JobDeleteFinishedParams{Before: at(90 * time.Minute)})
	if err != nil || n != 1 {
		f.t.Fatalf("JobDeleteFinished = %d, %v; want 1", n, err)
	}
	if evs := f.events(store.EventListParams{Filter: event.Filter{JobID: "old"}}); len(evs) != 0 {
		f.t.Errorf("events of the deleted job: %+v", evs)
	}
	if evs := f.events(store.EventListParams{Filter: event.Filter{JobID: "young"}}); len(evs) != 1 {
		f.t.Errorf("events of the kept job: %+v, want its submission", evs)
	}
	var hosts []string
	for _, ev := range f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeHostBreaker}}}) {
		hosts = append(hosts, ev.Host)
	}
	if !reflect.DeepEqual(hosts, []string{"h2"}) {
		f.t.Errorf("host events after retention: %v, want [h2]", hosts)
	}
}
