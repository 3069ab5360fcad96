package main

import (
	"encoding/json"
	"strings"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/workflow/wfrun"
)

// TestWorkflowRefs runs the diamond template twice on a real `fusebox
// serve`, then finds its runs as a user types them: by a unique prefix of
// the id (with and without wf-) and by the workflow's name (its newest
// run); a prefix of both runs is ambiguous, and an unknown reference is
// named without the store's words.
func TestWorkflowRefs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker engines")
	}
	e := startDockerEnv(t)
	for range 2 {
		if r := e.fusebox("workflow", "run", "diamond", "-p", "lines=5"); r.code != 0 {
			t.Fatalf("workflow run diamond: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	}
	r := e.fusebox("-o", "json", "workflow", "runs", "--workflow", "diamond")
	var runs []api.WorkflowRun
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &runs) != nil || len(runs) != 2 {
		t.Fatalf("workflow runs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	newest, older := runs[0], runs[1]
	if !strings.HasPrefix(older.ID, api.RunIDPrefix) {
		t.Fatalf("run id %s does not start with %s", older.ID, api.RunIDPrefix)
	}
	// The shortest prefix of older's id that newest's does not share.
	n := len(api.RunIDPrefix) + 1
	for strings.HasPrefix(newest.ID, older.ID[:n]) {
		n++
	}
	status := func(ref string) api.WorkflowRun {
		t.Helper()
		r := e.fusebox("-o", "json", "workflow", "status", ref)
		var run api.WorkflowRun
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &run) != nil {
			t.Fatalf("workflow status %s: exit %d\n%s%s", ref, r.code, r.stdout, r.stderr)
		}
		return run
	}
	for _, c := range []struct{ ref, want string }{
		{older.ID, older.ID},
		{older.ID[:n], older.ID},
		{strings.TrimPrefix(older.ID[:n], api.RunIDPrefix), older.ID},
		{"diamond", newest.ID},
	} {
		if got := status(c.ref); got.ID != c.want || got.State != wfrun.RunSucceeded {
			t.Errorf("workflow status %s = %s %s, want %s succeeded", c.ref, got.ID, got.State, c.want)
		}
	}
	r = e.fusebox("workflow", "status", "diamond")
	if r.code != 0 || !strings.Contains(r.stdout, "run "+newest.ID+" of diamond: succeeded") {
		t.Errorf("workflow status diamond: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = e.fusebox("workflow", "status", older.ID[:n-1])
	if r.code != exitError || !strings.Contains(r.stderr, older.ID) || !strings.Contains(r.stderr, newest.ID) {
		t.Errorf("workflow status %s (both runs): exit %d, want %d listing both\n%s", older.ID[:n-1], r.code, exitError, r.stderr)
	}
	for _, args := range [][]string{
		{"workflow", "status", "nope"},
		{"workflow", "cancel", "nope"},
		{"workflow", "artifacts", "nope"},
		{"workflow", "artifacts", "nope", "d"},
	} {
		r = e.fusebox(args...)
		if r.code != exitError || !strings.Contains(r.stderr, `"nope"`) || strings.Contains(r.stderr, "sqlite") ||
			!strings.Contains(r.stderr, "fusebox workflow runs") {
			t.Errorf("fusebox %s: exit %d, want %d naming \"nope\" and the hint\n%s", strings.Join(args, " "), r.code, exitError, r.stderr)
		}
	}
	r = e.fusebox("workflow", "artifacts", "diamond", "d", "-O", t.TempDir()+"/d.tar")
	if r.code != 0 || !strings.Contains(r.stderr, "bytes (a tar)") {
		t.Errorf("workflow artifacts diamond d: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.fusebox("workflow", "cancel", strings.TrimPrefix(older.ID[:n], api.RunIDPrefix))
	if r.code != exitError || !strings.Contains(r.stderr, "has ended") {
		t.Errorf("workflow cancel of an ended run by prefix: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
