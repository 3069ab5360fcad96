package api

import (
	"crypto/subtle"
	"net/http"
	"net/url"
)

// UICookie is the cookie the dashboard's sign-in sets (internal/ui). It
// carries a token, and the API accepts it in place of the Authorization
// header on the /ui routes only.
const UICookie = "fusebox_token"

// SetUI serves the dashboard h at /ui and /ui/... behind the usual token
// auth with role read, where a UICookie is accepted in place of the
// Authorization header (a GET without a valid one is sent to /ui/login).
// /ui/login and /ui/static/ are open. GET /ui/events is the event stream
// of GET /v1/events and GET /ui/jobs/{id}/logs the log follow of GET
// /v1/jobs/{id}/logs, served here so the browser's cookie reaches them. h
// asks the request's role and actor with RequestRole and RequestActor.
// Call it before Serve.
func (s *Server) SetUI(h http.Handler) {
	for _, rt := range []route{
		{pattern: "/ui/login", handler: h.ServeHTTP},
		{pattern: "/ui/static/", handler: h.ServeHTTP},
		{pattern: "GET /ui/events", role: RoleRead, stream: true, handler: s.listEvents},
		{pattern: "GET /ui/jobs/{id}/logs", role: RoleRead, stream: true, handler: s.jobLogs},
		{pattern: "/ui", role: RoleRead, handler: h.ServeHTTP},
		{pattern: "/ui/", role: RoleRead, handler: h.ServeHTTP},
	} {
		rt.ui = true
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
}

// uiRequest gives a /ui request without an Authorization header the token
// of its UICookie.
func uiRequest(r *http.Request) *http.Request {
	if r.Header.Get("Authorization") != "" {
		return r
	}
	c, err := r.Cookie(UICookie)
	if err != nil || c.Value == "" {
		return r
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.Value)
	return r
}

// uiSignIn sends a GET of a /ui page that failed authentication to the
// sign-in form, which comes back to the page afterwards.
func uiSignIn(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// CheckToken reports the role of the token value, and false if no
// configured token has that value (or none is configured).
func (s *Server) CheckToken(value string) (Role, bool) {
	found := -1
	for i := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(value), []byte(s.cfg.Tokens[i].Value)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return s.cfg.Tokens[found].Role, true
}

// TokensRequired reports whether tokens are configured (then every route
// but the open ones needs one).
func (s *Server) TokensRequired() bool { return len(s.cfg.Tokens) > 0 }

// RequestRole is the role of the token r was authenticated with: RoleAdmin
// when no tokens are configured (everything is allowed, as GET /v1/whoami
// says).
func RequestRole(r *http.Request) Role {
	if role, ok := r.Context().Value(roleKey{}).(Role); ok {
		return role
	}
	return RoleAdmin
}

// RequestActor is who sent r, as the API records it with what it does:
// the token's name, "token-N", or ActorLocal without tokens.
func RequestActor(r *http.Request) string { return actor(r) }
