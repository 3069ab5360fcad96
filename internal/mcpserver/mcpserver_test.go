package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/server"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// fusebox is an in-process fusebox serve on a fixed address and data dir,
// so that it can be stopped and started again where it was.
type fusebox struct {
	t    *testing.T
	cfg  *config.Config
	opts server.Options
	addr string
	stop func()
}

func newFusebox(t *testing.T, engines *enginetest.Fleet, tokens []api.Token, edit func(*config.Config)) *fusebox {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.HealthCheck.Interval = 500 * time.Millisecond
	cfg.HealthCheck.Timeout = 500 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	if edit != nil {
		edit(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fusebox{t: t, cfg: cfg, opts: server.Options{Logger: slog.New(slog.DiscardHandler), Tokens: tokens}, addr: ln.Addr().String()}
	f.start(ln)
	t.Cleanup(func() { f.Stop() })
	return f
}

func (f *fusebox) URL() string { return "http://" + f.addr }

// start serves on ln (a new listener on f.addr if nil).
func (f *fusebox) start(ln net.Listener) {
	f.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", f.addr); err != nil {
			f.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, f.cfg, f.opts)
	if err != nil {
		cancel()
		ln.Close()
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("server: %v", err)
		}
	}
	c := apiclient.New(f.URL(), "")
	enginetest.Eventually(f.t, 30*time.Second, "fusebox answers /healthz", func() bool {
		err = c.Health(context.Background())
		return err == nil
	}, func() string { return fmt.Sprintf("/healthz: %v", err) })
}

// Stop stops the server; safe twice.
func (f *fusebox) Stop() {
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, tr mcp.Transport) *mcp.ClientSession {
	t.Helper()
	return connectWith(t, tr, nil)
}

func connectWith(t *testing.T, tr mcp.Transport, o *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "fusebox-test", Version: "1"}, o).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func connectHTTP(t *testing.T, url, token string) *mcp.ClientSession {
	t.Helper()
	return connect(t, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: &http.Client{Transport: bearer{token}}})
}

func buildFusebox(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fusebox")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fusebox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func connectStdio(t *testing.T, bin string, args ...string) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"mcp"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	return connect(t, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second})
}

// call calls a tool; a protocol error fails the test.
func call(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	p := &mcp.CallToolParams{Name: name, Arguments: args}
	p.SetProgressToken(name) // long waits tell how they go
	res, err := cs.CallTool(ctx, p)
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// ok calls a tool that must succeed and decodes its structured output.
func ok[T any](t *testing.T, cs *mcp.ClientSession, name string, args any) T {
	t.Helper()
	res := call(t, cs, name, args)
	if res.IsError {
		t.Fatalf("%s(%v): tool error: %s", name, args, text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: output %s: %v", name, b, err)
	}
	return out
}

// toolErr calls a tool that must fail with a tool error containing want.
func toolErr(t *testing.T, cs *mcp.ClientSession, name string, args any, want string) string {
	t.Helper()
	res := call(t, cs, name, args)
	if !res.IsError {
		t.Fatalf("%s(%v): no tool error: %s", name, args, text(res))
	}
	if !strings.Contains(text(res), want) {
		t.Errorf("%s(%v): tool error %q, want it to contain %q", name, args, text(res), want)
	}
	return text(res)
}

var adminTools = []string{"isolate_host", "release_host", "drain_host", "reset_breaker"}

// listTools lists the tools and checks each has an output schema,
// annotations and a description.
func listTools(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		tools[tl.Name] = tl
		if tl.OutputSchema == nil || tl.InputSchema == nil {
			t.Errorf("tool %s: input schema %v, output schema %v", tl.Name, tl.InputSchema != nil, tl.OutputSchema != nil)
		}
		if tl.Annotations == nil || tl.Annotations.Title == "" || tl.Annotations.OpenWorldHint == nil {
			t.Errorf("tool %s: annotations %+v", tl.Name, tl.Annotations)
		}
		if !tl.Annotations.ReadOnlyHint && tl.Annotations.DestructiveHint == nil {
			t.Errorf("tool %s: a tool that writes says nothing of destructiveHint", tl.Name)
		}
		if len(tl.Description) < 30 {
			t.Errorf("tool %s: description %q", tl.Name, tl.Description)
		}
	}
	return tools
}

type jobOut struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	ExitCode *int   `json:"exit_code"`
}

type submitOut struct {
	Job      jobOut `json:"job"`
	Finished bool   `json:"finished"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Note     string `json:"note"`
}

type logsOut struct {
	Stdout, Stderr, Note string
	Truncated            bool
}

// submitAndTail submits a job that prints 300 lines, waits for it, and
// reads its last 5 lines.
func submitAndTail(t *testing.T, cs *mcp.ClientSession, image string) string {
	t.Helper()
	sub := ok[submitOut](t, cs, "submit_job", map[string]any{"image": image,
		"command": []string{"sh", "-c", "seq 1 300; echo oops >&2; exit 3"}, "wait_seconds": 20})
	if !sub.Finished || sub.Job.State != "failed" || sub.Job.ExitCode == nil || *sub.Job.ExitCode != 3 {
		t.Fatalf("submit_job with wait: %+v", sub)
	}
	if lines := strings.Count(sub.Stdout, "\n"); lines != 100 || !strings.HasSuffix(sub.Stdout, "\n300\n") || sub.Stderr != "oops\n" {
		t.Errorf("submit_job's tail: %d lines %q..., stderr %q", lines, sub.Stdout[:min(20, len(sub.Stdout))], sub.Stderr)
	}
	logs := ok[logsOut](t, cs, "get_job_logs", map[string]any{"id": sub.Job.ID, "tail_lines": 5})
	if logs.Stdout != "296\n297\n298\n299\n300\n" || !logs.Truncated || !strings.Contains(logs.Note, "tail") {
		t.Errorf("get_job_logs tail 5: %+v", logs)
	}
	logs = ok[logsOut](t, cs, "get_job_logs", map[string]any{"id": sub.Job.ID, "max_bytes": 8})
	if logs.Stdout != "299\n300\n" {
		t.Errorf("get_job_logs max_bytes 8: %q", logs.Stdout)
	}
	return sub.Job.ID
}

// medianGetJob times n get_job calls.
func medianGetJob(t *testing.T, cs *mcp.ClientSession, id string, n int) time.Duration {
	t.Helper()
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		ok[map[string]any](t, cs, "get_job", map[string]any{"id": id})
		ds[i] = time.Since(start)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}

// Over streamable HTTP at /mcp of a real fusebox serve, with tokens: the
// tools and their schemas, a job waited for and its logs tailed, the
// diamond template run by task id, tool errors for a wrong argument type,
// an unknown id and a missing role, admin tools for an admin token only,
// and every call in the event stream with the token's name.
func TestHTTPTransport(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	fb := newFusebox(t, engines, []api.Token{
		{Name: "reader", Value: "reader-token-0123456789", Role: api.RoleRead},
		{Name: "agent", Value: "agent-token-0123456789", Role: api.RoleSubmit},
		{Name: "ops", Value: "admin-token-0123456789", Role: api.RoleAdmin},
	}, nil)

	// No token: the API's auth refuses /mcp.
	res, err := http.Post(fb.URL()+"/mcp", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/mcp without a token: %d", res.StatusCode)
	}
	// DNS rebinding: a loopback listener with a foreign Host is refused.
	req, _ := http.NewRequest(http.MethodPost, fb.URL()+"/mcp", strings.NewReader(`{}`))
	req.Host = "evil.example.com"
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("/mcp with Host evil.example.com: %d, want 403", res.StatusCode)
	}

	var (
		mu       sync.Mutex
		progress []string
	)
	admin := connectWith(t, &mcp.StreamableClientTransport{Endpoint: fb.URL() + "/mcp", HTTPClient: &http.Client{Transport: bearer{"admin-token-0123456789"}}},
		&mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, req.Params.Message)
		}})
	tools := listTools(t, admin)
	for _, name := range append([]string{"submit_job", "get_job", "list_jobs", "get_job_logs", "cancel_job", "retry_job", "list_hosts", "get_host",
		"list_breakers", "run_workflow", "get_workflow_run", "list_workflow_runs", "cancel_workflow_run",
		"list_workflow_templates", "get_workflow_template"}, adminTools...) {
		if tools[name] == nil {
			t.Errorf("admin: no tool %s", name)
		}
	}

	jobID := submitAndTail(t, admin, img.Ref)
	t.Logf("median get_job over HTTP (100 calls): %v", medianGetJob(t, admin, jobID, 100))

	// retry_job: the ended job again, as a new one; and every named breaker.
	re := ok[struct {
		Job struct {
			ID    string `json:"id"`
			Image string `json:"image"`
		} `json:"job"`
	}](t, admin, "retry_job", map[string]any{"id": jobID})
	if re.Job.ID == "" || re.Job.ID == jobID {
		t.Errorf("retry_job: %+v", re)
	}
	toolErr(t, admin, "retry_job", map[string]any{"id": "no-such-job"}, "no-such-job")
	bs := ok[struct {
		Breakers []struct{ Name, Kind string } `json:"breakers"`
	}](t, admin, "list_breakers", map[string]any{})
	if len(bs.Breakers) == 0 || bs.Breakers[0].Kind != "host" {
		t.Errorf("list_breakers: %+v", bs)
	}

	run := ok[struct {
		Run struct {
			ID     string `json:"id"`
			State  string `json:"state"`
			TaskID string `json:"task_id"`
			Steps  []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"steps"`
		} `json:"run"`
		Finished bool `json:"finished"`
	}](t, admin, "run_workflow", map[string]any{"template": "diamond", "task_id": "mcp-task-1",
		"params": map[string]string{"image": img.Ref, "lines": "20"}, "wait_seconds": 25})
	if !run.Finished || run.Run.State != "succeeded" || len(run.Run.Steps) != 4 {
		t.Fatalf("run_workflow diamond: %+v", run)
	}
	mu.Lock()
	all := strings.Join(progress, "\n")
	mu.Unlock()
	for _, want := range []string{"step a running", "step d succeeded", ": succeeded", "job "} {
		if !strings.Contains(all, want) {
			t.Errorf("progress notifications have no %q:\n%s", want, all)
		}
	}
	runs := ok[struct {
		Runs []struct {
			ID string `json:"id"`
		} `json:"runs"`
	}](t, admin, "list_workflow_runs", map[string]any{"task_id": "mcp-task-1"})
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.Run.ID {
		t.Errorf("list_workflow_runs by task id: %+v, want %s", runs, run.Run.ID)
	}
	got := ok[map[string]any](t, admin, "get_workflow_run", map[string]any{"id": run.Run.ID})
	if r := got["run"].(map[string]any); r["state"] != "succeeded" || len(r["results"].([]any)) == 0 {
		t.Errorf("get_workflow_run: %v", got)
	}

	// Tool errors, not protocol errors.
	toolErr(t, admin, "get_job", map[string]any{"id": 5}, "id")
	toolErr(t, admin, "get_job", map[string]any{"id": "no-such-job"}, "list_jobs")
	toolErr(t, admin, "get_workflow_run", map[string]any{"id": "no-such-run"}, "list_workflow_runs")
	toolErr(t, admin, "get_host", map[string]any{"name": "no-such-host"}, "list_hosts")
	toolErr(t, admin, "submit_job", map[string]any{"image": img.Ref, "wait_seconds": 60}, "wait_seconds")
	toolErr(t, admin, "isolate_host", map[string]any{"name": engines.Engines[0].Name, "reason": ""}, "reason")
	toolErr(t, admin, "run_workflow", map[string]any{"template": "no-such-template"}, "list_workflow_templates")
	toolErr(t, admin, "get_breaker", map[string]any{"name": "no-such"}, "host/"+engines.Engines[0].Name)
	if b := ok[struct {
		Breaker struct{ Name, State string } `json:"breaker"`
	}](t, admin, "get_breaker", map[string]any{"name": engines.Engines[0].Name}); b.Breaker.State != "closed" {
		t.Errorf("get_breaker: %+v", b)
	}

	host := engines.Engines[0].Name
	isolated := ok[struct {
		Host struct {
			State    string `json:"state"`
			Operator struct{ By, Reason string }
		} `json:"host"`
	}](t, admin, "isolate_host", map[string]any{"name": host, "reason": "mcp test"})
	if isolated.Host.Operator.By != "ops" || isolated.Host.Operator.Reason != "mcp test" {
		t.Errorf("isolate_host: %+v", isolated)
	}
	ok[map[string]any](t, admin, "release_host", map[string]any{"name": host, "reason": "mcp test done"})

	// A read token: no admin tools, and submit_job says which role it needs.
	reader := connectHTTP(t, fb.URL(), "reader-token-0123456789")
	rtools := listTools(t, reader)
	for _, name := range adminTools {
		if rtools[name] != nil {
			t.Errorf("read token: tool %s offered", name)
		}
	}
	toolErr(t, reader, "submit_job", map[string]any{"image": img.Ref}, "needs role submit")
	ok[map[string]any](t, reader, "list_hosts", map[string]any{})
	agent := connectHTTP(t, fb.URL(), "agent-token-0123456789")
	if atools := listTools(t, agent); atools["isolate_host"] != nil || atools["submit_job"] == nil {
		t.Errorf("submit token: isolate_host %v, submit_job %v", atools["isolate_host"] != nil, atools["submit_job"] != nil)
	}

	testResources(t, fb.URL(), img.Ref)

	// Every call is in the event stream with the token's name.
	c := apiclient.New(fb.URL(), "reader-token-0123456789")
	by := map[string]int{}
	failed := 0
	err = c.Events(context.Background(), apiclient.EventsParams{Types: []string{event.TypeMCPToolCall}, Since: "0"}, func(ev event.Event) error {
		var d event.MCPToolCall
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		by[d.By]++
		if !d.OK {
			failed++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if by["ops"] < 100 || by["reader"] != 2 || failed < 7 {
		t.Errorf("mcp.tool_call events by token: %v, %d failed", by, failed)
	}
}

// Over stdio, spawning the built binary: the tools, a job waited for and
// its logs tailed, --read-only offers only read-only tools, and with the
// server stopped calls fail fast once the client's breaker is open, then
// work again when it is back.
func TestStdioTransport(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	bin := buildFusebox(t)
	fb := newFusebox(t, engines, nil, nil)

	cs := connectStdio(t, bin, "--server", fb.URL())
	tools := listTools(t, cs)
	for _, name := range append([]string{"submit_job", "get_job_logs", "run_workflow", "list_breakers"}, adminTools...) {
		if tools[name] == nil { // no tokens: every request may do everything
			t.Errorf("no tool %s", name)
		}
	}
	jobID := submitAndTail(t, cs, img.Ref)
	t.Logf("median get_job over stdio (100 calls): %v", medianGetJob(t, cs, jobID, 100))
	// Over stdio too, every tool call is in the server's event stream, as
	// the token's name ("local" without tokens).
	calls := 0
	err := apiclient.New(fb.URL(), "").Events(context.Background(), apiclient.EventsParams{Types: []string{event.TypeMCPToolCall}, Since: "0"}, func(ev event.Event) error {
		var d event.MCPToolCall
		if json.Unmarshal(ev.Data, &d) == nil && d.Tool == "get_job" && d.By == "local" && d.OK {
			calls++
		}
		return nil
	})
	if err != nil || calls < 100 {
		t.Errorf("mcp.tool_call events of get_job over stdio: %d (%v), want at least 100", calls, err)
	}

	ro := connectStdio(t, bin, "--server", fb.URL(), "--read-only")
	roTools := listTools(t, ro)
	var names []string
	for name, tl := range roTools {
		names = append(names, name)
		if !tl.Annotations.ReadOnlyHint {
			t.Errorf("--read-only offers %s, which is not read-only", name)
		}
	}
	slices.Sort(names)
	if len(names) != 11 || roTools["get_job"] == nil {
		t.Errorf("--read-only tools: %v", names)
	}

	// Without tokens /mcp on loopback acts as local, with every tool.
	open := connectHTTP(t, fb.URL(), "")
	if otools := listTools(t, open); otools["isolate_host"] == nil {
		t.Error("/mcp without tokens: no admin tools")
	}
	ok[map[string]any](t, open, "get_job", map[string]any{"id": jobID})

	// mcp.read_only on serve: only read-only tools at /mcp.
	roServe := newFusebox(t, engines, nil, func(cfg *config.Config) { cfg.MCP.ReadOnly = true })
	for name, tl := range listTools(t, connectHTTP(t, roServe.URL(), "")) {
		if !tl.Annotations.ReadOnlyHint {
			t.Errorf("mcp.read_only: /mcp offers %s", name)
		}
	}
	roServe.Stop()

	// The server goes away.
	fb.Stop()
	late := connectStdio(t, bin, "--server", fb.URL()) // cannot ask the token's role
	if lt := listTools(t, late); lt["isolate_host"] != nil || lt["get_job"] == nil {
		t.Errorf("started with the server down: isolate_host %v, get_job %v", lt["isolate_host"] != nil, lt["get_job"] != nil)
	}
	var last string
	enginetest.Eventually(t, 10*time.Second, "the client breaker opens", func() bool {
		start := time.Now()
		res := call(t, cs, "get_job", map[string]any{"id": jobID})
		took := time.Since(start)
		if !res.IsError {
			t.Fatal("get_job succeeded with the server down")
		}
		last = text(res)
		if strings.Contains(last, "stopped trying") {
			if took > 100*time.Millisecond {
				t.Errorf("a call refused by the open breaker took %v", took)
			}
			return true
		}
		if !strings.Contains(last, "unavailable at "+fb.URL()) {
			t.Errorf("server down: %q", last)
		}
		return false
	}, func() string { return fmt.Sprintf("the client breaker did not open: %q", last) })
	if !strings.Contains(last, "retry after") {
		t.Errorf("open breaker: %q", last)
	}
	start := time.Now()
	toolErr(t, cs, "get_job", map[string]any{"id": jobID}, "retry after")
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("a second refused call took %v", took)
	}
	// use_circuit_breaker: false skips the client breaker: the call goes to
	// the (still stopped) server and says so: not the breaker's refusal.
	if msg := text(call(t, cs, "get_job", map[string]any{"id": jobID, "use_circuit_breaker": false})); strings.Contains(msg, "stopped trying") ||
		!strings.Contains(msg, "unavailable at "+fb.URL()) {
		t.Errorf("a call with use_circuit_breaker false while the breaker is open: %q", msg)
	}

	// It comes back: after the open time, a probe goes through and closes
	// the breaker.
	fb.start(nil)
	enginetest.Eventually(t, 40*time.Second, "get_job succeeds with the server back (after the breaker's open time)", func() bool {
		res := call(t, cs, "get_job", map[string]any{"id": jobID})
		last = text(res)
		return !res.IsError
	}, func() string { return "get_job still fails with the server back: " + last })
	// The session started while the server was down gets the admin tools
	// once a call reaches it.
	ok[map[string]any](t, late, "list_hosts", map[string]any{})
	if lt := listTools(t, late); lt["isolate_host"] == nil {
		t.Error("the admin tools did not come once the server answered")
	}
	br := ok[struct {
		Breakers []struct{ Name, Kind, State string } `json:"breakers"`
	}](t, cs, "list_breakers", map[string]any{})
	if len(br.Breakers) < 2 || br.Breakers[0].Kind != "mcp-client" || br.Breakers[0].State != "closed" || br.Breakers[1].Kind != "host" {
		t.Errorf("list_breakers: %+v", br)
	}
}

// readJSON reads a resource and decodes its JSON.
func readJSON(t *testing.T, cs *mcp.ClientSession, uri string) map[string]any {
	t.Helper()
	res, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" {
		t.Fatalf("read %s: %+v", uri, res.Contents)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &v); err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	return v
}

// The resources, and a subscription to a job that tells when it ended.
func testResources(t *testing.T, url, image string) {
	updated := make(chan string, 16)
	cs := connectWith(t, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: &http.Client{Transport: bearer{"agent-token-0123456789"}}},
		&mcp.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			select {
			case updated <- req.Params.URI:
			default:
			}
		}})
	if hosts := readJSON(t, cs, "fusebox://hosts"); len(hosts["hosts"].([]any)) != 1 {
		t.Errorf("fusebox://hosts: %v", hosts)
	}
	if stats := readJSON(t, cs, "fusebox://stats"); stats["by_state"] == nil {
		t.Errorf("fusebox://stats: %v", stats)
	}
	if tmpl := readJSON(t, cs, "fusebox://workflows/templates/diamond"); !strings.Contains(tmpl["template"].(map[string]any)["source"].(string), "steps:") {
		t.Errorf("fusebox://workflows/templates/diamond: %v", tmpl)
	}
	if _, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "fusebox://jobs/no-such-job"}); err == nil {
		t.Error("reading an unknown job: no error")
	}

	sub := ok[submitOut](t, cs, "submit_job", map[string]any{"image": image, "command": []string{"sh", "-c", "sleep 1; echo done"}})
	uri := "fusebox://jobs/" + sub.Job.ID
	if err := cs.Subscribe(context.Background(), &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-updated:
			if got != uri {
				t.Fatalf("update for %s, subscribed to %s", got, uri)
			}
		case <-timeout:
			t.Fatalf("no update telling that job %s ended", sub.Job.ID)
		}
		if j := readJSON(t, cs, uri)["job"].(map[string]any); j["state"] == "succeeded" {
			break
		}
	}
	if logs := readJSON(t, cs, uri+"/logs"); logs["stdout"] != "done\n" {
		t.Errorf("%s/logs: %v", uri, logs)
	}
}
