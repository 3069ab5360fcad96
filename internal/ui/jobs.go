package ui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// jobRow is one line of the jobs page.
type jobRow struct {
	J        *job.Job
	Duration string
}

func jobDuration(j *job.Job) string {
	switch {
	case j.StartedAt.IsZero():
		return "—"
	case j.FinishedAt.IsZero():
		return dur(time.Since(j.StartedAt)) + " so far"
	default:
		return dur(j.FinishedAt.Sub(j.StartedAt))
	}
}

// jobsPage: GET /ui/jobs, the 100 most recent jobs.
func (u *UI) jobsPage(w http.ResponseWriter, r *http.Request) {
	js, err := u.o.Jobs.List(r.Context(), store.JobListParams{Limit: 100})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, fmt.Errorf("listing jobs: %w", err))
		return
	}
	rows := make([]jobRow, 0, len(js))
	for _, j := range js {
		rows = append(rows, jobRow{J: j, Duration: jobDuration(j)})
	}
	p := u.newPage(w, r, "Jobs", "jobs")
	p.Body = rows
	u.render(w, "jobs.html", p)
}

// jobDetail is the body of a job's page.
type jobDetail struct {
	J           *job.Job
	Duration    string
	Transitions []job.Transition
	Attempts    []job.Attempt
	Logs        *job.Logs
	LogsNote    string
	Live        bool // it has not ended: the script follows its output
}

// jobPage: GET /ui/jobs/{id}: transitions, attempts and collected logs;
// while the job runs the script follows its output (GET
// /ui/jobs/{id}/logs?follow=true, the API's log follow) and reloads the
// page when it ends.
func (u *UI) jobPage(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	j, err := u.o.Jobs.Get(ctx, id)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, job.ErrNotFound) {
			status = http.StatusNotFound
		}
		u.fail(w, r, status, fmt.Errorf("job %s: %w", id, err))
		return
	}
	d := jobDetail{J: j, Duration: jobDuration(j), Live: !j.State.Terminal()}
	if d.Transitions, err = u.o.Jobs.Transitions(ctx, id); err != nil {
		u.fail(w, r, http.StatusInternalServerError, fmt.Errorf("job %s transitions: %w", id, err))
		return
	}
	if d.Attempts, err = u.o.Jobs.Attempts(ctx, id); err != nil {
		u.fail(w, r, http.StatusInternalServerError, fmt.Errorf("job %s attempts: %w", id, err))
		return
	}
	switch logs, err := u.o.Jobs.Logs(ctx, id); {
	case d.Live:
		// followed by the script from GET /ui/jobs/{id}/logs?follow=true
	case err == nil:
		d.Logs = &logs
	case errors.Is(err, job.ErrNotFound):
		d.LogsNote = "No output collected yet (it is collected when the container exits; follow it live with fusebox logs -f " + id + ")."
	default:
		d.LogsNote = "Reading the logs failed: " + err.Error()
	}
	p := u.newPage(w, r, "Job "+id, "jobs")
	p.Body = d
	u.render(w, "job.html", p)
}
