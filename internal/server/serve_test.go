package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/api/apitest"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server"
)

// logBuffer is a slog destination tests can read while the server runs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runServer runs cfg on a loopback port with its log in logs; stop ends it
// and returns Run's error.
func runServer(t *testing.T, cfg *config.Config, logs io.Writer) (addr string, stop func() error) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

func testConfig(t *testing.T, engines *enginetest.Fleet) *config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.PollInterval = 200 * time.Millisecond
	return cfg
}

// waitUp polls /healthz until the server answers.
func waitUp(t *testing.T, c *apiclient.Client) {
	t.Helper()
	var err error
	enginetest.Eventually(t, 30*time.Second, "the server answers /healthz", func() bool {
		err = c.Health(context.Background())
		return err == nil
	}, func() string { return fmt.Sprintf("/healthz: %v", err) })
}

// At start, once every host was checked and before the API serves, the log
// says which hosts answered and, for one that did not, why; the shutdown
// is logged at its start and end with the jobs left behind.
func TestServeLogsUnreachableHostsAndShutdown(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	cfg := testConfig(t, engines)
	ghost := filepath.Join(t.TempDir(), "docker.sock")
	cfg.Hosts = append(cfg.Hosts, config.DefaultHost("ghost", "unix://"+ghost))
	logs := &logBuffer{}
	addr, stop := runServer(t, cfg, logs)
	waitUp(t, apiclient.New("http://"+addr, ""))

	out := logs.String()
	var ghostLine, upLine string
	for line := range strings.Lines(out) {
		switch {
		case strings.Contains(line, "host=ghost"):
			ghostLine = line
		case strings.Contains(line, "host="+engines.Engines[0].Name) && strings.Contains(line, "host answered"):
			upLine = line
		}
	}
	if !strings.Contains(ghostLine, "level=WARN") || !strings.Contains(ghostLine, "host cannot be reached") || !strings.Contains(ghostLine, ghost) {
		t.Errorf("no warning naming the unreachable host and its error at start:\n%s", out)
	}
	if upLine == "" {
		t.Errorf("no line saying the live host answered:\n%s", out)
	}
	if i, j := strings.Index(out, "host cannot be reached"), strings.Index(out, "api: listening"); i < 0 || j < 0 || i > j {
		t.Errorf("the host report does not come before the API serves:\n%s", out)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out = logs.String()
	for _, want := range []string{"fusebox shutting down", "fusebox stopped", "queued=0", "running=0"} {
		if !strings.Contains(out, want) {
			t.Errorf("the shutdown log does not say %q:\n%s", want, out)
		}
	}
}

// fusebox serve with api.tls serves HTTPS that the Go client verifies with
// the CA, and the listen rule holds: beyond loopback, tokens over plain
// HTTP are refused unless insecure_http says so.
func TestServeTLS(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	ca := apitest.NewCA(t)
	dir := t.TempDir()
	cfg := testConfig(t, engines)
	cfg.API.TLS = config.APITLS{Cert: filepath.Join(dir, "api.pem"), Key: filepath.Join(dir, "api-key.pem")}
	ca.Issue(t, "fusebox-api", cfg.API.TLS.Cert, cfg.API.TLS.Key)
	addr, _ := runServer(t, cfg, io.Discard)

	c := apiclient.New("https://"+addr, "")
	if err := c.TrustCAFile(ca.File); err != nil {
		t.Fatal(err)
	}
	waitUp(t, c)
	img := enginetest.TestImage(t)
	j, _, err := c.Submit(context.Background(), job.Spec{Image: img.Ref, Command: []string{"echo", "over tls"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := c.FollowLogs(ctx, j.ID, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if final, err := c.Wait(ctx, j.ID); err != nil || final.State != job.StateSucceeded || out.String() != "over tls\n" {
		t.Fatalf("job over TLS: %+v, %v, output %q", final, err, out.String())
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		// Go's TLS server answers plain HTTP with a 400; what matters is that
		// nothing is served in clear.
		res, _ := http.Get("http://" + addr + "/v1/hosts")
		if res != nil && res.StatusCode == http.StatusOK {
			t.Error("the API answered over plain HTTP")
		}
	}

	tokens := []config.Token{{Name: "ci", Token: "0123456789abcdef0123", Role: "submit"}}
	for _, c := range []struct {
		name   string
		edit   func(*config.Config)
		refuse bool
	}{
		{"tokens, no tls", func(c *config.Config) { c.API.TLS = config.APITLS{} }, true},
		{"tokens, insecure_http", func(c *config.Config) { c.API.TLS = config.APITLS{}; c.API.InsecureHTTP = true }, false},
		{"tokens, tls", func(c *config.Config) {}, false},
	} {
		cfg := *cfg
		cfg.Listen = "0.0.0.0:7070"
		cfg.Auth.Tokens = tokens
		c.edit(&cfg)
		err := server.CheckListen(&cfg, server.Tokens(&cfg))
		if (err != nil) != c.refuse {
			t.Errorf("%s: CheckListen = %v", c.name, err)
		}
	}
}

// Every refused submission is counted by its reason: an idempotency key
// reused with another spec as duplicate, constraints no host carries as
// no_host, a bad spec as invalid.
func TestRejectionsAreCountedByReason(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	addr, _ := runServer(t, testConfig(t, engines), io.Discard)
	base := "http://" + addr
	c := apiclient.New(base, "")
	waitUp(t, c)
	ctx := context.Background()
	img := enginetest.TestImage(t)
	if _, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, IdempotencyKey: "nightly-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"other"}, IdempotencyKey: "nightly-1"}); !errors.Is(err, job.ErrDuplicate) {
		t.Fatalf("key reused with another spec: %v", err)
	}
	if _, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Constraints: map[string]string{"zone": "mars"}}); !errors.Is(err, job.ErrInvalid) {
		t.Fatalf("constraints no host carries: %v", err)
	}
	if _, _, err := c.Submit(ctx, job.Spec{Image: ""}); !errors.Is(err, job.ErrInvalid) {
		t.Fatalf("no image: %v", err)
	}
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`fusebox_jobs_rejected_total{reason="duplicate"} 1`,
		`fusebox_jobs_rejected_total{reason="no_host"} 1`,
		`fusebox_jobs_rejected_total{reason="invalid"} 1`,
		"fusebox_jobs_submitted_total 1",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
