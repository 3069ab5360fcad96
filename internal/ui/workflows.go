package ui

import (
	"errors"
	"fmt"
	"net/http"

	"fusebox/internal/api"
)

// workflowsPage: GET /ui/workflows, the 100 most recent runs.
func (u *UI) workflowsPage(w http.ResponseWriter, r *http.Request) {
	p := u.newPage(w, r, "Workflow runs", "workflows")
	if u.o.Workflows == nil {
		p.Body = []api.WorkflowRun(nil)
		u.render(w, "workflows.html", p)
		return
	}
	runs, err := u.o.Workflows.Runs(r.Context(), api.WorkflowRunFilter{Limit: 100})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, fmt.Errorf("listing workflow runs: %w", err))
		return
	}
	p.Body = runs
	u.render(w, "workflows.html", p)
}

// runDetail is the body of a run's page.
type runDetail struct {
	R   *api.WorkflowRun
	DAG dag
}

// runPage: GET /ui/workflows/{id}: the run, its steps, and the DAG.
func (u *UI) runPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if u.o.Workflows == nil {
		u.fail(w, r, http.StatusNotFound, errors.New("workflows are not enabled on this server"))
		return
	}
	// id may be a run's id, a unique prefix of one or a workflow's name,
	// as in the API.
	run, err := api.ResolveRun(r.Context(), u.o.Workflows, id)
	if err != nil {
		status := http.StatusInternalServerError
		var hs interface{ HTTPStatus() int }
		switch {
		case errors.Is(err, api.ErrRunNotFound):
			status = http.StatusNotFound
		case errors.As(err, &hs):
			status = hs.HTTPStatus()
		}
		u.fail(w, r, status, fmt.Errorf("workflow run %s: %w", id, err))
		return
	}
	p := u.newPage(w, r, "Run "+run.ID, "workflows")
	p.Body = runDetail{R: run, DAG: layoutDAG(run.Steps)}
	u.render(w, "run.html", p)
}

// dag is a run's steps laid out for the SVG: one column per depth (the
// longest chain of dependencies before the step), edges from each
// dependency to its dependent.
type dag struct {
	Width, Height int
	Nodes         []dagNode
	Edges         []dagEdge
}

type dagNode struct {
	X, Y, W, H int
	TX, TY     int // label position
	S          api.WorkflowStep
}

type dagEdge struct {
	D string // the SVG path
}

const (
	nodeW, nodeH = 170, 40
	colGap       = 60
	rowGap       = 18
	pad          = 16
)

func layoutDAG(steps []api.WorkflowStep) dag {
	byID := map[string]int{}
	for i, s := range steps {
		byID[s.ID] = i
	}
	depth := make([]int, len(steps))
	state := make([]int, len(steps)) // 0 new, 1 visiting, 2 done
	var visit func(i int) int
	visit = func(i int) int {
		switch state[i] {
		case 1:
			return 0 // a cycle (def refuses them): do not loop
		case 2:
			return depth[i]
		}
		state[i] = 1
		d := 0
		for _, dep := range steps[i].DependsOn {
			if j, ok := byID[dep]; ok {
				d = max(d, visit(j)+1)
			}
		}
		depth[i], state[i] = d, 2
		return d
	}
	rows := map[int]int{}
	var g dag
	pos := make([]dagNode, len(steps))
	for i, s := range steps {
		d := visit(i)
		row := rows[d]
		rows[d]++
		x := pad + d*(nodeW+colGap)
		y := pad + row*(nodeH+rowGap)
		pos[i] = dagNode{X: x, Y: y, W: nodeW, H: nodeH, TX: x + 10, TY: y + 16, S: s}
		g.Width = max(g.Width, x+nodeW+pad)
		g.Height = max(g.Height, y+nodeH+pad)
	}
	for i, s := range steps {
		for _, dep := range s.DependsOn {
			j, ok := byID[dep]
			if !ok {
				continue
			}
			a, b := pos[j], pos[i]
			x1, y1 := a.X+a.W, a.Y+a.H/2
			x2, y2 := b.X, b.Y+b.H/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, dagEdge{D: fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2-6, y2)})
		}
	}
	g.Nodes = pos
	return g
}
