package storetest

import (
	"encoding/json"
	"reflect"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

func (f *fx) alertStates() []store.AlertState {
	f.t.Helper()
	ss, err := f.s.AlertStates(f.ctx)
	if err != nil {
		f.t.Fatalf("AlertStates: %v", err)
	}
	return ss
}

func (f *fx) nextNotice(receiver string) (store.AlertNotice, bool) {
	f.t.Helper()
	n, ok, err := f.s.AlertNextNotice(f.ctx, receiver)
	if err != nil {
		f.t.Fatalf("AlertNextNotice(%s): %v", receiver, err)
	}
	return n, ok
}

func (f *fx) enqueue(p store.AlertEnqueueParams) {
	f.t.Helper()
	if err := f.s.AlertEnqueue(f.ctx, p); err != nil {
		f.t.Fatalf("AlertEnqueue(%+v): %v", p, err)
	}
}

func deliveryEvent(receiver, id string, at time.Time) event.Event {
	return event.Event{At: at, Type: event.TypeAlertDelivery,
		Data: event.MarshalData(event.AlertDelivery{Receiver: receiver, WebhookID: id, Status: "firing", Alerts: []string{"A"}, Attempts: 1})}
}

// testAlertOutbox: states are upserted by fingerprint, the cursor is kept,
// notices come out per receiver in order, a failure and a delivery are
// recorded (the delivery with its event and the hook), and the receiver
// stats say so; bad params are refused and change nothing.
func testAlertOutbox(f *fx) {
	if ss := f.alertStates(); len(ss) != 0 {
		f.t.Fatalf("AlertStates of an empty store = %+v", ss)
	}
	if c, err := f.s.AlertCursor(f.ctx); err != nil || c != 0 {
		f.t.Fatalf("AlertCursor of an empty store = %d, %v; want 0", c, err)
	}
	if _, ok := f.nextNotice("r1"); ok {
		f.t.Fatal("AlertNextNotice of an empty store: got one")
	}

	firing := store.AlertState{Fingerprint: "00000000000000aa", Labels: map[string]string{"alertname": "A", "host": "h1"},
		Annotations: map[string]string{"summary": "s"}, Status: store.AlertFiring, StartsAt: at(0), SentAt: at(0)}
	other := store.AlertState{Fingerprint: "00000000000000bb", Labels: map[string]string{"alertname": "B"},
		Status: store.AlertFiring, StartsAt: at(time.Second), SentAt: at(time.Second)}
	f.enqueue(store.AlertEnqueueParams{
		States: []store.AlertState{firing, other},
		Notices: []store.AlertNotice{
			{Receiver: "r1", WebhookID: "msg_1", Body: []byte(`{"n":1}`)},
			{Receiver: "r2", WebhookID: "msg_2", Body: []byte(`{"n":2}`), CreatedAt: at(time.Second)},
			{Receiver: "r1", WebhookID: "msg_3", Body: []byte(`{"n":3}`)},
		},
		Cursor: 7, At: at(2 * time.Second),
	})
	resolved := firing
	resolved.Status, resolved.EndsAt, resolved.SentAt = store.AlertResolved, at(3*time.Second), at(3*time.Second)
	f.enqueue(store.AlertEnqueueParams{States: []store.AlertState{resolved}, Cursor: 5, At: at(3 * time.Second)})

	norm := func(s store.AlertState) store.AlertState {
		s.StartsAt, s.EndsAt, s.SentAt = s.StartsAt.UTC(), s.EndsAt.UTC(), s.SentAt.UTC()
		if s.EndsAt.IsZero() {
			s.EndsAt = time.Time{}
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{} // stored as {}
		}
		return s
	}
	got := f.alertStates()
	want := []store.AlertState{norm(resolved), norm(other)}
	if !reflect.DeepEqual(got, want) {
		f.t.Fatalf("AlertStates =\n %+v\nwant\n %+v", got, want)
	}
	if c, err := f.s.AlertCursor(f.ctx); err != nil || c != 7 {
		f.t.Fatalf("AlertCursor = %d, %v; want 7 (it never goes back)", c, err)
	}

	n1, ok := f.nextNotice("r1")
	if !ok || n1.WebhookID != "msg_1" || string(n1.Body) != `{"n":1}` || n1.Receiver != "r1" || n1.Attempts != 0 ||
		!n1.CreatedAt.Equal(at(2*time.Second)) || n1.CreatedAt.Location() != time.UTC || !n1.DeliveredAt.IsZero() {
		f.t.Fatalf("AlertNextNotice(r1) = %+v, %v; want msg_1 created at the enqueue", n1, ok)
	}
	n2, _ := f.nextNotice("r2")
	if n2.WebhookID != "msg_2" || !n2.CreatedAt.Equal(at(time.Second)) || n2.ID <= n1.ID {
		f.t.Fatalf("AlertNextNotice(r2) = %+v; want msg_2 with its own CreatedAt and a greater ID than %d", n2, n1.ID)
	}

	// A failure keeps the notice at the head, with its attempt and backoff.
	if err := f.s.AlertNoticeFailed(f.ctx, n1.ID, "HTTP 500", at(time.Minute), at(4*time.Second)); err != nil {
		f.t.Fatalf("AlertNoticeFailed: %v", err)
	}
	n1b, _ := f.nextNotice("r1")
	if n1b.ID != n1.ID || n1b.Attempts != 1 || n1b.LastError != "HTTP 500" || !n1b.NextAt.Equal(at(time.Minute)) {
		f.t.Fatalf("after a failure AlertNextNotice(r1) = %+v; want msg_1, attempt 1, next at +1m", n1b)
	}

	var hooked int64
	f.s.SetEventHook(func(seq int64) { hooked = seq })
	defer f.s.SetEventHook(nil)
	if err := f.s.AlertNoticeDelivered(f.ctx, n1.ID, at(5*time.Second), deliveryEvent("r1", "msg_1", at(5*time.Second))); err != nil {
		f.t.Fatalf("AlertNoticeDelivered: %v", err)
	}
	evs := f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeAlertDelivery}}})
	if len(evs) != 1 || hooked != evs[0].Seq {
		f.t.Fatalf("alert.delivery events = %+v (hook saw %d); want one, hooked", evs, hooked)
	}
	var d event.AlertDelivery
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.WebhookID != "msg_1" || d.Receiver != "r1" {
		f.t.Fatalf("alert.delivery data %s: %+v, %v", evs[0].Data, d, err)
	}
	// Delivered twice: nothing changes, no second event.
	if err := f.s.AlertNoticeDelivered(f.ctx, n1.ID, at(6*time.Second), deliveryEvent("r1", "msg_1", at(6*time.Second))); err != nil {
		f.t.Fatalf("AlertNoticeDelivered again: %v", err)
	}
	if err := f.s.AlertNoticeFailed(f.ctx, n1.ID, "late", at(time.Hour), at(6*time.Second)); err != nil {
		f.t.Fatalf("AlertNoticeFailed after delivery: %v", err)
	}
	if n := len(f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeAlertDelivery}}})); n != 1 {
		f.t.Fatalf("a second delivery appended an event: %d events", n)
	}
	n3, _ := f.nextNotice("r1")
	if n3.WebhookID != "msg_3" {
		f.t.Fatalf("after msg_1 delivered, AlertNextNotice(r1) = %+v; want msg_3", n3)
	}

	stats, err := f.s.AlertReceiverStats(f.ctx)
	if err != nil {
		f.t.Fatalf("AlertReceiverStats: %v", err)
	}
	wantStats := []store.AlertReceiverStats{
		{Receiver: "r1", Pending: 1, LastDeliveredAt: at(5 * time.Second).UTC(), LastError: "HTTP 500", LastErrorAt: at(4 * time.Second).UTC()},
		{Receiver: "r2", Pending: 1},
	}
	if !reflect.DeepEqual(stats, wantStats) {
		f.t.Fatalf("AlertReceiverStats =\n %+v\nwant\n %+v", stats, wantStats)
	}

	for _, id := range []int64{n3.ID + 1000} {
		checkErr(f.t, "AlertNoticeDelivered(unknown)", f.s.AlertNoticeDelivered(f.ctx, id, at(0), deliveryEvent("r1", "x", at(0))), job.ErrNotFound)
		checkErr(f.t, "AlertNoticeFailed(unknown)", f.s.AlertNoticeFailed(f.ctx, id, "x", at(0), at(0)), job.ErrNotFound)
	}
	if err := f.s.AlertNoticeDelivered(f.ctx, n3.ID, at(0), event.Event{At: at(0), Type: event.TypeHostState}); err == nil {
		f.t.Fatal("AlertNoticeDelivered with a host.state event: no error")
	}
	for _, bad := range []store.AlertEnqueueParams{
		{States: []store.AlertState{firing}},
		{States: []store.AlertState{{Status: store.AlertFiring}}, At: base},
		{States: []store.AlertState{{Fingerprint: "x", Status: "pending"}}, At: base},
		{Notices: []store.AlertNotice{{WebhookID: "m", Body: []byte("{}")}}, At: base},
		{Notices: []store.AlertNotice{{Receiver: "r", Body: []byte("{}")}}, At: base},
		{Notices: []store.AlertNotice{{Receiver: "r", WebhookID: "m"}}, At: base},
		{States: []store.AlertState{firing}, Notices: []store.AlertNotice{{Receiver: "r"}}, Cursor: 99, At: base},
	} {
		if err := f.s.AlertEnqueue(f.ctx, bad); err == nil {
			f.t.Fatalf("AlertEnqueue(%+v): no error", bad)
		}
	}
	if c, _ := f.s.AlertCursor(f.ctx); c != 7 {
		f.t.Fatalf("a refused enqueue moved the cursor to %d", c)
	}
	if ss := f.alertStates(); ss[0].Status != store.AlertResolved {
		f.t.Fatalf("a refused enqueue changed a state: %+v", ss[0])
	}
}

// testAlertRetention: JobDeleteFinished deletes delivered notices and
// resolved states that ended before the cutoff, never pending notices or
// firing states.
func testAlertRetention(f *fx) {
	old, recent := at(-48*time.Hour), at(0)
	f.enqueue(store.AlertEnqueueParams{
		States: []store.AlertState{
			{Fingerprint: "old-resolved", Labels: map[string]string{"alertname": "A"}, Status: store.AlertResolved, StartsAt: old, EndsAt: old},
			{Fingerprint: "old-firing", Labels: map[string]string{"alertname": "B"}, Status: store.AlertFiring, StartsAt: old},
			{Fingerprint: "new-resolved", Labels: map[string]string{"alertname": "C"}, Status: store.AlertResolved, StartsAt: recent, EndsAt: recent},
		},
		Notices: []store.AlertNotice{
			{Receiver: "r", WebhookID: "old-delivered", Body: []byte("{}")},
			{Receiver: "r", WebhookID: "new-delivered", Body: []byte("{}")},
			{Receiver: "r", WebhookID: "old-pending", Body: []byte("{}")},
		},
		At: old,
	})
	for _, when := range []time.Time{old, recent} {
		n, _ := f.nextNotice("r")
		if err := f.s.AlertNoticeDelivered(f.ctx, n.ID, when, deliveryEvent("r", n.WebhookID, when)); err != nil {
			f.t.Fatalf("AlertNoticeDelivered: %v", err)
		}
	}
	if _, err := f.s.JobDeleteFinished(f.ctx, store.JobDeleteFinishedParams{Before: at(-time.Hour)}); err != nil {
		f.t.Fatalf("JobDeleteFinished: %v", err)
	}
	var fps []string
	for _, s := range f.alertStates() {
		fps = append(fps, s.Fingerprint)
	}
	if want := []string{"new-resolved", "old-firing"}; !reflect.DeepEqual(fps, want) {
		f.t.Fatalf("after retention, states %q; want %q", fps, want)
	}
	if n, ok := f.nextNotice("r"); !ok || n.WebhookID != "old-pending" {
		f.t.Fatalf("after retention, head notice %+v, %v; want old-pending", n, ok)
	}
	stats, err := f.s.AlertReceiverStats(f.ctx)
	if err != nil || len(stats) != 1 || stats[0].Pending != 1 || !stats[0].LastDeliveredAt.Equal(recent) {
		f.t.Fatalf("after retention, AlertReceiverStats = %+v, %v; want r with one pending, delivered at %v", stats, err, recent)
	}
}
