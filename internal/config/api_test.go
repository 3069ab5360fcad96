package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

func TestAPIValidation(t *testing.T) {
	for _, tt := range []problemCase{
		{"tls cert without key", "api:\n  tls:\n    cert: server.pem\n", 3, "api.tls.cert", "needs api.tls.key as well"},
		{"tls key without cert", "api:\n  tls:\n    key: server-key.pem\n", 3, "api.tls.key", "needs api.tls.cert as well"},
		{"insecure_http with tls", "api:\n  tls:\n    cert: s.pem\n    key: k.pem\n  insecure_http: true\n", 5, "api.insecure_http", "api.tls is set"},
		{"insecure_http not a bool", "api:\n  insecure_http: yes\n", 2, "api.insecure_http", "true or false"},
		{"max_follows_per_token", "api:\n  max_follows_per_token: 0\n", 2, "api.max_follows_per_token", "must be at least 1"},
		{"follow_start_timeout", "api:\n  follow_start_timeout: -1s\n", 2, "api.follow_start_timeout", "must not be negative"},
		{"unknown api key", "api:\n  tls_cert: x.pem\n", 2, "api.tls_cert", ""},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}

	c, err := Parse("fusebox.yaml", []byte("api:\n  tls:\n    cert: s.pem\n    key: k.pem\n  max_follows_per_token: 3\n  follow_start_timeout: 90s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (API{TLS: APITLS{Cert: "s.pem", Key: "k.pem"}, MaxFollowsPerToken: 3, FollowStartTimeout: 90 * time.Second}); c.API != want {
		t.Errorf("api = %+v, want %+v", c.API, want)
	}
	env := map[string]string{"FUSEBOX_API_INSECURE_HTTP": "true", "FUSEBOX_API_MAX_FOLLOWS_PER_TOKEN": "2"}
	c, err = Parse("", nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || !c.API.InsecureHTTP || c.API.MaxFollowsPerToken != 2 {
		t.Errorf("api from the environment: %v, %+v", err, c.API)
	}
}

// The API's certificate and key are relative to the file, and must exist.
func TestAPITLSPaths(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	writeFile(t, dir, "server.pem", "cert")
	writeFile(t, dir, "server-key.pem", "key")
	p := writeFile(t, dir, "fusebox.yaml", "api:\n  tls:\n    cert: server.pem\n    key: ./server-key.pem\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := (APITLS{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}); c.API.TLS != want {
		t.Errorf("api.tls = %+v, want %+v", c.API.TLS, want)
	}

	p = writeFile(t, dir, "bad.yaml", "api:\n  tls:\n    cert: server.pem\n    key: missing.pem\n")
	_, err = Load(p)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v", err)
	}
	if got, want := ps[0].String(), p+":4:10: api.tls.key: cannot read "+filepath.Join(dir, "missing.pem")+": no such file or directory"; got != want {
		t.Errorf("problem = %q\n           want %q", got, want)
	}
}
