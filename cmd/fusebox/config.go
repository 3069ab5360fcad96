package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"fusebox/internal/config"
	"fusebox/internal/server"
)

// clientEnv are the FUSEBOX_* variables of the command line itself, not
// settings of the server.
var clientEnv = []string{envServer, envToken, envCACert}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or show fusebox's configuration",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file as serve would, and print every problem, naming its field",
		Long: `Check a configuration file, with the FUSEBOX_* environment applied, by every
rule 'fusebox serve' applies: the file's fields, listening beyond loopback
without tokens (or TLS), a data directory that cannot be created, an
unknown network mode. FUSEBOX_* variables that match no setting are
warned about (they would be ignored).`,
		Example: "  fusebox config check /etc/fusebox/fusebox.yaml",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return configCheck(cmd.Context(), a, args[0])
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show [FILE]",
		Short: "Print the configuration in force: the file, then the FUSEBOX_* environment, then the defaults (secrets redacted)",
		Long: `Print the configuration serve would run with: the file (none: the defaults),
then the FUSEBOX_* environment over it, every setting by its key. Secrets
(tokens, webhook secrets, registry passwords) are shown as ` + config.Redacted + `.
As YAML; with -o json as JSON.`,
		Example: "  fusebox config show /etc/fusebox/fusebox.yaml\n  FUSEBOX_LISTEN=0.0.0.0:7070 fusebox config show -o json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("Usage: "+cmd.UseLine(), "config show takes at most one file, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			a.warnUnknownEnv()
			if a.output != "json" {
				a.output = "yaml"
			}
			return a.printJSON(cfg.Show())
		},
	})
	return cmd
}

// warnUnknownEnv warns on stderr about FUSEBOX_* variables that match no
// setting, and returns how many there were.
func (a *app) warnUnknownEnv() int {
	unknown := config.UnknownEnv(os.Environ(), clientEnv...)
	for _, u := range unknown {
		hint := ""
		if u[1] != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", u[1])
		}
		fmt.Fprintf(a.stderr, "fusebox: warning: $%s matches no setting and is ignored%s\n", u[0], hint)
	}
	return len(unknown)
}

// configCheck loads the configuration file at path (with the FUSEBOX_*
// environment applied) and applies serve's own rules; it reports every
// problem, one per line with its file, line and field, on a.stderr, and
// returns an error when there is any.
func configCheck(_ context.Context, a *app, path string) error {
	a.warnUnknownEnv()
	problems := config.Check(path)
	for _, p := range problems {
		fmt.Fprintln(a.stderr, p.String())
	}
	n := len(problems)
	if n == 0 {
		// The rules serve applies past the file's own: only on a config
		// that loads.
		cfg, err := config.Load(path)
		if err != nil {
			return err
		}
		if err := server.CheckListen(cfg, server.Tokens(cfg)); err != nil {
			fmt.Fprintf(a.stderr, "%s: listen: %v\n", path, err)
			n++
		}
		if err := config.CheckDataDir(cfg.DataDir); err != nil {
			fmt.Fprintf(a.stderr, "%s: %v\n", path, err)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(a.stdout, "%s: ok\n", path)
		return nil
	}
	return fmt.Errorf("%s: %d problem(s)", path, n)
}
