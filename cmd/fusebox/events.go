package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/apiclient"
	"fusebox/internal/event"
)

func (a *app) eventsCommand() *cobra.Command {
	var p apiclient.EventsParams
	cmd := &cobra.Command{
		Use:   "events [-f] [--since SEQ|DURATION] [--type T]... [--job ID] [--host NAME]",
		Short: "Print what happened: job transitions, host breakers, operator actions",
		Long: `Print the events of the server's event stream, oldest first: job transitions
(job.transition), host breaker transitions (host.breaker), host state changes
(host.state), graceful degradation on a host (host.degradation), operator
actions (operator.action), other breakers (breaker:
a workflow's), workflow runs and steps (workflow.run, workflow.step),
alert deliveries (alert.delivery) and the tool calls of the MCP server at
/mcp (mcp.tool_call). Without -f, print what
matches and exit; with -f, follow new events until interrupted (without
--since, from now on). A dropped connection is resumed where it stopped,
without missing or repeating an event. --since takes a sequence number (the
events after it), a duration (10m: the last ten minutes) or an RFC 3339 time.
With -o json, print one JSON event per line.`,
		Example: "  fusebox events --since 1h\n  fusebox events -f --type host.breaker\n  fusebox events --job j0001",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if !a.structured() {
				fmt.Fprintf(a.stdout, eventRowFormat, "SEQ", "TIME", "TYPE", "JOB", "HOST", "WHAT")
			}
			return c.Events(cmd.Context(), p, func(ev event.Event) error {
				if a.structured() {
					return a.printJSONLine(ev)
				}
				_, err := fmt.Fprintf(a.stdout, eventRowFormat, fmt.Sprint(ev.Seq), ev.At.Local().Format(time.DateTime),
					ev.Type, dash(ev.JobID), dash(ev.Host), eventSummary(ev))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&p.Follow, "follow", "f", false, "follow new events until interrupted")
	f.StringVar(&p.Since, "since", "", "start after this sequence number, or this long ago (10m), or at this RFC 3339 time")
	f.StringArrayVar(&p.Types, "type", nil, "only events of this type (repeatable)")
	f.StringVar(&p.JobID, "job", "", "only the events of this job")
	f.StringVar(&p.Host, "host", "", "only the events of this host")
	return cmd
}

// eventRowFormat lays out a row of `fusebox events`: fixed columns, so
// that rows printed as they come line up without buffering.
const eventRowFormat = "%-7s %-19s %-16s %-18s %-10s %s\n"

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// eventSummary is an event's data for people: "from -> to: reason" for
// transitions, the data's fields otherwise.
func eventSummary(ev event.Event) string {
	var d map[string]any
	if len(ev.Data) == 0 || json.Unmarshal(ev.Data, &d) != nil {
		return string(ev.Data)
	}
	var b strings.Builder
	from, hasFrom := d["from"].(string)
	to, hasTo := d["to"].(string)
	if hasFrom && hasTo {
		if from == "" {
			from = "(new)"
		}
		if name, _ := d["name"].(string); name != "" && ev.Host == "" {
			b.WriteString(name + ": ") // a breaker of no host: "workflow/etl: closed -> open"
		}
		fmt.Fprintf(&b, "%s -> %s", from, to)
		if ev.Attempt > 0 {
			fmt.Fprintf(&b, " (attempt %d)", ev.Attempt)
		}
		delete(d, "from")
		delete(d, "to")
		delete(d, "name")
	}
	reason, _ := d["reason"].(string)
	delete(d, "reason")
	if b.Len() > 0 && reason != "" { // a transition: "queued -> launching: why"
		fmt.Fprintf(&b, ": %s", reason)
		reason = ""
	}
	for _, k := range sortedKeys(d) {
		fmt.Fprintf(&b, " %s=%v", k, d[k])
	}
	if reason != "" { // anything else: "action=isolate by=alice: why"
		fmt.Fprintf(&b, ": %s", reason)
	}
	return strings.TrimSpace(b.String())
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
