package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
)

// imageCommands are `fusebox image ...` and `fusebox images`.
func (a *app) imageCommands() []*cobra.Command {
	img := &cobra.Command{
		Use:   "image",
		Short: "Get images onto the hosts: load a docker save tarball, pull, remove, list",
		Long: `Images reach the fleet's hosts with or without a registry:

  fusebox image load FILE.tar    load a 'docker save' tarball onto every host
  fusebox image pull REF         ask every host to pull REF (with the server's registry credentials)
  fusebox image rm REF           remove REF from every host
  fusebox image ls               list the images by host (also: fusebox images)

A job placed on a host that lacks its image also gets it streamed from a host
that has it (images.transfer in the server's config, on by default).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("Commands: load, pull, rm, ls. Run 'fusebox image --help'.", "image: unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	img.AddCommand(a.imageLoadCommand(), a.imagePullCommand(), a.imageRmCommand(), a.imagesCommand("ls"))
	return []*cobra.Command{img, a.imagesCommand("images")}
}

// hostSelection adds --host and --host-label to cmd.
func hostSelection(cmd *cobra.Command) func() (apiclient.ImageSelector, error) {
	var hosts, labels []string
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "only this fleet host (by name; repeatable)")
	cmd.Flags().StringArrayVar(&labels, "host-label", nil, "only hosts with this label, key=value (repeatable)")
	return func() (apiclient.ImageSelector, error) {
		sel := apiclient.ImageSelector{Hosts: hosts}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return sel, usagef("Use --host-label key=value.", "--host-label %q: want key=value", l)
			}
			if sel.Labels == nil {
				sel.Labels = map[string]string{}
			}
			sel.Labels[k] = v
		}
		return sel, nil
	}
}

func (a *app) imageLoadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "load FILE.tar|-",
		Short: "Load a docker save tarball onto every host (or those selected), in parallel",
		Long: `Load a 'docker save' tarball (FILE, or - for standard input) onto every host of
the fleet, or those chosen with --host and --host-label, in parallel through
each host's breaker and call limiter. Shows each host's progress (a bar on a
terminal, a line per step otherwise) and what happened on each host. Exits 1
if any host failed.`,
		Example: "  docker save myapp:1.2 -o myapp.tar && fusebox image load myapp.tar\n  docker save myapp:1.2 | fusebox image load -\n  fusebox image load myapp.tar --host-label gpu=true",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("Run 'fusebox image load --help'.", "image load: want one FILE.tar or -")
			}
			return nil
		},
	}
	sel := hostSelection(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := sel()
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		var src io.Reader = os.Stdin
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("image load: %w", err)
			}
			defer f.Close()
			src = f
		}
		bars := newProgress(a.stdout, !a.structured() && isTerminal(a.stdout))
		start := time.Now()
		res, err := c.LoadImage(cmd.Context(), src, s, func(p api.ImageProgress) {
			if !a.structured() {
				bars.update(p)
			}
		})
		if err != nil {
			return err
		}
		return a.hostResults(res, "loaded", time.Since(start))
	}
	return cmd
}

func (a *app) imagePullCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pull REF",
		Short:   "Ask every host (or those selected) to pull an image from its registry",
		Example: "  fusebox image pull alpine:3.20\n  fusebox image pull registry.example.com:5000/team/app:1.2 --host e1",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("Run 'fusebox image pull --help'.", "image pull: want one image reference")
			}
			return nil
		},
	}
	sel := hostSelection(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := sel()
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := c.PullImage(cmd.Context(), args[0], s)
		if err != nil {
			return err
		}
		return a.hostResults(res, "pulled", time.Since(start))
	}
	return cmd
}

func (a *app) imageRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm REF",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove an image from every host (or those selected)",
		Example: "  fusebox image rm myapp:1.1\n  fusebox image rm -f myapp:1.1 --host e2",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("Run 'fusebox image rm --help'.", "image rm: want one image reference or ID")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "also remove an image stopped containers use, or with several tags")
	sel := hostSelection(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := sel()
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := c.RemoveImage(cmd.Context(), args[0], force, s)
		if err != nil {
			return err
		}
		return a.hostResults(res, "removed", time.Since(start))
	}
	return cmd
}

func (a *app) imagesCommand(use string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Short:   "List the images of the hosts: ID, tags, size, and which hosts lack each",
		Example: "  fusebox images\n  fusebox images --host-label gpu=true -o json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("Run 'fusebox images --help'.", "%s: takes no arguments (got %q)", use, args[0])
			}
			return nil
		},
	}
	sel := hostSelection(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := sel()
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		l, err := c.Images(cmd.Context(), s)
		if err != nil {
			return err
		}
		if a.structured() {
			return a.printJSON(l)
		}
		t := newTable(a.stdout, "IMAGE ID", "TAGS", "SIZE", "HOSTS", "MISSING ON")
		for _, im := range l.Images {
			tags := strings.Join(im.Tags, ",")
			if tags == "" {
				tags = "<none>"
			}
			missing := strings.Join(im.Missing, ",")
			if missing == "" {
				missing = "-"
			}
			t.row(shortID(im.ID), tags, humanBytes(im.Size), strings.Join(im.Hosts, ","), missing)
		}
		if err := t.flush(); err != nil {
			return err
		}
		var out []string
		for h, why := range l.Unreachable {
			out = append(out, fmt.Sprintf("%s could not be asked: %s", h, clip(why, 100)))
		}
		sort.Strings(out)
		for _, s := range out {
			fmt.Fprintln(a.stderr, s)
		}
		return nil
	}
	return cmd
}

// hostResults prints what an image operation did on each host; any host
// that failed makes the exit code 1.
func (a *app) hostResults(res []api.ImageHostResult, verb string, took time.Duration) error {
	failed := 0
	for _, r := range res {
		if r.Status != "ok" {
			failed++
		}
	}
	if failed > 0 {
		a.exitCode = exitError
	}
	if a.structured() {
		return a.printJSON(api.ImageResults{Results: res})
	}
	t := newTable(a.stdout, "HOST", "RESULT", "IMAGES", "TOOK", "ERROR")
	for _, r := range res {
		result, refs, errMsg := verb, strings.Join(r.Refs, ","), "-"
		if r.Status != "ok" {
			result, errMsg = r.Status, clip(r.Error, 100)
		}
		if refs == "" {
			refs = "-"
		}
		t.row(r.Host, result, refs, short(r.Took), errMsg)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d of %d hosts %s in %s\n", len(res)-failed, len(res), verb, short(took))
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress shows each host's progress: bars redrawn in place on a
// terminal, otherwise a plain line per host at each quarter.
type progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	hosts []string
	state map[string]api.ImageProgress
	step  map[string]int64 // plain lines: the last quarter printed
	drawn int
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, state: map[string]api.ImageProgress{}, step: map[string]int64{}}
}

func (p *progress) update(u api.ImageProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.state[u.Host]; !ok {
		p.hosts = append(p.hosts, u.Host)
		sort.Strings(p.hosts)
	}
	p.state[u.Host] = u
	if !p.tty {
		q := int64(0)
		if u.Total > 0 {
			q = u.Sent * 4 / u.Total
		}
		if last, ok := p.step[u.Host]; ok && q <= last {
			return
		}
		p.step[u.Host] = q
		fmt.Fprintf(p.w, "%s: %s of %s sent (%d%%)\n", u.Host, humanBytes(u.Sent), humanBytes(u.Total), percent(u))
		return
	}
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, h := range p.hosts {
		s := p.state[h]
		const width = 30
		n := int(percent(s)) * width / 100
		fmt.Fprintf(p.w, "\x1b[2K%-12s [%s%s] %3d%% %s/%s\n", h, strings.Repeat("=", n), strings.Repeat(" ", width-n), percent(s), humanBytes(s.Sent), humanBytes(s.Total))
	}
	p.drawn = len(p.hosts)
}

func percent(u api.ImageProgress) int64 {
	if u.Total <= 0 {
		return 0
	}
	return u.Sent * 100 / u.Total
}
