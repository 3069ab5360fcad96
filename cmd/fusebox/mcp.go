package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/mcpserver"
)

// envMCPReadOnly is --read-only's default, like the config key
// mcp.read_only of fusebox serve.
const envMCPReadOnly = "FUSEBOX_MCP_READ_ONLY"

// mcpRequestTimeout bounds each API request of fusebox mcp, so that a hung
// server costs a tool call at most this (MCP clients give up at 60 s).
const mcpRequestTimeout = 20 * time.Second

func (a *app) mcpCommand() *cobra.Command {
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve fusebox's MCP tools over stdio, for an AI agent (talks to a fusebox server's API)",
		Long: `mcp speaks the Model Context Protocol on stdin and stdout, so that an MCP
client (an AI agent's host) can start it as a subprocess. Its tools call the
fusebox server at --server with --token, so the token's role decides what
they may do; the admin tools are offered only for an admin token, and
--read-only (or $` + envMCPReadOnly + `) offers only the read-only tools.

A client-side circuit breaker stands in front of the server: when it cannot
be reached, tool calls fail at once ("fusebox server unavailable at URL;
retry after N s") instead of hanging, and work again once it is back. Tool
calls are not recorded in the event stream over stdio (fusebox serve's /mcp
records them); the operator actions they make are, as for any API client.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("read-only") {
				if v := a.getenv(envMCPReadOnly); v != "" {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return usagef("Set it to true or false.", "$%s: %q is not a boolean", envMCPReadOnly, v)
					}
					readOnly = b
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			c.Timeout = mcpRequestTimeout
			ctx := cmd.Context()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			who, err := c.WhoAmI(wctx)
			cancel()
			if err != nil {
				fmt.Fprintf(a.stderr, "fusebox mcp: cannot ask %s for the token's role (%v): the admin tools come once it answers\n", c.BaseURL, err)
				who = api.WhoAmI{}
			}
			br := mcpserver.NewClientBreaker(c.BaseURL)
			srv := mcpserver.New(c, mcpserver.Options{ReadOnly: readOnly, Role: who.Role, RoleUnknown: err != nil, Actor: who.Name,
				Breaker: br, Recorder: mcpserver.NewAPIRecorder(c, br), ServerURL: c.BaseURL, Version: version})
			if err := srv.Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "offer only the read-only tools (default $"+envMCPReadOnly+")")
	return cmd
}
