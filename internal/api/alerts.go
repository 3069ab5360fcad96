package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"fusebox/breaker"
)

// Alerts is what the API needs of the operator alerts: internal/server
// adapts the alert manager and the store to it.
type Alerts interface {
	// Status returns every receiver with its delivery state, and the
	// alerts firing now.
	Status(ctx context.Context) (AlertsResponse, error)
	// Test sends a test alert to the named receiver ("": every one) now and
	// returns how each answered; an unknown receiver wraps
	// ErrReceiverNotFound.
	Test(ctx context.Context, receiver string) ([]AlertTestResult, error)
}

// ErrReceiverNotFound is wrapped by Alerts errors for a receiver name that
// is not configured (404).
var ErrReceiverNotFound = errors.New("no such alert receiver")

// SetAlerts serves /v1/alerts from a. Call it before Serve; without it
// those endpoints answer 404.
func (s *Server) SetAlerts(a Alerts) { s.alerts = a }

// AlertsResponse is the body of GET /v1/alerts.
type AlertsResponse struct {
	Receivers []AlertReceiver `json:"receivers"`
	Firing    []FiringAlert   `json:"firing"`
}

// AlertReceiver is one webhook receiver of the alerts and its delivery
// state.
type AlertReceiver struct {
	Name            string        `json:"name"`
	URL             string        `json:"url"` // with any credentials in it redacted
	Breaker         breaker.State `json:"breaker"`
	Pending         int           `json:"pending"` // notices in its outbox, not delivered yet
	LastDeliveredAt time.Time     `json:"last_delivered_at,omitzero"`
	LastError       string        `json:"last_error,omitempty"`
	LastErrorAt     time.Time     `json:"last_error_at,omitzero"`
}

// FiringAlert is an alert firing now.
type FiringAlert struct {
	Name        string            `json:"name"` // the alertname label
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary,omitempty"`
	StartsAt    time.Time         `json:"starts_at"`
	Fingerprint string            `json:"fingerprint"`
}

// AlertTestRequest is the optional body of POST /v1/alerts/test.
type AlertTestRequest struct {
	Receiver string `json:"receiver,omitempty"` // "": every receiver
}

// AlertTestResponse is the answer of POST /v1/alerts/test.
type AlertTestResponse struct {
	Results []AlertTestResult `json:"results"`
}

// AlertTestResult is how one receiver answered a test alert.
type AlertTestResult struct {
	Receiver   string  `json:"receiver"`
	WebhookID  string  `json:"webhook_id"`
	Status     int     `json:"status,omitempty"` // its HTTP status; 0 if it did not answer
	Error      string  `json:"error,omitempty"`  // "" when it took the alert (2xx)
	DurationMS float64 `json:"duration_ms"`
}

// listAlerts: GET /v1/alerts.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	if s.alerts == nil {
		s.writeError(w, r, errNoAlerts)
		return
	}
	st, err := s.alerts.Status(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// testAlerts: POST /v1/alerts/test, body {"receiver": "..."} or none.
func (s *Server) testAlerts(w http.ResponseWriter, r *http.Request) {
	if s.alerts == nil {
		s.writeError(w, r, errNoAlerts)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var req AlertTestRequest
	if err := decodeObject(r.Body, &req, `{"receiver": "ops"}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.alerts.Test(r.Context(), strings.TrimSpace(req.Receiver))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res == nil {
		res = []AlertTestResult{}
	}
	s.log.Info("api: test alert sent", "receiver", req.Receiver, "by", actor(r))
	writeJSON(w, http.StatusOK, AlertTestResponse{Results: res})
}

var errNoAlerts = &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "alerts are not enabled on this server"}
