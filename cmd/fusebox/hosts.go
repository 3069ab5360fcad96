package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// hostAction is an operator action on one host.
type hostAction struct {
	name  string
	short string
	do    func(c *apiclient.Client, ctx context.Context, name, reason string) (*api.Host, error)
	done  string // printed after, with the host's name
}

var hostActions = []hostAction{
	{"isolate", "Force a host's breaker open: no new jobs go to it; running ones go on",
		(*apiclient.Client).Isolate, "host %s isolated: no new jobs are placed on it (undo with 'fusebox release %[1]s')"},
	{"drain", "Drain a host: no new jobs; running ones finish",
		(*apiclient.Client).Drain, "host %s draining: running jobs finish, no new ones start (undo with 'fusebox release %[1]s')"},
	{"release", "Undo isolate or drain",
		(*apiclient.Client).Release, "host %s released: it takes jobs again when healthy"},
	{"reset", "Reset a host's breaker to closed and clear its failure counts",
		(*apiclient.Client).Reset, "host %s reset: breaker closed, counts cleared"},
}

func (a *app) hostsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts [NAME]",
		Short: "List the Docker hosts with their breaker state; show or operate on one",
		Long: `List the Docker hosts with their state, breaker, load and labels (-o wide:
weight, address, breaker counts, latency and placements too). With NAME,
show that host in full: address, labels, breaker, call limiter, and the
last operator action.`,
		Example: `  fusebox hosts
  fusebox hosts -o wide
  fusebox hosts h2
  fusebox hosts isolate h2 --reason "disk failing"
  fusebox hosts transitions`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("Usage: fusebox hosts [NAME], or fusebox hosts isolate|drain|release|reset|transitions ...", "hosts takes at most one host name, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				h, err := c.Host(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.structured() {
					return a.printJSON(h)
				}
				return a.printHost(h)
			}
			hosts, err := c.Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				if hosts == nil {
					hosts = []api.Host{}
				}
				return a.printJSON(hosts)
			}
			now, wide := a.now(), a.output == "wide"
			header := []string{"NAME", "STATE", "BREAKER", "RUNNING/CAPACITY", "CALLS/LIMIT", "FAILURES", "TRIPS", "NEXT PROBE", "LABELS", "REASON"}
			if wide {
				header = append(header[:len(header)-1], "WEIGHT", "ADDRESS", "LATENCY", "PLACED", "REJECTED", "REASON")
			}
			t := newTable(a.stdout, header...)
			for _, h := range hosts {
				next := ""
				if h.Breaker.State == breaker.StateOpen || h.Breaker.State == breaker.StateHalfOpen {
					next = until(now, h.Breaker.NextProbeAt)
				}
				row := []string{h.Name, string(h.State), h.Breaker.State.String(), fmt.Sprintf("%d/%d", h.Running, h.Capacity),
					fmt.Sprintf("%d/%d", h.Calls.InFlight, h.Calls.Limit),
					strconv.Itoa(h.Breaker.ConsecutiveFailures), strconv.Itoa(h.Breaker.Trips), next, hostLabelsText(h.Labels)}
				reason := hostReason(now, h)
				if wide {
					row = append(row, strconv.FormatFloat(h.Weight, 'g', -1, 64), h.Address, h.Latency.Round(time.Microsecond).String(),
						strconv.FormatInt(h.Placed, 10), strconv.FormatInt(h.Breaker.Rejected, 10), reason)
				} else {
					row = append(row, clip(reason, 70))
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	for _, act := range hostActions {
		cmd.AddCommand(a.hostActionCommand(act, false))
	}
	cmd.AddCommand(a.hostTransitionsCommand())
	return cmd
}

// hostReason is why a host is in its state, with its operator's action's
// age, its degradation modes and its last error.
func hostReason(now time.Time, h api.Host) string {
	reason := h.Reason
	if op := h.Operator; op != nil && (h.State == fleet.HostIsolated || h.State == fleet.HostDraining) {
		reason += " (" + age(now, op.At) + " ago)"
	}
	if len(h.Degradation) > 0 {
		var modes []string
		for _, m := range h.Degradation {
			modes = append(modes, strings.ReplaceAll(string(m), "_", " "))
		}
		reason = strings.TrimPrefix(reason+"; ", "; ") + strings.Join(modes, ", ")
	}
	if h.LastError != "" {
		reason = strings.TrimPrefix(reason+"; ", "; ") + "last error: " + h.LastError
	}
	return reason
}

// hostLabelsText is a host's labels without the fusebox.host label every
// host carries (its name).
func hostLabelsText(labels map[string]string) string {
	m := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != job.ConstraintHost {
			m[k] = v
		}
	}
	return labelsText(m)
}

// printHost shows one host in full.
func (a *app) printHost(h *api.Host) error {
	now := a.now()
	kv := newTable(a.stdout, "Name:", h.Name)
	kv.row("Address:", h.Address)
	kv.row("State:", string(h.State))
	kv.row("Reason:", hostReason(now, *h))
	kv.row("Labels:", hostLabelsText(h.Labels))
	kv.row("Capacity:", fmt.Sprintf("%d running of %d (weight %g)", h.Running, h.Capacity, h.Weight))
	kv.row("Placed:", fmt.Sprintf("%d jobs since start", h.Placed))
	b := h.Breaker
	kv.row("Breaker:", fmt.Sprintf("%s, %d consecutive failures, %d trips, %d rejected", b.State, b.ConsecutiveFailures, b.Trips, b.Rejected))
	kv.row("  window:", fmt.Sprintf("%d requests, %d failures", b.Requests, b.Failures))
	if !b.OpenedAt.IsZero() {
		kv.row("  opened:", timestamp(b.OpenedAt)+" ("+age(now, b.OpenedAt)+" ago)")
	}
	if !b.NextProbeAt.IsZero() && (b.State == breaker.StateOpen || b.State == breaker.StateHalfOpen) {
		kv.row("  next probe:", timestamp(b.NextProbeAt)+" ("+until(now, b.NextProbeAt)+")")
	}
	kv.row("Calls:", fmt.Sprintf("%d in flight, limit %d, %d waiting", h.Calls.InFlight, h.Calls.Limit, h.Calls.Waiting))
	check := ""
	if !h.LastCheck.IsZero() {
		check = fmt.Sprintf("%s ago, %s", age(now, h.LastCheck), h.Latency.Round(time.Microsecond))
	}
	kv.row("Last check:", check)
	kv.row("Last error:", h.LastError)
	op := ""
	if o := h.Operator; o != nil {
		op = fmt.Sprintf("%s by %s %s ago", o.Action, o.By, age(now, o.At))
		if o.Reason != "" {
			op += ": " + o.Reason
		}
	}
	kv.row("Operator:", op)
	return kv.flush()
}

// hostActionCommand is "fusebox hosts ACTION NAME", or with top the alias
// "fusebox ACTION NAME".
func (a *app) hostActionCommand(act hostAction, top bool) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     act.name + " NAME",
		Short:   act.short,
		Example: fmt.Sprintf("  fusebox %s h2 --reason %q", act.name, "disk failing"),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := len(reason); n > api.MaxReasonBytes {
				return usagef("Say it in fewer words: it is shown beside the host.", "--reason: %d bytes, at most %d", n, api.MaxReasonBytes)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := act.do(c, cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(h)
			}
			fmt.Fprintf(a.stdout, act.done+"\n", h.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the action, with your token's name, and shown by 'fusebox hosts')")
	if top {
		cmd.Short += " (same as 'fusebox hosts " + act.name + "')"
	}
	return cmd
}

func (a *app) hostTransitionsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "transitions",
		Short: "List recent breaker state changes of every host",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.HostTransitions(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				if ts == nil {
					ts = []api.HostTransition{}
				}
				return a.printJSON(ts)
			}
			t := newTable(a.stdout, "TIME", "HOST", "FROM", "TO")
			for _, tr := range ts {
				t.row(timestamp(tr.At), tr.Host, tr.From.String(), tr.To.String())
			}
			return t.flush()
		},
	}
}
