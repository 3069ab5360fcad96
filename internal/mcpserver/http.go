package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPOptions configure NewHTTPHandler.
type HTTPOptions struct {
	// Backend returns the Backend that acts with a client's bearer token
	// ("" when the request has none: the API has no tokens).
	Backend func(token string) Backend
	// ReadOnly, Recorder, Version and Logger are those of Options.
	ReadOnly bool
	Recorder Recorder
	Version  string
	Logger   *slog.Logger
}

// whoamiTimeout bounds the question of a token's role when its first
// session starts.
const whoamiTimeout = 5 * time.Second

// NewHTTPHandler returns the streamable HTTP handler of the MCP server, to
// mount behind the API's authentication (it does not check tokens itself:
// the API it calls does, for every tool call). Each bearer token gets one
// server, built on its first request with the role the API says the token
// has; a session is bound to the token that opened it. The SDK's
// DNS-rebinding protection is on: a request that reached a loopback address
// with a Host header that is not loopback is refused.
func NewHTTPHandler(o HTTPOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &httpHandler{o: o, servers: map[string]*mcp.Server{}}
	sh := mcp.NewStreamableHTTPHandler(h.server, &mcp.StreamableHTTPOptions{Logger: slog.New(warnOnly{o.Logger.Handler()}), SessionTimeout: 30 * time.Minute})
	// The token's hash is the session's user: a session opened with one
	// token cannot be used with another.
	bound := auth.RequireBearerToken(func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		sum := sha256.Sum256([]byte(token))
		return &auth.TokenInfo{UserID: hex.EncodeToString(sum[:])}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(sh)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bearer(r) == "" {
			sh.ServeHTTP(w, r) // no tokens: the API let it through
			return
		}
		bound.ServeHTTP(w, r)
	})
}

type httpHandler struct {
	o       HTTPOptions
	mu      sync.Mutex
	servers map[string]*mcp.Server // by token
}

// server returns the MCP server of the request's token, building it on
// first use. The SDK asks for it on every request.
func (h *httpHandler) server(r *http.Request) *mcp.Server {
	token := bearer(r)
	h.mu.Lock()
	s, ok := h.servers[token]
	h.mu.Unlock()
	if ok {
		return s
	}
	b := h.o.Backend(token)
	ctx, cancel := context.WithTimeout(r.Context(), whoamiTimeout)
	defer cancel()
	who, err := b.WhoAmI(ctx)
	s = New(b, Options{ReadOnly: h.o.ReadOnly, Role: who.Role, Actor: who.Name, Recorder: h.o.Recorder,
		ServerURL: "this server", Version: h.o.Version, Logger: h.o.Logger})
	if err != nil {
		// Serve without the admin tools, and ask again next time.
		h.o.Logger.Warn("mcp: cannot tell the token's role; no admin tools for this session", "err", err)
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if first, ok := h.servers[token]; ok { // another request built it meanwhile
		return first
	}
	h.servers[token] = s
	return s
}

// bearer returns the request's bearer token, "" if none.
func bearer(r *http.Request) string {
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(value)
}
