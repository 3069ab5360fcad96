package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"fusebox/internal/apiclient"
)

// BuildFusebox compiles the fusebox command into dir and returns its path.
func BuildFusebox(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "fusebox")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "fusebox/cmd/fusebox")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build fusebox: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address nothing listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: free address: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Server is one `fusebox serve` on one config file and data directory,
// across the kills and restarts of a scenario. Its output goes to LogPath.
type Server struct {
	Bin, ConfigPath, LogPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{} // closed when the process exits
}

// Start starts fusebox serve. The process gets SIGKILL if the test binary
// dies first.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("chaos: fusebox serve is already running")
	}
	out, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	cmd := exec.Command(s.Bin, "serve", "--config", s.ConfigPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("chaos: start fusebox serve: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.out, s.done = cmd, out, done
	return nil
}

// Kill SIGKILLs fusebox serve and waits until it is gone. Killing a
// server that is not running does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: kill fusebox serve: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("chaos: fusebox serve %d did not exit after SIGKILL", s.cmd.Process.Pid)
	}
	s.out.Close()
	s.cmd = nil
	return nil
}

// WaitHealthy polls /healthz until fusebox answers, it exits, or ctx ends.
func (s *Server) WaitHealthy(ctx context.Context, c *apiclient.Client) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return errors.New("chaos: fusebox serve is not running")
	}
	return until(ctx, 30*time.Second, "fusebox serve answers /healthz", func() (bool, error) {
		select {
		case <-done:
			return false, errors.New("fusebox serve exited")
		default:
		}
		return c.Health(ctx) == nil, nil
	})
}

// Log returns what fusebox serve wrote so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// until calls cond every 50ms until it reports true (nil), returns an
// error (that error), or timeout passes or ctx ends (an error naming
// what). It is the package's one way of waiting for something.
func until(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("chaos: waiting until %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s: not after %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: waiting until %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}
