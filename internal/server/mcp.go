package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/mcpserver"
	"fusebox/internal/store"
)

// mountMCP serves the MCP server at /mcp of the API listening on ln. Its
// tools call this same server's API over loopback with the token the MCP
// client presented (so the API's roles apply to each tool), and each call
// is recorded in the event stream as mcp.tool_call.
func (s *Server) mountMCP(ln net.Listener) {
	base, hc := loopbackClient(ln, s.Config.API.TLS.Cert != "")
	s.API.SetMCP(mcpserver.NewHTTPHandler(mcpserver.HTTPOptions{
		Backend: func(token string) mcpserver.Backend {
			c := apiclient.New(base, token)
			c.HTTPClient = hc
			return c
		},
		ReadOnly: s.Config.MCP.ReadOnly,
		Recorder: storeRecorder{s.Store},
		Logger:   s.Logger,
	}))
}

// loopbackClient returns the base URL and HTTP client that reach the API
// listening on ln from this process: a TCP listener on every address is
// reached at the loopback address; a unix socket through the socket.
// Over TLS the certificate is not verified: the client dials the listener's
// own address, so it cannot be anyone else.
func loopbackClient(ln net.Listener, useTLS bool) (string, *http.Client) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	addr := ln.Addr()
	scheme := "http"
	if useTLS {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // our own listener, dialled by address
	}
	if addr.Network() == "unix" {
		path := addr.String()
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		return scheme + "://fusebox", &http.Client{Transport: tr}
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String(), &http.Client{Transport: tr}
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), &http.Client{Transport: tr}
}

// storeRecorder appends the MCP server's events to the store's log.
type storeRecorder struct{ st store.Store }

func (r storeRecorder) Record(ctx context.Context, ev event.Event) error {
	_, err := r.st.EventAppend(ctx, ev)
	return err
}
