package ui

import (
	"testing"

	"fusebox/internal/api"
)

// Steps are drawn one column per depth (the longest chain before them),
// with an edge per dependency; a cycle (refused by def, never stored)
// does not loop.
func TestLayoutDAG(t *testing.T) {
	g := layoutDAG([]api.WorkflowStep{
		{ID: "a"}, {ID: "b", DependsOn: []string{"a"}}, {ID: "c", DependsOn: []string{"a"}},
		{ID: "d", DependsOn: []string{"b", "c"}}, {ID: "e", DependsOn: []string{"a", "d"}},
	})
	col := map[string]int{}
	for _, n := range g.Nodes {
		col[n.S.ID] = (n.X - pad) / (nodeW + colGap)
	}
	for id, want := range map[string]int{"a": 0, "b": 1, "c": 1, "d": 2, "e": 3} {
		if col[id] != want {
			t.Errorf("step %s in column %d, want %d", id, col[id], want)
		}
	}
	if len(g.Edges) != 6 {
		t.Errorf("%d edges, want 6", len(g.Edges))
	}
	if g.Width < pad+3*(nodeW+colGap)+nodeW || g.Height < pad+2*nodeH+rowGap {
		t.Errorf("picture %dx%d is too small for 4 columns and 2 rows", g.Width, g.Height)
	}
	cyc := layoutDAG([]api.WorkflowStep{{ID: "x", DependsOn: []string{"y"}}, {ID: "y", DependsOn: []string{"x"}}})
	if len(cyc.Nodes) != 2 {
		t.Errorf("a cycle lays out %d nodes, want 2", len(cyc.Nodes))
	}
}

// After signing in the browser goes back to a dashboard page of this
// server, never anywhere else.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/ui",
		"/ui/jobs/1?x=2":       "/ui/jobs/1?x=2",
		"https://evil.example": "/ui",
		"//evil.example/ui":    "/ui",
		"/ui\\@evil":           "/ui",
		"/ui/login?next=/ui":   "/ui",
		"/v1/hosts":            "/ui",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
