package api

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"fusebox/breaker"
)

// Breakers is what the API needs to list every named circuit breaker
// (*breaker.Registry is one): the hosts' ("host/<name>"), the workflows'
// ("workflow/<name>"), and any other component's.
type Breakers interface {
	Snapshots() []breaker.Snapshot
}

// SetBreakers serves GET /v1/breakers from b. Without it that endpoint
// answers 404.
func (s *Server) SetBreakers(b Breakers) { s.breakers = b }

// BreakerInfo is one named circuit breaker.
type BreakerInfo struct {
	Name                string        `json:"name"` // host/<host>, workflow/<workflow>, ...
	Kind                string        `json:"kind"` // what it guards: host, workflow, or the name's first part
	State               breaker.State `json:"state"`
	ConsecutiveFailures int           `json:"consecutive_failures"`
	Trips               int           `json:"trips"`
	OpenedAt            time.Time     `json:"opened_at,omitzero"`
	NextProbeAt         time.Time     `json:"next_probe_at,omitzero"`
	Requests            int64         `json:"requests"` // calls seen since it was created
	Failures            int64         `json:"failures"`
	Rejected            int64         `json:"rejected"`
}

// BreakerList is the body of GET /v1/breakers.
type BreakerList struct {
	Breakers []BreakerInfo `json:"breakers"`
}

// listBreakers: GET /v1/breakers, by name.
func (s *Server) listBreakers(w http.ResponseWriter, r *http.Request) {
	if s.breakers == nil {
		s.writeError(w, r, &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "breakers are not served by this server"})
		return
	}
	for k := range r.URL.Query() {
		s.writeError(w, r, badRequest(k, "unknown query parameter %q: GET /v1/breakers takes none", k))
		return
	}
	out := BreakerList{Breakers: []BreakerInfo{}}
	for _, sn := range s.breakers.Snapshots() {
		kind, _, ok := strings.Cut(sn.Name, "/")
		if !ok {
			kind = ""
		}
		out.Breakers = append(out.Breakers, BreakerInfo{Name: sn.Name, Kind: kind, State: sn.State,
			ConsecutiveFailures: sn.ConsecutiveFailures, Trips: sn.Trips, OpenedAt: sn.OpenedAt, NextProbeAt: sn.NextProbeAt,
			Requests: int64(sn.Totals.Requests), Failures: int64(sn.Totals.Failures), Rejected: int64(sn.Totals.Rejected)})
	}
	sort.Slice(out.Breakers, func(i, j int) bool { return out.Breakers[i].Name < out.Breakers[j].Name })
	writeJSON(w, http.StatusOK, out)
}
