package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/fleet"
)

// TestHostWireFormat pins the JSON of the hosts' routes: every field of
// the fleet's status, converted, comes out under the name and in the form
// /v1 has always had (the golden strings are what the fleet's own types
// encoded to before the API had wire types of its own), and reads back into
// the same typed value.
func TestHostWireFormat(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	full := fleet.HostStatus{Name: "h1", Address: "tcp://10.0.0.1:2376", Labels: map[string]string{"zone": "a"}, Capacity: 4, Weight: 1.5,
		State: fleet.HostIsolated, Reason: "isolated by alice: disk failing",
		Breaker: fleet.BreakerStatus{State: breaker.StateForcedOpen, ConsecutiveFailures: 3, Trips: 2, OpenedAt: at,
			NextProbeAt: at.Add(time.Minute), Requests: 10, Failures: 4, Rejected: 7},
		Running: 2, LastCheck: at, LastError: "boom", Latency: 1500 * time.Microsecond, Placed: 9,
		Calls:       fleet.LimiterStatus{Limit: 8, InFlight: 3, Waiting: 1},
		CallLatency: fleet.CallLatency{P50: time.Millisecond, P99: 20 * time.Millisecond, Samples: 40},
		Operator:    &fleet.Operator{Action: fleet.ActionIsolate, By: "alice", Reason: "disk failing", At: at},
		Degradation: []fleet.DegradationMode{fleet.ModeLogsDeferred, fleet.ModePollsStretched}}
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"full host", hostOf(full), `{"name":"h1","address":"tcp://10.0.0.1:2376","labels":{"zone":"a"},"capacity":4,"weight":1.5,` +
			`"state":"isolated","reason":"isolated by alice: disk failing",` +
			`"breaker":{"state":"forced-open","consecutive_failures":3,"trips":2,"opened_at":"2025-03-04T05:06:07.000000008Z",` +
			`"next_probe_at":"2025-03-04T05:07:07.000000008Z","requests":10,"failures":4,"rejected":7},` +
			`"running":2,"last_check":"2025-03-04T05:06:07.000000008Z","last_error":"boom","latency_ns":1500000,"placed":9,` +
			`"calls":{"limit":8,"in_flight":3,"waiting":1},"call_latency":{"p50_ns":1000000,"p99_ns":20000000,"samples":40},` +
			`"operator":{"action":"isolate","by":"alice","reason":"disk failing","at":"2025-03-04T05:06:07.000000008Z"},` +
			`"degradation":["logs_deferred","polls_stretched"]}`},
		{"bare host", hostOf(fleet.HostStatus{Name: "h2", State: fleet.HostHealthy}),
			`{"name":"h2","address":"","capacity":0,"weight":0,"state":"healthy",` +
				`"breaker":{"state":"closed","consecutive_failures":0,"trips":0,"requests":0,"failures":0,"rejected":0},` +
				`"running":0,"latency_ns":0,"placed":0,"calls":{"limit":0,"in_flight":0,"waiting":0},` +
				`"call_latency":{"p50_ns":0,"p99_ns":0,"samples":0}}`},
		{"transition", hostTransitionOf(fleet.Transition{Host: "h1", From: breaker.StateClosed, To: breaker.StateForcedOpen, At: at}),
			`{"host":"h1","from":"closed","to":"forced-open","at":"2025-03-04T05:06:07.000000008Z"}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.want)
		}
		back := reflect.New(reflect.TypeOf(c.v))
		if err := json.Unmarshal(b, back.Interface()); err != nil {
			t.Fatalf("%s: read back: %v", c.name, err)
		}
		if got := back.Elem().Interface(); !reflect.DeepEqual(got, c.v) {
			t.Errorf("%s: read back as %+v, want %+v", c.name, got, c.v)
		}
	}
	if got := hostsOf(nil); got == nil {
		t.Error("hostsOf(nil) is nil: GET /v1/hosts would answer null, not []")
	}
	if got := hostTransitionsOf(nil); got == nil {
		t.Error("hostTransitionsOf(nil) is nil: GET /v1/hosts/transitions would answer null, not []")
	}
}
