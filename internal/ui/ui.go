package ui

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Jobs is what the dashboard reads of jobs (api.Service satisfies it).
type Jobs interface {
	Get(ctx context.Context, id string) (*job.Job, error)
	List(ctx context.Context, p store.JobListParams) ([]*job.Job, error)
	Transitions(ctx context.Context, id string) ([]job.Transition, error)
	Attempts(ctx context.Context, id string) ([]job.Attempt, error)
	Logs(ctx context.Context, id string) (job.Logs, error)
	QueueStats(ctx context.Context) (api.QueueStats, error)
}

// Fleet is what the dashboard reads of the hosts and how it acts on them
// (api.Fleet satisfies it).
type Fleet interface {
	Hosts() []fleet.HostStatus
	HostAction(ctx context.Context, name string, op fleet.Operator) error
}

// Events reads the event log (api.Events satisfies it).
type Events interface {
	List(ctx context.Context, p event.ListParams) ([]event.Event, error)
}

// Workflows reads workflow runs (api.Workflows satisfies it).
type Workflows interface {
	Run(ctx context.Context, id string) (*api.WorkflowRun, error)
	Runs(ctx context.Context, f api.WorkflowRunFilter) ([]api.WorkflowRun, error)
}

// Breakers lists every named breaker (api.Breakers, *breaker.Registry).
type Breakers interface {
	Snapshots() []breaker.Snapshot
}

// Auth checks sign-in tokens (*api.Server satisfies it).
type Auth interface {
	CheckToken(value string) (api.Role, bool)
	TokensRequired() bool
}

// Options are what New needs. Jobs, Fleet and Auth are required; Events
// (no timeline, no live updates of fragments but the cards), Workflows (no
// runs) and Breakers may be nil.
type Options struct {
	Jobs      Jobs
	Fleet     Fleet
	Events    Events
	Workflows Workflows
	Breakers  Breakers // nil: the hosts' from Fleet, the others from the last "breaker" event of each name
	Auth      Auth
	Logger    *slog.Logger // nil: slog.Default()
}

// SessionCookie is the dashboard's session cookie: a random value that the
// CSRF token of its forms is derived from.
const SessionCookie = "fusebox_session"

// ContentSecurityPolicy is sent with every answer of the dashboard.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// UI is the dashboard's handler. Mount it with api.Server.SetUI.
type UI struct {
	o      Options
	log    *slog.Logger
	tmpl   *template.Template
	key    []byte // CSRF: HMAC key of this process
	mux    *http.ServeMux
	static http.Handler
}

// New builds the dashboard.
func New(o Options) (*UI, error) {
	switch {
	case o.Jobs == nil:
		return nil, errors.New("ui: Options.Jobs is required")
	case o.Fleet == nil:
		return nil, errors.New("ui: Options.Fleet is required")
	case o.Auth == nil:
		return nil, errors.New("ui: Options.Auth is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("ui: csrf key: %w", err)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	u := &UI{o: o, log: o.Logger, tmpl: t, key: key, mux: http.NewServeMux(),
		static: http.StripPrefix("/ui/static/", http.FileServerFS(sub))}
	u.routes()
	return u, nil
}

func (u *UI) routes() {
	u.mux.HandleFunc("GET /ui/static/", u.serveStatic)
	u.mux.HandleFunc("GET /ui/login", u.loginForm)
	u.mux.HandleFunc("POST /ui/login", u.login)
	u.mux.HandleFunc("POST /ui/logout", u.logout)
	u.mux.HandleFunc("GET /ui", u.fleetPage)
	u.mux.HandleFunc("GET /ui/{$}", u.fleetPage)
	u.mux.HandleFunc("GET /ui/hosts/{name}/card", u.hostCard)
	u.mux.HandleFunc("POST /ui/hosts/{name}/action", u.hostAction)
	u.mux.HandleFunc("GET /ui/breakers", u.breakersFragment)
	u.mux.HandleFunc("GET /ui/queue", u.queueFragment)
	u.mux.HandleFunc("GET /ui/jobs", u.jobsPage)
	u.mux.HandleFunc("GET /ui/jobs/{id}", u.jobPage)
	u.mux.HandleFunc("GET /ui/workflows", u.workflowsPage)
	u.mux.HandleFunc("GET /ui/workflows/{id}", u.runPage)
	u.mux.HandleFunc("GET /ui/timeline", u.timelinePage)
}

// ServeHTTP serves the dashboard, with its security headers on every
// answer.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

func (u *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	u.static.ServeHTTP(w, r)
}

// page is what every full page's layout needs.
type page struct {
	Title  string
	Nav    string // which menu entry is current
	Live   bool   // the script follows the event stream
	Since  string // RFC 3339 time the page was rendered: the stream starts there
	Who    string
	Role   api.Role
	Admin  bool
	Auth   bool // tokens are configured (a sign-out button)
	CSRF   string
	Now    time.Time
	Body   any
	Header string
}

// newPage fills what the layout needs from r, setting the session cookie
// if the browser has none.
func (u *UI) newPage(w http.ResponseWriter, r *http.Request, title, nav string) page {
	now := time.Now()
	role := api.RequestRole(r)
	return page{Title: title, Nav: nav, Since: now.UTC().Format(time.RFC3339Nano), Now: now,
		Who: api.RequestActor(r), Role: role, Admin: role == api.RoleAdmin,
		Auth: u.o.Auth.TokensRequired(), CSRF: u.csrfToken(w, r)}
}

// render executes the named template into a buffer first, so that an error
// is a clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := u.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		u.log.Error("ui: rendering", "template", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// fail answers an error as a plain page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		u.log.Warn("ui: request failed", "path", r.URL.Path, "err", err)
	}
	p := u.newPage(w, r, http.StatusText(status), "")
	p.Body = err.Error()
	w.WriteHeader(status)
	u.render(w, "error.html", p)
}

// session returns the browser's session value, setting a new one if it has
// none.
func (u *UI) session(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(SessionCookie); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: v, Path: "/ui", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	// The same request may render a form: let csrfToken see it.
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: v})
	return v
}

// csrfToken is the CSRF token of the browser's session.
func (u *UI) csrfToken(w http.ResponseWriter, r *http.Request) string {
	return u.csrfFor(u.session(w, r))
}

func (u *UI) csrfFor(session string) string {
	m := hmac.New(sha256.New, u.key)
	m.Write([]byte("fusebox-ui-csrf\x00" + session))
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether a form's csrf field matches the session cookie
// it came with.
func (u *UI) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(u.csrfFor(c.Value)))
}
