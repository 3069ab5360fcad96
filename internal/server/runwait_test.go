package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/enginetest"
)

// `fusebox run --wait` of a job that prints a line every half second for
// five seconds shows each line as it is printed, and follows the job on
// streams: it reads the job once before and once after, never polls it.
func TestRunWaitStreamsLiveOutputWithoutPolling(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	base := startInProcess(t, engines, nil)
	bin := buildFusebox(t, t.TempDir())

	// A proxy between the CLI and the server records every request.
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // pass streams through as they come
	var mu sync.Mutex
	var requests []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	args := []string{"run", "--wait", img.Ref, "/usr/local/bin/fusebox-testjob"}
	const n = 10
	for i := 1; i <= n; i++ {
		args = append(args, "print", fmt.Sprint("line ", i), "stderr", fmt.Sprint("err ", i), "sleep", "500ms")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FUSEBOX_SERVER="+proxy.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var arrived []time.Time
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		arrived = append(arrived, time.Now())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fusebox run --wait: %v\n%s", err, stderr.String())
	}
	if len(lines) != n {
		t.Fatalf("stdout: %q, want %d lines\nstderr:\n%s", lines, n, stderr.String())
	}
	for i, l := range lines {
		if l != fmt.Sprint("line ", i+1) {
			t.Fatalf("stdout line %d is %q: out of order or mangled (%q)", i+1, l, lines)
		}
	}
	for i := 1; i <= n; i++ {
		if !strings.Contains(stderr.String(), fmt.Sprintf("err %d\n", i)) {
			t.Errorf("stderr lacks %q:\n%s", fmt.Sprintf("err %d", i), stderr.String())
		}
	}
	// Printed 500ms apart, the lines arrive apart: shown as they came, not
	// all at the end.
	if spread := arrived[n-1].Sub(arrived[0]); spread < (n-2)*500*time.Millisecond {
		t.Errorf("the %d lines arrived within %v of each other: the output was not streamed", n, spread)
	}
	for _, want := range []string{"queued", "launching on", "running on", "succeeded"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	mu.Lock()
	defer mu.Unlock()
	count := map[string]int{}
	for _, r := range requests {
		switch {
		case strings.HasSuffix(r, "/logs"):
			count["logs"]++
		case strings.HasPrefix(r, "GET /v1/jobs/"):
			count["get"]++
		case r == "GET /v1/events":
			count["events"]++
		}
	}
	if count["get"] > 2 || count["events"] != 1 || count["logs"] != 1 {
		t.Errorf("requests %v (%v): want the job read at most twice, one event stream and one log follow", count, requests)
	}
}
