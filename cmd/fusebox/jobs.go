package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// jobFilter is one --filter of fusebox jobs.
type jobFilter struct{ key, value string }

// jobFilterKeys are the keys --filter takes.
const jobFilterKeys = "label=KEY[=VALUE], image=REF, state=STATE, host=NAME, name=NAME"

func (a *app) jobsCommand() *cobra.Command {
	var (
		states  []string
		filters []string
		all     bool
		quiet   bool
	)
	p := store.JobListParams{}
	cmd := &cobra.Command{
		Use:     "jobs [-a] [-q] [--filter KEY=VALUE]... [--state S]... [--host H] [--limit N]",
		Aliases: []string{"ps"},
		Short:   "List jobs, newest first (those not ended; -a: all)",
		Long: `List jobs, newest first. As docker ps, only the jobs that have not ended
(queued, launching, running) unless -a or --state says otherwise.

--filter KEY=VALUE (repeatable; every filter must match): ` + jobFilterKeys + `.
-q prints the ids only (e.g. fusebox cancel $(fusebox ps -q)); -o wide adds
the columns the table leaves out; -o json and -o yaml print the jobs whole.`,
		Example: `  fusebox ps
  fusebox jobs -a --filter label=team=data --filter image=alpine:3
  fusebox jobs --state failed --host h2 -o wide
  fusebox cancel $(fusebox ps -q --filter state=queued)`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var fs []jobFilter
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				switch {
				case !ok || v == "":
					return usagef("Use --filter "+jobFilterKeys+".", "--filter %q: not KEY=VALUE", f)
				case k == "state":
					states = append(states, v)
				case k == "host":
					p.Host = v
				case k == "name":
					p.Name = v
				case k == "label", k == "image":
					fs = append(fs, jobFilter{k, v})
				default:
					return usagef("Use --filter "+jobFilterKeys+".", "--filter %q: unknown key %q", f, k)
				}
			}
			for _, s := range states {
				for st := range strings.SplitSeq(s, ",") {
					if !job.State(st).Valid() {
						return usagef("States: "+statesList()+".", "--state %q: no such state", st)
					}
					p.States = append(p.States, job.State(st))
				}
			}
			if len(p.States) == 0 && !all {
				p.States = []job.State{job.StateQueued, job.StateLaunching, job.StateRunning}
			}
			if p.Limit < 1 || p.Limit > api.ListLimitMax {
				return usagef(fmt.Sprintf("Use --limit from 1 to %d, and --before ID for the next page.", api.ListLimitMax), "--limit %d: out of range", p.Limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			jobs, more, err := listFiltered(cmd.Context(), c, p, fs)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, j := range jobs {
					fmt.Fprintln(a.stdout, j.ID)
				}
				return nil
			case a.structured():
				if jobs == nil {
					jobs = []*job.Job{}
				}
				return a.printJSON(jobs)
			}
			now, wide := a.now(), a.output == "wide"
			var t *table
			if wide {
				t = newTable(a.stdout, "ID", "NAME", "IMAGE", "COMMAND", "STATE", "HOST", "ATTEMPT", "AGE", "EXIT", "CAUSE", "LABELS", "REASON")
			} else {
				t = newTable(a.stdout, "ID", "NAME", "IMAGE", "COMMAND", "STATE", "HOST", "ATTEMPT", "AGE", "REASON")
			}
			for _, j := range jobs {
				if wide {
					exit := ""
					if j.ExitCode != nil {
						exit = strconv.Itoa(*j.ExitCode)
					}
					t.row(j.ID, j.Spec.Name, j.Spec.Image, commandText(j.Spec), stateText(j), j.Host, strconv.Itoa(j.Attempt),
						age(now, j.CreatedAt), exit, string(j.Cause), labelsText(j.Spec.Labels), j.Reason)
					continue
				}
				t.row(j.ID, j.Spec.Name, clip(j.Spec.Image, 30), clip(commandText(j.Spec), 30), stateText(j), j.Host,
					strconv.Itoa(j.Attempt), age(now, j.CreatedAt), clip(j.Reason, 50))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if more != "" {
				fmt.Fprintf(a.stderr, "(more: fusebox jobs --limit %d --before %s)\n", p.Limit, more)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "every job, ended ones too (default: only those not ended)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the job ids")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "only jobs matching KEY=VALUE (repeatable): "+jobFilterKeys)
	fl.StringArrayVar(&states, "state", nil, "only jobs in this state (repeatable, or comma-separated): "+statesList())
	fl.StringVar(&p.Host, "host", "", "only jobs on this fleet host (by name)")
	fl.IntVar(&p.Limit, "limit", 50, "at most this many jobs")
	fl.StringVar(&p.BeforeID, "before", "", "only jobs older than this job id (to page)")
	return cmd
}

// maxFilterPages bounds the pages listFiltered reads to fill one page of
// jobs that match label= and image= filters (which the server does not
// apply).
const maxFilterPages = 20

// listFiltered lists up to p.Limit jobs matching p and fs, and the cursor
// of the next page ("" when there is none).
func listFiltered(ctx context.Context, c *apiclient.Client, p store.JobListParams, fs []jobFilter) ([]*job.Job, string, error) {
	if len(fs) == 0 {
		jobs, err := c.List(ctx, p)
		if err != nil || len(jobs) < p.Limit {
			return jobs, "", err
		}
		return jobs, jobs[len(jobs)-1].ID, nil
	}
	var out []*job.Job
	q := p
	q.Limit = api.ListLimitMax
	for range maxFilterPages {
		page, err := c.List(ctx, q)
		if err != nil {
			return nil, "", err
		}
		for _, j := range page {
			if matchFilters(j, fs) {
				out = append(out, j)
				if len(out) == p.Limit {
					return out, j.ID, nil
				}
			}
		}
		if len(page) < q.Limit {
			return out, "", nil
		}
		q.BeforeID = page[len(page)-1].ID
	}
	return out, q.BeforeID, nil
}

// matchFilters reports whether j matches every label= and image= filter.
func matchFilters(j *job.Job, fs []jobFilter) bool {
	for _, f := range fs {
		switch f.key {
		case "image":
			if j.Spec.Image != f.value {
				return false
			}
		case "label":
			k, v, hasValue := strings.Cut(f.value, "=")
			have, ok := j.Spec.Labels[k]
			if !ok || (hasValue && have != v) {
				return false
			}
		}
	}
	return true
}

// commandText is what a job runs, entrypoint then command, as one line
// with arguments holding spaces quoted (docker ps's COMMAND).
func commandText(s job.Spec) string {
	var words []string
	for _, w := range append(slices.Clip(s.Entrypoint), s.Command...) {
		if w == "" || strings.ContainsAny(w, " \t\"'") {
			w = strconv.Quote(w)
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// labelsText writes labels as k=v,k=v, keys sorted.
func labelsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
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
		Use:     "job ID|NAME",
		Short:   "Show a job with its state transitions and launch attempts",
		Long:    "Show a job with its state transitions and launch attempts. ID may be the job's\nname or a unique prefix of its id.",
		Example: "  fusebox job 0k3h2m7x9q4r8t1v\n  fusebox job 0k3h2m7x     # a unique prefix\n  fusebox job nightly -o json",
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
			if a.structured() {
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
			if j.Spec.Name != "" {
				kv.row("Name:", j.Spec.Name)
			}
			kv.row("Image:", j.Spec.Image)
			kv.row("Command:", commandText(j.Spec))
			if j.Cause != job.CauseNone {
				kv.row("Cause:", string(j.Cause))
			}
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
