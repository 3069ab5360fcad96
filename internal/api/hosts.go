package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"fusebox/internal/fleet"
)

// listHosts: GET /v1/hosts.
func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, HostList{Hosts: hostsOf(s.fleet.Hosts())})
}

// hostTransitions: GET /v1/hosts/transitions.
func (s *Server) hostTransitions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, HostTransitionList{Transitions: hostTransitionsOf(s.fleet.HostTransitions())})
}

// getHost: GET /v1/hosts/{name}.
func (s *Server) getHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.host(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, HostResponse{Host: hostOf(h)})
}

// MaxReasonBytes bounds the reason of an operator action.
const MaxReasonBytes = 500

// ActorLocal is who acted when the API has no tokens (it then listens on
// loopback or a unix socket only). With tokens it is the token's name, or
// "token-N" (N counting from 1 in the configuration) for one without.
const ActorLocal = "local"

// hostAction returns the handler of POST /v1/hosts/{name}/<action>: it
// reads the optional body {"reason": "..."}, has the action applied and
// stored (who: the token's name), and answers with the host as it is after.
func (s *Server) hostAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		body, err := decodeHostAction(r.Body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		op := fleet.Operator{Action: action, By: actor(r), Reason: body.Reason, At: time.Now()}
		if err := s.fleet.HostAction(r.Context(), name, op); err != nil {
			s.writeError(w, r, fmt.Errorf("%s: %w", action, err))
			return
		}
		s.log.Info("api: host "+action, "host", name, "by", op.By, "reason", op.Reason)
		h, err := s.host(name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, HostResponse{Host: hostOf(h)})
	}
}

// decodeHostAction reads the body of an operator action: empty, or a
// HostActionRequest.
func decodeHostAction(r io.Reader) (HostActionRequest, error) {
	var req HostActionRequest
	if err := decodeObject(r, &req, `{"reason": "disk failing"}`); err != nil {
		return req, err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case len(req.Reason) > MaxReasonBytes:
		return req, badRequest("reason", "%d bytes: at most %d", len(req.Reason), MaxReasonBytes)
	case !utf8.ValidString(req.Reason):
		return req, badRequest("reason", "must be valid UTF-8")
	case strings.ContainsFunc(req.Reason, unicode.IsControl):
		return req, badRequest("reason", "must be one line of text (no control characters)")
	}
	return req, nil
}

// actor is who sent r: its token's name, "token-N" for a token without a
// name, or ActorLocal without tokens.
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorLocal
}

// actorKey is the context key of the request's actor (see actor).
type actorKey struct{}

// roleKey is the context key of the role of the request's token (absent
// without tokens).
type roleKey struct{}

// whoami answers GET /v1/whoami: who the request's token acts as, and its
// role.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	role, ok := r.Context().Value(roleKey{}).(Role)
	if !ok {
		role = RoleAdmin // no tokens: everything is allowed
	}
	writeJSON(w, http.StatusOK, WhoAmI{Name: actor(r), Role: role})
}

func (s *Server) host(name string) (fleet.HostStatus, error) {
	for _, h := range s.fleet.Hosts() {
		if h.Name == name {
			return h, nil
		}
	}
	return fleet.HostStatus{}, fmt.Errorf("host %q: %w", name, ErrHostNotFound)
}
