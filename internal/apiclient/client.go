// Package apiclient is the Go client of fusebox's HTTP API, used by the CLI
// and by end-to-end tests. It has one method per endpoint, a Wait that
// follows a job on the event stream until it ends, and turns every error
// the server answers into an *Error that errors.Is matches against the job
// package's sentinels (job.ErrNotFound, job.ErrQueueFull, ...). It speaks http:// and https://;
// TrustCAFile verifies an https server against a CA file (what the CLI's
// --cacert and FUSEBOX_CACERT name).
//
// It owns only the client side of the wire format; the types themselves are
// declared once, in internal/api. It must not import the dispatcher, the
// fleet's implementation, the store's implementation or the engine.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// EnvCACert names the variable that holds the PEM file of the CA that signs
// an https server's certificate, for programs that take it from the
// environment (the CLI does, as --cacert's default): pass its value to
// TrustCAFile.
const EnvCACert = "FUSEBOX_CACERT"

// Defaults of Client.
const (
	TimeoutDefault = 30 * time.Second
	// RetryWaitDefault is the first wait before a request that may succeed
	// later (a server restarting, a stream cut) is tried again; it doubles
	// up to five seconds.
	RetryWaitDefault = 250 * time.Millisecond
)

// Client talks to one fusebox server. Its fields may be changed before the
// first call; it is safe for concurrent use after that.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:7070, or https://fusebox.example.com:7070
	Token   string // bearer token; "" for none
	// HTTPClient makes the requests; http.DefaultClient if nil.
	HTTPClient *http.Client
	// Timeout bounds each request but log follows (TimeoutDefault if 0;
	// negative: no bound beyond the context).
	Timeout time.Duration
}

// New returns a client of the server at baseURL, sending token (if not "")
// as a bearer token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// TrustCAFile makes the client verify an https server's certificate
// against the CA certificates in the PEM file at path only (instead of the
// system's roots), as curl --cacert does. "" changes nothing. It replaces
// HTTPClient with one of its own (keeping HTTPClient's Timeout); call it
// before the first request.
func (c *Client) TrustCAFile(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("apiclient: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("apiclient: CA file %s: no PEM certificate in it", path)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: tr}
	if c.HTTPClient != nil {
		hc.Timeout = c.HTTPClient.Timeout
	}
	c.HTTPClient = hc
	return nil
}

// Error is an error the server answered with.
type Error struct {
	Status     int    // HTTP status
	Code       string // api.Code... ("" when the body was not fusebox's)
	Message    string
	Field      string        // the first bad field, for 400s
	Problems   []api.Problem // every bad field, for 400s
	RetryAfter time.Duration // from Retry-After, for 429s
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Is matches the job package's sentinel errors and api.ErrHostNotFound, by
// the error code, or by the status when the server sent no code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case api.CodeNotFound:
		return target == job.ErrNotFound
	case api.CodeHostNotFound:
		return target == api.ErrHostNotFound
	case api.CodeReceiverNotFound:
		return target == api.ErrReceiverNotFound
	case api.CodeQueueFull:
		return target == job.ErrQueueFull
	case api.CodeDuplicate:
		return target == job.ErrDuplicate
	case api.CodeTerminal:
		return target == job.ErrTerminal
	case api.CodeConflict:
		return target == job.ErrConflict
	case api.CodeInvalid:
		return target == job.ErrInvalid
	case "":
		switch e.Status {
		case http.StatusNotFound:
			return target == job.ErrNotFound
		case http.StatusTooManyRequests:
			return target == job.ErrQueueFull
		case http.StatusBadRequest:
			return target == job.ErrInvalid
		}
	}
	return false
}

// ConnError is a failure to reach the server at all, or to trust it: a TLS
// certificate the client does not trust is one (see CertError).
type ConnError struct {
	URL string
	Err error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("cannot reach fusebox at %s: %v", e.URL, e.Err)
}
func (e *ConnError) Unwrap() error { return e.Err }

// CertError reports whether err is a failure to verify the server's TLS
// certificate (signed by a CA the client does not trust, for another name,
// expired), which trusting the right CA (TrustCAFile) may fix.
func CertError(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var tv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &tv)
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// request builds a request for path (with query) and body (JSON-encoded
// when not nil).
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := c.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("apiclient: encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// send sends req and returns the response when its status is 2xx, else an
// *Error (the body closed).
func (c *Client) send(req *http.Request) (*http.Response, error) {
	res, err := c.httpClient().Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ctxErr)
		}
		return nil, &ConnError{URL: c.BaseURL, Err: unwrapURLError(err)}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	e := &Error{Status: res.StatusCode}
	var body api.ErrorResponse
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Code, e.Message, e.Field, e.Problems = body.Code, body.Error, body.Field, body.Problems
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 200 {
		e.Message = fmt.Sprintf("server answered %d: %s", res.StatusCode, s)
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(0, time.Until(t))
		}
	}
	return nil, e
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// do makes a bounded request and decodes a JSON answer into out (if not
// nil). It returns the status.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) (int, error) {
	return c.doHeader(ctx, method, path, q, body, nil, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, q url.Values, body any, header http.Header, out any) (int, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = TimeoutDefault
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return 0, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			return res.StatusCode, fmt.Errorf("apiclient: %s %s: decoding answer: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

func jobPath(id string, rest ...string) string {
	return "/v1/jobs/" + url.PathEscape(id) + strings.Join(rest, "")
}

func hostPath(name string, rest ...string) string {
	return "/v1/hosts/" + url.PathEscape(name) + strings.Join(rest, "")
}

// Submit submits spec. existed is true when its idempotency key matched a
// job already submitted with the same spec (that job is returned).
func (c *Client) Submit(ctx context.Context, spec job.Spec) (j *job.Job, existed bool, err error) {
	var out api.SubmitResponse
	if _, err := c.do(ctx, http.MethodPost, "/v1/jobs", nil, spec, &out); err != nil {
		return nil, false, err
	}
	return out.Job, out.Existed, nil
}

// Get returns a job with its transitions and attempts.
func (c *Client) Get(ctx context.Context, id string) (*api.JobDetail, error) {
	var out api.JobDetail
	if _, err := c.do(ctx, http.MethodGet, jobPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns jobs matching p, newest first. To page, pass the last job's
// ID as p.BeforeID.
func (c *Client) List(ctx context.Context, p store.JobListParams) ([]*job.Job, error) {
	q := url.Values{}
	for _, s := range p.States {
		q.Add("state", string(s))
	}
	if p.Host != "" {
		q.Set("host", p.Host)
	}
	if p.Name != "" {
		q.Set("name", p.Name)
	}
	if p.BeforeID != "" {
		q.Set("before", p.BeforeID)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out api.JobList
	if _, err := c.do(ctx, http.MethodGet, "/v1/jobs", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// Cancel cancels a job (a running one is marked CancelRequested and
// stopped). job.ErrTerminal if it has already finished.
func (c *Client) Cancel(ctx context.Context, id string) (*job.Job, error) {
	var out job.Job
	if _, err := c.do(ctx, http.MethodPost, jobPath(id, "/cancel"), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Queue returns the queue's counts.
func (c *Client) Queue(ctx context.Context) (api.QueueStats, error) {
	var out api.QueueStats
	_, err := c.do(ctx, http.MethodGet, "/v1/queue", nil, nil, &out)
	return out, err
}

// Hosts returns every host.
func (c *Client) Hosts(ctx context.Context) ([]api.Host, error) {
	var out api.HostList
	if _, err := c.do(ctx, http.MethodGet, "/v1/hosts", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Hosts, nil
}

// Host returns one host; api.ErrHostNotFound (through errors.Is) if none
// has that name.
func (c *Client) Host(ctx context.Context, name string) (*api.Host, error) {
	var out api.HostResponse
	if _, err := c.do(ctx, http.MethodGet, hostPath(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out.Host, nil
}

// HostTransitions returns the recent breaker transitions of every host.
func (c *Client) HostTransitions(ctx context.Context) ([]api.HostTransition, error) {
	var out api.HostTransitionList
	if _, err := c.do(ctx, http.MethodGet, "/v1/hosts/transitions", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Transitions, nil
}

func (c *Client) hostAction(ctx context.Context, name, action, reason string) (*api.Host, error) {
	var out api.HostResponse
	var body any
	if reason != "" {
		body = api.HostActionRequest{Reason: reason}
	}
	if _, err := c.do(ctx, http.MethodPost, hostPath(name, "/", action), nil, body, &out); err != nil {
		return nil, err
	}
	return &out.Host, nil
}

// Isolate forces a host's breaker open; it returns the host after. The
// action is stored with reason ("" for none) and the token's name, and
// outlives a restart of the server.
func (c *Client) Isolate(ctx context.Context, name, reason string) (*api.Host, error) {
	return c.hostAction(ctx, name, "isolate", reason)
}

// Drain stops placing jobs on a host; running ones finish. Stored as
// Isolate is.
func (c *Client) Drain(ctx context.Context, name, reason string) (*api.Host, error) {
	return c.hostAction(ctx, name, "drain", reason)
}

// Release undoes Isolate and Drain.
func (c *Client) Release(ctx context.Context, name, reason string) (*api.Host, error) {
	return c.hostAction(ctx, name, "release", reason)
}

// Reset closes a host's breaker (ending an isolation) and clears its
// counts.
func (c *Client) Reset(ctx context.Context, name, reason string) (*api.Host, error) {
	return c.hostAction(ctx, name, "reset", reason)
}

// Alerts returns the alert receivers with their delivery state, and the
// alerts firing now.
func (c *Client) Alerts(ctx context.Context) (*api.AlertsResponse, error) {
	var out api.AlertsResponse
	if _, err := c.do(ctx, http.MethodGet, "/v1/alerts", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestAlert sends a test alert to the named receiver ("": every one) and
// returns how each answered; api.ErrReceiverNotFound (through errors.Is)
// for a name that is not configured.
func (c *Client) TestAlert(ctx context.Context, receiver string) ([]api.AlertTestResult, error) {
	var out api.AlertTestResponse
	if _, err := c.do(ctx, http.MethodPost, "/v1/alerts/test", nil, api.AlertTestRequest{Receiver: receiver}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// Retry submits a job that has ended again, as a new job with the same
// spec; job.ErrConflict (through errors.Is) if it has not ended.
func (c *Client) Retry(ctx context.Context, id string) (*job.Job, error) {
	var out api.SubmitResponse
	if _, err := c.do(ctx, http.MethodPost, jobPath(id, "/retry"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Job, nil
}

// RecordToolCall records a tool call of an MCP server outside the server
// (fusebox mcp) in the event stream, as this client's token.
func (c *Client) RecordToolCall(ctx context.Context, tool string, ok bool, errMsg string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/mcp/tool-calls", nil, api.ToolCallRequest{Tool: tool, OK: ok, Error: errMsg}, nil)
	return err
}

// Breakers returns every named circuit breaker: hosts' and workflows'.
func (c *Client) Breakers(ctx context.Context) ([]api.BreakerInfo, error) {
	var out api.BreakerList
	if _, err := c.do(ctx, http.MethodGet, "/v1/breakers", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Breakers, nil
}

// Health checks GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// WhoAmI returns the name the client's token acts as and its role.
func (c *Client) WhoAmI(ctx context.Context) (api.WhoAmI, error) {
	var out api.WhoAmI
	_, err := c.do(ctx, http.MethodGet, "/v1/whoami", nil, nil, &out)
	return out, err
}
