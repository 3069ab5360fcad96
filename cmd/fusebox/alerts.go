package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) alertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List the alert receivers (breaker, outbox, last error) and the alerts firing now",
		Long: `List the webhook receivers of the operator alerts (alerts.receivers in the
server's config) with their breaker, the notices waiting in their outbox and
their last error, then the alerts firing now. 'fusebox alerts test' sends a
test alert.`,
		Example: "  fusebox alerts\n  fusebox alerts test\n  fusebox alerts test ops",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("Commands: test. Run 'fusebox alerts --help'.", "alerts: unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Alerts(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(st)
			}
			now := a.now()
			if len(st.Receivers) == 0 {
				fmt.Fprintln(a.stdout, "No alert receivers are configured (alerts.receivers in the server's config): alerts are evaluated but sent nowhere.")
			} else {
				t := newTable(a.stdout, "RECEIVER", "URL", "BREAKER", "PENDING", "LAST DELIVERED", "LAST ERROR")
				for _, r := range st.Receivers {
					delivered, lastErr := "-", "-"
					if !r.LastDeliveredAt.IsZero() {
						delivered = age(now, r.LastDeliveredAt) + " ago"
					}
					if r.LastError != "" && !r.LastErrorAt.Before(r.LastDeliveredAt) {
						lastErr = clip(r.LastError, 60) + " (" + age(now, r.LastErrorAt) + " ago)"
					}
					t.row(r.Name, r.URL, r.Breaker.String(), strconv.Itoa(r.Pending), delivered, lastErr)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			fmt.Fprintln(a.stdout)
			if len(st.Firing) == 0 {
				fmt.Fprintln(a.stdout, "No alert is firing.")
				return nil
			}
			t := newTable(a.stdout, "FIRING", "SINCE", "LABELS", "SUMMARY")
			for _, f := range st.Firing {
				var labels []string
				for k, v := range f.Labels {
					if k != "alertname" {
						labels = append(labels, k+"="+v)
					}
				}
				sort.Strings(labels)
				t.row(f.Name, age(now, f.StartsAt)+" ago", strings.Join(labels, ","), clip(f.Summary, 70))
			}
			return t.flush()
		},
	}
	cmd.AddCommand(a.alertsTestCommand())
	return cmd
}

func (a *app) alertsTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test [RECEIVER]",
		Short: "Send a test alert to one receiver, or to every one",
		Long: `Send a test alert (FuseboxTest, severity info) now, signed as every alert
is, to the named receiver or to every receiver, and show how each answered.
It goes straight to the receiver, not through the outbox or its breaker.
Exits 1 if a receiver did not take it.`,
		Example: "  fusebox alerts test\n  fusebox alerts test ops",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			res, err := c.TestAlert(cmd.Context(), name)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if r.Error != "" {
					failed++
				}
			}
			if a.structured() {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else if len(res) == 0 {
				fmt.Fprintln(a.stdout, "No alert receivers are configured (alerts.receivers in the server's config): nothing was sent.")
			} else {
				for _, r := range res {
					if r.Error == "" {
						fmt.Fprintf(a.stdout, "%s: delivered (HTTP %d, %.0f ms, webhook-id %s)\n", r.Receiver, r.Status, r.DurationMS, r.WebhookID)
					} else {
						fmt.Fprintf(a.stdout, "%s: not delivered: %s (%.0f ms, webhook-id %s)\n", r.Receiver, r.Error, r.DurationMS, r.WebhookID)
					}
				}
			}
			if failed > 0 {
				a.exitCode = exitError
			}
			return nil
		},
	}
}
