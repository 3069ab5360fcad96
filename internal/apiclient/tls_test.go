package apiclient_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/apiclient"
)

// startTLS serves the API over TLS with a certificate from a new CA until
// the test ends, and returns its https URL and the CA.
func startTLS(t *testing.T) (string, *apitest.CA) {
	t.Helper()
	ca := apitest.NewCA(t)
	dir := t.TempDir()
	files := api.TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	ca.Issue(t, "fusebox", files.CertFile, files.KeyFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{TLS: &files}, apitest.NewService(), apitest.NewFleet(hosts...), nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String(), ca
}

// The client verifies an https server against the CA file it is given, and
// says a certificate it does not trust is the problem.
func TestTLSWithCAFile(t *testing.T) {
	url, ca := startTLS(t)
	ctx := context.Background()

	c := apiclient.New(url, "")
	_, err := c.Hosts(ctx)
	var ce *apiclient.ConnError
	if !errors.As(err, &ce) || !apiclient.CertError(err) {
		t.Fatalf("without the CA: %v (want a ConnError that CertError recognises)", err)
	}

	c = apiclient.New(url, "")
	if err := c.TrustCAFile(ca.File); err != nil {
		t.Fatal(err)
	}
	got, err := c.Hosts(ctx)
	if err != nil || len(got) != len(hosts) {
		t.Fatalf("with the CA: %v, %v", got, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}

	// Another CA does not do.
	c = apiclient.New(url, "")
	if err := c.TrustCAFile(apitest.NewCA(t).File); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hosts(ctx); !apiclient.CertError(err) {
		t.Errorf("with another CA: %v", err)
	}
}

func TestTrustCAFileRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "no such file"},
		{notPEM, "no PEM certificate"},
	} {
		err := apiclient.New("https://127.0.0.1:1", "").TrustCAFile(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("TrustCAFile(%s) = %v, want %q", c.path, err, c.want)
		}
	}
	if err := apiclient.New("http://127.0.0.1:1", "").TrustCAFile(""); err != nil {
		t.Errorf(`TrustCAFile("") = %v`, err)
	}
}
