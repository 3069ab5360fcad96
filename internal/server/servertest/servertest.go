// Package servertest runs a real fusebox server (internal/server, as
// fusebox serve does) inside a test process, on real engines: the one way
// the tests of the server, the CLI and the MCP server start one.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/server"
)

// Config is the configuration the tests start from: every engine of
// engines as a host with network mode none, a data dir of the test's own,
// and health checks and polls fast enough for tests.
func Config(tb testing.TB, engines *enginetest.Fleet) *config.Config {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.Hosts = nil
	for _, e := range engines.Engines {
		h := config.DefaultHost(e.Name, e.UnixHost())
		h.NetworkMode = "none"
		cfg.Hosts = append(cfg.Hosts, h)
	}
	cfg.HealthCheck.Interval = 500 * time.Millisecond
	cfg.HealthCheck.Timeout = 500 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	return cfg
}

// Start runs a server with Config, changed by edit if not nil, on a
// loopback port, and returns it and its base URL ("http://127.0.0.1:N").
// It is stopped when the test ends; a server that fails fails the test.
func Start(tb testing.TB, engines *enginetest.Fleet, edit func(*config.Config)) (*server.Server, string) {
	tb.Helper()
	cfg := Config(tb, engines)
	if edit != nil {
		edit(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}
