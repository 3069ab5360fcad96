package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what fusebox version prints: the module version and VCS
// revision from the binary's build info (main.version, set with -ldflags,
// wins over the module version when it is set).
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"` // of the revision
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v.Version == "dev" && bi.Main.Version != "" {
		v.Version = bi.Main.Version // "(devel)" for a plain go build in the tree
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v versionInfo) String() string {
	s := "fusebox " + v.Version
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if v.Modified {
			rev += "+modified"
		}
		s += " (revision " + rev
		if v.Time != "" {
			s += ", " + v.Time
		}
		s += ")"
	}
	return s + fmt.Sprintf(" %s %s", v.Go, v.Platform)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fusebox's version and VCS revision (also: fusebox --version)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if a.structured() {
				return a.printJSON(v)
			}
			fmt.Fprintln(a.stdout, v)
			return nil
		},
	}
}
