package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/fleet"
)

// hostAction is an operator action on one host.
type hostAction struct {
	name  string
	short string
	do    func(c *apiclient.Client, ctx context.Context, name, reason string) (*fleet.HostStatus, error)
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
		Use:   "hosts",
		Short: "List the Docker hosts with their breaker state; operate on one",
		Example: `  fusebox hosts
  fusebox hosts isolate h2 --reason "disk failing"
  fusebox hosts transitions`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("Commands: isolate, drain, release, reset, transitions. Run 'fusebox hosts --help'.", "hosts: unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			hosts, err := c.Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				if hosts == nil {
					hosts = []fleet.HostStatus{}
				}
				return a.printJSON(hosts)
			}
			now := a.now()
			t := newTable(a.stdout, "NAME", "STATE", "BREAKER", "RUNNING/CAPACITY", "CALLS/LIMIT", "FAILURES", "TRIPS", "NEXT PROBE", "REASON")
			for _, h := range hosts {
				next := ""
				if h.Breaker.State == "open" || h.Breaker.State == "half-open" {
					next = until(now, h.Breaker.NextProbeAt)
				}
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
				t.row(h.Name, string(h.State), h.Breaker.State, fmt.Sprintf("%d/%d", h.Running, h.Capacity),
					fmt.Sprintf("%d/%d", h.Calls.InFlight, h.Calls.Limit),
					strconv.Itoa(h.Breaker.ConsecutiveFailures), strconv.Itoa(h.Breaker.Trips), next, clip(reason, 70))
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
					ts = []fleet.Transition{}
				}
				return a.printJSON(ts)
			}
			t := newTable(a.stdout, "TIME", "HOST", "FROM", "TO")
			for _, tr := range ts {
				t.row(timestamp(tr.At), tr.Host, tr.From, tr.To)
			}
			return t.flush()
		},
	}
}
