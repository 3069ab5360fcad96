package metrics_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"fusebox/internal/metrics"
)

// rulesDir holds the shipped Prometheus files: alerts.yaml (the rules),
// alerts_test.yaml (their unit tests) and prometheus.yml (an example config).
const rulesDir = "../../deploy/prometheus"

// promtool returns the path of promtool. Without it the test is skipped, or
// fails under CI=true, where every check must run.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("promtool not found and CI=true: %v (`make deps-test` installs it: Debian package prometheus)", err)
	}
	t.Skipf("promtool not found (%v); `make deps-test` installs it (Debian package prometheus)", err)
	return ""
}

// runPromtool runs promtool with args and stdin and fails the test unless it
// exits 0 with nothing on stderr (where it reports lint problems).
func runPromtool(t *testing.T, bin string, stdin io.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("promtool %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestPromtool checks the shipped rules, their unit tests, the example
// Prometheus config and a live scrape of /metrics with promtool.
func TestPromtool(t *testing.T) {
	bin := promtool(t)

	t.Run("check rules", func(t *testing.T) {
		runPromtool(t, bin, nil, "check", "rules", filepath.Join(rulesDir, "alerts.yaml"))
	})

	t.Run("test rules", func(t *testing.T) {
		runPromtool(t, bin, nil, "test", "rules", filepath.Join(rulesDir, "alerts_test.yaml"))
	})

	// promtool check config wants the files the config names to exist:
	// check a copy whose /etc/prometheus/ paths point into a temporary
	// directory holding the rules, a token and a CA file.
	t.Run("check config", func(t *testing.T) {
		cfg, err := os.ReadFile(filepath.Join(rulesDir, "prometheus.yml"))
		if err != nil {
			t.Fatal(err)
		}
		rules, err := os.ReadFile(filepath.Join(rulesDir, "alerts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(cfg, []byte("credentials_file: /etc/prometheus/")) {
			t.Fatal("prometheus.yml: no bearer token credentials_file under /etc/prometheus/")
		}
		dir := t.TempDir()
		cfg = bytes.ReplaceAll(cfg, []byte("/etc/prometheus/"), []byte(dir+"/"))
		for name, body := range map[string][]byte{
			"prometheus.yml": cfg,
			"alerts.yaml":    rules,
			"fusebox.token":  []byte("0123456789abcdef0123456789abcdef\n"),
			"fusebox-ca.pem": nil,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		runPromtool(t, bin, nil, "check", "config", filepath.Join(dir, "prometheus.yml"))
	})

	t.Run("check metrics", func(t *testing.T) {
		m := metrics.New()
		exerciseAll(m)
		srv := httptest.NewServer(m.Handler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		runPromtool(t, bin, bytes.NewReader(body), "check", "metrics")
	})
}

// TestScrapeCoversEveryFamily checks that exerciseAll gives every metric
// declared in metrics.go at least one series, so the scrape promtool lints
// and the names TestAlertRules checks leave none out.
func TestScrapeCoversEveryFamily(t *testing.T) {
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := regexp.MustCompile(`Name:\s+"(fusebox_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(declared) == 0 {
		t.Fatal("no metric names found in metrics.go")
	}
	m := metrics.New()
	exerciseAll(m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = len(mf.GetMetric()) > 0
	}
	for _, d := range declared {
		if !have[d[1]] {
			t.Errorf("%s has no series after exerciseAll: exercise it there", d[1])
		}
	}
}
