// Command fusebox is the command line of fusebox: it submits and follows
// jobs, lists jobs and hosts, operates hosts (isolate, drain, release,
// reset) through a fusebox server's HTTP API, runs one container directly
// on one engine (run --docker-host), and starts the server (serve).
//
// This package owns the CLI only: parsing, output (tables for people, -o
// json for scripts) and exit codes. It talks to a server only through
// internal/apiclient, and to an engine only through internal/engine; it
// must hold no job or host logic of its own. serve and config check are
// wired in serve.go and config.go.
//
// Exit codes, as docker's: 0 success; 1 an error; 125 a usage error (a bad
// flag or argument). run (and run --docker-host) exit with the job's own
// code: its container's exit code, 126 when its command cannot be
// executed, 127 when it does not exist in the image, 124 when it timed
// out, 130 when it was cancelled or interrupted, and 125 when fusebox or
// the engine could not run it at all (refused, no such image, no host,
// host faults, lost, server unreachable).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/apiclient"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK            = 0
	exitError         = 1
	exitTimedOut      = 124 // like timeout(1)
	exitCantRun       = 125 // like docker: fusebox or the engine could not run it
	exitUsage         = 125 // like docker: a bad flag or argument
	exitNotExecutable = 126 // like docker run: the command cannot be executed
	exitNotFound      = 127 // like docker run: the command does not exist
	exitCancelled     = 130 // like a shell after SIGINT
)

// Defaults of the global flags.
const (
	serverDefault = "http://127.0.0.1:7070"
	envServer     = "FUSEBOX_SERVER"
	envToken      = "FUSEBOX_TOKEN"
	envCACert     = apiclient.EnvCACert
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the fusebox command line with args (without the program name)
// and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, args, os.Getenv, stdout, stderr)
}

// app is one run of the command line: where it writes, its global flags,
// and the exit code a command chose.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time

	server string
	token  string
	cacert string // CA file that verifies an https server
	output string // "table", "wide", "json" or "yaml"

	exitCode int // set by commands that propagate a job's code
}

// execute is run with the environment as a function, for tests.
func execute(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return a.exitCode
	}
	return a.fail(cmd, err)
}

// fail prints err, and what to try instead, and returns the exit code.
func (a *app) fail(cmd *cobra.Command, err error) int {
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		hint := ""
		if ue != nil {
			hint = ue.hint
		}
		if hint == "" && cmd != nil {
			hint = fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
		}
		fmt.Fprintf(a.stderr, "fusebox: %v\n", err)
		if hint != "" {
			fmt.Fprintln(a.stderr, hint)
		}
		return exitUsage
	}
	msg, hint := explain(err)
	fmt.Fprintf(a.stderr, "fusebox: %s\n", msg)
	if hint != "" {
		fmt.Fprintln(a.stderr, hint)
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}

// usageError is a mistake in the command line; hint says what to try.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(hint, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), hint: hint}
}

// codeError carries the exit code an error should end the run with.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// isCobraUsageError recognises the errors cobra makes itself for an
// unknown command (cobra has no typed error for it).
func isCobraUsageError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown shorthand flag") ||
		strings.HasPrefix(s, "unknown flag")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "fusebox",
		Short: "Run container jobs across a fleet of Docker hosts, each behind its own circuit breaker",
		Long: `fusebox runs container jobs across a fleet of Docker hosts. Every host sits
behind its own circuit breaker: one bad host trips alone, the rest keep
serving, and jobs wait in a durable queue and fail over between hosts.

The commands below talk to a fusebox server (see 'fusebox serve'), at
--server or $FUSEBOX_SERVER (default ` + serverDefault + `), with the bearer
token --token or $FUSEBOX_TOKEN. An https:// server is verified against the
system's CAs, or only the CA in --cacert or $FUSEBOX_CACERT.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// The environment fills the flags not given (not as flag
			// defaults: --help would print the token).
			if !cmd.Flags().Changed("server") {
				if s := a.getenv(envServer); s != "" {
					a.server = s
				}
			}
			if !cmd.Flags().Changed("token") {
				a.token = a.getenv(envToken)
			}
			if !cmd.Flags().Changed("cacert") {
				a.cacert = a.getenv(envCACert)
			}
			switch a.output {
			case "table", "wide", "json", "yaml":
			default:
				return usagef("Use -o table or -o wide (for people), -o json or -o yaml (for scripts).", "unknown output format %q", a.output)
			}
			return nil
		},
	}
	root.Version = buildVersion().String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, hint: fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", serverDefault, "fusebox server URL (default $"+envServer+" if set)")
	pf.StringVar(&a.token, "token", "", "bearer token (default $"+envToken+")")
	pf.StringVar(&a.cacert, "cacert", "", "PEM file of the CA that signs an https server's certificate (default $"+envCACert+")")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, wide (more columns), json or yaml")

	root.AddCommand(
		a.runCommand(),
		a.jobsCommand(),
		a.jobCommand(),
		a.logsCommand(),
		a.eventsCommand(),
		a.cancelCommand(),
		a.queueCommand(),
		a.hostsCommand(),
		a.alertsCommand(),
		a.workflowCommand(),
		a.configCommand(),
		a.serveCommand(),
		a.mcpCommand(),
		a.versionCommand(),
	)
	root.AddCommand(a.imageCommands()...)
	for _, act := range hostActions {
		root.AddCommand(a.hostActionCommand(act, true))
	}
	return root
}

// client returns an API client for the global flags.
func (a *app) client() (*apiclient.Client, error) {
	s := strings.TrimRight(a.server, "/")
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return nil, usagef("Use a URL such as --server "+serverDefault+".", "--server %q: must start with http:// or https://", a.server)
	}
	c := apiclient.New(s, a.token)
	if err := c.TrustCAFile(a.cacert); err != nil {
		return nil, usagef("Point --cacert or $"+envCACert+" at the PEM file of the CA that signed the server's certificate.", "--cacert: %v", err)
	}
	return c, nil
}

// exactArgs is cobra.ExactArgs with an error that shows the usage.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(fmt.Sprintf("Usage: %s", cmd.UseLine()), "%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
