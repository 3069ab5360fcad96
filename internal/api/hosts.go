package api

import (
	"fmt"
	"net/http"

	"fusebox/internal/fleet"
)

// listHosts: GET /v1/hosts.
func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) {
	hs := s.fleet.Hosts()
	if hs == nil {
		hs = []fleet.HostStatus{}
	}
	writeJSON(w, http.StatusOK, HostList{Hosts: hs})
}

// hostTransitions: GET /v1/hosts/transitions.
func (s *Server) hostTransitions(w http.ResponseWriter, r *http.Request) {
	ts := s.fleet.HostTransitions()
	if ts == nil {
		ts = []fleet.Transition{}
	}
	writeJSON(w, http.StatusOK, HostTransitionList{Transitions: ts})
}

// getHost: GET /v1/hosts/{name}.
func (s *Server) getHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.host(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, HostResponse{Host: h})
}

// hostAction returns the handler of POST /v1/hosts/{name}/<action>, which
// answers with the host as it is after the action.
func (s *Server) hostAction(action string, do func(Fleet, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := do(s.fleet, name); err != nil {
			s.writeError(w, r, fmt.Errorf("%s: %w", action, err))
			return
		}
		s.log.Info("api: host "+action, "host", name)
		h, err := s.host(name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, HostResponse{Host: h})
	}
}

func (s *Server) host(name string) (fleet.HostStatus, error) {
	for _, h := range s.fleet.Hosts() {
		if h.Name == name {
			return h, nil
		}
	}
	return fleet.HostStatus{}, fmt.Errorf("host %q: %w", name, ErrHostNotFound)
}
