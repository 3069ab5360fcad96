package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Bounds of GET /v1/jobs?limit=: a limit above ListLimitMax is refused
// (400 naming limit), not clamped, so that a client never takes a short
// page for the end of the list.
const (
	ListLimitDefault = 50
	ListLimitMax     = 500
)

// submitJob: POST /v1/jobs.
func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	spec, err := decodeSpec(r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if spec.IdempotencyKey != "" && spec.IdempotencyKey != key {
			s.writeError(w, r, badRequest("idempotency_key", "differs from the Idempotency-Key header (%q); send one or the other", key))
			return
		}
		spec.IdempotencyKey = key
	}
	j, existed, err := s.svc.Submit(r.Context(), spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/jobs/"+url.PathEscape(j.ID))
	writeJSON(w, status, SubmitResponse{Job: j, Existed: existed})
}

// listJobs: GET /v1/jobs?state=running&state=queued&host=h1&limit=50&before=<id>.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	p, err := parseListParams(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	jobs, err := s.svc.List(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := JobList{Jobs: jobs}
	if out.Jobs == nil {
		out.Jobs = []*job.Job{}
	}
	if len(jobs) > 0 && len(jobs) >= p.Limit {
		out.NextBefore = jobs[len(jobs)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// parseListParams reads the query of GET /v1/jobs. States may be repeated
// or comma-separated. Unknown parameters are refused, so that a typo
// (?status=) does not silently list everything.
func parseListParams(q url.Values) (store.JobListParams, error) {
	p := store.JobListParams{Limit: ListLimitDefault}
	for k, vs := range q {
		switch k {
		case "state":
			for _, v := range vs {
				for st := range strings.SplitSeq(v, ",") {
					st = strings.TrimSpace(st)
					if st == "" {
						continue
					}
					if !job.State(st).Valid() {
						return p, badRequest("state", "unknown state %q: use one of %s", st, stateNames())
					}
					p.States = append(p.States, job.State(st))
				}
			}
		case "host":
			p.Host = vs[len(vs)-1]
		case "name":
			p.Name = vs[len(vs)-1]
		case "before":
			p.BeforeID = vs[len(vs)-1]
		case "limit":
			n, err := strconv.Atoi(vs[len(vs)-1])
			if err != nil || n < 1 || n > ListLimitMax {
				return p, badRequest("limit", "must be an integer from 1 to %d (got %q)", ListLimitMax, vs[len(vs)-1])
			}
			p.Limit = n
		default:
			return p, badRequest(k, "unknown query parameter %q: use state, host, name, limit or before", k)
		}
	}
	return p, nil
}

func stateNames() string {
	names := make([]string, len(job.States))
	for i, s := range job.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// maxAmbiguous bounds the ids an ambiguous prefix's error lists.
const maxAmbiguous = 5

// resolveJob finds the job ref means, as docker finds a container: its
// id, else its name (the newest job that holds it), else a unique prefix
// of its id. No match is a 404 naming ref; a prefix of several ids a 400
// (CodeAmbiguous) listing some of them.
func (s *Server) resolveJob(ctx context.Context, ref string) (*job.Job, error) {
	j, err := s.svc.Get(ctx, ref)
	if !errors.Is(err, job.ErrNotFound) {
		return j, err
	}
	jobs, err := s.svc.List(ctx, store.JobListParams{Name: ref, Limit: 1})
	if err != nil || len(jobs) == 1 {
		return first(jobs), err
	}
	jobs, err = s.svc.List(ctx, store.JobListParams{IDPrefix: ref, Limit: maxAmbiguous + 1})
	switch {
	case err != nil:
		return nil, err
	case len(jobs) == 1:
		return jobs[0], nil
	case len(jobs) == 0:
		return nil, &requestError{status: http.StatusNotFound, code: CodeNotFound,
			msg: fmt.Sprintf("no job with id, name or id prefix %q", ref)}
	}
	ids := make([]string, 0, maxAmbiguous)
	for _, j := range jobs[:min(len(jobs), maxAmbiguous)] {
		ids = append(ids, j.ID)
	}
	more := ""
	if len(jobs) > maxAmbiguous {
		more = ", ..."
	}
	return nil, &requestError{status: http.StatusBadRequest, code: CodeAmbiguous, field: "id",
		msg: fmt.Sprintf("%v: %q matches %s%s; give more of the id", job.ErrAmbiguous, ref, strings.Join(ids, ", "), more)}
}

func first(jobs []*job.Job) *job.Job {
	if len(jobs) == 0 {
		return nil
	}
	return jobs[0]
}

// getJob: GET /v1/jobs/{id}, with its transitions and attempts. Here and
// in every /v1/jobs/{id} route, {id} may be a name or a unique id prefix.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.resolveJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := j.ID
	ts, err := s.svc.Transitions(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	as, err := s.svc.Attempts(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []job.Transition{}
	}
	if as == nil {
		as = []job.Attempt{}
	}
	writeJSON(w, http.StatusOK, JobDetail{Job: j, Transitions: ts, Attempts: as})
}

// cancelJob: POST /v1/jobs/{id}/cancel.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	rj, err := s.resolveJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.svc.Cancel(r.Context(), rj.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// retryJob: POST /v1/jobs/{id}/retry: submit a finished job's spec again,
// as a new job (without its idempotency key, which belongs to the first).
// A job that has not ended is a 409: cancel it first, or wait.
func (s *Server) retryJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.resolveJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := j.ID
	if !j.State.Terminal() {
		s.writeError(w, r, &requestError{status: http.StatusConflict, code: CodeConflict,
			msg: fmt.Sprintf("job %s is %s: only a job that has ended can be retried (cancel it first, or wait for it)", id, j.State)})
		return
	}
	spec := j.Spec
	spec.IdempotencyKey = ""
	nj, _, err := s.svc.Submit(r.Context(), spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("api: job retried", "job", id, "as", nj.ID, "by", actor(r))
	w.Header().Set("Location", "/v1/jobs/"+url.PathEscape(nj.ID))
	writeJSON(w, http.StatusCreated, SubmitResponse{Job: nj, RetryOf: id})
}

// queue: GET /v1/queue.
func (s *Server) queue(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.QueueStats(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if st.ByState == nil {
		st.ByState = map[job.State]int{}
	}
	writeJSON(w, http.StatusOK, st)
}
