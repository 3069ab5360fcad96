package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
)

func (a *app) logsCommand() *cobra.Command {
	var (
		follow     bool
		tail       string
		since      string
		timestamps bool
	)
	cmd := &cobra.Command{
		Use:   "logs [-f] [-n N] ID|NAME",
		Short: "Print a job's output (stdout to stdout, stderr to stderr)",
		Long: `Print a job's collected output: its stdout to stdout and its stderr to stderr.
ID may be the job's name or a unique prefix of its id. With -f, follow the
output of a running job as it is written, until the job ends. With -n N
(--tail N), print only the last N lines of each stream. With -o json, print
the output as one JSON object, or with -f as one JSON event per line.

--since and -t (--timestamps) are refused: fusebox keeps a job's output as
its container wrote it, without a time per line.`,
		Example: "  fusebox logs nightly\n  fusebox logs -n 20 0k3h2m7x\n  fusebox logs -f 0k3h2m7x9q4r8t1v",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since != "" || timestamps {
				return usagef("Drop --since and -t; read the last lines with -n N, or follow a running job with -f.",
					"--since and -t/--timestamps are not available: a job's output is kept without a time per line")
			}
			n := -1
			if tail != "" && tail != "all" {
				v, err := strconv.Atoi(tail)
				if err != nil || v < 0 {
					return usagef("Use -n 20 (the last 20 lines of each stream) or -n all.", "--tail %q: not a number of lines", tail)
				}
				n = v
			}
			if follow && n >= 0 {
				return usagef("Use -n without -f on a job that has ended, or -f alone to follow from the start.", "-n/--tail with -f is not available")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			id := args[0]
			if follow {
				if a.structured() {
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
			if n >= 0 {
				logs.Stdout, logs.Stderr = lastLines(logs.Stdout, n), lastLines(logs.Stderr, n)
			}
			if a.structured() {
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
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "follow the output until the job ends")
	fl.StringVarP(&tail, "tail", "n", "all", "only the last N lines of each stream")
	fl.StringVar(&since, "since", "", "refused: output is kept without a time per line")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "refused: output is kept without a time per line")
	return cmd
}

// lastLines returns the last n lines of b (a last line without a newline
// counts).
func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
