package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/enginetest"
)

// serveTLS serves cfg on ln, logging to log, until the test ends and
// returns Serve's result channel.
func serveTLS(t *testing.T, cfg api.Config, ln net.Listener, log *slog.Logger) <-chan error {
	t.Helper()
	srv := api.New(cfg, apitest.NewService(), apitest.NewFleet(), nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

// servedCN makes a new TLS connection to addr, verified against roots, and
// returns the common name of the certificate the server presented.
func servedCN(t *testing.T, addr string, roots *x509.CertPool) (string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	res, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", res.StatusCode)
	}
	return res.TLS.PeerCertificates[0].Subject.CommonName, nil
}

// logBuffer is a log destination the test reads while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// The API serves TLS from the configured files, verified by a client that
// trusts the CA, and picks up new files without a restart.
func TestServeTLSAndReload(t *testing.T) {
	ca := apitest.NewCA(t)
	dir := t.TempDir()
	files := api.TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	ca.Issue(t, "first", files.CertFile, files.KeyFile)
	ln := listen(t)
	var logs logBuffer
	serveTLS(t, api.Config{TLS: &files}, ln, slog.New(slog.NewTextHandler(&logs, nil)))
	addr := ln.Addr().String()

	cn, err := servedCN(t, addr, ca.Pool())
	if err != nil || cn != "first" {
		t.Fatalf("first certificate: %q, %v", cn, err)
	}
	// Not trusted without the CA; plain HTTP gets no answer from fusebox.
	if _, err := servedCN(t, addr, x509.NewCertPool()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v", err)
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served on the TLS port")
		}
	}

	// A renewal: new files in place, the server still running.
	ca.Issue(t, "second", files.CertFile, files.KeyFile)
	// The server rechecks its files at a handshake, at most once a second.
	enginetest.Eventually(t, 10*time.Second, "the renewed certificate is served", func() bool {
		if cn, err = servedCN(t, addr, ca.Pool()); err != nil {
			t.Fatalf("during the reload: %v", err)
		}
		return cn == "second"
	}, func() string { return fmt.Sprintf("still serving %q after the files changed", cn) })

	// A broken renewal (a key that is not the certificate's) keeps the last
	// good certificate in service.
	other := t.TempDir()
	ca.Issue(t, "third", filepath.Join(other, "c.pem"), files.KeyFile)
	const refused = "the changed certificate files do not load"
	enginetest.Eventually(t, 10*time.Second, "the server reads the broken pair and warns that it does not load", func() bool {
		if cn, err := servedCN(t, addr, ca.Pool()); err != nil || cn != "second" {
			t.Fatalf("after a broken renewal: %q, %v (want the last good certificate, second)", cn, err)
		}
		return strings.Contains(logs.String(), refused)
	}, func() string { return "log:\n" + logs.String() })
	if cn, err := servedCN(t, addr, ca.Pool()); err != nil || cn != "second" {
		t.Errorf("after a broken renewal: %q, %v (want the last good certificate, second)", cn, err)
	}
}

// Serve refuses certificate files that do not load, and, beyond loopback,
// tokens over plain HTTP unless InsecureHTTP says so.
func TestServeTLSRefusals(t *testing.T) {
	ca := apitest.NewCA(t)
	dir := t.TempDir()
	good := api.TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	ca.Issue(t, "good", good.CertFile, good.KeyFile)
	ca.Issue(t, "other", filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem"))
	tokens := []api.Token{{Value: "secret-token", Role: api.RoleAdmin}}

	// serve returns Serve's refusal, or nil once the server answered.
	serve := func(cfg api.Config, addr string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		srv := api.New(cfg, apitest.NewService(), apitest.NewFleet(), nil, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
		c := &http.Client{Timeout: 5 * time.Second}
		if cfg.TLS != nil {
			url = "https://localhost:" + strconv.Itoa(port) + "/healthz"
			c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
		}
		res, err := c.Get(url)
		if err != nil {
			select {
			case err := <-done:
				return err
			case <-time.After(5 * time.Second):
				t.Fatalf("neither served nor refused: %v", err)
			}
		}
		res.Body.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after serving: %v", err)
		}
		return nil
	}
	for _, c := range []struct {
		name string
		cfg  api.Config
		addr string
		want string // "" : served
	}{
		{"missing cert", api.Config{TLS: &api.TLSFiles{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: good.KeyFile}}, "127.0.0.1:0", "tls.cert"},
		{"missing key", api.Config{TLS: &api.TLSFiles{CertFile: good.CertFile, KeyFile: filepath.Join(dir, "nope.pem")}}, "127.0.0.1:0", "tls.key"},
		{"key of another cert", api.Config{TLS: &api.TLSFiles{CertFile: good.CertFile, KeyFile: filepath.Join(dir, "other-key.pem")}}, "127.0.0.1:0", "private key does not match"},
		{"tokens over plain HTTP beyond loopback", api.Config{Tokens: tokens}, "0.0.0.0:0", "insecure_http"},
		{"no tokens beyond loopback, with TLS", api.Config{TLS: &good}, "0.0.0.0:0", "tokens"},
		{"tokens and TLS beyond loopback", api.Config{Tokens: tokens, TLS: &good}, "0.0.0.0:0", ""},
		{"tokens and insecure_http beyond loopback", api.Config{Tokens: tokens, InsecureHTTP: true}, "0.0.0.0:0", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := serve(c.cfg, c.addr)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Serve = %v, want a refusal saying %q", err, c.want)
			}
			if c.want == "tokens" || c.want == "insecure_http" {
				if !errors.Is(err, api.ErrInsecureListen) {
					t.Errorf("refusal %v does not wrap ErrInsecureListen", err)
				}
			}
		})
	}
}
