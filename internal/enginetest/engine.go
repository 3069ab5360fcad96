package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/moby/moby/client"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrUnavailable means private engines cannot be started on this
	// machine (not root, or dockerd, containerd or runc missing).
	ErrUnavailable = errors.New("enginetest: private engines unavailable")
	// ErrNotSupported means the operation needs a private engine (or, for
	// proxy faults, a proxy) and the engine is external.
	ErrNotSupported = errors.New("not supported on external engine")
	// ErrShared means the engine belongs to a fleet shared between tests,
	// where a fault would break other tests; use a private fleet.
	ErrShared = errors.New("not allowed on a shared engine; use enginetest.ForTest for a private fleet")
)

// readyTimeout bounds how long a dockerd may take to answer /_ping after
// it was started. Generous for a loaded 2-core CI machine; the normal case
// is 1-2 s.
const readyTimeout = 60 * time.Second

// Engine is one Docker engine of a fleet: a private dockerd started by
// Start, or an external one named by FUSEBOX_TEST_ENGINES.
type Engine struct {
	Name      string // "e1", "e2", ...
	Dir       string // the engine's directory ("" for an external engine)
	Socket    string // unix socket path ("" for an external tcp engine)
	TCPAddr   string // 127.0.0.1:port the daemon listens on, plain HTTP ("" for an external unix engine)
	ProxyAddr string // 127.0.0.1:port of the fault proxy in front of TCPAddr ("" if no TCPAddr)

	// The answer proxy in front of Socket (see answerproxy.go); "" for an
	// external engine.
	AnswerSocket string // its unix socket, a.sock in Dir
	AnswerAddr   string // its 127.0.0.1:port

	external bool
	shared   bool
	logf     func(string, ...any)
	proxy    *toxiproxy.Proxy
	answers  *answerProxy // nil for an external engine
	ping     *http.Client // on the unix socket or TCPAddr, no keep-alive

	mu        sync.Mutex
	cmd       *exec.Cmd     // the running dockerd, nil if none
	done      chan struct{} // closed when cmd has exited and been reaped
	startTook time.Duration
}

// UnixHost is the Docker host URL of the unix socket, "unix:///...", or ""
// for an external tcp engine.
func (e *Engine) UnixHost() string {
	if e.Socket == "" {
		return ""
	}
	return "unix://" + e.Socket
}

// TCPHost is the Docker host URL of the daemon's own tcp listener,
// "tcp://127.0.0.1:port", or "" if it has none.
func (e *Engine) TCPHost() string {
	if e.TCPAddr == "" {
		return ""
	}
	return "tcp://" + e.TCPAddr
}

// ProxyHost is the Docker host URL through the fault proxy,
// "tcp://127.0.0.1:port", or "" if the engine has no proxy.
func (e *Engine) ProxyHost() string {
	if e.ProxyAddr == "" {
		return ""
	}
	return "tcp://" + e.ProxyAddr
}

// Host is the most direct Docker host URL: the unix socket if there is one,
// else the tcp listener.
func (e *Engine) Host() string {
	if h := e.UnixHost(); h != "" {
		return h
	}
	return e.TCPHost()
}

// Client returns a new moby client on Host, with API version negotiation.
// The caller closes it.
func (e *Engine) Client() (*client.Client, error) {
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		return nil, fmt.Errorf("enginetest: %s: client: %w", e.Name, err)
	}
	return cli, nil
}

// External reports whether the engine was named by FUSEBOX_TEST_ENGINES
// rather than started by this package.
func (e *Engine) External() bool { return e.external }

// Pid is the process ID of the running dockerd, or 0 (external engine, or
// killed and not restarted).
func (e *Engine) Pid() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// StartTook is how long the last start or restart took until the daemon
// answered /_ping.
func (e *Engine) StartTook() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.startTook
}

func (e *Engine) String() string { return e.Name + " (" + e.Host() + ")" }

// Ping asks /_ping directly (not through the proxy) once.
func (e *Engine) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := e.ping.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s", resp.Status)
	}
	return nil
}

// newPingClient makes the plain HTTP client behind Ping and the readiness
// wait.
func newPingClient(network, addr string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// private returns an error if the engine cannot take process faults.
func (e *Engine) private(op string) error {
	if e.external {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, ErrNotSupported)
	}
	if e.shared {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, ErrShared)
	}
	return nil
}

// Kill SIGKILLs dockerd, as when the host is lost: the API socket then
// refuses connections. Its containerd dies with it (dockerd starts it with
// a parent-death signal); containerd-shim and the containers keep running,
// as they would on a real host. Restart brings the daemon back.
func (e *Engine) Kill() error {
	if err := e.private("kill"); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.killLocked()
}

func (e *Engine) killLocked() error {
	if e.cmd == nil {
		return nil
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("enginetest: kill %s: dockerd %d did not exit", e, e.cmd.Process.Pid)
	}
	e.cmd = nil
	return nil
}

// Hang SIGSTOPs dockerd only: the API accepts connections (the kernel
// queues them) and never answers, while containerd and the containers go on
// running. This is the hung-daemon case of nomad#1359. Resume undoes it.
func (e *Engine) Hang() error { return e.signal("hang", syscall.SIGSTOP) }

// Resume SIGCONTs dockerd after Hang.
func (e *Engine) Resume() error { return e.signal("resume", syscall.SIGCONT) }

func (e *Engine) signal(op string, sig syscall.Signal) error {
	if err := e.private(op); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return fmt.Errorf("enginetest: %s %s: dockerd is not running (killed?)", op, e)
	}
	pid := e.cmd.Process.Pid
	if err := e.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, err)
	}
	// A signal takes effect when each thread next runs; on a loaded
	// machine a request sent right after kill(2) could still be served.
	// Wait until every thread is stopped (or none is).
	stop := sig == syscall.SIGSTOP
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; !allThreadsStopped(pid, stop); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("enginetest: %s %s: dockerd %d did not change state within 10s", op, e, pid)
		}
		time.Sleep(delay)
	}
	return nil
}

// allThreadsStopped reports whether every thread of pid is in stopped state
// (stopped true), or none is (stopped false).
func allThreadsStopped(pid int, stopped bool) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true // gone: nothing left to wait for
	}
	for _, t := range ents {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		if (b[i+2] == 'T') != stopped {
			return false
		}
	}
	return true
}

// Restart starts dockerd again on the same directories, sockets and port
// and waits until it answers. A running (or hung) dockerd is killed first.
// Images and containers survive; what dockerd does with containers that
// kept running is its own business (without live-restore it stops them).
func (e *Engine) Restart(ctx context.Context) error {
	if err := e.private("restart"); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.killLocked(); err != nil {
		return err
	}
	// The old containerd dies with dockerd but may linger for a moment, or
	// as a zombie that init has not reaped yet; dockerd would take a live
	// pid in containerd.pid for a running containerd and wait on it.
	cfg := filepath.Join(e.Dir, "exec", "containerd", "containerd.toml")
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := killAll(kctx, "", func(p proc) bool {
		return len(p.args) > 0 && strings.HasSuffix(p.args[0], "containerd") && slices.Contains(p.args, cfg)
	})
	if err != nil {
		return fmt.Errorf("enginetest: restart %s: old containerd: %w", e, err)
	}
	_ = os.Remove(filepath.Join(e.Dir, "exec", "containerd", "containerd.pid"))
	_ = os.Remove(filepath.Join(e.Dir, "dockerd.pid"))
	if err := e.startLocked(ctx); err != nil {
		return fmt.Errorf("enginetest: restart %s: %w", e, err)
	}
	e.logf("enginetest: %s restarted in %v (pid %d)", e.Name, e.startTook.Round(time.Millisecond), e.cmd.Process.Pid)
	return nil
}

// dockerdArgs is the command line of a private engine.
func (e *Engine) dockerdArgs() []string {
	ns := nsPrefix(filepath.Dir(e.Dir)) + e.Name
	return []string{
		"--data-root", filepath.Join(e.Dir, "data"),
		"--exec-root", filepath.Join(e.Dir, "exec"),
		"--pidfile", filepath.Join(e.Dir, "dockerd.pid"),
		// Our own config file (see daemonJSON), so that
		// /etc/docker/daemon.json does not apply.
		"--config-file", filepath.Join(e.Dir, "daemon.json"),
		"-H", "unix://" + e.Socket,
		"-H", "tcp://" + e.TCPAddr,
		"--storage-driver", "vfs",
		// Plain HTTP on loopback; --tls=false is implied by 20.10 and
		// must be explicit from 27.0 on.
		"--tls=false",
		"--iptables=false",
		"--ip-masq=false",
		"--bridge=none",
		// Own containerd namespace and cgroup parent, named after the base
		// directory, so that Close and sweep find everything of ours even
		// if the machine runs its own containerd or docker.
		"--containerd-namespace", ns,
		"--containerd-plugins-namespace", ns + "-plugins",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/" + ns,
	}
}

// daemonJSON is the config file of a private engine. Before 23.0 dockerd
// keeps its identity (the engine ID in /info) in /etc/docker/key.json
// unless told otherwise: every engine would have the same ID, and engines
// starting in parallel on a fresh machine would race to create the file.
func daemonJSON(dir string) []byte { return daemonJSONWith(dir, false) }

// daemonJSONWith is daemonJSON, with brokenStarts making every container
// start fail (see BreakStarts).
func daemonJSONWith(dir string, brokenStarts bool) []byte {
	cfg := map[string]any{}
	if v := dockerdMajor(); v > 0 && v < 23 {
		cfg["deprecated-key-path"] = filepath.Join(dir, "key.json")
	}
	if brokenStarts {
		cfg["runtimes"] = map[string]any{"broken": map[string]string{"path": "/bin/false"}}
		cfg["default-runtime"] = "broken"
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return append(b, '\n')
}

var dockerdVersion struct {
	once  sync.Once
	major int
}

// dockerdMajor is the major version of dockerd ("Docker version 20.10.24+dfsg1,
// build 5d6db84" gives 20), or 0 if unknown.
func dockerdMajor() int {
	dockerdVersion.once.Do(func() {
		p, err := findBinary("dockerd")
		if err != nil {
			return
		}
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			return
		}
		f := strings.Fields(string(out))
		if len(f) < 3 {
			return
		}
		major, _, _ := strings.Cut(f[2], ".")
		dockerdVersion.major, _ = strconv.Atoi(major)
	})
	return dockerdVersion.major
}

// startLocked starts dockerd and waits until it answers /_ping.
func (e *Engine) startLocked(ctx context.Context) error {
	dockerd, err := findBinary("dockerd")
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(e.Dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	fmt.Fprintf(logFile, "--- enginetest: starting dockerd at %s\n", time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(dockerd, e.dockerdArgs()...)
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = daemonEnv()
	// Own process group: a ^C to the test's group does not reach it.
	// Parent-death signal: it dies with the test process, and its
	// containerd with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	e.cmd, e.done = cmd, done

	if err := e.waitReady(ctx, done); err != nil {
		_ = e.killLocked()
		return fmt.Errorf("%w; dockerd log %s:\n%s", err, filepath.Join(e.Dir, "dockerd.log"), logTail(filepath.Join(e.Dir, "dockerd.log"), 15))
	}
	e.startTook = time.Since(began)
	return nil
}

// waitReady polls /_ping until it answers, dockerd exits, or readyTimeout.
func (e *Engine) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := e.Ping(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dockerd exited during start")
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer /_ping within %v: %w (last: %v)", readyTimeout, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// daemonEnv is the environment of dockerd: ours, with the directories of
// containerd, runc and the shim surely on PATH, and no DOCKER_ variables.
func daemonEnv() []string {
	var env []string
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=") + ":" + path
		case strings.HasPrefix(kv, "DOCKER_"), strings.HasPrefix(kv, "NOTIFY_SOCKET="), strings.HasPrefix(kv, "LISTEN_"):
		default:
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+path)
}

// findBinary finds a daemon binary on PATH or in the sbin directories a
// non-root PATH may lack.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no %s on PATH or in the sbin directories (Debian: apt-get install docker.io)", ErrUnavailable, name)
}

// checkPrivate says why private engines cannot run here, or nil.
func checkPrivate() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: private engines need root (euid is %d); run as root or set FUSEBOX_TEST_ENGINES", ErrUnavailable, os.Geteuid())
	}
	for _, name := range []string{"dockerd", "containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := findBinary(name); err != nil {
			return err
		}
	}
	return nil
}

// logTail returns the last n lines of a file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts reserves n distinct loopback ports by listening on them all at
// once, then releases them for dockerd to take.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// LoadImage loads img into the engine and checks its ID.
func (e *Engine) LoadImage(ctx context.Context, img *Image) error {
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := loadImage(ctx, cli, img); err != nil {
		return fmt.Errorf("enginetest: load %s into %s: %w", img.Ref, e, err)
	}
	return nil
}

// spawner starts daemons from one OS thread that never exits. The
// parent-death signal fires when the thread that forked the child exits,
// not the process; a Go thread can exit (a goroutine that ends while
// locked to it), which would kill dockerd in the middle of a test.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // and never unlock: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.done
}
