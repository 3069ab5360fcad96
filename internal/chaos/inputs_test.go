package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/workflow/wfrun"
)

// chain passes a file from a to b.
const chain = `name: chaos-chain
defaults: {image: %s}
steps:
  - id: a
    command: ["sh", "-c", "mkdir -p /out && echo from-a > /out/x && sleep 1"]
    outputs: [/out]
  - id: b
    inputs: [{from: a, path: /out, at: /in}]
    command: ["cat", "/in/x"]
`

// Found by serve-kill-workflow: a step whose container was created but
// whose launch never finished (fusebox killed between the create and the
// copy of its inputs, or the create's answer lost) was started by the
// confirmation of the unknown outcome without its inputs, and failed as if
// by its own fault. The create answer of b is dropped here: b must still
// read a's file.
func TestInputsSurviveALostCreateAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fusebox serve on a private engine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := BuildFusebox(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewRig(t, bin, "lost-create", Setup{Engines: 1, Via: ViaAnswers})
	run, err := r.Client.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: fmt.Sprintf(chain, r.Image.Ref)})
	if err != nil {
		t.Fatal(err)
	}
	// Once a runs, the next create on the engine is b's.
	err = until(ctx, time.Minute, "step a runs", func() (bool, error) {
		wr, err := r.Client.WorkflowRun(ctx, run.ID)
		if err != nil {
			return false, err
		}
		for _, s := range wr.Steps {
			if s.ID == "a" && s.JobID != "" {
				d, err := r.Client.Get(ctx, s.JobID)
				return err == nil && d.Job.State == job.StateRunning, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := r.Engines.Engines[0].DropAnswers(enginetest.Route{Method: "POST", Path: `^/containers/create$`}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var wr *api.WorkflowRun
	err = until(ctx, 2*time.Minute, "the run ends", func() (bool, error) {
		wr, err = r.Client.WorkflowRun(ctx, run.ID)
		return err == nil && wr.State.Terminal(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if drop.Hits() != 1 {
		t.Fatalf("the create answer was dropped %d times, want 1", drop.Hits())
	}
	if wr.State != wfrun.RunSucceeded {
		t.Fatalf("run %s: %s", wr.State, wr.Reason)
	}
	b := wr.Steps[1]
	logs, err := r.Client.Logs(ctx, b.JobID)
	if err != nil || string(logs.Stdout) != "from-a\n" || b.Try != 1 {
		t.Fatalf("b printed %q (%v) in try %d, want from-a in its first", logs.Stdout, err, b.Try)
	}
}
