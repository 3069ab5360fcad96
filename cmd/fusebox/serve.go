package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"fusebox/internal/config"
	"fusebox/internal/server"

	"github.com/spf13/cobra"
)

func (a *app) serveCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the fusebox server: the queue, the fleet and the HTTP API",
		Long: `Run the fusebox server until interrupted. Without --config it uses the
defaults (the local Docker engine, SQLite in the data directory, the API on
127.0.0.1:7070); FUSEBOX_* environment variables override the file.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveCmd(cmd.Context(), a, configPath)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "configuration file (YAML)")
	return cmd
}

// serveCmd runs the server with the configuration at configPath ("" for
// none) until ctx ends.
func serveCmd(ctx context.Context, a *app, configPath string) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	tokens := server.Tokens(cfg)
	if err := server.CheckListen(cfg, tokens); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger, Tokens: tokens})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Store.Close()
		return fmt.Errorf("listen %s: %w (is another fusebox running? set listen in the config or FUSEBOX_LISTEN)", cfg.Listen, err)
	}
	return srv.Run(ctx, ln)
}
