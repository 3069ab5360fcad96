package alert

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"fusebox/internal/store"
)

// BenchmarkDeliver measures delivery from the outbox to a local receiver:
// b.N notices enqueued up front, then delivered one at a time in order
// (each a signed POST and a committed store write with its event).
func BenchmarkDeliver(b *testing.B) {
	e := newEnv(b)
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	body := render(message(store.AlertState{Fingerprint: "f", Labels: map[string]string{LabelAlertName: NameTest},
		Status: store.AlertFiring, StartsAt: time.Now()}, "bench", ""))
	for i := 0; i < b.N; i += 1000 {
		p := store.AlertEnqueueParams{At: time.Now()}
		for j := i; j < min(b.N, i+1000); j++ {
			p.Notices = append(p.Notices, store.AlertNotice{Receiver: "bench", WebhookID: fmt.Sprintf("msg_%d", j), Body: body})
		}
		if err := e.db.AlertEnqueue(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
	m, err := New(e.db, e.src, busEvents{e.bus}, Options{Receivers: []Receiver{{Name: "bench", URL: srv.URL, Secret: testSecret}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	// The timer runs until the outbox is empty: poll it tightly, as
	// Eventually's backoff (up to 200 ms) would be measured with it.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st, err := e.db.AlertReceiverStats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(st) == 1 && st[0].Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not delivered in time: %+v", st)
		}
		time.Sleep(time.Millisecond) // a tight poll by design, not enginetest.Eventually
	}
	b.StopTimer()
	if int(got.Load()) != b.N {
		b.Fatalf("receiver got %d, want %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notices/s")
}
