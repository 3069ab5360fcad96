package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Model is how every simulated engine of a Cluster behaves. A zero field
// means its default.
type Model struct {
	CallLatency    time.Duration // added to every answer; default 0
	Jitter         float64       // ± fraction of CallLatency, uniform; default 0
	JobRuntime     time.Duration // how long a started container runs before it exits 0; default 100ms
	CreateFailRate float64       // share of creates answered 500; default 0
}

// JobRuntimeDefault is the default Model.JobRuntime.
const JobRuntimeDefault = 100 * time.Millisecond

func (m Model) withDefaults() Model {
	if m.JobRuntime <= 0 {
		m.JobRuntime = JobRuntimeDefault
	}
	return m
}

// Stats counts what the simulated engines served.
type Stats struct {
	Pings    int64 // health checks (GET or HEAD /_ping)
	Creates  int64 // container creates answered 201
	Starts   int64
	Exits    int64 // containers that ran to their end
	Inspects int64 // container inspects
	Calls    int64 // every request, pings included
}

// Cluster is a set of simulated engines served in process. Close it when
// done.
type Cluster struct {
	model   Model
	srv     *http.Server
	ln      *pipeListener
	engines []*Engine
	done    chan struct{}
}

// New starts n simulated engines named sim-00000, sim-00001, ...
func New(n int, m Model) *Cluster {
	c := &Cluster{model: m.withDefaults(), ln: newPipeListener(), done: make(chan struct{})}
	for i := range n {
		c.engines = append(c.engines, newEngine(c, fmt.Sprintf("sim-%05d", i)))
	}
	c.srv = &http.Server{
		Handler:           http.HandlerFunc(c.serve),
		ReadHeaderTimeout: time.Minute,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, engineKey{}, conn.(*simConn).e)
		},
	}
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(c.ln)
	}()
	return c
}

// Engines returns the simulated engines, in name order.
func (c *Cluster) Engines() []*Engine { return c.engines }

// Stats sums what every engine served so far.
func (c *Cluster) Stats() Stats {
	var s Stats
	for _, e := range c.engines {
		s.Pings += e.pings.Load()
		s.Creates += e.creates.Load()
		s.Starts += e.starts.Load()
		s.Exits += e.exits.Load()
		s.Inspects += e.inspects.Load()
		s.Calls += e.calls.Load()
	}
	return s
}

// Close stops serving and breaks every connection. Safe to call twice.
func (c *Cluster) Close() {
	c.ln.Close()
	for _, e := range c.engines {
		e.Resume() // let hung handlers end
		e.closeConns()
		e.stopTimers()
	}
	_ = c.srv.Close()
	<-c.done
}

type engineKey struct{}

// Engine is one simulated Docker engine.
type Engine struct {
	c    *Cluster
	name string

	mode atomic.Int32 // modeUp, modeDead, modeHung

	mu         sync.Mutex
	conns      map[*simConn]struct{}
	resume     chan struct{}            // closed when a hang ends
	containers map[string]*simContainer // by ID
	byName     map[string]*simContainer
	subs       map[chan []byte]struct{}
	seq        int

	pings, creates, starts, exits, inspects, calls atomic.Int64
}

const (
	modeUp int32 = iota
	modeDead
	modeHung
)

func newEngine(c *Cluster, name string) *Engine {
	return &Engine{c: c, name: name, conns: map[*simConn]struct{}{}, resume: make(chan struct{}),
		containers: map[string]*simContainer{}, byName: map[string]*simContainer{}, subs: map[chan []byte]struct{}{}}
}

// Name returns the engine's name.
func (e *Engine) Name() string { return e.name }

// Address returns the address to put in engine.Config (with Dial): it is
// never dialled.
func (e *Engine) Address() string { return "unix:///simulated/" + e.name + ".sock" }

// Dial connects to the simulated engine, for engine.Config.Dial. A killed
// engine refuses, as a dead daemon's socket does.
func (e *Engine) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if e.mode.Load() == modeDead {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: e.Address(), Net: "unix"},
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	cli, srv := net.Pipe()
	sc := &simConn{Conn: srv, e: e}
	e.mu.Lock()
	e.conns[sc] = struct{}{}
	e.mu.Unlock()
	select {
	case e.c.ln.conns <- sc:
		return cli, nil
	case <-ctx.Done():
		cli.Close()
		sc.Close()
		return nil, ctx.Err()
	case <-e.c.ln.closed:
		cli.Close()
		sc.Close()
		return nil, errors.New("simulated engine: cluster closed")
	}
}

// Kill makes the engine a dead daemon: every connection is reset, every
// dial refused, and its running containers stop. Resume brings it back
// empty of running containers (those that were running are exited).
func (e *Engine) Kill() {
	e.mode.Store(modeDead)
	e.closeConns()
	e.mu.Lock()
	for _, ct := range e.containers {
		if ct.state == "running" {
			e.exitLocked(ct, 255, "simulated daemon killed")
		}
	}
	e.mu.Unlock()
}

// Hang makes the engine a deadlocked daemon: it takes connections and
// answers nothing until Resume.
func (e *Engine) Hang() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mode.Load() != modeHung {
		e.resume = make(chan struct{})
		e.mode.Store(modeHung)
	}
}

// Resume ends a Kill or a Hang: held requests are answered.
func (e *Engine) Resume() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mode.Load() == modeHung {
		close(e.resume)
	}
	e.mode.Store(modeUp)
}

func (e *Engine) closeConns() {
	e.mu.Lock()
	conns := make([]*simConn, 0, len(e.conns))
	for sc := range e.conns {
		conns = append(conns, sc)
	}
	e.mu.Unlock()
	for _, sc := range conns {
		sc.Close()
	}
}

func (e *Engine) stopTimers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ct := range e.containers {
		if ct.timer != nil {
			ct.timer.Stop()
		}
	}
}

// hold blocks a request while the engine is hung, and delays it by the
// model's latency. It reports false if the request ended meanwhile.
func (e *Engine) hold(ctx context.Context) bool {
	if e.mode.Load() == modeHung {
		e.mu.Lock()
		resume := e.resume
		e.mu.Unlock()
		select {
		case <-resume:
		case <-ctx.Done():
			return false
		}
	}
	m := e.c.model
	if m.CallLatency <= 0 {
		return true
	}
	d := m.CallLatency
	if m.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + m.Jitter*(2*rand.Float64()-1)))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// simConn is the engine's side of one in-memory connection.
type simConn struct {
	net.Conn
	e    *Engine
	once sync.Once
}

func (sc *simConn) Close() error {
	sc.once.Do(func() {
		sc.e.mu.Lock()
		delete(sc.e.conns, sc)
		sc.e.mu.Unlock()
	})
	return sc.Conn.Close()
}

// pipeListener hands the server the connections Dial makes.
type pipeListener struct {
	conns  chan *simConn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan *simConn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "simulated", Net: "unix"} }
