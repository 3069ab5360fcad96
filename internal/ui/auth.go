package ui

import (
	"net/http"
	"strings"

	"fusebox/internal/api"
)

// loginData is the sign-in form.
type loginData struct {
	Next  string
	Error string
}

// safeNext is where to go after signing in: a /ui path of this server,
// never another site.
func safeNext(v string) string {
	if !strings.HasPrefix(v, "/ui") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\\r\n") ||
		strings.HasPrefix(v, "/ui/login") {
		return "/ui"
	}
	return v
}

// loginForm: GET /ui/login. Without tokens there is nothing to sign in
// to: it goes to the dashboard.
func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	if !u.o.Auth.TokensRequired() {
		http.Redirect(w, r, "/ui", http.StatusSeeOther)
		return
	}
	p := u.newPage(w, r, "Sign in", "")
	p.Body = loginData{Next: safeNext(r.URL.Query().Get("next"))}
	u.render(w, "login.html", p)
}

// login: POST /ui/login with a token: a valid one is kept in the
// HttpOnly, SameSite=Strict cookie the API accepts on /ui routes.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := safeNext(r.PostFormValue("next"))
	if !u.o.Auth.TokensRequired() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if _, ok := u.o.Auth.CheckToken(tok); !ok || tok == "" {
		p := u.newPage(w, r, "Sign in", "")
		p.Body = loginData{Next: next, Error: "That token is not valid on this server."}
		w.WriteHeader(http.StatusUnauthorized)
		u.render(w, "login.html", p)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.UICookie, Value: tok, Path: "/ui", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout: POST /ui/logout (CSRF-checked) forgets the token.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if !u.checkCSRF(r) {
		u.fail(w, r, http.StatusForbidden, errCSRF)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.UICookie, Value: "", Path: "/ui", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
