package fleet

import (
	"fmt"
	"time"
)

// Operator actions on a host (Fleet.Act).
const (
	ActionIsolate = "isolate" // breaker forced open: no new jobs, running ones go on
	ActionDrain   = "drain"   // no new jobs; running ones finish
	ActionRelease = "release" // undo isolate and drain
	ActionReset   = "reset"   // breaker closed (ends an isolation), counts cleared
)

// Operator is an operator's action on a host: what, who, why and when. A
// host's status shows the last one (HostStatus.Operator), kept after a
// release so that who released it stays visible.
type Operator struct {
	Action string // isolate, drain, release, reset
	By     string // the API token's name ("local" without tokens)
	Reason string
	At     time.Time
}

// Act applies op (op.Action is one of the Action constants) to the named
// host and keeps op as the host's last operator action, shown in its
// status: "isolated by alice: disk failing".
func (f *Fleet) Act(name string, op Operator) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	var do func(string) error
	switch op.Action {
	case ActionIsolate:
		do = f.Isolate
	case ActionDrain:
		do = f.Drain
	case ActionRelease:
		do = f.Release
	case ActionReset:
		do = f.Reset
	default:
		return fmt.Errorf("fleet: unknown operator action %q", op.Action)
	}
	h.setOperator(op)
	return do(name)
}

// Restore puts a host back in an operator state remembered from before a
// restart: isolated and/or draining, with last as its last operator
// action. Call it before Start, so that no health check or job reaches a
// host that was isolated.
func (f *Fleet) Restore(name string, isolated, draining bool, last Operator) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	h.setOperator(last)
	if draining {
		h.draining.Store(true)
	}
	if isolated {
		h.br.Isolate()
	}
	return nil
}

func (h *Host) setOperator(op Operator) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.operator = &op
}

// operatorReason is the reason of an isolated or draining host: who and
// why, when the last operator action put it there, else fallback.
func operatorReason(op *Operator, action, fallback string) string {
	if op == nil || op.Action != action {
		return fallback
	}
	verb := map[string]string{ActionIsolate: "isolated", ActionDrain: "draining"}[action]
	s := verb + " by " + op.By
	if op.Reason != "" {
		s += ": " + op.Reason
	}
	return s
}
