package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// EnvEngines names external engines to use instead of starting private
// ones: Docker host URLs separated by commas, e.g.
// "unix:///var/run/docker.sock,tcp://127.0.0.1:2375".
const EnvEngines = "FUSEBOX_TEST_ENGINES"

// maxSocketPath is the longest unix socket path Linux takes (108 bytes
// with the terminating NUL), with a little room.
const maxSocketPath = 100

// Options says what fleet to start. The zero value of a field means its
// default.
type Options struct {
	// N is the number of engines; it must be at least 1.
	N int
	// BaseDir holds the engines' directories. "" means a new directory
	// under os.TempDir() named fusebox-engines-*, removed by Close. A given
	// BaseDir is created if missing; Close removes only what Start put in
	// it (unless Start created it). Keep it short: unix socket paths under
	// it must stay below 108 bytes.
	BaseDir string
	// Logf, if set, gets progress: start times, restarts, sweeps.
	Logf func(format string, args ...any)
	// External lists Docker host URLs to use instead of starting engines.
	// nil means the hosts in $FUSEBOX_TEST_ENGINES, if set; an empty
	// non-nil slice means private engines whatever the environment says.
	External []string
}

// Fleet is a set of engines started (or named) together.
type Fleet struct {
	Engines []*Engine
	BaseDir string // "" for an external fleet

	logf        func(string, ...any)
	proxies     *toxiproxy.ApiServer
	ownsBaseDir bool
	external    bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts opts.N private engines in parallel, waits until each
// answers /_ping, puts a fault proxy in front of each tcp listener and an
// answer proxy in front of each unix socket. With
// external hosts (opts.External or $FUSEBOX_TEST_ENGINES) it starts
// nothing and returns engines pointing at the first N of them. On error
// everything started is cleaned up. Close the fleet when done.
//
// Before starting, it sweeps base directories that interrupted runs left
// in the temp directory.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.N < 1 {
		return nil, fmt.Errorf("enginetest: start: Options.N = %d, want at least 1", opts.N)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	external := opts.External
	if external == nil {
		external = HostsFromEnv()
	}
	if len(external) > 0 {
		return startExternal(opts.N, external, logf)
	}
	if err := checkPrivate(); err != nil {
		return nil, err
	}

	f := &Fleet{logf: logf}
	root := os.TempDir()
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	sweep(ctx, root, logf)
	if err := f.makeBaseDir(root, opts.BaseDir, opts.N); err != nil {
		return nil, err
	}

	ports, err := freePorts(opts.N)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("enginetest: start: %w", err)
	}
	f.proxies = newProxyServer()
	for i := range opts.N {
		name := fmt.Sprintf("e%d", i+1)
		dir := filepath.Join(f.BaseDir, name)
		e := &Engine{
			Name:    name,
			Dir:     dir,
			Socket:  filepath.Join(dir, "d.sock"),
			TCPAddr: loopback(ports[i]),
			logf:    logf,
		}
		e.ping = newPingClient("unix", e.Socket)
		f.Engines = append(f.Engines, e)
	}

	began := time.Now()
	errs := make([]error, len(f.Engines))
	var wg sync.WaitGroup
	for i, e := range f.Engines {
		wg.Go(func() { errs[i] = f.startEngine(ctx, e) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("enginetest: start: %w", err)
	}
	for _, e := range f.Engines {
		p, err := startProxy(f.proxies, e.Name, e.TCPAddr)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		e.proxy, e.ProxyAddr = p, p.Listen
		a := newAnswerProxy(e.Name, e.Socket, filepath.Join(e.Dir, "a.sock"))
		e.answers = a // before Start: Close stops it whatever happens
		if err := a.Start(ctx); err != nil {
			_ = f.Close()
			return nil, err
		}
		e.AnswerSocket, e.AnswerAddr = a.sockPath, a.tcpAddr
	}
	logf("enginetest: %d engine(s) up in %v under %s", len(f.Engines), time.Since(began).Round(time.Millisecond), f.BaseDir)
	return f, nil
}

// makeBaseDir creates the base directory and the engines' directories
// and writes the owner file.
func (f *Fleet) makeBaseDir(root, base string, n int) error {
	if base == "" {
		dir, err := os.MkdirTemp(root, baseDirPattern)
		if err != nil {
			return fmt.Errorf("enginetest: start: %w", err)
		}
		f.BaseDir, f.ownsBaseDir = dir, true
	} else {
		abs, err := filepath.Abs(base)
		if err != nil {
			return fmt.Errorf("enginetest: start: BaseDir %q: %w", base, err)
		}
		if _, err := os.Stat(abs); os.IsNotExist(err) {
			f.ownsBaseDir = true
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("enginetest: start: BaseDir %q: %w", base, err)
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		}
		f.BaseDir = abs
	}
	if err := os.WriteFile(filepath.Join(f.BaseDir, ownerFile), []byte(selfOwner().String()), 0o644); err != nil {
		_ = f.Close()
		return fmt.Errorf("enginetest: start: %w", err)
	}
	if sock := filepath.Join(f.BaseDir, fmt.Sprintf("e%d", n), "d.sock"); len(sock) > maxSocketPath {
		_ = f.Close()
		return fmt.Errorf("enginetest: start: socket path %s is %d bytes, longer than unix sockets take; use a shorter BaseDir or TMPDIR", sock, len(sock))
	}
	for i := range n {
		dir := filepath.Join(f.BaseDir, fmt.Sprintf("e%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			_ = f.Close()
			return fmt.Errorf("enginetest: start: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "daemon.json"), daemonJSON(dir), 0o644); err != nil {
			_ = f.Close()
			return fmt.Errorf("enginetest: start: %w", err)
		}
	}
	return nil
}

// startEngine starts one engine, taking a new port if another process
// took the one reserved for it in the meantime.
func (f *Fleet) startEngine(ctx context.Context, e *Engine) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = e.startLocked(ctx); err == nil {
			f.logf("enginetest: %s started in %v (pid %d, %s, %s)", e.Name, e.startTook.Round(time.Millisecond), e.cmd.Process.Pid, e.UnixHost(), e.TCPHost())
			return nil
		}
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
		ports, perr := freePorts(1)
		if perr != nil {
			break
		}
		f.logf("enginetest: %s: port of %s taken, retrying on %d", e.Name, e.TCPAddr, ports[0])
		e.TCPAddr = loopback(ports[0])
	}
	return fmt.Errorf("%s: %w", e.Name, err)
}

// startExternal makes a fleet of the first n external hosts.
func startExternal(n int, hosts []string, logf func(string, ...any)) (*Fleet, error) {
	if len(hosts) < n {
		return nil, fmt.Errorf("enginetest: start: %d engine(s) wanted, but %s names only %d: %q", n, EnvEngines, len(hosts), hosts)
	}
	f := &Fleet{logf: logf, external: true, proxies: newProxyServer()}
	for i, h := range hosts[:n] {
		e := &Engine{Name: fmt.Sprintf("e%d", i+1), external: true, logf: logf}
		u, err := url.Parse(h)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("enginetest: start: external engine %q: %w", h, err)
		}
		switch u.Scheme {
		case "unix":
			e.Socket = u.Path
			e.ping = newPingClient("unix", e.Socket)
		case "tcp":
			e.TCPAddr = u.Host
			e.ping = newPingClient("tcp", e.TCPAddr)
			p, err := startProxy(f.proxies, e.Name, e.TCPAddr)
			if err != nil {
				_ = f.Close()
				return nil, err
			}
			e.proxy, e.ProxyAddr = p, p.Listen
		default:
			_ = f.Close()
			return nil, fmt.Errorf("enginetest: start: external engine %q: want a unix:// or tcp:// host", h)
		}
		f.Engines = append(f.Engines, e)
		logf("enginetest: %s is external engine %s", e.Name, h)
	}
	return f, nil
}

// HostsFromEnv returns the hosts in $FUSEBOX_TEST_ENGINES, or nil.
func HostsFromEnv() []string {
	var hosts []string
	for _, h := range strings.Split(os.Getenv(EnvEngines), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// External reports whether the fleet's engines are external.
func (f *Fleet) External() bool { return f.external }

// Close kills every process of the fleet (dockerd, containerd, the shims and
// the containers), unmounts everything under BaseDir, removes the engines'
// cgroups and BaseDir (only what Start created in it, for a given
// BaseDir). It stops the proxies first, which removes the answer proxies'
// sockets. It is safe to call twice; the second call returns the first's
// result. For an external fleet it only stops the proxies.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

func (f *Fleet) close() error {
	for _, e := range f.Engines {
		if e.proxy != nil {
			e.proxy.Stop()
		}
		if e.answers != nil {
			e.answers.Stop()
		}
	}
	if f.external || f.BaseDir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	for _, e := range f.Engines {
		e.mu.Lock()
		if err := e.killLocked(); err != nil {
			errs = append(errs, err)
		}
		e.mu.Unlock()
	}
	if f.ownsBaseDir {
		if err := cleanDir(ctx, f.BaseDir, true); err != nil {
			errs = append(errs, err)
		}
	} else {
		if err := cleanDir(ctx, f.BaseDir, false); err != nil {
			errs = append(errs, err)
		}
		for _, e := range f.Engines {
			if err := removeAll(e.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		_ = os.Remove(filepath.Join(f.BaseDir, ownerFile))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("enginetest: close %s: %w", f.BaseDir, err)
	}
	return nil
}

// LoadImage loads img into every engine, in parallel.
func (f *Fleet) LoadImage(ctx context.Context, img *Image) error {
	errs := make([]error, len(f.Engines))
	var wg sync.WaitGroup
	for i, e := range f.Engines {
		wg.Go(func() { errs[i] = e.LoadImage(ctx, img) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
