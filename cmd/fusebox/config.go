package main

import (
	"context"
	"fmt"

	"fusebox/internal/config"

	"github.com/spf13/cobra"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with fusebox configuration files",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "check FILE",
		Short:   "Check a configuration file and print every problem, naming its field",
		Example: "  fusebox config check /etc/fusebox/fusebox.yaml",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return configCheck(cmd.Context(), a, args[0])
		},
	})
	return cmd
}

// configCheck loads the configuration file at path (with the FUSEBOX_*
// environment applied) and reports every problem, one per line with its
// file, line and field, on a.stderr; it returns an error when there is any.
func configCheck(_ context.Context, a *app, path string) error {
	problems := config.Check(path)
	if len(problems) == 0 {
		fmt.Fprintf(a.stdout, "%s: ok\n", path)
		return nil
	}
	for _, p := range problems {
		fmt.Fprintln(a.stderr, p.String())
	}
	return fmt.Errorf("%s: %d problem(s)", path, len(problems))
}
