package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Network faults come from an in-process toxiproxy in front of each
// engine's tcp listener: clients that use ProxyHost see them, clients on
// UnixHost or TCPHost do not. Toxics apply to open connections as well as
// new ones. Each kind of fault has its own toxic, so they combine;
// adding one again replaces it.

// newProxyServer makes the toxiproxy server of a fleet; its HTTP API is
// never started.
func newProxyServer() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
}

// startProxy puts a proxy on a free loopback port in front of upstream.
func startProxy(srv *toxiproxy.ApiServer, name, upstream string) (*toxiproxy.Proxy, error) {
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("enginetest: proxy for %s: %w", name, err)
	}
	if _, _, err := net.SplitHostPort(p.Listen); err != nil {
		p.Stop()
		return nil, fmt.Errorf("enginetest: proxy for %s: bad listen address %q", name, p.Listen)
	}
	return p, nil
}

func (e *Engine) toxic(op, name, typ, stream string, attrs map[string]any) error {
	return e.toxicSome(op, name, typ, stream, 1, attrs)
}

// toxicSome adds a toxic that applies to the share toxicity (0..1] of
// connections, drawn per connection.
func (e *Engine) toxicSome(op, name, typ, stream string, toxicity float64, attrs map[string]any) error {
	if e.shared {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, ErrShared)
	}
	if e.proxy == nil {
		return fmt.Errorf("enginetest: %s %s: the engine has no tcp listener to proxy: %w", op, e, ErrNotSupported)
	}
	b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs})
	if err != nil {
		return err
	}
	tc := e.proxy.Toxics
	if tc.GetToxic(name) != nil {
		if err := tc.RemoveToxic(context.Background(), name); err != nil {
			return fmt.Errorf("enginetest: %s %s: %w", op, e, err)
		}
	}
	if _, err := tc.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("enginetest: %s %s: %w", op, e, err)
	}
	return nil
}

// AddLatency delays every answer through the proxy by d.
func (e *Engine) AddLatency(d time.Duration) error {
	return e.toxic("add latency to", "latency", "latency", "downstream", map[string]any{"latency": d.Milliseconds()})
}

// ResetPeer makes the proxy reset every connection as soon as the client
// sends anything: requests fail with "connection reset by peer".
func (e *Engine) ResetPeer() error {
	return e.toxic("reset peers of", "reset", "reset_peer", "upstream", map[string]any{"timeout": 0})
}

// ResetSomePeers is ResetPeer for the share (0 < share <= 1) of
// connections, each drawn once (when it opens, or when the fault is added
// for one already open): those are reset as soon as the client sends
// anything, the others pass. It and ResetPeer replace each other.
func (e *Engine) ResetSomePeers(share float64) error {
	if share <= 0 || share > 1 {
		return fmt.Errorf("enginetest: reset peers of %s: share = %v, want 0 < share <= 1", e, share)
	}
	return e.toxicSome("reset peers of", "reset", "reset_peer", "upstream", share, map[string]any{"timeout": 0})
}

// Blackhole makes the proxy accept connections and swallow what clients
// send, never answering: requests hang until their deadline.
func (e *Engine) Blackhole() error {
	return e.toxic("blackhole", "blackhole", "timeout", "upstream", map[string]any{"timeout": 0})
}

// LimitBandwidth caps answers through the proxy at kbps kilobytes per
// second.
func (e *Engine) LimitBandwidth(kbps int) error {
	if kbps <= 0 {
		return fmt.Errorf("enginetest: limit bandwidth of %s: kbps = %d, want > 0", e, kbps)
	}
	return e.toxic("limit bandwidth of", "bandwidth", "bandwidth", "downstream", map[string]any{"rate": kbps})
}

// ClearFaults removes every proxy fault. Connections a blackhole held are
// closed.
func (e *Engine) ClearFaults() error {
	if e.shared {
		return fmt.Errorf("enginetest: clear faults of %s: %w", e, ErrShared)
	}
	if e.proxy == nil {
		return fmt.Errorf("enginetest: clear faults of %s: the engine has no tcp listener to proxy: %w", e, ErrNotSupported)
	}
	e.proxy.Toxics.ResetToxics(context.Background())
	return nil
}

// BreakStarts restarts the engine with a default container runtime that
// fails every start, while the daemon goes on answering ping, inspect and
// create: the host that looks healthy and runs nothing (nomad#11888). Images
// and containers survive; FixStarts undoes it.
func (e *Engine) BreakStarts(ctx context.Context) error { return e.setBrokenStarts(ctx, true) }

// FixStarts restarts the engine with its normal runtime.
func (e *Engine) FixStarts(ctx context.Context) error { return e.setBrokenStarts(ctx, false) }

func (e *Engine) setBrokenStarts(ctx context.Context, broken bool) error {
	if err := e.private("break starts"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "daemon.json"), daemonJSONWith(e.Dir, broken), 0o644); err != nil {
		return fmt.Errorf("enginetest: %s: %w", e, err)
	}
	return e.Restart(ctx)
}
