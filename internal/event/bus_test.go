package event_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
)

// rig is a real store whose hook notifies a started bus.
func rig(t testing.TB) (*sqlite.DB, *event.Bus) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fusebox.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := event.New(db, nil)
	db.SetEventHook(bus.Notify)
	if err := bus.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	return db, bus
}

func appendN(t testing.TB, db store.Store, n int, host string) {
	t.Helper()
	for i := range n {
		if _, err := db.EventAppend(context.Background(), event.Event{At: time.Now(), Type: event.TypeHostBreaker,
			Host: host, Data: event.MarshalData(event.Breaker{Name: host, From: "closed", To: fmt.Sprint(i)})}); err != nil {
			t.Error(err)
			return
		}
	}
}

// receive reads n events from s, failing on a gap, a repeat or disorder
// (want: each Seq one more than the last when consecutive is set).
func receive(t testing.TB, s *event.Subscription, n int, after int64, consecutive bool) []event.Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	var got []event.Event
	for len(got) < n {
		select {
		case ev, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription closed after %d events, want %d", len(got), n)
			}
			if ev.Seq <= after || (consecutive && ev.Seq != after+1) {
				t.Fatalf("event %d after %d: out of order, repeated or a gap", ev.Seq, after)
			}
			after = ev.Seq
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(got), n)
		}
	}
	return got
}

func TestBusLifecycle(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fusebox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := event.New(db, nil)
	b.Stop() // before Start
	b.Stop() // twice
	if err := b.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if _, ok := <-b.Subscribe(event.Filter{}, 0).C(); ok {
		t.Fatal("a subscription after Stop delivered")
	}

	b = event.New(db, nil)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil {
		t.Fatal("second Start succeeded")
	}
	s := b.Subscribe(event.Filter{}, 0)
	s.Close()
	s.Close()
	if _, ok := <-s.C(); ok {
		t.Fatal("a closed subscription delivered")
	}
	open := b.Subscribe(event.Filter{}, 0)
	b.Stop()
	b.Stop()
	if _, ok := <-open.C(); ok {
		t.Fatal("a subscription delivered after Stop")
	}
	open.Close() // after Stop: harmless
}

// TestBusFromNowAndResume: FromNow skips what was there; a subscription
// from a Seq gets exactly what follows it.
func TestBusFromNowAndResume(t *testing.T) {
	db, _ := rig(t)
	appendN(t, db, 5, "h1")
	b := event.New(db, nil) // a bus started after the events
	db.SetEventHook(b.Notify)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	now := b.Subscribe(event.Filter{}, event.FromNow)
	defer now.Close()
	from3 := b.Subscribe(event.Filter{}, 3)
	defer from3.Close()
	appendN(t, db, 2, "h1")
	if got := receive(t, now, 2, 5, true); got[0].Seq != 6 {
		t.Fatalf("FromNow got %d first, want 6", got[0].Seq)
	}
	receive(t, from3, 4, 3, true)
}

// TestBusStorm: 10,000 job transitions committed by concurrent writers
// arrive at every subscriber in Seq order, each once; a filtered
// subscriber gets exactly its job's.
func TestBusStorm(t *testing.T) {
	db, bus := rig(t)
	const writers = 4
	jobsPer := 1250 // 2 events per job: insert, launch
	if raceOn {
		jobsPer = 150
	}
	all := bus.Subscribe(event.Filter{}, 0)
	defer all.Close()
	one := bus.Subscribe(event.Filter{JobID: "w1-7", Types: []string{event.TypeJobTransition}}, 0)
	defer one.Close()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range jobsPer {
				id := fmt.Sprintf("w%d-%d", w, i)
				now := time.Now()
				if _, _, err := db.JobInsert(t.Context(), store.JobInsertParams{Job: &job.Job{ID: id,
					Spec: job.Spec{Image: "alpine"}, CreatedAt: now}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.JobTransition(t.Context(), store.JobTransitionParams{ID: id, From: []job.State{job.StateQueued},
					To: job.StateLaunching, Now: now, Host: store.Ptr("h1"), SetAttempt: store.Ptr(1)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := receive(t, all, writers*jobsPer*2, 0, true)
	wg.Wait()
	seen := map[string]int{}
	for _, ev := range got {
		seen[ev.JobID]++
	}
	if len(seen) != writers*jobsPer {
		t.Fatalf("events of %d jobs, want %d", len(seen), writers*jobsPer)
	}
	mine := receive(t, one, 2, 0, false)
	if mine[0].JobID != "w1-7" || mine[1].JobID != "w1-7" {
		t.Fatalf("filtered subscriber got %+v", mine)
	}
}

// TestBusSlowSubscriber: a subscriber that never reads holds up neither
// the appends nor another subscriber, and still gets everything, in order,
// once it reads.
func TestBusSlowSubscriber(t *testing.T) {
	db, bus := rig(t)
	stuck := bus.Subscribe(event.Filter{}, 0)
	defer stuck.Close()
	fast := bus.Subscribe(event.Filter{}, 0)
	defer fast.Close()
	const n = 3 * (event.Buffer + event.PageSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendN(t, db, n, "h1")
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("appends held up by a subscriber that does not read")
	}
	receive(t, fast, n, 0, true)
	receive(t, stuck, n, 0, true) // catches up from the store
}

// BenchmarkAppendDeliver measures events appended (one commit each, as a
// transition) and delivered to one subscriber, per second.
//
//	go test -run '^$' -bench AppendDeliver -benchtime 20000x ./internal/event/
func BenchmarkAppendDeliver(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run(sync, func(b *testing.B) {
			db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "fusebox.db"), sqlite.Options{Synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			bus := event.New(db, nil)
			db.SetEventHook(bus.Notify)
			if err := bus.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer bus.Stop()
			s := bus.Subscribe(event.Filter{}, 0)
			defer s.Close()
			b.ResetTimer()
			go appendN(b, db, b.N, "h1")
			receive(b, s, b.N, 0, true)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
