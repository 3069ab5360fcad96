package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/workflow/wfrun"
)

// workflowTimeout bounds each run of the second act.
const workflowTimeout = time.Minute

// workflows is the second act: the shipped "diamond" template across the
// three engines (a -> b, c -> d; b and c at the same time), its result's
// checksum checked, then the same run again: every step cached, no
// container run, the same result.
func (d *demo) workflows(ctx context.Context) error {
	fmt.Fprintf(d.out, "\n=== act two: a workflow ===\n")
	d.say(`the shipped "diamond" template: a writes 100 lines; b and c each transform them, at the same time; d combines both and writes a sha256`)
	first, took, err := d.runDiamond(ctx, "demo-diamond-1")
	if err != nil {
		return err
	}
	d.stepTable(first)
	var hosts []string
	for _, s := range first.Steps {
		if s.Host != "" && !slices.Contains(hosts, s.Host) {
			hosts = append(hosts, s.Host)
		}
	}
	slices.Sort(hosts)
	b, c := stepOf(first, "b"), stepOf(first, "c")
	parallel := b.StartedAt.Before(c.FinishedAt) && c.StartedAt.Before(b.FinishedAt)
	d.say("first run: %s in %v wall time, on %d hosts (%s); b on %s and c on %s, at the same time: %v",
		first.State, took.Round(time.Millisecond), len(hosts), strings.Join(hosts, ", "), b.Host, c.Host, parallel)
	sum, err := d.checkResult(ctx, first)
	if err != nil {
		return err
	}
	d.say("d's combined.txt (a's lines, through b and c): sha256 %s... as d wrote it (checked)", sum[:16])

	d.say("the same run again, nothing changed:")
	second, took2, err := d.runDiamond(ctx, "demo-diamond-2")
	if err != nil {
		return err
	}
	d.stepTable(second)
	ran := 0
	for _, s := range second.Steps {
		if s.State != wfrun.StepCached {
			ran++
		}
	}
	same := digests(first) == digests(second)
	d.say("second run: %s in %v wall time; %d of %d steps cached (no container ran), same outputs: %v",
		second.State, took2.Round(time.Millisecond), len(second.Steps)-ran, len(second.Steps), same)
	fmt.Fprintf(d.out, "diamond, first run:  %v (4 containers)\n", took.Round(time.Millisecond))
	fmt.Fprintf(d.out, "diamond, cached run: %v (0 containers)\n", took2.Round(time.Millisecond))
	switch {
	case ran > 0:
		return fmt.Errorf("the unchanged re-run ran %d steps, want all cached", ran)
	case !same:
		return fmt.Errorf("the cached re-run's outputs differ: %s, then %s", digests(first), digests(second))
	}
	return nil
}

// runDiamond starts the diamond template and prints each step's change as
// it happens until the run ends; it returns the run as it ended and the
// wall time from the start request.
func (d *demo) runDiamond(ctx context.Context, task string) (*api.WorkflowRun, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, workflowTimeout)
	defer cancel()
	d.say("starting a run of the diamond template (as 'fusebox workflow run diamond' does), task %s", task)
	start := time.Now()
	run, err := d.api.StartWorkflow(ctx, api.WorkflowRunRequest{Template: "diamond", TaskID: task,
		Params: map[string]string{"image": enginetest.DefaultImageRef}})
	if err != nil {
		return nil, 0, fmt.Errorf("start the diamond: %w", err)
	}
	last := map[string]string{}
	final := run
	errEnded := errors.New("run ended")
	check := func() error {
		r, err := d.api.WorkflowRun(ctx, run.ID)
		if err != nil {
			return err
		}
		final = r
		for _, s := range r.Steps {
			if s.State == wfrun.StepPending || s.State == wfrun.StepWaiting || s.State == wfrun.StepSubmitted {
				continue // not yet on a host
			}
			line := string(s.State)
			if s.Host != "" && (s.State == wfrun.StepRunning || s.State == wfrun.StepSucceeded) {
				line += " on " + s.Host
			}
			if last[s.ID] != line {
				last[s.ID] = line
				d.say("  step %s: %s", s.ID, line)
			}
		}
		if r.State.Terminal() {
			return errEnded
		}
		return nil
	}
	err = check()
	if !errors.Is(err, errEnded) {
		since := run.CreatedAt.Add(-time.Second).Format(time.RFC3339Nano)
		err = d.api.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeWorkflowRun, event.TypeWorkflowStep}, Follow: true, Since: since},
			func(ev event.Event) error {
				var data struct{ Run string }
				if json.Unmarshal(ev.Data, &data) != nil || data.Run != run.ID {
					return nil
				}
				return check()
			})
	}
	took := time.Since(start)
	if !errors.Is(err, errEnded) {
		return nil, took, fmt.Errorf("run %s did not end within %v: %w", run.ID, workflowTimeout, err)
	}
	if final.State != wfrun.RunSucceeded {
		return nil, took, fmt.Errorf("run %s %s: %s", run.ID, final.State, final.Reason)
	}
	return final, took, nil
}

func (d *demo) stepTable(r *api.WorkflowRun) {
	d.say("  %-4s %-10s %-4s %-6s %-9s %s", "STEP", "STATE", "HOST", "CACHED", "DURATION", "WHY IT RAN")
	for _, s := range r.Steps {
		dur, cached, host, why := "-", "-", s.Host, s.WhyRan
		if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
			dur = s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		if s.Cached {
			cached, host, dur, why = "yes", "-", "-", "- (result reused)"
		}
		d.say("  %-4s %-10s %-4s %-6s %-9s %s", s.ID, s.State, host, cached, dur, why)
	}
}

// checkResult downloads d's output and checks that combined.txt's sha256
// is the one d wrote; it returns it.
func (d *demo) checkResult(ctx context.Context, r *api.WorkflowRun) (string, error) {
	rc, err := d.api.WorkflowArtifact(ctx, r.ID, "d", "/out")
	if err != nil {
		return "", fmt.Errorf("download d's output: %w", err)
	}
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("d's output: %w", err)
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			return "", fmt.Errorf("d's output: %w", err)
		}
	}
	sum := sha256.Sum256(files["combined.txt"])
	got := hex.EncodeToString(sum[:])
	if want := string(files["combined.txt.sha256"]); want != got+"  combined.txt\n" {
		return "", fmt.Errorf("d's combined.txt has sha256 %s; d wrote %q", got, want)
	}
	return got, nil
}

func stepOf(r *api.WorkflowRun, id string) api.WorkflowStep {
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	return api.WorkflowStep{}
}

// digests lists every step's output digests, for comparing two runs.
func digests(r *api.WorkflowRun) string {
	var ds []string
	for _, s := range r.Steps {
		for _, o := range s.Outputs {
			ds = append(ds, s.ID+":"+o.Path+"="+o.Digest)
		}
	}
	return strings.Join(ds, ",")
}
