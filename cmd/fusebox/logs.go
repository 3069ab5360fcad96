package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
)

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] ID",
		Short: "Print a job's output (stdout to stdout, stderr to stderr)",
		Long: `Print a job's collected output: its stdout to stdout and its stderr to stderr.
With -f, follow the output of a running job as it is written, until the job
ends. With -o json, print the output as one JSON object, or with -f as one
JSON event per line.`,
		Example: "  fusebox logs j0001\n  fusebox logs -f j0001",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id := args[0]
			if follow {
				if a.output == "json" {
					return c.FollowLogEvents(cmd.Context(), id, func(ev api.LogEvent) error {
						return a.printJSONLine(ev)
					})
				}
				return c.FollowLogs(cmd.Context(), id, a.stdout, a.stderr)
			}
			logs, err := c.Logs(cmd.Context(), id)
			var ae *apiclient.Error
			if errors.As(err, &ae) && ae.Code == api.CodeNoLogs {
				return &usageError{err: err, hint: fmt.Sprintf("Follow it with 'fusebox logs -f %s'.", id)}
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(api.LogsResponse{Stdout: string(logs.Stdout), Stderr: string(logs.Stderr), Truncated: logs.Truncated})
			}
			a.stdout.Write(logs.Stdout)
			a.stderr.Write(logs.Stderr)
			if logs.Truncated {
				fmt.Fprintln(a.stderr, "fusebox: the output was longer than the server keeps; its start was dropped")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the output until the job ends")
	return cmd
}
