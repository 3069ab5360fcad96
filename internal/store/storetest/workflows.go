package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

// newRun is a two-step run (a, then b) created at created.
func newRun(id, task string, created time.Time) (*wfrun.Run, []wfrun.Step) {
	d := def.Resolved{
		Workflow: def.Workflow{Name: "wf", Timeout: time.Minute, CachingEnabled: true, Steps: []def.Step{
			{ID: "a", Image: "alpine:3.20", Command: []string{"true"}, Outputs: []string{"/out"}, Cache: true},
			{ID: "b", Image: "alpine:3.20", DependsOn: []string{"a"}, Inputs: []def.Input{{From: "a", Path: "/out", At: "/in"}}},
		}},
		Params:  map[string]string{"n": "3"},
		Results: []def.Output{{Step: "b", Path: "/res"}},
	}
	r := &wfrun.Run{ID: id, Workflow: "wf", TaskID: task, State: wfrun.RunPending, Params: d.Params,
		UseBreaker: true, Definition: d, CreatedAt: created}
	return r, []wfrun.Step{{ID: "a", State: wfrun.StepPending}, {ID: "b", State: wfrun.StepPending}}
}

// testWorkflowRuns: a run is inserted with its steps and read back as it
// was; lists filter and order; updates compare and set, change only what
// they name and append their events in the same transaction.
func testWorkflowRuns(f *fx) {
	var hooked int64
	f.s.SetEventHook(func(seq int64) { hooked = seq })
	defer f.s.SetEventHook(nil)

	r, steps := newRun("r1", "t1", at(0))
	if err := f.s.WorkflowRunInsert(f.ctx, store.WorkflowRunInsertParams{Run: r, Steps: steps}); err != nil {
		f.t.Fatalf("WorkflowRunInsert: %v", err)
	}
	if hooked == 0 {
		f.t.Fatal("the insert's event did not reach the event hook")
	}
	if err := f.s.WorkflowRunInsert(f.ctx, store.WorkflowRunInsertParams{Run: r, Steps: steps}); err == nil {
		f.t.Fatal("a second insert of r1 was accepted")
	}
	bad, _ := newRun("r-bad", "", at(0))
	if err := f.s.WorkflowRunInsert(f.ctx, store.WorkflowRunInsertParams{Run: bad, Steps: []wfrun.Step{{ID: "a", State: wfrun.StepPending}, {ID: "a", State: wfrun.StepPending}}}); err == nil {
		f.t.Fatal("a run with a step twice was accepted")
	}
	if _, _, err := f.s.WorkflowRunGet(f.ctx, "r-bad"); !errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("a refused insert left its run: %v", err)
	}

	got, gotSteps, err := f.s.WorkflowRunGet(f.ctx, "r1")
	if err != nil {
		f.t.Fatalf("WorkflowRunGet: %v", err)
	}
	want := *r
	want.CreatedAt, want.UpdatedAt = r.CreatedAt.UTC(), r.CreatedAt.UTC()
	if !reflect.DeepEqual(*got, want) {
		f.t.Fatalf("WorkflowRunGet = %+v\nwant %+v", *got, want)
	}
	wantSteps := []wfrun.Step{
		{RunID: "r1", ID: "a", State: wfrun.StepPending, UpdatedAt: want.CreatedAt},
		{RunID: "r1", ID: "b", State: wfrun.StepPending, UpdatedAt: want.CreatedAt},
	}
	if !reflect.DeepEqual(gotSteps, wantSteps) {
		f.t.Fatalf("steps = %+v\nwant %+v", gotSteps, wantSteps)
	}
	if _, _, err := f.s.WorkflowRunGet(f.ctx, "nope"); !errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("WorkflowRunGet(unknown) = %v, want job.ErrNotFound", err)
	}

	// The run starts; a compare-and-set from the wrong state loses.
	started := at(time.Second)
	if _, err := f.s.WorkflowRunUpdate(f.ctx, store.WorkflowRunUpdateParams{ID: "r1", From: []wfrun.RunState{wfrun.RunRunning}, To: wfrun.RunSucceeded, Now: started}); !errors.Is(err, job.ErrConflict) {
		f.t.Fatalf("update from the wrong state = %v, want job.ErrConflict", err)
	}
	run, err := f.s.WorkflowRunUpdate(f.ctx, store.WorkflowRunUpdateParams{ID: "r1", From: []wfrun.RunState{wfrun.RunPending}, To: wfrun.RunRunning, Reason: "started", Now: started, StartedAt: &started})
	if err != nil || run.State != wfrun.RunRunning || !run.StartedAt.Equal(started) || !run.UpdatedAt.Equal(started) || run.TaskID != "t1" {
		f.t.Fatalf("WorkflowRunUpdate to running = %+v, %v", run, err)
	}

	// A step moves through its life; each field set sticks.
	jid, try, host, key, why, cause := "j1", 1, "h1", "sha256:k", "first run", job.CauseNone
	next := at(3 * time.Second)
	st, err := f.s.WorkflowStepUpdate(f.ctx, store.WorkflowStepUpdateParams{RunID: "r1", ID: "a", From: []wfrun.StepState{wfrun.StepPending},
		To: wfrun.StepSubmitted, Reason: "try 1", Now: at(2 * time.Second), JobID: &jid, Try: &try, CacheKey: &key, WhyRan: &why, NextAt: &next})
	if err != nil || st.JobID != "j1" || st.Try != 1 || st.CacheKey != key || st.WhyRan != why || !st.NextAt.Equal(next) {
		f.t.Fatalf("WorkflowStepUpdate to submitted = %+v, %v", st, err)
	}
	if _, err := f.s.WorkflowStepUpdate(f.ctx, store.WorkflowStepUpdateParams{RunID: "r1", ID: "a", From: []wfrun.StepState{wfrun.StepPending}, To: wfrun.StepRunning, Now: at(3 * time.Second)}); !errors.Is(err, job.ErrConflict) {
		f.t.Fatalf("step update from the wrong state = %v, want job.ErrConflict", err)
	}
	if _, err := f.s.WorkflowStepUpdate(f.ctx, store.WorkflowStepUpdateParams{RunID: "r1", ID: "zz", To: wfrun.StepRunning, Now: at(3 * time.Second)}); !errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("update of an unknown step = %v, want job.ErrNotFound", err)
	}
	outs := []job.Output{{Path: "/out", Digest: "sha256:aa", Size: 10}}
	fin := at(4 * time.Second)
	st, err = f.s.WorkflowStepUpdate(f.ctx, store.WorkflowStepUpdateParams{RunID: "r1", ID: "a", To: wfrun.StepSucceeded, Reason: "exit 0",
		Now: fin, Host: &host, JobCause: &cause, Outputs: outs, FinishedAt: &fin})
	if err != nil || st.State != wfrun.StepSucceeded || st.JobID != "j1" || st.Host != "h1" || !reflect.DeepEqual(st.Outputs, outs) || !st.FinishedAt.Equal(fin) {
		f.t.Fatalf("WorkflowStepUpdate to succeeded = %+v, %v", st, err)
	}
	_, gotSteps, _ = f.s.WorkflowRunGet(f.ctx, "r1")
	if !reflect.DeepEqual(gotSteps[0], *st) {
		f.t.Fatalf("stored step = %+v\nwant %+v", gotSteps[0], *st)
	}

	// A second run, other task; the lists filter and order.
	r2, steps2 := newRun("r2", "t2", at(time.Minute))
	if err := f.s.WorkflowRunInsert(f.ctx, store.WorkflowRunInsertParams{Run: r2, Steps: steps2}); err != nil {
		f.t.Fatal(err)
	}
	ids := func(rs []*wfrun.Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, c := range []struct {
		p    store.WorkflowRunListParams
		want []string
	}{
		{store.WorkflowRunListParams{}, []string{"r2", "r1"}},
		{store.WorkflowRunListParams{TaskID: "t1"}, []string{"r1"}},
		{store.WorkflowRunListParams{States: []wfrun.RunState{wfrun.RunPending}}, []string{"r2"}},
		{store.WorkflowRunListParams{Workflow: "other"}, nil},
		{store.WorkflowRunListParams{Limit: 1}, []string{"r2"}},
	} {
		rs, err := f.s.WorkflowRunList(f.ctx, c.p)
		if err != nil || !reflect.DeepEqual(ids(rs), c.want) {
			f.t.Fatalf("WorkflowRunList(%+v) = %v, %v; want %v", c.p, ids(rs), err, c.want)
		}
	}

	// The run ends: it leaves the active list and its steps are frozen.
	cv, cause2 := true, wfrun.CauseOwn
	res := []wfrun.Result{{Step: "b", Path: "/res", Digest: "sha256:bb", Size: 3}}
	run, err = f.s.WorkflowRunUpdate(f.ctx, store.WorkflowRunUpdateParams{ID: "r1", To: wfrun.RunFailed, Reason: "step b failed",
		Now: at(5 * time.Second), Cause: &cause2, CancelRequested: &cv, Results: res, FinishedAt: &fin})
	if err != nil || run.Cause != wfrun.CauseOwn || !run.CancelRequested || !reflect.DeepEqual(run.Results, res) || !run.StartedAt.Equal(started) {
		f.t.Fatalf("WorkflowRunUpdate to failed = %+v, %v", run, err)
	}
	active, err := f.s.WorkflowRunListActive(f.ctx)
	if err != nil || !reflect.DeepEqual(ids(active), []string{"r2"}) {
		f.t.Fatalf("WorkflowRunListActive = %v, %v; want [r2]", ids(active), err)
	}
	if _, err := f.s.WorkflowStepUpdate(f.ctx, store.WorkflowStepUpdateParams{RunID: "r1", ID: "b", To: wfrun.StepRunning, Now: at(6 * time.Second)}); !errors.Is(err, job.ErrTerminal) {
		f.t.Fatalf("step update of a finished run = %v, want job.ErrTerminal", err)
	}

	// Every change appended its event, in order, with its data.
	runEvs := f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeWorkflowRun}}})
	var runTos []string
	for _, ev := range runEvs {
		var d event.WorkflowRun
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			f.t.Fatal(err)
		}
		runTos = append(runTos, d.Run+":"+d.From+">"+d.To+":"+d.Cause)
	}
	wantTos := []string{"r1:>pending:", "r1:pending>running:", "r2:>pending:", "r1:running>failed:own"}
	if !reflect.DeepEqual(runTos, wantTos) {
		f.t.Fatalf("workflow.run events = %v, want %v", runTos, wantTos)
	}
	stepEvs := f.events(store.EventListParams{Filter: event.Filter{Types: []string{event.TypeWorkflowStep}}})
	if len(stepEvs) != 2 {
		f.t.Fatalf("workflow.step events: %d, want 2", len(stepEvs))
	}
	var sd event.WorkflowStep
	if err := json.Unmarshal(stepEvs[1].Data, &sd); err != nil || sd.Run != "r1" || sd.Step != "a" || sd.From != "submitted" || sd.To != "succeeded" || sd.JobID != "j1" || sd.Try != 1 || stepEvs[1].Host != "h1" {
		f.t.Fatalf("workflow.step event = %+v (%s), %v", stepEvs[1], stepEvs[1].Data, err)
	}
}

// testWorkflowCache: entries are found by key while live, the latest of a
// step whatever its expiry, and finished runs and expired entries go with
// the retention, never an active run.
func testWorkflowCache(f *fx) {
	e := func(key string, created time.Duration, ttl time.Duration) wfrun.CacheEntry {
		return wfrun.CacheEntry{Key: key, Workflow: "wf", Step: "a", Parts: map[string]string{"image": "sha256:i", "command": "sha256:c"},
			Outputs: []job.Output{{Path: "/out", Digest: "sha256:o", Size: 1}}, RunID: "r1", CreatedAt: at(created), ExpiresAt: at(created + ttl)}
	}
	if _, ok, err := f.s.WorkflowCacheGet(f.ctx, "k1", at(0)); ok || err != nil {
		f.t.Fatalf("WorkflowCacheGet of an empty cache = %v, %v", ok, err)
	}
	if _, ok, err := f.s.WorkflowCacheLatest(f.ctx, "wf", "a"); ok || err != nil {
		f.t.Fatalf("WorkflowCacheLatest of an empty cache = %v, %v", ok, err)
	}
	if err := f.s.WorkflowCachePut(f.ctx, wfrun.CacheEntry{Key: "k"}); err == nil {
		f.t.Fatal("an entry without workflow, step and times was accepted")
	}
	for _, c := range []wfrun.CacheEntry{e("k1", 0, time.Hour), e("k2", time.Minute, time.Minute)} {
		if err := f.s.WorkflowCachePut(f.ctx, c); err != nil {
			f.t.Fatalf("WorkflowCachePut(%s): %v", c.Key, err)
		}
	}
	got, ok, err := f.s.WorkflowCacheGet(f.ctx, "k1", at(30*time.Minute))
	want := e("k1", 0, time.Hour)
	want.CreatedAt, want.ExpiresAt = want.CreatedAt.UTC(), want.ExpiresAt.UTC()
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		f.t.Fatalf("WorkflowCacheGet(k1) = %+v, %v, %v\nwant %+v", got, ok, err, want)
	}
	if _, ok, _ := f.s.WorkflowCacheGet(f.ctx, "k2", at(2*time.Minute)); ok {
		f.t.Fatal("an expired entry was returned")
	}
	latest, ok, err := f.s.WorkflowCacheLatest(f.ctx, "wf", "a")
	if err != nil || !ok || latest.Key != "k2" {
		f.t.Fatalf("WorkflowCacheLatest = %s, %v, %v; want k2 (expired, but the newest)", latest.Key, ok, err)
	}
	// Put replaces by key.
	re := e("k2", 2*time.Minute, 2*time.Hour)
	if err := f.s.WorkflowCachePut(f.ctx, re); err != nil {
		f.t.Fatal(err)
	}
	if _, ok, _ := f.s.WorkflowCacheGet(f.ctx, "k2", at(3*time.Minute)); !ok {
		f.t.Fatal("a replaced entry was not found")
	}

	// Retention: r1 finished long ago, r2 is active.
	r1, s1 := newRun("r1", "", at(0))
	r1.State, r1.FinishedAt = wfrun.RunSucceeded, at(time.Second)
	r2, s2 := newRun("r2", "", at(0))
	for _, p := range []store.WorkflowRunInsertParams{{Run: r1, Steps: s1}, {Run: r2, Steps: s2}} {
		if err := f.s.WorkflowRunInsert(f.ctx, p); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.s.WorkflowRunDeleteFinished(f.ctx, store.JobDeleteFinishedParams{}); err == nil {
		f.t.Fatal("WorkflowRunDeleteFinished without Before was accepted")
	}
	n, err := f.s.WorkflowRunDeleteFinished(f.ctx, store.JobDeleteFinishedParams{Before: at(90 * time.Minute)})
	if err != nil || n != 1 {
		f.t.Fatalf("WorkflowRunDeleteFinished = %d, %v; want 1", n, err)
	}
	if _, _, err := f.s.WorkflowRunGet(f.ctx, "r1"); !errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("finished run r1 survived retention: %v", err)
	}
	if _, steps, err := f.s.WorkflowRunGet(f.ctx, "r2"); err != nil || len(steps) != 2 {
		f.t.Fatalf("active run r2 after retention: %d steps, %v", len(steps), err)
	}
	if _, ok, _ := f.s.WorkflowCacheLatest(f.ctx, "wf", "a"); !ok {
		f.t.Fatal("retention removed a live entry")
	}
	if latest, _, _ := f.s.WorkflowCacheLatest(f.ctx, "wf", "a"); latest.Key != "k2" {
		f.t.Fatalf("latest after retention = %s, want k2", latest.Key)
	}
	if _, ok, _ := f.s.WorkflowCacheGet(f.ctx, "k1", at(0)); ok {
		f.t.Fatal("retention kept k1, expired before Before")
	}
}

// testWorkflowRunRefs: WorkflowRunList finds runs by id prefix and by
// workflow, newest first (the first is the run a workflow's name means).
func testWorkflowRunRefs(f *fx) {
	for i, c := range []struct{ id, workflow string }{
		{"wf-ab1", "build"}, {"wf-ab2", "test"}, {"wf-ab3", "build"}, {"wf-cd1", "build"},
	} {
		r, steps := newRun(c.id, "", at(time.Duration(i)*time.Second))
		r.Workflow = c.workflow
		if err := f.s.WorkflowRunInsert(f.ctx, store.WorkflowRunInsertParams{Run: r, Steps: steps}); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, c := range []struct {
		p    store.WorkflowRunListParams
		want []string
	}{
		{store.WorkflowRunListParams{IDPrefix: "wf-ab"}, []string{"wf-ab3", "wf-ab2", "wf-ab1"}},
		{store.WorkflowRunListParams{IDPrefix: "wf-ab", Limit: 2}, []string{"wf-ab3", "wf-ab2"}},
		{store.WorkflowRunListParams{IDPrefix: "wf-ab2"}, []string{"wf-ab2"}},
		{store.WorkflowRunListParams{IDPrefix: "wf-c"}, []string{"wf-cd1"}},
		{store.WorkflowRunListParams{IDPrefix: "ab"}, nil},
		{store.WorkflowRunListParams{IDPrefix: "wf-*"}, nil},
		{store.WorkflowRunListParams{IDPrefix: "wf-[a]"}, nil},
		{store.WorkflowRunListParams{IDPrefix: "wf-ab", Workflow: "build"}, []string{"wf-ab3", "wf-ab1"}},
		{store.WorkflowRunListParams{Workflow: "build", Limit: 1}, []string{"wf-cd1"}},
		{store.WorkflowRunListParams{Workflow: "nope"}, nil},
	} {
		rs, err := f.s.WorkflowRunList(f.ctx, c.p)
		var got []string
		for _, r := range rs {
			got = append(got, r.ID)
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			f.t.Errorf("WorkflowRunList(%+v) = %v, %v; want %v", c.p, got, err, c.want)
		}
	}
}
