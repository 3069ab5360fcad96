package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/server"
	"fusebox/internal/workflow/wfrun"
)

const (
	readToken  = "read-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// startServer runs a real fusebox server on engines, with a read token and
// an admin token (alice), and breakers that recover within a second or two.
func startServer(t *testing.T, engines *enginetest.Fleet) string {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		h.Labels = map[string]string{"zone": "z-" + e.Name}
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.HealthCheck.Interval = 300 * time.Millisecond
	cfg.HealthCheck.Timeout = 300 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	cfg.CircuitBreaker.RecoveryTimeout = time.Second
	cfg.CircuitBreaker.MaxRecoveryTimeout = 2 * time.Second
	cfg.CircuitBreaker.Jitter = 0
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Tokens: []api.Token{
		{Value: readToken, Role: api.RoleRead, Name: "viewer"},
		{Value: adminToken, Role: api.RoleAdmin, Name: "alice"},
	}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// chromium finds Debian's chromium; without it the test skips, or fails
// under CI=true (make deps-test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("FUSEBOX_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if enginetest.InCI() {
		t.Fatal("chromium is not installed (make deps-test installs it): the dashboard's browser test needs it")
	}
	t.Skip("chromium is not installed (make deps-test installs it)")
	return ""
}

// browser starts a headless chromium for the test (no sandbox: tests run
// as root in a container).
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// artifacts is where the screenshots go: $FUSEBOX_TEST_ARTIFACTS/ui if
// set, else the test's artifact directory (kept with go test -artifacts).
func artifacts(t *testing.T) string {
	if d := os.Getenv("FUSEBOX_TEST_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, "ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// cardState is a JS predicate: the host's card shows state.
func cardState(host, state string) string {
	return fmt.Sprintf(`(function(){var c=document.getElementById(%q);return !!c && c.classList.contains(%q) && c.querySelector('[data-field=state]').textContent.trim()===%q})()`,
		"host-"+host, "state-"+state, state)
}

// waitFor polls a JS predicate on every DOM change until it holds or
// timeout passes.
func waitFor(ctx context.Context, pred string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](pred, chromedp.WithPollingMutation()))
	return err
}

// lastOpen is when the host's breaker last opened, from the event log.
func lastOpen(t *testing.T, base, host string, after time.Time) time.Time {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events?follow=false&type=host.breaker&host="+url.QueryEscape(host), nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var at time.Time
	for line := range strings.SplitSeq(string(b), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev event.Event
		var br event.Breaker
		if json.Unmarshal([]byte(data), &ev) == nil && json.Unmarshal(ev.Data, &br) == nil && br.To == "open" && ev.At.After(after) {
			at = ev.At
		}
	}
	return at
}

// The dashboard in a real browser against a real server and real engines:
// a hung engine's card turns unavailable without a reload and comes back
// healthy when it resumes (five times, timed); a read token gets no
// buttons; an admin signs in and isolates a host with a reason, which the
// card shows.
func TestDashboardInBrowser(t *testing.T) {
	path := chromium(t)
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	base := startServer(t, engines)
	ctx := browser(t, path)
	dir := artifacts(t)
	e1, e2 := engines.Engines[0], engines.Engines[1]

	// A workflow run twice (the second time every step is cached) gives
	// the jobs and workflow pages something to show.
	runs := runWorkflowTwice(t, base)

	// Not signed in: the dashboard sends the browser to the sign-in form.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui")); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/ui/login") {
		t.Fatalf("without a token /ui went to %s, want the sign-in form", loc)
	}
	signIn(t, ctx, readToken)
	for _, e := range engines.Engines {
		if err := waitFor(ctx, cardState(e.Name, "healthy"), 20*time.Second); err != nil {
			t.Fatalf("%s never showed healthy: %v", e.Name, err)
		}
	}
	if err := waitFor(ctx, `document.getElementById('live').textContent==='live'`, 10*time.Second); err != nil {
		t.Fatalf("the page never followed the event stream: %v", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form.actions').length`)); n != 0 {
		t.Errorf("a read token sees %d operator forms, want none", n)
	}
	screenshot(t, ctx, dir, "fleet-healthy.png")

	// A running job's page follows its output, then shows how it ended.
	c := apiclient.New(base, adminToken)
	j, _, err := c.Submit(context.Background(), job.Spec{Image: enginetest.TestImage(t).Ref,
		Command: []string{"sh", "-c", "echo first line; sleep 2; echo second line"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/jobs/"+j.ID)); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, `(document.getElementById('follow-out')||{}).textContent==='first line\n'`, 20*time.Second); err != nil {
		t.Fatalf("the running job's page never showed its first line live: %v", err)
	}
	screenshot(t, ctx, dir, "job-running.png")
	// It reloads when the job ends (a query that survives the navigation).
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(wctx, chromedp.WaitVisible(`main h1 .j-succeeded`))
	cancel()
	if err != nil {
		t.Fatalf("the job's page never showed it succeeded: %v", err)
	}
	if logs, err := chromedp.Run(ctx, chromedp.Text(`pre.logs`)); err != nil || !strings.Contains(logs, "first line\nsecond line") {
		t.Errorf("the ended job's page shows logs %q (%v), want both lines", logs, err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, `document.getElementById('live').textContent==='live'`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The card of the host that ran the job shows its Docker calls' p50 and p99.
	if d, err := c.Get(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	} else if lat, err := chromedp.Run(ctx, chromedp.Text(fmt.Sprintf(`[id="host-%s"] [data-field=latency]`, d.Job.Host))); err != nil || !strings.Contains(lat, "p50 ") || !strings.Contains(lat, "p99 ") {
		t.Errorf("%s's card shows call latency %q (%v), want its p50 and p99", d.Job.Host, lat, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.fuseboxMarker = 'still here'; true`)); err != nil {
		t.Fatal(err)
	}

	var toCard, eventToCard []time.Duration
	for i := range 5 {
		start := time.Now()
		if err := e1.Hang(); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, cardState(e1.Name, "unavailable"), 15*time.Second); err != nil {
			e1.Resume()
			t.Fatalf("round %d: %s's card never showed unavailable after the hang: %v", i+1, e1.Name, err)
		}
		seen := time.Now()
		toCard = append(toCard, seen.Sub(start))
		if at := lastOpen(t, base, e1.Name, start); !at.IsZero() {
			eventToCard = append(eventToCard, seen.Sub(at))
		}
		if i == 0 {
			screenshot(t, ctx, dir, "fleet-unavailable.png")
		}
		if err := e1.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, cardState(e1.Name, "healthy"), 20*time.Second); err != nil {
			t.Fatalf("round %d: %s's card never came back healthy after resume: %v", i+1, e1.Name, err)
		}
	}
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.fuseboxMarker || 'reloaded'`))
	if err != nil || marker != "still here" {
		t.Fatalf("the page reloaded (marker %q, %v): cards must change in place", marker, err)
	}
	updates, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.updates || '0'`))
	t.Logf("hang to card unavailable: %v (median %v); breaker open event to card: %v (median %v); %s card swaps, no reload",
		toCard, median(toCard), eventToCard, median(eventToCard), updates)
	if m := median(eventToCard); len(eventToCard) > 0 && m > 2*time.Second {
		t.Errorf("median breaker-open-to-card latency %v, want within 2s", m)
	}

	// An admin isolates e2 with a reason; the card says who and why.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/login")); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, adminToken)
	reason := "disk failing on " + e2.Name
	form := fmt.Sprintf(`[id="host-%s"] form.actions`, e2.Name)
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(form+` input[name=reason]`),
		chromedp.SendKeys(form+` input[name=reason]`, reason),
		chromedp.Click(form+` button[value=isolate]`),
	); err != nil {
		t.Fatal(err)
	}
	// The form posts and comes back to /ui (a navigation: a query that
	// survives it, not a poll in the page).
	wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	err = chromedp.Do(wctx, chromedp.WaitVisible(fmt.Sprintf(`[id="host-%s"].state-isolated [data-field=operator]`, e2.Name)))
	cancel()
	if err != nil {
		t.Fatalf("%s's card never showed isolated: %v", e2.Name, err)
	}
	op, err := chromedp.Run(ctx, chromedp.Text(fmt.Sprintf(`[id="host-%s"] [data-field=operator]`, e2.Name)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(op, reason) || !strings.Contains(op, "alice") {
		t.Errorf("isolated card says %q, want the reason %q and who (alice)", op, reason)
	}
	screenshot(t, ctx, dir, "fleet-isolated.png")

	// The other pages render.
	first, second := runs[0], runs[1]
	for _, p := range []string{"/ui/jobs", "/ui/jobs/" + stepJob(first, "a"), "/ui/workflows", "/ui/workflows/" + first.ID,
		"/ui/workflows/" + second.ID, "/ui/timeline?window=2m"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+p), chromedp.WaitVisible(`main h1`)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		name := strings.NewReplacer("/ui/", "", "/", "-", "?", "-", "=", "-").Replace(p)
		screenshot(t, ctx, dir, name+".png")
		switch p {
		case "/ui/jobs/" + stepJob(first, "a"):
			logs, err := chromedp.Run(ctx, chromedp.Text(`pre.logs`))
			if err != nil || !strings.Contains(logs, "hello from a") {
				t.Errorf("job page logs %q (%v), want the step's output", logs, err)
			}
		case "/ui/workflows/" + first.ID:
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.dag g.node.st-succeeded').length`))
			e, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.dag path.edge').length`))
			if n != 4 || e != 4 {
				t.Errorf("the first run's DAG has %d succeeded steps and %d edges, want 4 and 4", n, e)
			}
		case "/ui/workflows/" + second.ID:
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.dag g.node.cached').length`))
			if n != 4 {
				t.Errorf("the second run's DAG marks %d steps cached, want 4", n)
			}
		case "/ui/timeline?window=2m":
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.timeline rect.seg-open').length`))
			if n < 5 {
				t.Errorf("the timeline shows %d open periods, want the 5 hangs", n)
			}
		}
	}
	// A run page takes what the API takes: the workflow's name (its newest
	// run, the cached one).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/workflows/ui-diamond"), chromedp.WaitVisible(`main h1`)); err != nil {
		t.Fatal(err)
	}
	if h, err := chromedp.Run(ctx, chromedp.Text(`main h1`)); err != nil || !strings.Contains(h, second.ID) {
		t.Errorf("/ui/workflows/ui-diamond shows %q (%v), want the newest run %s", h, err, second.ID)
	}
}

const diamond = `name: ui-diamond
defaults: {image: %s}
steps:
  - {id: a, command: ["sh", "-c", "echo hello from a"]}
  - {id: b, depends_on: [a], command: ["sh", "-c", "echo b"]}
  - {id: c, depends_on: [a], command: ["sh", "-c", "echo c"]}
  - {id: d, depends_on: [b, c], command: ["sh", "-c", "echo d"]}
`

// runWorkflowTwice runs a four-step diamond twice and returns both runs,
// waiting on the event stream for each to end.
func runWorkflowTwice(t *testing.T, base string) []*api.WorkflowRun {
	t.Helper()
	c := apiclient.New(base, adminToken)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := fmt.Sprintf(diamond, enginetest.TestImage(t).Ref)
	var out []*api.WorkflowRun
	errEnded := errors.New("ended")
	for range 2 {
		r, err := c.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: src})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeWorkflowRun}, Since: "0", Follow: true}, func(ev event.Event) error {
			var d event.WorkflowRun
			if json.Unmarshal(ev.Data, &d) == nil && d.Run == r.ID && wfrun.RunState(d.To).Terminal() {
				return errEnded
			}
			return nil
		})
		if !errors.Is(err, errEnded) {
			t.Fatalf("waiting for run %s: %v", r.ID, err)
		}
		if r, err = c.WorkflowRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if r.State != wfrun.RunSucceeded {
			t.Fatalf("run %s: %s (%s)", r.ID, r.State, r.Reason)
		}
		out = append(out, r)
	}
	return out
}

func stepJob(r *api.WorkflowRun, id string) string {
	for _, s := range r.Steps {
		if s.ID == id {
			return s.JobID
		}
	}
	return ""
}

func signIn(t *testing.T, ctx context.Context, token string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(`#token`),
		chromedp.SendKeys(`#token`, token),
		chromedp.Submit(`#token`),
		chromedp.WaitVisible(`#cards`),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
