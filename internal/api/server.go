package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"fusebox/internal/fleet"
	"fusebox/internal/metrics"
)

// Server is the HTTP API server. Build it with New; serve it with Serve, or
// mount Handler in a server of your own.
type Server struct {
	cfg            Config
	svc            Service
	fleet          Fleet
	metrics        *metrics.Metrics // may be nil
	metricsHandler http.Handler
	log            *slog.Logger
	mux            *http.ServeMux
	routes         []route

	// streams is cancelled when Serve begins shutting down, so that log
	// follows (which would otherwise hold Shutdown until they end) stop.
	streams    context.Context
	stopStream context.CancelFunc

	follows      followLimiter
	eventStreams followLimiter
	events       Events    // nil: no GET /v1/events (SetEvents)
	alerts       Alerts    // nil: no /v1/alerts (SetAlerts)
	workflows    Workflows // nil: no /v1/workflows (SetWorkflows)
	breakers     Breakers  // nil: no /v1/breakers (SetBreakers)
	images       Images    // nil: no /v1/images (SetImages)
	recorder     Recorder  // nil: no POST /v1/mcp/tool-calls (SetRecorder)
}

// route is one endpoint: its ServeMux pattern, the role it needs, and
// whether it may stream (then it gets no request timeout of its own).
type route struct {
	pattern string
	role    Role // "" : open to all
	stream  bool
	ui      bool // a dashboard route: a UICookie stands in for the token (SetUI)
	handler http.HandlerFunc
}

// New returns a Server for svc and fl. m may be nil (no /metrics); logger
// may be nil (slog.Default()). cfg is used with its defaults filled in; call
// cfg.Validate first, or rely on Serve, which does.
func New(cfg Config, svc Service, fl Fleet, m *metrics.Metrics, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{cfg: cfg.WithDefaults(), svc: svc, fleet: fl, metrics: m, log: logger, mux: http.NewServeMux()}
	s.streams, s.stopStream = context.WithCancel(context.Background())
	s.follows = followLimiter{max: s.cfg.MaxFollowsPerToken, open: map[int]int{}}
	s.eventStreams = followLimiter{max: s.cfg.MaxFollowsPerToken, open: map[int]int{}}
	if m != nil {
		s.metricsHandler = m.Handler()
	}
	s.routes = []route{
		{pattern: "GET /healthz", handler: s.healthz},
		{pattern: "GET /v1/openapi.json", handler: s.openAPI},
		{pattern: "GET /metrics", role: RoleRead, handler: s.serveMetrics},

		{pattern: "POST /v1/jobs", role: RoleSubmit, handler: s.submitJob},
		{pattern: "GET /v1/jobs", role: RoleRead, handler: s.listJobs},
		{pattern: "GET /v1/jobs/{id}", role: RoleRead, handler: s.getJob},
		{pattern: "GET /v1/jobs/{id}/logs", role: RoleRead, stream: true, handler: s.jobLogs},
		{pattern: "POST /v1/jobs/{id}/cancel", role: RoleSubmit, handler: s.cancelJob},
		{pattern: "POST /v1/jobs/{id}/retry", role: RoleSubmit, handler: s.retryJob},
		{pattern: "GET /v1/queue", role: RoleRead, handler: s.queue},
		{pattern: "GET /v1/whoami", role: RoleRead, handler: s.whoami},
		{pattern: "GET /v1/events", role: RoleRead, stream: true, handler: s.listEvents},
		{pattern: "POST /v1/workflows/runs", role: RoleSubmit, handler: s.startWorkflow},
		{pattern: "GET /v1/workflows/runs", role: RoleRead, handler: s.listWorkflowRuns},
		{pattern: "GET /v1/workflows/runs/{id}", role: RoleRead, handler: s.getWorkflowRun},
		{pattern: "POST /v1/workflows/runs/{id}/cancel", role: RoleSubmit, handler: s.cancelWorkflowRun},
		{pattern: "GET /v1/workflows/runs/{id}/artifacts/{step}", role: RoleRead, stream: true, handler: s.getWorkflowArtifact},
		{pattern: "GET /v1/workflows/templates", role: RoleRead, handler: s.listWorkflowTemplates},
		{pattern: "GET /v1/workflows/templates/{name}", role: RoleRead, handler: s.getWorkflowTemplate},

		{pattern: "GET /v1/alerts", role: RoleRead, handler: s.listAlerts},
		{pattern: "POST /v1/alerts/test", role: RoleAdmin, handler: s.testAlerts},

		{pattern: "GET /v1/breakers", role: RoleRead, handler: s.listBreakers},
		{pattern: "GET /v1/images", role: RoleRead, handler: s.listImages},
		{pattern: "POST /v1/images/load", role: RoleAdmin, stream: true, handler: s.loadImage},
		{pattern: "POST /v1/images/pull", role: RoleAdmin, stream: true, handler: s.pullImage},
		{pattern: "POST /v1/images/remove", role: RoleAdmin, handler: s.removeImage},
		{pattern: "POST /v1/mcp/tool-calls", role: RoleRead, handler: s.recordToolCall},
		{pattern: "GET /v1/hosts", role: RoleRead, handler: s.listHosts},
		{pattern: "GET /v1/hosts/transitions", role: RoleRead, handler: s.hostTransitions},
		{pattern: "GET /v1/hosts/{name}", role: RoleRead, handler: s.getHost},
		{pattern: "POST /v1/hosts/{name}/isolate", role: RoleAdmin, handler: s.hostAction(fleet.ActionIsolate)},
		{pattern: "POST /v1/hosts/{name}/drain", role: RoleAdmin, handler: s.hostAction(fleet.ActionDrain)},
		{pattern: "POST /v1/hosts/{name}/release", role: RoleAdmin, handler: s.hostAction(fleet.ActionRelease)},
		{pattern: "POST /v1/hosts/{name}/reset", role: RoleAdmin, handler: s.hostAction(fleet.ActionReset)},
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	s.mux.Handle("/", s.wrap(route{pattern: "other", handler: s.noRoute}))
	return s
}

// SetMCP serves h at /mcp (every method; the MCP streamable HTTP
// transport) behind the usual token auth with role read: h sees the
// request's Authorization header and acts with that token, so the roles of
// the API it calls apply to each tool. The route streams (no request
// timeout); its streams end when Serve begins shutting down, like log
// follows. Call it before Serve.
func (s *Server) SetMCP(h http.Handler) {
	s.mux.Handle("/mcp", s.wrap(route{pattern: "/mcp", role: RoleRead, stream: true, handler: func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.streams, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	}}))
}

// Handler returns the server's handler, with every route, authentication
// and request logging.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves the API on ln until ctx ends, then shuts down gracefully:
// log follows are stopped, requests in flight get up to
// Config.ShutdownTimeout to finish. It returns nil after a clean shutdown.
// With Config.TLS it serves HTTPS (HTTP/2 and HTTP/1.1), picking up a
// renewed certificate from the files without a restart.
//
// It refuses (before serving anything) an invalid Config, a certificate
// that does not load, and a TCP listener beyond loopback without tokens or
// without TLS (see Config.CheckListen). ln is closed when Serve returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	if ln.Addr().Network() != "unix" {
		if err := s.cfg.CheckListen(ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout, // log follows lift it (see wrap)
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if s.cfg.TLS != nil {
		cr, err := newCertReloader(*s.cfg.TLS, s.log)
		if err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cr.GetCertificate}
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	s.log.Info("api: listening", "addr", ln.Addr().String(), "scheme", scheme, "auth", len(s.cfg.Tokens) > 0)

	select {
	case err := <-errc:
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.stopStream()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return fmt.Errorf("api: shutdown: %w", err)
	}
	<-errc
	return nil
}

// wrap adds to a route's handler: the request timeout and write deadline
// (a streaming route gets neither: it bounds each write itself),
// authentication, metrics and the debug request log.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		who := ""
		tokenIndex := -1 // no token: every client together
		defer func() {
			d := time.Since(start)
			timed := d
			if rec.streamed {
				timed = 0 // a follow lasts as long as its job
			}
			s.metrics.ObserveHTTPRequest(rt.pattern, rec.status, timed)
			s.log.Debug("api: request", "method", r.Method, "path", r.URL.Path, "route", rt.pattern,
				"status", rec.status, "bytes", rec.bytes, "duration", d, "remote", r.RemoteAddr, "token", who)
		}()

		if rt.role != "" && len(s.cfg.Tokens) > 0 {
			if rt.ui {
				r = uiRequest(r)
			}
			tok, err := s.authenticate(r, rt.role)
			if err != nil {
				if re := (*requestError)(nil); rt.ui && r.Method == http.MethodGet && errors.As(err, &re) && re.status == http.StatusUnauthorized {
					uiSignIn(rec, r)
					return
				}
				if re := (*requestError)(nil); errors.As(err, &re) && re.status == http.StatusUnauthorized {
					rec.Header().Set("WWW-Authenticate", `Bearer realm="fusebox"`)
				}
				s.writeError(rec, r, err)
				return
			}
			who, tokenIndex = tok.Name, tok.index
			actorName := who
			if actorName == "" {
				actorName = fmt.Sprintf("token-%d", tok.index+1)
			}
			r = r.WithContext(context.WithValue(r.Context(), actorKey{}, actorName))
			r = r.WithContext(context.WithValue(r.Context(), roleKey{}, tok.Role))
		}
		// Not every ResponseWriter supports deadlines (a test recorder);
		// that only means no bound.
		rc := http.NewResponseController(w)
		if rt.stream {
			_ = rc.SetWriteDeadline(time.Time{})
			r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tokenIndex))
		} else {
			_ = rc.SetWriteDeadline(start.Add(s.cfg.WriteTimeout))
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rt.handler(rec, r)
	})
}

// authenticate finds the request's bearer token and checks its role.
func (s *Server) authenticate(r *http.Request, need Role) (authToken, error) {
	h := r.Header.Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return authToken{}, &requestError{status: http.StatusUnauthorized, code: CodeUnauthorized,
			msg: "authentication required: send \"Authorization: Bearer <token>\" (fusebox CLI: --token or FUSEBOX_TOKEN)"}
	}
	value = strings.TrimSpace(value)
	found := -1
	for i := range s.cfg.Tokens {
		// Compare with every token, in constant time, so that timing says
		// nothing about which token was close.
		if subtle.ConstantTimeCompare([]byte(value), []byte(s.cfg.Tokens[i].Value)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return authToken{}, &requestError{status: http.StatusUnauthorized, code: CodeUnauthorized, msg: "invalid token"}
	}
	tok := authToken{Token: s.cfg.Tokens[found], index: found}
	if tok.Role.level() < need.level() {
		return tok, &requestError{status: http.StatusForbidden, code: CodeForbidden,
			msg: fmt.Sprintf("this token has role %s; %s %s needs role %s", tok.Role, r.Method, r.URL.Path, need)}
	}
	return tok, nil
}

// authToken is the token a request authenticated with, and its index in
// Config.Tokens (which keys the per-token bounds).
type authToken struct {
	Token
	index int
}

// tokenKey is the context key of a streaming request's token index (-1:
// no tokens are configured).
type tokenKey struct{}

// noRoute answers requests no route matches: 405 when the path exists with
// another method, else 404; both as JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "/" && p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, &requestError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			msg: fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))})
		return
	}
	s.writeError(w, r, &requestError{status: http.StatusNotFound, code: CodeNoRoute,
		msg: fmt.Sprintf("no endpoint %s %s; the API is described at GET /v1/openapi.json", r.Method, r.URL.Path)})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsHandler == nil {
		s.writeError(w, r, &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "metrics are not enabled on this server"})
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Error: "encoding response: " + err.Error(), Code: CodeInternal})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// recorder keeps the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer (Flush, deadlines).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	streamed    bool // the handler streamed (a log follow): not timed
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
