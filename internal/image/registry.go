package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"

	"github.com/distribution/reference"
)

// Registry is the credentials of one registry: a username with a password,
// or an identity token (OAuth refresh token). They are sent with pulls of
// images on Host and never logged or returned.
type Registry struct {
	Host          string // "ghcr.io", "127.0.0.1:5000", "docker.io"
	Username      string
	Password      string
	IdentityToken string
}

// String never shows the secrets.
func (r Registry) String() string { return "registry " + r.Host + " (credentials redacted)" }

// BreakerPrefix starts the name of each registry's breaker in the fleet's
// registry of breakers: "registry/<host>".
const BreakerPrefix = "registry/"

// dockerHub is the registry of a reference that names none.
const dockerHub = "docker.io"

// WaitError is an image that could not be had for now, for a reason that
// is neither the job's nor its host's: its registry is out (unreachable,
// failing, or its breaker open), or every host that has it failed while
// sending it. The job should wait and be retried after RetryAfter (zero:
// the caller's own backoff). It unwraps to an *engine.Error of class
// ignored, so no host's breaker counts it.
type WaitError struct {
	Registry   string // the registry's host; "" when waiting for a source host
	RetryAfter time.Duration
	Err        error
}

func (e *WaitError) Error() string {
	if e.Registry == "" {
		return fmt.Sprintf("waiting for a host to copy the image from: %v", e.Err)
	}
	return fmt.Sprintf("waiting for registry %s: %v", e.Registry, e.Err)
}

func (e *WaitError) Unwrap() error {
	return &engine.Error{Op: "image pull", Class: engine.ClassIgnored, Err: e.Err}
}

// RegistryOf returns the registry host of an image reference ("docker.io"
// for one that names none).
func RegistryOf(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return reference.Domain(named), nil
}

// dockerConfig is the part of docker login's config.json fusebox reads.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"` // base64 of "user:password"
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
}

// readDockerConfig reads docker login's credentials (the "auths" entries;
// credential helpers are not run). A missing file is no credentials.
func readDockerConfig(path string) (map[string]Registry, error) {
	out := map[string]Registry{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	var dc dockerConfig
	if err := json.Unmarshal(b, &dc); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	for key, a := range dc.Auths {
		host := normalizeRegistryHost(key)
		r := Registry{Host: host, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("docker config %s: auths[%q].auth is not base64", path, key)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("docker config %s: auths[%q].auth is not user:password", path, key)
			}
			r.Username, r.Password = user, pass
		}
		out[host] = r
	}
	return out, nil
}

// normalizeRegistryHost turns a config.json key ("https://index.docker.io/v1/",
// "ghcr.io", "http://127.0.0.1:5000") into the host a reference names.
func normalizeRegistryHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHub
	}
	return s
}

// authFor returns the engine's RegistryAuth value for host, "" for none.
func (d *Distributor) authFor(host string) string {
	r, ok := d.creds[host]
	if !ok {
		return ""
	}
	b, _ := json.Marshal(map[string]string{
		"username": r.Username, "password": r.Password, "identitytoken": r.IdentityToken, "serveraddress": host,
	})
	return base64.URLEncoding.EncodeToString(b)
}

// known reports whether fusebox may wait for host through an outage: it
// has credentials for it, or a reference named it explicitly. Docker Hub
// named by default is not known unless configured: a local image on a
// machine that cannot reach it fails fast instead.
func (d *Distributor) known(ref, host string) bool {
	if _, ok := d.creds[host]; ok {
		return true
	}
	if host != dockerHub {
		return true
	}
	return strings.HasPrefix(ref, dockerHub+"/")
}

// breaker returns the breaker of registry host.
func (d *Distributor) breaker(host string) (*breaker.Breaker, error) {
	b, err := d.breakers.GetWith(BreakerPrefix+host, d.cfg.Breaker)
	if err != nil {
		return nil, fmt.Errorf("registry %s: breaker: %w", host, err)
	}
	return b, nil
}

// Pull pulls ref onto h through the breaker of its registry, with its
// credentials. The call on h is made directly (the caller holds h's lease
// or breaker permit and counts the outcome). Errors: a *WaitError when the
// registry is out (its breaker counts a failure, or it was open); the
// engine's job-class error with the registry's message when it refused
// (bad credentials, missing tag: its breaker counts a success, it
// answered); a host fault when the engine failed (the registry's breaker
// is not told).
func (d *Distributor) Pull(ctx context.Context, h *fleet.Host, ref string) error {
	host, err := RegistryOf(ref)
	if err != nil {
		return &engine.Error{Host: h.Name(), Op: "image pull", Class: engine.ClassJob, NotSent: true, Err: err}
	}
	b, err := d.breaker(host)
	if err != nil {
		return err
	}
	tok, err := b.Allow(ctx)
	if err != nil {
		var oe *breaker.OpenError
		ra := time.Duration(0)
		if errors.As(err, &oe) {
			ra = oe.RetryAfter
		}
		return &WaitError{Registry: host, RetryAfter: ra, Err: err}
	}
	err = h.Client().ImagePullWith(ctx, ref, engine.PullOptions{RegistryAuth: d.authFor(host)})
	switch {
	case err == nil:
		tok.DoneOutcome(breaker.Success)
		h.NoteImage(ref, true)
		return nil
	case engine.ClassOf(err) != engine.ClassJob:
		// The engine's fault or the caller's: the registry is not judged.
		tok.DoneOutcome(breaker.Ignored)
		return err
	case registryOut(err):
		tok.DoneOutcome(breaker.Failure)
		d.log.Warn("registry out", "registry", host, "image", ref, "host", h.Name(), "err", err)
		return &WaitError{Registry: host, Err: err}
	}
	tok.DoneOutcome(breaker.Success) // it answered: a refusal
	return err
}

// registryOut reports whether a pull's job-class error says the registry
// could not be used (no connection, a 5xx, a stall), rather than that it
// refused the pull (credentials, a missing name or tag).
func registryOut(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"connection refused", "no such host", "i/o timeout", "dial tcp", "connection reset", "no route to host",
		"network is unreachable", "tls handshake timeout", "server misbehaving", "did not finish within",
		"unexpected eof", "502 bad gateway", "503 service unavailable", "504 gateway", "500 internal server error",
		"received unexpected http status: 5", "toomanyrequests", "429 too many requests",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	for _, s := range []string{
		"unauthorized", "denied", "no basic auth credentials", "authentication required", "manifest unknown",
		"not found", "name unknown", "forbidden", "does not exist",
	} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	// Anything else the registry said through the engine (an error in the
	// progress stream, a 5xx relayed) is taken as the registry failing.
	return errors.Is(err, engine.ErrRegistry)
}
