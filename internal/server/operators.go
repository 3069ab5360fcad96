package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"fusebox/internal/fleet"
	"fusebox/internal/store"
)

// fleetView adapts the fleet to the API's Fleet: an operator action is
// stored (with its operator.action event) before it is applied, so that it
// outlives a restart (restoreOperators).
type fleetView struct {
	f  *fleet.Fleet
	st store.Store
	mu *sync.Mutex // actions are stored and applied in the same order
}

func newFleetView(f *fleet.Fleet, st store.Store) fleetView {
	return fleetView{f: f, st: st, mu: new(sync.Mutex)}
}

func (v fleetView) Hosts() []fleet.HostStatus           { return v.f.Statuses() }
func (v fleetView) HostTransitions() []fleet.Transition { return v.f.Transitions() }

func (v fleetView) HostAction(ctx context.Context, name string, op fleet.Operator) error {
	if v.f.Host(name) == nil {
		return fmt.Errorf("%w: %q", fleet.ErrHostNotFound, name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	a := store.HostAction{Host: name, Action: op.Action, By: op.By, Reason: op.Reason, At: op.At}
	if _, err := v.st.HostActionRecord(ctx, a); err != nil {
		return fmt.Errorf("storing the action: %w", err)
	}
	return v.f.Act(name, op)
}

// restoreOperators puts every host back in the operator state stored
// before the last stop (isolated, draining, with who and why), before the
// fleet's health checks and the dispatcher start. A stored host that is no
// longer configured is logged and left alone.
func restoreOperators(ctx context.Context, st store.Store, f *fleet.Fleet, logger *slog.Logger) error {
	ops, err := st.HostOperatorList(ctx)
	if err != nil {
		return fmt.Errorf("reading the hosts' operator states: %w", err)
	}
	for _, o := range ops {
		last := fleet.Operator{Action: o.Last.Action, By: o.Last.By, Reason: o.Last.Reason, At: o.Last.At}
		if f.Host(o.Host) == nil {
			if o.Isolated || o.Draining {
				logger.Warn("stored operator state of a host no longer configured: ignored", "host", o.Host,
					"isolated", o.Isolated, "draining", o.Draining, "by", last.By)
			}
			continue
		}
		if err := f.Restore(o.Host, o.Isolated, o.Draining, last); err != nil {
			return fmt.Errorf("host %s: restoring its operator state: %w", o.Host, err)
		}
		if o.Isolated || o.Draining {
			logger.Info("host operator state restored", "host", o.Host, "isolated", o.Isolated, "draining", o.Draining,
				"by", last.By, "reason", last.Reason, "at", last.At)
		}
	}
	return nil
}
