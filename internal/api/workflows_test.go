package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/job"
	"fusebox/internal/metrics"
	"fusebox/internal/workflow/wfrun"
)

// fakeWorkflows is an api.Workflows over a list of runs, oldest first,
// each with one step "s" with one output "/out".
type fakeWorkflows struct{ runs []api.WorkflowRun }

func (f *fakeWorkflows) Start(context.Context, api.WorkflowRunRequest) (*api.WorkflowRun, error) {
	return nil, fmt.Errorf("fake: no start")
}

func (f *fakeWorkflows) Run(_ context.Context, id string) (*api.WorkflowRun, error) {
	for i := range f.runs {
		if f.runs[i].ID == id {
			r := f.runs[i]
			return &r, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", api.ErrRunNotFound, id)
}

func (f *fakeWorkflows) Runs(_ context.Context, fl api.WorkflowRunFilter) ([]api.WorkflowRun, error) {
	var out []api.WorkflowRun
	for _, r := range slices.Backward(f.runs) {
		if (fl.Workflow == "" || r.Workflow == fl.Workflow) && strings.HasPrefix(r.ID, fl.IDPrefix) && (fl.Limit == 0 || len(out) < fl.Limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeWorkflows) Cancel(ctx context.Context, id string) (*api.WorkflowRun, error) {
	r, err := f.Run(ctx, id)
	if err == nil {
		r.State = wfrun.RunCancelled
	}
	return r, err
}

func (f *fakeWorkflows) Templates(context.Context, string) ([]api.WorkflowTemplate, error) {
	return nil, nil
}

func (f *fakeWorkflows) Template(context.Context, string) (*api.WorkflowTemplate, error) {
	return nil, api.ErrTemplateNotFound
}

func (f *fakeWorkflows) Artifact(ctx context.Context, runID, step, path string) (io.ReadCloser, int64, error) {
	if _, err := f.Run(ctx, runID); err != nil {
		return nil, 0, err
	}
	s := runID + ":" + step + ":" + path
	return io.NopCloser(strings.NewReader(s)), int64(len(s)), nil
}

// {id} in the workflow run routes is a run's id, a workflow's name (its
// newest run) or a unique id prefix, with or without "wf-"; an ambiguous
// prefix is a 400 listing the ids, and no match a 404 that names what was
// asked for and not the store.
func TestWorkflowRunRefs(t *testing.T) {
	wf := &fakeWorkflows{}
	for _, r := range []struct{ id, workflow string }{
		{"wf-01aa", "diamond"}, {"wf-01ab", "diamond"}, {"wf-02cd", "ci"},
	} {
		wf.runs = append(wf.runs, api.WorkflowRun{ID: r.id, Workflow: r.workflow, State: wfrun.RunRunning,
			Steps: []api.WorkflowStep{{ID: "s", State: wfrun.StepSucceeded, Outputs: []job.Output{{Path: "/out"}}}}})
	}
	srv := api.New(api.Config{}, apitest.NewService(), apitest.NewFleet(), metrics.New(), slog.New(slog.DiscardHandler))
	srv.SetWorkflows(wf)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	base := hs.URL + "/v1/workflows/runs/"

	for _, c := range []struct{ ref, want string }{
		{"wf-01aa", "wf-01aa"}, {"diamond", "wf-01ab"}, {"ci", "wf-02cd"},
		{"wf-02", "wf-02cd"}, {"02", "wf-02cd"}, {"01aa", "wf-01aa"}, {"wf-01ab", "wf-01ab"},
	} {
		r := do(t, "GET", base+c.ref, "")
		wantStatus(t, r, 200, "")
		if got := decode[api.WorkflowRunResponse](t, r).Run.ID; got != c.want {
			t.Errorf("GET %s = %s, want %s", c.ref, got, c.want)
		}
	}
	for _, ref := range []string{"01", "wf-0", "wf-01a"} {
		r := do(t, "GET", base+ref, "")
		wantStatus(t, r, 400, api.CodeAmbiguous)
		if eb := r.errBody(t); !strings.Contains(eb.Error, "wf-01aa") || !strings.Contains(eb.Error, "wf-01ab") || eb.Field != "id" {
			t.Errorf("ambiguous %q: error does not list the ids: %+v", ref, eb)
		}
	}
	for _, ref := range []string{"zzz", "wf-9", "nightly"} {
		r := do(t, "GET", base+ref, "")
		wantStatus(t, r, 404, api.CodeNotFound)
		if eb := r.errBody(t); !strings.Contains(eb.Error, fmt.Sprintf("%q", ref)) || strings.Contains(eb.Error, "sqlite") {
			t.Errorf("not found %q: %s", ref, eb.Error)
		}
	}

	// The other routes resolve as GET does.
	r := do(t, "POST", base+"ci/cancel", "")
	wantStatus(t, r, 200, "")
	if got := decode[api.WorkflowRunResponse](t, r).Run; got.ID != "wf-02cd" || got.State != wfrun.RunCancelled {
		t.Errorf("cancel ci = %s %s, want wf-02cd cancelled", got.ID, got.State)
	}
	wantStatus(t, do(t, "POST", base+"wf-01a/cancel", ""), 400, api.CodeAmbiguous)
	wantStatus(t, do(t, "POST", base+"zzz/cancel", ""), 404, api.CodeNotFound)
	r = do(t, "GET", base+"01aa/artifacts/s", "")
	wantStatus(t, r, 200, "")
	if string(r.body) != "wf-01aa:s:/out" {
		t.Errorf("artifact of 01aa = %q, want wf-01aa:s:/out", r.body)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "wf-01aa-s.tar") {
		t.Errorf("Content-Disposition %q does not name the run's full id", cd)
	}
	wantStatus(t, do(t, "GET", base+"diamond/artifacts/s?path=/out", ""), 200, "")
	wantStatus(t, do(t, "GET", base+"01/artifacts/s", ""), 400, api.CodeAmbiguous)
	wantStatus(t, do(t, "GET", base+"zzz/artifacts/s", ""), 404, api.CodeNotFound)
}
