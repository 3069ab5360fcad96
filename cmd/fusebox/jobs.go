package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

func (a *app) jobsCommand() *cobra.Command {
	var states []string
	p := store.JobListParams{}
	cmd := &cobra.Command{
		Use:   "jobs [--state S]... [--host H] [--limit N]",
		Short: "List jobs, newest first",
		Example: `  fusebox jobs
  fusebox jobs --state queued --state running
  fusebox jobs --host h2 --limit 10 -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range states {
				for st := range strings.SplitSeq(s, ",") {
					if !job.State(st).Valid() {
						return usagef("States: "+statesList()+".", "--state %q: no such state", st)
					}
					p.States = append(p.States, job.State(st))
				}
			}
			if p.Limit < 1 || p.Limit > api.ListLimitMax {
				return usagef(fmt.Sprintf("Use --limit from 1 to %d, and --before ID for the next page.", api.ListLimitMax), "--limit %d: out of range", p.Limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			jobs, err := c.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if a.output == "json" {
				if jobs == nil {
					jobs = []*job.Job{}
				}
				return a.printJSON(jobs)
			}
			t := newTable(a.stdout, "ID", "STATE", "HOST", "ATTEMPT", "AGE", "IMAGE", "REASON")
			now := a.now()
			for _, j := range jobs {
				t.row(j.ID, stateText(j), j.Host, strconv.Itoa(j.Attempt), age(now, j.CreatedAt), clip(j.Spec.Image, 40), clip(j.Reason, 60))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(jobs) == p.Limit {
				fmt.Fprintf(a.stderr, "(more: fusebox jobs --limit %d --before %s)\n", p.Limit, jobs[len(jobs)-1].ID)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&states, "state", nil, "only jobs in this state (repeatable, or comma-separated): "+statesList())
	fl.StringVar(&p.Host, "host", "", "only jobs on this host")
	fl.IntVar(&p.Limit, "limit", 50, "at most this many jobs")
	fl.StringVar(&p.BeforeID, "before", "", "only jobs older than this job id (to page)")
	return cmd
}

func statesList() string {
	s := make([]string, len(job.States))
	for i, st := range job.States {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// stateText is a job's state, with a mark when a cancel is pending.
func stateText(j *job.Job) string {
	if j.CancelRequested && !j.State.Terminal() {
		return string(j.State) + " (cancelling)"
	}
	return string(j.State)
}

func (a *app) jobCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "job ID",
		Short:   "Show a job with its state transitions and launch attempts",
		Example: "  fusebox job j0001\n  fusebox job j0001 -o json",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			d, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(d)
			}
			j, now := d.Job, a.now()
			kv := newTable(a.stdout, "ID:", j.ID)
			state := stateText(j)
			if j.ExitCode != nil {
				state += fmt.Sprintf(" (exit code %d)", *j.ExitCode)
			}
			kv.row("State:", state)
			kv.row("Reason:", j.Reason)
			kv.row("Image:", j.Spec.Image)
			kv.row("Command:", strings.Join(j.Spec.Command, " "))
			kv.row("Host:", j.Host)
			kv.row("Attempt:", strconv.Itoa(j.Attempt))
			kv.row("Container:", short12(j.ContainerID))
			kv.row("Created:", timestamp(j.CreatedAt)+" ("+age(now, j.CreatedAt)+" ago)")
			if !j.NotBefore.IsZero() && !j.State.Terminal() {
				kv.row("Not before:", timestamp(j.NotBefore)+" ("+until(now, j.NotBefore)+")")
			}
			kv.row("Started:", timestamp(j.StartedAt))
			kv.row("Finished:", timestamp(j.FinishedAt))
			if err := kv.flush(); err != nil {
				return err
			}

			fmt.Fprintln(a.stdout, "\nTRANSITIONS")
			t := newTable(a.stdout, "TIME", "FROM", "TO", "HOST", "ATTEMPT", "REASON")
			for _, tr := range d.Transitions {
				t.row(timestamp(tr.At), string(tr.From), string(tr.To), tr.Host, strconv.Itoa(tr.Attempt), tr.Reason)
			}
			if err := t.flush(); err != nil {
				return err
			}

			fmt.Fprintln(a.stdout, "\nATTEMPTS")
			t = newTable(a.stdout, "#", "HOST", "CONTAINER", "STARTED", "DURATION", "OUTCOME", "ERROR")
			for _, at := range d.Attempts {
				dur := ""
				if !at.FinishedAt.IsZero() {
					dur = at.FinishedAt.Sub(at.StartedAt).Round(100 * 1e6).String()
				}
				t.row(strconv.Itoa(at.Number), at.Host, short12(at.ContainerID), timestamp(at.StartedAt), dur, at.Outcome, clip(at.Error, 80))
			}
			return t.flush()
		},
	}
}
