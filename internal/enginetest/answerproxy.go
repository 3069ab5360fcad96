package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The answer proxy is an HTTP-aware proxy in front of each private engine's
// unix socket, for the faults toxiproxy cannot make: the daemon gets the
// request and acts on it, and its answer is lost, held or late. It listens
// on a unix socket in the engine's directory (AnswerProxyHost) and on a
// loopback tcp port (AnswerProxyTCPHost).
//
// Every request is forwarded on a connection of its own to the daemon's
// socket, dialled afresh, so the proxy keeps working across Kill, Restart
// and Hang. Requests no fault matches pass through untouched: streamed
// answers (events, logs with follow, container wait) are flushed as their
// bytes arrive, and upgraded connections (attach, exec start) are spliced
// byte for byte, half-closes included.
//
// While the daemon is down (its socket refuses the proxy's dial) the proxy
// closes the client's connection without a byte of answer: the client sees
// a transport error (EOF), never an HTTP status. It is not the refused dial
// a dead daemon gives on its own socket; a test of that uses UnixHost.
//
// Several faults may be active at once: a request takes the first, in the
// order they were added, that matches it and has budget left.
//
// A request that matches a fault is forwarded to the daemon on a context
// of its own (the daemon finishes what it was asked whatever the client
// does), the daemon's whole answer is read, and only then does the fault
// apply; that is when it counts as a hit. So a fault suits bounded calls,
// not never-ending streams. Requests that ask for a protocol upgrade are
// never faulted. If the daemon cannot be reached, or dies before it has
// answered, the fault does not apply (its budget is given back) and the
// client's connection is closed as above. A fault cleared while a request
// it matched is still with the daemon lets that answer through.
//
// Note that Go's HTTP client (and so the moby client) sends an idempotent
// request (GET, HEAD) again, once, when a kept-alive connection is closed
// without an answer: a fault with a budget of 1 on a GET route may then be
// invisible to the caller. POST routes (create, start) are not retried.

// Route says which requests a fault applies to.
type Route struct {
	// Method is the HTTP method, e.g. "POST"; "" means any.
	Method string
	// Path is a regular expression matched against the request's path
	// with the API version prefix ("/v1.47") stripped, e.g.
	// `^/containers/create$` or `^/containers/[^/]+/start$`. "" means any.
	Path string
}

func (r Route) String() string {
	m, p := r.Method, r.Path
	if m == "" {
		m = "any method"
	}
	if p == "" {
		p = "any path"
	}
	return m + " " + p
}

// answerKind is what a fault does to an answer.
type answerKind int

const (
	answerDrop  answerKind = iota + 1 // close the client's connection
	answerReset                       // close it with a TCP RST (plain close on unix)
	answerHold                        // write it when the fault is cleared
	answerDelay                       // write it after a delay
)

func (k answerKind) String() string {
	switch k {
	case answerDrop:
		return "drop"
	case answerReset:
		return "reset"
	case answerHold:
		return "hold"
	case answerDelay:
		return "delay"
	}
	return fmt.Sprintf("answerKind(%d)", int(k))
}

// AnswerFault is one fault of an engine's answer proxy, made by
// DropAnswers, ResetAnswers, HoldAnswers or DelayAnswers.
type AnswerFault struct {
	p     *answerProxy
	kind  answerKind
	route Route
	path  *regexp.Regexp
	delay time.Duration

	// Guarded by p.mu.
	left    int           // requests it may still take; -1: no limit
	hits    int           // answers it took
	changed chan struct{} // closed and replaced at each hit and at Clear
	cleared bool
	release chan struct{} // closed by Clear: held and delayed answers go out
}

func (f *AnswerFault) String() string {
	return fmt.Sprintf("%s answers of %s on %s", f.kind, f.route, f.p.name)
}

// Hits is the number of matching requests the fault applied to: the daemon
// answered each, and the fault took the answer (dropped, reset, held or
// delayed it).
func (f *AnswerFault) Hits() int {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.hits
}

// Wait returns once Hits() >= n, that is once the daemon has answered n
// matching requests; or an error when ctx ends first, or when the fault
// is cleared (or its proxy stopped) before.
func (f *AnswerFault) Wait(ctx context.Context, n int) error {
	for {
		f.p.mu.Lock()
		hits, cleared, changed := f.hits, f.cleared, f.changed
		f.p.mu.Unlock()
		if hits >= n {
			return nil
		}
		if cleared {
			return fmt.Errorf("enginetest: wait for %d hit(s) of %s: cleared after %d", n, f, hits)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("enginetest: wait for %d hit(s) of %s: %d so far: %w", n, f, hits, ctx.Err())
		}
	}
}

// Clear removes the fault: it applies to no more requests, and the answers
// it holds or delays are written at once. Safe to call twice.
func (f *AnswerFault) Clear() {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	f.p.removeLocked(f)
}

// answerProxy is the answer proxy of one engine.
type answerProxy struct {
	name     string // the engine's
	upstream string // the daemon's unix socket
	sockPath string // the proxy's unix socket

	tr  *http.Transport
	rp  *httputil.ReverseProxy
	srv *http.Server

	// ctx ends when the proxy stops: every request's context derives
	// from it, and so does the forwarding of faulted requests.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	faults   []*AnswerFault // in the order they were added
	started  bool
	stopped  bool
	tcpAddr  string
	inflight sync.WaitGroup // Serve loops and handlers
}

// newAnswerProxy makes the answer proxy of an engine whose daemon listens
// on upstream; Start puts it on sockPath and a free loopback port.
func newAnswerProxy(name, upstream, sockPath string) *answerProxy {
	p := &answerProxy{name: name, upstream: upstream, sockPath: sockPath}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	var d net.Dialer
	p.tr = &http.Transport{
		// A connection per request, dialled afresh: nothing outlives a
		// daemon restart.
		DisableKeepAlives:  true,
		DisableCompression: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", upstream)
		},
	}
	quiet := log.New(io.Discard, "", 0)
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "docker"
			pr.Out.Host = pr.In.Host
		},
		Transport:     p.tr,
		FlushInterval: -1, // every write at once: streams must not wait in a buffer
		ErrorLog:      quiet,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, _ error) {
			if r.Context().Err() != nil {
				return // the client left, or the proxy stops
			}
			hangUp(w, false) // the daemon is down
		},
	}
	p.srv = &http.Server{
		Handler:     p,
		BaseContext: func(net.Listener) context.Context { return p.ctx },
		ErrorLog:    quiet,
	}
	return p
}

// Start listens on the unix socket and a free loopback tcp port and serves
// until Stop. ctx bounds only the start, not the proxy's life.
func (p *answerProxy) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopped {
		return fmt.Errorf("enginetest: answer proxy of %s: started twice, or after Stop", p.name)
	}
	var lc net.ListenConfig
	_ = os.Remove(p.sockPath)
	ul, err := lc.Listen(ctx, "unix", p.sockPath)
	if err != nil {
		return fmt.Errorf("enginetest: answer proxy of %s: %w", p.name, err)
	}
	tl, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		ul.Close()
		return fmt.Errorf("enginetest: answer proxy of %s: %w", p.name, err)
	}
	p.started, p.tcpAddr = true, tl.Addr().String()
	for _, l := range []net.Listener{ul, tl} {
		p.inflight.Go(func() { _ = p.srv.Serve(l) })
	}
	return nil
}

// Stop closes the listeners and every connection, held ones included, and
// waits for the handlers to return. The unix socket is removed. Safe to
// call twice, or before Start.
func (p *answerProxy) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.cancel() // first: the faults' held answers are hung up, not written
	for len(p.faults) > 0 {
		p.removeLocked(p.faults[0])
	}
	started := p.started
	p.mu.Unlock()
	if started {
		_ = p.srv.Close()
	}
	p.inflight.Wait()
	p.tr.CloseIdleConnections()
	_ = os.Remove(p.sockPath)
}

// add makes a fault and puts it last.
func (p *answerProxy) add(kind answerKind, r Route, n int, d time.Duration) (*AnswerFault, error) {
	re, err := regexp.Compile(r.Path)
	if err != nil {
		return nil, fmt.Errorf("Route.Path %q: %w", r.Path, err)
	}
	if strings.ContainsAny(r.Method, " \t/") {
		return nil, fmt.Errorf("Route.Method %q: want an HTTP method such as POST, or \"\" for any", r.Method)
	}
	f := &AnswerFault{
		p: p, kind: kind, route: r, path: re, delay: d,
		left: -1, changed: make(chan struct{}), release: make(chan struct{}),
	}
	if n > 0 {
		f.left = n
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, fmt.Errorf("answer proxy of %s is stopped", p.name)
	}
	p.faults = append(p.faults, f)
	return f, nil
}

// clear removes every fault.
func (p *answerProxy) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.faults) > 0 {
		p.removeLocked(p.faults[0])
	}
}

func (p *answerProxy) removeLocked(f *AnswerFault) {
	if f.cleared {
		return
	}
	f.cleared = true
	close(f.release)
	close(f.changed)
	f.changed = make(chan struct{})
	for i, g := range p.faults {
		if g == f {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			break
		}
	}
}

// match returns the first fault that matches and has budget left, and
// takes one from its budget; or nil.
func (p *answerProxy) match(r *http.Request) *AnswerFault {
	if r.Header.Get("Upgrade") != "" {
		return nil
	}
	path := apiPath(r.URL.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if f.left == 0 || (f.route.Method != "" && !strings.EqualFold(f.route.Method, r.Method)) || !f.path.MatchString(path) {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		return f
	}
	return nil
}

// giveBack returns what match took from f's budget, for a request the
// fault could not apply to.
func (p *answerProxy) giveBack(f *AnswerFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.left >= 0 && !f.cleared {
		f.left++
	}
}

// hit counts an answer f takes, or reports false if f was cleared in the
// meantime.
func (p *answerProxy) hit(f *AnswerFault) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.cleared {
		return false
	}
	f.hits++
	close(f.changed)
	f.changed = make(chan struct{})
	return true
}

// apiVersion is the version prefix of Docker API paths.
var apiVersion = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)?(/|$)`)

// apiPath is the path without its API version prefix: "/v1.47/_ping" is
// "/_ping".
func apiPath(p string) string {
	if loc := apiVersion.FindStringIndex(p); loc != nil {
		return "/" + p[loc[1]:]
	}
	return p
}

// enter counts a handler in, or reports false once the proxy stops.
func (p *answerProxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.inflight.Add(1)
	return true
}

func (p *answerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		hangUp(w, false)
		return
	}
	defer p.inflight.Done()
	f := p.match(r)
	if f == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.serveFault(w, r, f)
}

// serveFault forwards r, reads the daemon's whole answer, and lets f do
// its work on it.
func (p *answerProxy) serveFault(w http.ResponseWriter, r *http.Request, f *AnswerFault) {
	out := r.Clone(p.ctx) // not the client's context: the daemon finishes whatever the client does
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", "docker"
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	res, err := p.tr.RoundTrip(out)
	if err != nil {
		p.giveBack(f)
		hangUp(w, false)
		return
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		p.giveBack(f)
		hangUp(w, false)
		return
	}
	// Read what the client sent to the end, so that the server notices
	// when the client goes away (it cancels r.Context()).
	_, _ = io.Copy(io.Discard, r.Body)
	if !p.hit(f) {
		writeAnswer(w, res, body)
		return
	}
	switch f.kind {
	case answerDrop:
		hangUp(w, false)
	case answerReset:
		hangUp(w, true)
	case answerHold, answerDelay:
		var after <-chan time.Time
		if f.kind == answerDelay {
			t := time.NewTimer(f.delay)
			defer t.Stop()
			after = t.C
		}
		select {
		case <-after:
			writeAnswer(w, res, body)
		case <-f.release:
			if p.ctx.Err() != nil {
				hangUp(w, false) // released because the proxy stops
				return
			}
			writeAnswer(w, res, body)
		case <-r.Context().Done():
			if p.ctx.Err() != nil {
				hangUp(w, false)
			}
			// else the client gave up: nothing to write to
		}
	}
}

// hopHeaders are the hop-by-hop headers (RFC 9110, 7.6.1) a proxy does not
// pass on.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// writeAnswer writes a buffered answer.
func writeAnswer(w http.ResponseWriter, res *http.Response, body []byte) {
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = vv
	}
	for _, c := range res.Header.Values("Connection") {
		for k := range strings.SplitSeq(c, ",") {
			h.Del(strings.TrimSpace(k))
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Del("Content-Length") // the server works it out from what is written
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
}

// hangUp closes the client's connection without a byte of answer; with
// reset, on tcp, with a RST (SO_LINGER 0), so that the client sees
// ECONNRESET rather than EOF.
func hangUp(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if errors.Is(err, http.ErrHijacked) {
			return
		}
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// AnswerProxyHost is the Docker host URL of the engine's answer proxy on
// its unix socket, "unix:///.../a.sock", or "" if the engine has none
// (external engines).
func (e *Engine) AnswerProxyHost() string {
	if e.AnswerSocket == "" {
		return ""
	}
	return "unix://" + e.AnswerSocket
}

// AnswerProxyTCPHost is the Docker host URL of the engine's answer proxy
// on loopback tcp, "tcp://127.0.0.1:port", or "" if the engine has none.
func (e *Engine) AnswerProxyTCPHost() string {
	if e.AnswerAddr == "" {
		return ""
	}
	return "tcp://" + e.AnswerAddr
}

// DropAnswers makes the answer proxy forward the next n requests that
// match r (n <= 0: all, until cleared), read the daemon's whole answer (it
// has acted), and close the client's connection without a byte of it: the
// client sees EOF. The moby client reports that as a connection failure
// (client.IsErrConnectionFailed) that wraps io.EOF.
func (e *Engine) DropAnswers(r Route, n int) (*AnswerFault, error) {
	return e.addAnswerFault("drop answers of", answerDrop, r, n, 0)
}

// ResetAnswers is DropAnswers with a TCP RST: a client on
// AnswerProxyTCPHost sees ECONNRESET (the moby client: a connection
// failure that wraps syscall.ECONNRESET). On the unix socket, which has no
// RST, it is DropAnswers.
func (e *Engine) ResetAnswers(r Route, n int) (*AnswerFault, error) {
	return e.addAnswerFault("reset answers of", answerReset, r, n, 0)
}

// HoldAnswers makes the answer proxy forward the next n requests that
// match r (n <= 0: all, until cleared) and hold the daemon's answers: each
// is written when the fault is cleared, unless its client gave up first
// (the moby client then returns its context's error, e.g.
// context.DeadlineExceeded).
func (e *Engine) HoldAnswers(r Route, n int) (*AnswerFault, error) {
	return e.addAnswerFault("hold answers of", answerHold, r, n, 0)
}

// DelayAnswers makes the answer proxy forward the next n requests that
// match r (n <= 0: all, until cleared) and write each answer d after the
// daemon gave it (at once if the fault is cleared).
func (e *Engine) DelayAnswers(r Route, n int, d time.Duration) (*AnswerFault, error) {
	if d <= 0 {
		return nil, fmt.Errorf("enginetest: delay answers of %s: d = %v, want > 0", e, d)
	}
	return e.addAnswerFault("delay answers of", answerDelay, r, n, d)
}

// ClearAnswerFaults removes every fault of the answer proxy; the answers
// they held or delayed are written at once.
func (e *Engine) ClearAnswerFaults() error {
	if err := e.answerFaultsAllowed("clear answer faults of"); err != nil {
		return err
	}
	e.answers.clear()
	return nil
}

func (e *Engine) addAnswerFault(op string, kind answerKind, r Route, n int, d time.Duration) (*AnswerFault, error) {
	if err := e.answerFaultsAllowed(op); err != nil {
		return nil, err
	}
	f, err := e.answers.add(kind, r, n, d)
	if err != nil {
		return nil, fmt.Errorf("enginetest: %s %s: %w", op, e, err)
	}
	return f, nil
}

// answerFaultsAllowed returns an error if the engine cannot take answer
// faults.
func (e *Engine) answerFaultsAllowed(op string) error {
	if e.shared {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, ErrShared)
	}
	if e.answers == nil {
		return fmt.Errorf("enginetest: %s %s: the engine has no answer proxy: %w", op, e, ErrNotSupported)
	}
	return nil
}
