package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"fusebox/internal/event"
)

// Recorder appends an event to the stream (internal/server: the store).
type Recorder interface {
	Record(ctx context.Context, ev event.Event) error
}

// SetRecorder serves POST /v1/mcp/tool-calls from rec. Without it that
// endpoint answers 404.
func (s *Server) SetRecorder(rec Recorder) { s.recorder = rec }

// ToolCallRequest is the body of POST /v1/mcp/tool-calls: a tool call an
// MCP server outside this process (fusebox mcp, over stdio) made.
type ToolCallRequest struct {
	Tool  string `json:"tool"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // the tool error, when not OK
}

// recordToolCall: POST /v1/mcp/tool-calls appends an mcp.tool_call event
// whose by is the caller's token name (never what the body says).
func (s *Server) recordToolCall(w http.ResponseWriter, r *http.Request) {
	if s.recorder == nil {
		s.writeError(w, r, &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "tool calls are not recorded by this server"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	var req ToolCallRequest
	if err := decodeObject(r.Body, &req, `{"tool": "get_job", "ok": true}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Tool = strings.TrimSpace(req.Tool)
	switch {
	case req.Tool == "" || len(req.Tool) > 100:
		s.writeError(w, r, badRequest("tool", "is required: the tool's name (at most 100 bytes)"))
		return
	case len(req.Error) > 500:
		req.Error = req.Error[:500]
	}
	ev := event.Event{At: time.Now().UTC(), Type: event.TypeMCPToolCall,
		Data: event.MarshalData(event.MCPToolCall{Tool: req.Tool, By: actor(r), OK: req.OK, Err: req.Error})}
	if err := s.recorder.Record(r.Context(), ev); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
