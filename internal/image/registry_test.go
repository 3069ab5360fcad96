package image

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"fusebox/internal/engine"
)

// The messages are dockerd's own, as the real-registry test sees them.
func TestRegistryOutTellsAnOutageFromARefusal(t *testing.T) {
	jobErr := func(msg string, registry bool) error {
		err := errors.New("Error response from daemon: " + msg)
		if registry {
			err = errors.Join(engine.ErrRegistry, err)
		}
		return &engine.Error{Host: "e1", Op: "image pull", Class: engine.ClassJob, Answered: true, Err: err}
	}
	for _, c := range []struct {
		msg      string
		registry bool
		out      bool
	}{
		{`Get "http://127.0.0.1:37297/v2/": dial tcp 127.0.0.1:37297: connect: connection refused`, true, true},
		{`Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host`, true, true},
		{`received unexpected HTTP status: 503 Service Unavailable`, true, true},
		{`the pull did not finish within 10m0s while the engine still answers`, true, true},
		{`unauthorized: authentication required`, true, false},
		{`Head "http://127.0.0.1:37297/v2/fusebox/testjob/manifests/v1": no basic auth credentials`, true, false},
		{`manifest for 127.0.0.1:37297/fusebox/testjob:nope not found: manifest unknown: manifest unknown`, false, false},
		{`pull access denied for nope, repository does not exist or may require 'docker login'`, false, false},
		{`something else the registry said`, true, true},
	} {
		if got := registryOut(jobErr(c.msg, c.registry)); got != c.out {
			t.Errorf("registryOut(%q) = %v, want %v", c.msg, got, c.out)
		}
	}
}

func TestDockerConfigAndKnownRegistries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	body := fmt.Sprintf(`{"auths": {"https://index.docker.io/v1/": {"auth": %q}, "ghcr.io": {"identitytoken": "tok"}}}`, auth)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := readDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := creds["docker.io"]; r.Username != "alice" || r.Password != "s3cret" {
		t.Errorf("docker.io: %+v", r)
	}
	if r := creds["ghcr.io"]; r.IdentityToken != "tok" {
		t.Errorf("ghcr.io: %+v", r)
	}
	if got := fmt.Sprint(creds["docker.io"]); got != "registry docker.io (credentials redacted)" {
		t.Errorf("a registry prints as %q", got)
	}
	if _, err := readDockerConfig(filepath.Join(dir, "none.json")); err != nil {
		t.Errorf("a missing config.json: %v, want no credentials", err)
	}
	d := &Distributor{creds: map[string]Registry{}}
	for ref, want := range map[string]bool{"alpine": false, "fusebox/app:1": false, "docker.io/library/alpine": true, "127.0.0.1:5000/app:1": true, "ghcr.io/o/app": true} {
		host, err := RegistryOf(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.known(ref, host); got != want {
			t.Errorf("known(%s) = %v, want %v", ref, got, want)
		}
	}
	d.creds = creds
	if !d.known("alpine", dockerHub) {
		t.Error("Docker Hub with credentials is not known")
	}
}
