package fleet

import (
	"sync"
	"testing"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// A breaker another component keeps in the fleet's registry with its own
// settings (a workflow's) reaches Config.Breaker.OnStateChange, and is not
// recorded as a host's transition.
func TestOtherBreakersInTheRegistryReachOnStateChange(t *testing.T) {
	var mu sync.Mutex
	var got []string
	f, err := New(Config{
		Hosts:               []HostConfig{{Name: "a", Engine: engine.Config{Address: "unix:///nonexistent/a.sock"}}},
		DisableHealthChecks: true,
		Breaker: breaker.Settings{OnStateChange: func(name string, from, to breaker.State) {
			mu.Lock()
			got = append(got, name+": "+from.String()+" -> "+to.String())
			mu.Unlock()
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	b, err := f.Breakers().GetWith("workflow/w", breaker.Settings{ConsecutiveFailures: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.Isolate()
	f.Isolate("a")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"workflow/w: closed -> forced-open", "host/a: closed -> forced-open"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("OnStateChange got %q, want %q", got, want)
	}
	if trs := f.Transitions(); len(trs) != 1 || trs[0].Host != "a" {
		t.Fatalf("host transitions %+v, want host a's only", trs)
	}
}
