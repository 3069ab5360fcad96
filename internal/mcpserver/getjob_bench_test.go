package mcpserver_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/server"
)

// BenchmarkGetJob measures the latency of the get_job tool of one
// finished job, over stdio (`fusebox mcp --server URL`, a child process)
// and over streamable HTTP (/mcp of the server), against the same
// in-process server and in the same run: b.N calls of each, in turn. It
// reports the p50 and p99 of each (ms) and the p50 of GET /v1/jobs/{id}
// (the API call get_job makes) for reference:
//
//	go test -run '^$' -bench GetJob -benchtime 200x ./internal/mcpserver/
func BenchmarkGetJob(b *testing.B) {
	engines := enginetest.Shared(b, 1)
	img := enginetest.TestImage(b)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	url := "http://" + ln.Addr().String()
	c := apiclient.New(url, "")
	enginetest.Eventually(b, 30*time.Second, "the server answers", func() bool { return c.Health(context.Background()) == nil })

	j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"true"}})
	if err != nil {
		b.Fatal(err)
	}
	enginetest.Eventually(b, time.Minute, "the job ends", func() bool {
		d, err := c.Get(ctx, j.ID)
		return err == nil && d.Job.State.Terminal()
	})

	bin := filepath.Join(b.TempDir(), "fusebox")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fusebox").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	session := func(tr mcp.Transport) *mcp.ClientSession {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "fusebox-bench", Version: "1"}, nil).Connect(cctx, tr, nil)
		if err != nil {
			b.Fatalf("connect: %v", err)
		}
		b.Cleanup(func() { cs.Close() })
		return cs
	}
	cmd := exec.Command(bin, "mcp", "--server", url)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	stdio := session(&mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second})
	httpc := session(&mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: &http.Client{}})

	getJob := func(cs *mcp.ClientSession) time.Duration {
		start := time.Now()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"id": j.ID}})
		if err != nil || res.IsError {
			b.Fatalf("get_job: %v %+v", err, res)
		}
		return time.Since(start)
	}
	api := func() time.Duration {
		start := time.Now()
		if _, err := c.Get(ctx, j.ID); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 5 { // warm-up: connections, first calls
		getJob(stdio)
		getJob(httpc)
		api()
	}
	var overStdio, overHTTP, direct []time.Duration
	b.ResetTimer()
	for range b.N {
		overStdio = append(overStdio, getJob(stdio))
		overHTTP = append(overHTTP, getJob(httpc))
		direct = append(direct, api())
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / 1e6
	}
	b.ReportMetric(q(overStdio, 0.5), "p50-ms-stdio")
	b.ReportMetric(q(overStdio, 0.99), "p99-ms-stdio")
	b.ReportMetric(q(overHTTP, 0.5), "p50-ms-http")
	b.ReportMetric(q(overHTTP, 0.99), "p99-ms-http")
	b.ReportMetric(q(direct, 0.5), "p50-ms-api")
	b.ReportMetric(0, "ns/op")
}
