package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"fusebox/internal/job"
)

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID|NAME...",
		Short: "Cancel jobs (a running one's container is stopped)",
		Long: `Cancel one or more jobs: a queued one at once, a launching or running one by
stopping its container. Each ID may be a job's name or a unique prefix of
its id. Every job is tried; the exit code is 1 if any could not be
cancelled.`,
		Example: "  fusebox cancel nightly\n  fusebox cancel 0k3h2m7x 0k3h2m9a\n  fusebox cancel $(fusebox ps -q)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("Usage: "+cmd.UseLine(), "cancel needs at least one job id or name")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var failed []error
			for _, ref := range args {
				j, err := c.Cancel(cmd.Context(), ref)
				if err != nil {
					if len(args) == 1 {
						return err
					}
					msg, _ := explain(err)
					fmt.Fprintf(a.stderr, "fusebox: %s: %s\n", ref, msg)
					failed = append(failed, err)
					continue
				}
				switch {
				case a.structured():
					if err := a.printJSON(j); err != nil {
						return err
					}
				case j.State == job.StateCancelled:
					fmt.Fprintf(a.stdout, "job %s cancelled\n", j.ID)
				default:
					fmt.Fprintf(a.stdout, "job %s: cancel requested; its container on %s is being stopped (see 'fusebox job %s')\n", j.ID, j.Host, j.ID)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d jobs could not be cancelled", len(failed), len(args))
			}
			return nil
		},
	}
}
