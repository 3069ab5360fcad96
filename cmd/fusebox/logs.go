package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

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
		Use:   "logs [-f] [-n N] [--since T] [-t] ID|NAME",
		Short: "Print a job's output (stdout to stdout, stderr to stderr)",
		Long: `Print a job's collected output: its stdout to stdout and its stderr to stderr.
ID may be the job's name or a unique prefix of its id. With -f, follow the
output of a running job as it is written, until the job ends. With -n N
(--tail N), print only the last N lines of each stream. With --since, only
the lines logged since a time: an RFC 3339 time (2026-12-01T15:04:05Z), a
date (2026-12-01), Unix seconds, or a duration before now (42m, 1h30m).
With -t (--timestamps), each line starts with the time it was logged, as
docker logs -t prints it. With -o json, print the output as one JSON
object, or with -f as one JSON event per line.`,
		Example: "  fusebox logs nightly\n  fusebox logs -n 20 0k3h2m7x\n  fusebox logs --since 10m -t nightly\n  fusebox logs -f 0k3h2m7x9q4r8t1v",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := apiclient.LogOptions{Timestamps: timestamps}
			if since != "" {
				t, err := parseSince(time.Now(), since)
				if err != nil {
					return usagef("Use --since 2026-12-01T15:04:05Z, --since 2026-12-01, --since 1733065445 or --since 42m.", "--since %q: %v", since, err)
				}
				opts.Since = t
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
					return c.FollowLogEventsWith(cmd.Context(), id, opts, func(ev api.LogEvent) error {
						return a.printJSONLine(ev)
					})
				}
				return c.FollowLogsWith(cmd.Context(), id, opts, a.stdout, a.stderr)
			}
			logs, err := c.LogsWith(cmd.Context(), id, opts)
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
	fl.StringVar(&since, "since", "", "only lines logged since a time (2026-12-01T15:04:05Z, 2026-12-01, Unix seconds) or a duration ago (42m)")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "start each line with the time it was logged")
	return cmd
}

// parseSince reads --since as docker logs does: an RFC 3339 time (with or
// without a zone, then UTC), a date, Unix seconds (with a fraction), or a
// duration before now.
func parseSince(now time.Time, s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("a duration before now must not be negative")
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 {
		whole := int64(secs)
		return time.Unix(whole, int64((secs-float64(whole))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("not a time, a date, Unix seconds or a duration")
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
