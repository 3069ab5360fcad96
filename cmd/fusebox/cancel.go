package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"fusebox/internal/job"
)

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job (a running one's container is stopped)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := c.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(j)
			}
			if j.State == job.StateCancelled {
				fmt.Fprintf(a.stdout, "job %s cancelled\n", j.ID)
			} else {
				fmt.Fprintf(a.stdout, "job %s: cancel requested; its container on %s is being stopped (see 'fusebox job %s')\n", j.ID, j.Host, j.ID)
			}
			return nil
		},
	}
}
