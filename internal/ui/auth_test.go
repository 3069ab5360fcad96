package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/enginetest"
	"fusebox/internal/ui"
)

// client is a browser-like HTTP client: a cookie jar, and redirects
// returned rather than followed.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, bearer string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMain(m *testing.M) { enginetest.Main(m) }

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// Sign-in, the cookie, its scope, the roles and the CSRF check, over HTTP
// against a real server.
func TestDashboardAuthAndCSRF(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	base := startServer(t, engines)
	host := engines.Engines[0].Name

	anon := client(t)
	resp, _ := do(t, anon, "GET", base+"/ui", nil, "")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("GET /ui without a token: %d to %q, want 303 to the sign-in form", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do(t, anon, "GET", base+"/ui/static/ui.js", nil, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != ui.ContentSecurityPolicy {
		t.Fatalf("GET /ui/static/ui.js: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = do(t, anon, "POST", base+"/ui/login", url.Values{"token": {"wrong"}}, "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong token: %d, want 401", resp.StatusCode)
	}

	// A read token signs in: an HttpOnly, SameSite=Strict cookie for /ui.
	reader := client(t)
	resp, _ = do(t, reader, "POST", base+"/ui/login", url.Values{"token": {readToken}, "next": {"https://evil.example/"}}, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui" {
		t.Fatalf("sign-in: %d to %q, want 303 to /ui (never another site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var tok *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == api.UICookie {
			tok = c
		}
	}
	if tok == nil || !tok.HttpOnly || tok.SameSite != http.SameSiteStrictMode || tok.Path != "/ui" {
		t.Fatalf("sign-in cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui", tok)
	}
	resp, page := do(t, reader, "GET", base+"/ui", nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="host-`+host+`"`) {
		t.Fatalf("GET /ui signed in: %d\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "form class=\"actions\"") {
		t.Errorf("the page has inline script or style, or operator forms for a read token:\n%s", page)
	}
	// The cookie is no token for the API itself.
	req, _ := http.NewRequest("GET", base+"/v1/hosts", nil)
	req.AddCookie(&http.Cookie{Name: api.UICookie, Value: readToken})
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/hosts with the dashboard's cookie: %v %v, want 401", r2.StatusCode, err)
	}
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token on the page (sign-out form)")
	}
	resp, _ = do(t, reader, "POST", base+"/ui/hosts/"+host+"/action", url.Values{"csrf": {csrf[1]}, "action": {"isolate"}}, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("isolate with a read token: %d, want 403", resp.StatusCode)
	}

	// An admin: without the CSRF token (or with another session's) the
	// action is refused; with it, applied and stored with who and why.
	admin := client(t)
	do(t, admin, "POST", base+"/ui/login", url.Values{"token": {adminToken}}, "")
	_, page = do(t, admin, "GET", base+"/ui", nil, "")
	mine := csrfField.FindStringSubmatch(page)
	if mine == nil || !strings.Contains(page, `value="isolate"`) {
		t.Fatalf("no operator form for an admin:\n%s", page)
	}
	for name, form := range map[string]url.Values{
		"no token":              {"action": {"isolate"}, "reason": {"x"}},
		"another session's one": {"action": {"isolate"}, "reason": {"x"}, "csrf": {csrf[1]}},
	} {
		resp, _ = do(t, admin, "POST", base+"/ui/hosts/"+host+"/action", form, "")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("isolate with %s: %d, want 403", name, resp.StatusCode)
		}
	}
	resp, _ = do(t, admin, "POST", base+"/ui/hosts/"+host+"/action", url.Values{"csrf": {mine[1]}, "action": {"drain"}, "reason": {"kernel upgrade"}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain with the CSRF token: %d, want 303", resp.StatusCode)
	}
	_, body := do(t, http.DefaultClient, "GET", base+"/v1/hosts/"+host, nil, adminToken)
	if !strings.Contains(body, `"state":"draining"`) || !strings.Contains(body, `"by":"alice"`) || !strings.Contains(body, "kernel upgrade") {
		t.Fatalf("after drain, the API shows %s", body)
	}
	resp, body = do(t, admin, "POST", base+"/ui/hosts/"+host+"/action", url.Values{"csrf": {mine[1]}, "action": {"release"}, "reason": {"a\nb"}}, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "reason") {
		t.Fatalf("a two-line reason: %d, want 400 naming the reason", resp.StatusCode)
	}
	do(t, admin, "POST", base+"/ui/hosts/"+host+"/action", url.Values{"csrf": {mine[1]}, "action": {"release"}}, "")
}
