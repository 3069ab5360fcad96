package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/workflow/wfrun"
)

func (a *app) workflowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workflow",
		Aliases: []string{"wf"},
		Short:   "Run multi-step container workflows and look at their runs",
		Long: `Run workflows: DAGs of container steps that pass files to each other,
each step a job on the fleet. Finished steps are cached by what they ran
on; a workflow that keeps failing is refused fast by its circuit breaker.

RUN is a run's id, a unique prefix of it (with or without its wf-), or a
workflow's name, meaning that workflow's newest run.`,
		Example: `  fusebox workflow run pipeline.yaml --param version=1.2 --task-id build-42
  fusebox workflow run diamond
  fusebox workflow runs --task-id build-42
  fusebox workflow status RUN
  fusebox workflow status diamond     # the newest run of a workflow
  fusebox workflow artifacts RUN package --output package.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("Commands: run, status, runs, cancel, templates, template, artifacts. Run 'fusebox workflow --help'.", "workflow: unknown command %q", args[0])
			}
			return cmd.Help()
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(a.workflowRunCommand(), a.workflowStatusCommand(), a.workflowRunsCommand(), a.workflowCancelCommand(),
		a.workflowTemplatesCommand(), a.workflowTemplateCommand(), a.workflowArtifactsCommand())
	return cmd
}

func (a *app) workflowRunCommand() *cobra.Command {
	var (
		params    []string
		taskID    string
		skipCache bool
		noBreaker bool
		detach    bool
	)
	cmd := &cobra.Command{
		Use:   "run FILE|TEMPLATE",
		Short: "Run a workflow file or a shipped template, showing its steps until it ends",
		Long: `Start a run of the workflow in FILE (YAML), or of the shipped template of that
name ('fusebox workflow templates'), and show each step's progress until the
run ends. Exits 0 only when it succeeded: 1 when it failed, 130 when it was
cancelled, 125 when it could not start (a definition with problems, every
one listed with file:line; an open workflow breaker, with when to retry).
With -d, print the run's id and return.`,
		Example: `  fusebox workflow run ci.yaml --param branch=main --task-id build-7
  fusebox workflow run data-processing --skip-cache -d`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.WorkflowRunRequest{TaskID: taskID, SkipCache: skipCache}
			var err error
			if req.Params, err = keyValues("--param", params, nil); err != nil {
				return err
			}
			if noBreaker {
				req.UseCircuitBreaker = new(bool)
			}
			if b, err := os.ReadFile(args[0]); err == nil {
				req.Definition = string(b)
			} else if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(args[0], `/\.`) {
				req.Template = args[0]
			} else {
				return usagef("Give a workflow file, or a template name from 'fusebox workflow templates'.", "%v", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			run, err := c.StartWorkflow(cmd.Context(), req)
			if err != nil {
				return &codeError{code: exitCantRun, err: workflowStartError(args[0], err)}
			}
			if detach {
				if a.structured() {
					return a.printJSON(run)
				}
				fmt.Fprintln(a.stdout, run.ID)
				return nil
			}
			fmt.Fprintf(a.stderr, "fusebox: workflow %s: run %s started\n", run.Workflow, run.ID)
			final, err := a.followRun(cmd.Context(), c, run)
			if err != nil {
				return err
			}
			if a.structured() {
				if err := a.printJSON(final); err != nil {
					return err
				}
			} else {
				a.printRun(final)
			}
			switch final.State {
			case wfrun.RunSucceeded:
				a.exitCode = exitOK
			case wfrun.RunCancelled:
				a.exitCode = exitCancelled
			default:
				a.exitCode = exitError
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&params, "param", "p", nil, "a parameter KEY=VALUE; repeatable")
	fl.StringVar(&taskID, "task-id", "", "the id of the task this run does (runs are listed by it)")
	fl.BoolVar(&skipCache, "skip-cache", false, "run every step, even those a cached result would spare")
	fl.BoolVar(&noBreaker, "no-circuit-breaker", false, "do not pass (or report to) the workflow's circuit breaker")
	fl.BoolVarP(&detach, "detach", "d", false, "print the run's id and return")
	return cmd
}

// workflowStartError explains why a run did not start.
func workflowStartError(what string, err error) error {
	var ae *apiclient.Error
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == 503 && ae.RetryAfter > 0 && strings.Contains(ae.Message, "retry after"):
		return fmt.Errorf("%s, or run with --no-circuit-breaker", ae.Message)
	case ae.Status == 503 && ae.RetryAfter > 0:
		return fmt.Errorf("%s; retry in %s, or run with --no-circuit-breaker", ae.Message, ae.RetryAfter.Round(time.Second))
	case len(ae.Problems) > 0:
		lines := make([]string, 0, len(ae.Problems))
		for _, p := range ae.Problems {
			lines = append(lines, "  "+p.Message)
		}
		return fmt.Errorf("%s has problems; nothing ran:\n%s", what, strings.Join(lines, "\n"))
	}
	return err
}

// followRun shows a run's step changes on stderr as they happen (woken by
// the event stream) until it ends, and returns it as it ended.
func (a *app) followRun(ctx context.Context, c *apiclient.Client, run *api.WorkflowRun) (*api.WorkflowRun, error) {
	errEnded := errors.New("run ended")
	last := map[string]string{}
	show := func(r *api.WorkflowRun) {
		for _, s := range r.Steps {
			line := describeStep(s)
			if last[s.ID] != line {
				last[s.ID] = line
				fmt.Fprintf(a.stderr, "fusebox: %s %s: %s\n", r.ID, s.ID, line)
			}
		}
	}
	show(run)
	final := run
	check := func() error {
		r, err := c.WorkflowRun(ctx, run.ID)
		if err != nil {
			return err
		}
		final = r
		show(r)
		if r.State.Terminal() {
			return errEnded
		}
		return nil
	}
	if err := check(); errors.Is(err, errEnded) {
		return final, nil
	}
	since := run.CreatedAt.Add(-time.Second).Format(time.RFC3339Nano) // the run's events, not every run's ever
	err := c.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeWorkflowRun, event.TypeWorkflowStep}, Follow: true, Since: since},
		func(ev event.Event) error {
			var d struct{ Run string }
			if json.Unmarshal(ev.Data, &d) != nil || d.Run != run.ID {
				return nil // another run's
			}
			return check()
		})
	switch {
	case errors.Is(err, errEnded):
		return final, nil
	case ctx.Err() != nil:
		return nil, &codeError{code: exitCancelled, err: fmt.Errorf("stopped watching; run %s goes on (cancel it with 'fusebox workflow cancel %s')", run.ID, run.ID)}
	}
	return nil, &codeError{code: exitCantRun, err: fmt.Errorf("following run %s: %w", run.ID, err)}
}

// describeStep says where a step is, for people.
func describeStep(s api.WorkflowStep) string {
	out := string(s.State)
	switch s.State {
	case wfrun.StepRunning, wfrun.StepSubmitted:
		if s.Host != "" {
			out += " on " + s.Host
		}
		out += fmt.Sprintf(" (try %d)", s.Try)
	case wfrun.StepRetrying:
		out += fmt.Sprintf(" (try %d failed; next at %s)", s.Try, s.NextAt.Local().Format("15:04:05"))
	case wfrun.StepCached:
		out += " (result reused)"
	}
	if s.Reason != "" && !s.State.Done() {
		out += ": " + s.Reason
	}
	return out
}

// printRun prints a run and its steps as a table.
func (a *app) printRun(r *api.WorkflowRun) {
	took := ""
	if !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() {
		took = " in " + r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(a.stdout, "run %s of %s: %s%s", r.ID, r.Workflow, r.State, took)
	if r.Reason != "" {
		fmt.Fprintf(a.stdout, " (%s)", r.Reason)
	}
	fmt.Fprintln(a.stdout)
	t := newTable(a.stdout, "STEP", "STATE", "HOST", "TRY", "CACHED", "DURATION", "WHY IT RAN")
	for _, s := range r.Steps {
		d := ""
		if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
			d = s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		cached := ""
		if s.Cached {
			cached = "yes"
		}
		t.row(s.ID, string(s.State), s.Host, strconv.Itoa(s.Try), cached, d, clip(s.WhyRan, 50))
	}
	t.flush()
	for _, res := range r.Results {
		fmt.Fprintf(a.stdout, "result %s:%s %s (%d bytes): fusebox workflow artifacts %s %s --path %s\n",
			res.Step, res.Path, res.Digest, res.Size, r.ID, res.Step, res.Path)
	}
}

func (a *app) workflowStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status RUN",
		Short: "Show a run and its steps (state, host, tries, cached, why each ran)",
		Long: `Show a run and its steps (state, host, tries, cached, why each ran). RUN may
be a unique prefix of the run's id (with or without its wf-), or a
workflow's name, meaning its newest run.`,
		Example: `  fusebox workflow status wf-0k3h2m7x9q4r8t1v
  fusebox workflow status 0k3h2m7x       # a unique prefix
  fusebox workflow status diamond -o json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.WorkflowRun(cmd.Context(), args[0])
			if err != nil {
				return runRefError(err)
			}
			if a.structured() {
				return a.printJSON(r)
			}
			a.printRun(r)
			return nil
		},
	}
}

func (a *app) workflowRunsCommand() *cobra.Command {
	var taskID, workflow, state string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List workflow runs, newest first",
		Example: `  fusebox workflow runs --task-id build-42
  fusebox workflow runs --state running`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f := api.WorkflowRunFilter{TaskID: taskID, Workflow: workflow}
			for s := range strings.SplitSeq(state, ",") {
				if s = strings.TrimSpace(s); s != "" {
					f.States = append(f.States, wfrun.RunState(s))
				}
			}
			runs, err := c.WorkflowRuns(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(runs)
			}
			now := a.now()
			t := newTable(a.stdout, "RUN", "WORKFLOW", "TASK", "STATE", "STEPS DONE", "CREATED", "REASON")
			for _, r := range runs {
				done := 0
				for _, s := range r.Steps {
					if s.State.Done() {
						done++
					}
				}
				t.row(r.ID, r.Workflow, r.TaskID, string(r.State), fmt.Sprintf("%d/%d", done, len(r.Steps)), age(now, r.CreatedAt)+" ago", clip(r.Reason, 60))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&taskID, "task-id", "", "only the runs of this task")
	cmd.Flags().StringVar(&workflow, "workflow", "", "only the runs of this workflow")
	cmd.Flags().StringVar(&state, "state", "", "only runs in these states (comma-separated: pending, running, succeeded, failed, cancelled)")
	return cmd
}

func (a *app) workflowCancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN...",
		Short: "Cancel runs: their running steps' jobs are cancelled, the rest skipped",
		Long: `Cancel runs: their running steps' jobs are cancelled, the rest skipped. Each
RUN may be a unique prefix of a run's id (with or without its wf-), or a
workflow's name, meaning its newest run.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				r, err := c.CancelWorkflowRun(cmd.Context(), id)
				if err != nil {
					errs = append(errs, runRefError(fmt.Errorf("%s: %w", id, err)))
					continue
				}
				fmt.Fprintf(a.stdout, "run %s: cancel asked for (it is %s)\n", r.ID, r.State)
			}
			return errors.Join(errs...)
		},
	}
}

func (a *app) workflowTemplatesCommand() *cobra.Command {
	var category string
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "List the shipped workflow templates",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.WorkflowTemplates(cmd.Context(), category)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(ts)
			}
			t := newTable(a.stdout, "NAME", "CATEGORY", "PARAMS", "DESCRIPTION")
			for _, tp := range ts {
				var ps []string
				for _, p := range tp.Params {
					s := p.Name
					if p.Default != "" {
						s += "=" + p.Default
					}
					ps = append(ps, s)
				}
				t.row(tp.Name, tp.Category, strings.Join(ps, " "), clip(tp.Description, 70))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&category, "category", "", "only this category (ci, data, ml, maintenance, examples)")
	return cmd
}

func (a *app) workflowTemplateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "template NAME",
		Short: "Print a template's YAML (save it, edit it, run it)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.WorkflowTemplate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.structured() {
				return a.printJSON(t)
			}
			fmt.Fprint(a.stdout, t.Source)
			return nil
		},
	}
}

func (a *app) workflowArtifactsCommand() *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "artifacts RUN [STEP]",
		Short: "List a run's artifacts, or download one step's output as a tar",
		Long: `List a run's artifacts, or download one step's output as a tar. RUN may be a
unique prefix of the run's id (with or without its wf-), or a workflow's
name, meaning its newest run.`,
		Example: `  fusebox workflow artifacts RUN
  fusebox workflow artifacts RUN merge --output result.tar
  fusebox workflow artifacts RUN train --path /out/model | tar -x
  fusebox workflow artifacts diamond d -O d.tar   # the newest diamond run's`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				r, err := c.WorkflowRun(cmd.Context(), args[0])
				if err != nil {
					return runRefError(err)
				}
				if a.structured() {
					return a.printJSON(r.Steps)
				}
				t := newTable(a.stdout, "STEP", "PATH", "DIGEST", "SIZE", "RESULT")
				results := map[string]bool{}
				for _, res := range r.Results {
					results[res.Step+":"+res.Path] = true
				}
				for _, s := range r.Steps {
					for _, o := range s.Outputs {
						res := ""
						if results[s.ID+":"+o.Path] {
							res = "yes"
						}
						t.row(s.ID, o.Path, o.Digest, strconv.FormatInt(o.Size, 10), res)
					}
				}
				return t.flush()
			}
			var w io.Writer = a.stdout
			if output != "" && output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return usagef("Give a file that can be written.", "--output: %v", err)
				}
				defer f.Close()
				w = f
			}
			rc, err := c.WorkflowArtifact(cmd.Context(), args[0], args[1], path)
			if err != nil {
				return runRefError(err)
			}
			defer rc.Close()
			n, err := io.Copy(w, rc)
			if err != nil {
				return fmt.Errorf("downloading the artifact: %w", err)
			}
			if output != "" && output != "-" {
				fmt.Fprintf(a.stderr, "fusebox: %s: %d bytes (a tar)\n", output, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "the output, as the step declares it (may be left out when the step has one)")
	cmd.Flags().StringVarP(&output, "output", "O", "", "write the tar to this file (default: stdout)")
	return cmd
}

// runRefError says where to find a run's id when the server knows no run
// (or artifact) by the one given.
func runRefError(err error) error {
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
		return &hintError{err: err, hint: "List runs with 'fusebox workflow runs', a run's outputs with 'fusebox workflow artifacts RUN'."}
	}
	return err
}
