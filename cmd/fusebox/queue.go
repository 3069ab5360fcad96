package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"fusebox/internal/job"
)

func (a *app) queueCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "queue",
		Short: "Show how many jobs are queued and running",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			q, err := c.Queue(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(q)
			}
			bound := "unbounded"
			if q.MaxQueued > 0 {
				bound = fmt.Sprintf("of %d (%d%%)", q.MaxQueued, q.Queued*100/q.MaxQueued)
			}
			fmt.Fprintf(a.stdout, "queued %d %s, running %d\n\n", q.Queued, bound, q.Running)
			t := newTable(a.stdout, "STATE", "JOBS")
			for _, s := range job.States {
				t.row(string(s), strconv.Itoa(q.ByState[s]))
			}
			return t.flush()
		},
	}
}
