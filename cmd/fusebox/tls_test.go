package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/job"
)

// The CLI talks to an https server it verifies with --cacert or
// $FUSEBOX_CACERT, and says what to do when it does not trust it.
func TestCACert(t *testing.T) {
	ca := apitest.NewCA(t)
	dir := t.TempDir()
	files := api.TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	ca.Issue(t, "fusebox", files.CertFile, files.KeyFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{TLS: &files}, apitest.NewService(), apitest.NewFleet(testHosts()...), nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "https://" + ln.Addr().String()

	env := map[string]string{envServer: url}
	wantCode(t, cli(t, env, "hosts"), exitError, "certificate", "--cacert FILE or $FUSEBOX_CACERT")
	wantCode(t, cli(t, env, "--cacert", ca.File, "hosts"), 0)
	env[envCACert] = ca.File
	if r := cli(t, env, "hosts"); r.code != 0 || !strings.Contains(r.stdout, "h1") {
		t.Errorf("hosts with $FUSEBOX_CACERT: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantCode(t, cli(t, env, "--cacert", filepath.Join(dir, "missing.pem"), "hosts"), exitUsage, "--cacert", "no such file")
}

// run --wait whose follow is refused (the token has too many open) still
// shows the job's output, from what was collected, and its exit code.
func TestRunWaitWhenFollowsAreFull(t *testing.T) {
	e, env := start(t, api.Config{MaxFollowsPerToken: 1})
	other, _, err := e.Svc.Submit(context.Background(), job.Spec{Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(e.URL + "/v1/jobs/" + other.ID + "/logs?follow=true") // holds the one slot
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("first follow: %v %v", res, err)
	}
	defer res.Body.Close()

	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	e.Svc.OnSubmit = func(j *job.Job) {
		s := e.Svc
		s.Move(j.ID, job.StateLaunching, "placed", "h1")
		s.Move(j.ID, job.StateRunning, "started", "h1")
		if !stderr.waitFor(t, "too many log follows") {
			return
		}
		s.Output(j.ID, "stdout", "result=42\n")
		s.Finish(j.ID, job.StateFailed, ptr(3), "exit code 3")
	}
	code := cliTo(t, env, stdout, stderr, "run", "--wait", "alpine")
	if code != 3 {
		t.Fatalf("exit code %d, want 3\nstderr:\n%s", code, stderr.String())
	}
	if stdout.String() != "result=42\n" {
		t.Errorf("stdout %q, want the collected output\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "its output is shown when it ends") {
		t.Errorf("stderr does not say the output comes at the end:\n%s", stderr.String())
	}
}
