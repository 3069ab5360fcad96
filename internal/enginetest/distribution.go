package enginetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// DistributionBinary is where Debian's docker-registry package installs
// the CNCF distribution registry.
const DistributionBinary = "/usr/bin/docker-registry"

// DistributionOptions configure StartDistribution.
type DistributionOptions struct {
	// Dir holds the registry's config, htpasswd file, storage and log
	// (a test's t.TempDir()). Required.
	Dir string
	// Users are the accounts of the htpasswd file (name -> password,
	// bcrypt-hashed with apache2-utils' htpasswd). Empty: no auth.
	Users map[string]string
	Logf  func(string, ...any)
}

// Distribution is a real registry (Debian's docker-registry, the CNCF
// distribution registry) on a loopback port, plain HTTP (engines take
// 127.0.0.0/8 as insecure by default), with htpasswd auth. Stop and Start
// take it down and bring it back on the same address with the same
// content: a registry outage.
type Distribution struct {
	Addr string // 127.0.0.1:port

	dir  string
	logf func(string, ...any)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartDistribution starts the registry. It fails with ErrUnavailable
// when docker-registry or htpasswd is not installed (scripts/deps.sh
// --test installs them).
func StartDistribution(ctx context.Context, o DistributionOptions) (*Distribution, error) {
	if o.Dir == "" {
		return nil, errors.New("enginetest: distribution: Dir is required")
	}
	if _, err := os.Stat(DistributionBinary); err != nil {
		return nil, fmt.Errorf("%w: %s (Debian: apt-get install docker-registry)", ErrUnavailable, err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, fmt.Errorf("enginetest: distribution: %w", err)
	}
	d := &Distribution{Addr: loopback(ports[0]), dir: o.Dir, logf: o.Logf}
	auth := ""
	if len(o.Users) > 0 {
		htp, err := exec.LookPath("htpasswd")
		if err != nil {
			return nil, fmt.Errorf("%w: no htpasswd (Debian: apt-get install apache2-utils)", ErrUnavailable)
		}
		var lines []string
		for user, pass := range o.Users {
			out, err := exec.CommandContext(ctx, htp, "-Bbn", user, pass).Output()
			if err != nil {
				return nil, fmt.Errorf("enginetest: distribution: htpasswd %s: %w", user, err)
			}
			lines = append(lines, strings.TrimSpace(string(out)))
		}
		if err := os.WriteFile(filepath.Join(o.Dir, "htpasswd"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("enginetest: distribution: %w", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: fusebox-test\n    path: %s\n", filepath.Join(o.Dir, "htpasswd"))
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(o.Dir, "storage"), d.Addr, auth)
	if err := os.WriteFile(filepath.Join(o.Dir, "config.yml"), []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("enginetest: distribution: %w", err)
	}
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Start (re)starts a stopped registry on its address and waits until it
// answers /v2/.
func (d *Distribution) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("enginetest: distribution: %w", err)
	}
	cmd := exec.Command(DistributionBinary, "serve", filepath.Join(d.dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("enginetest: distribution: start: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	d.cmd, d.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		res, err := hc.Get("http://" + d.Addr + "/v2/")
		if err == nil {
			res.Body.Close()
			if d.logf != nil {
				d.logf("enginetest: distribution on %s (pid %d)", d.Addr, cmd.Process.Pid)
			}
			return nil
		}
		select {
		case <-done:
			d.cmd = nil
			return fmt.Errorf("enginetest: distribution exited at start: %s", logTail(filepath.Join(d.dir, "registry.log"), 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("enginetest: distribution not answering on %s after 30s", d.Addr)
		}
	}
}

// Stop kills the registry and waits for it to exit; its content stays for
// the next Start. Safe to call twice.
func (d *Distribution) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
	d.cmd = nil
	return nil
}

// Close stops the registry for good.
func (d *Distribution) Close() error { return d.Stop() }

// Auth is the engine's RegistryAuth value (base64url JSON) for user and
// password at this registry.
func (d *Distribution) Auth(user, password string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "serveraddress": d.Addr})
	return base64.URLEncoding.EncodeToString(b)
}

// Push tags the image ref on the engine at host (a Docker host URL) as
// Addr/name ("repository:tag") and pushes it with the credentials. It
// returns the pullable reference.
func (d *Distribution) Push(ctx context.Context, host, ref, name, user, password string) (string, error) {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return "", fmt.Errorf("enginetest: distribution push: %w", err)
	}
	defer cli.Close()
	target := d.Addr + "/" + name
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: ref, Target: target}); err != nil {
		return "", fmt.Errorf("enginetest: distribution push: tag %s: %w", target, err)
	}
	res, err := cli.ImagePush(ctx, target, client.ImagePushOptions{RegistryAuth: d.Auth(user, password)})
	if err != nil {
		return "", fmt.Errorf("enginetest: distribution push %s: %w", target, err)
	}
	defer res.Close()
	for m, err := range res.JSONMessages(ctx) {
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("enginetest: distribution push %s: %w", target, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("enginetest: distribution push %s: %s", target, m.Error.Message)
		}
	}
	return target, nil
}
