package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/job"
)

// runFlags are the flags of fusebox run.
type runFlags struct {
	detach         bool
	wait           bool // accepted: waiting is the default
	quiet          bool
	name           string
	rm             bool // accepted: containers are always removed
	entrypoint     string
	user           string
	env            []string
	envFiles       []string
	labels         []string
	hostLabels     []string
	host           string // --host NAME: only this fleet host
	workdir        string
	cpus           float64
	memory         string
	timeout        time.Duration
	priority       int
	maxAttempts    int
	retryBackoff   time.Duration
	pull           string
	platform       string
	idempotencyKey string
	network        string

	dockerHost string // -H/--docker-host: run on this engine, without a server

	entrypointCleared bool // --entrypoint '': no entrypoint at all

	// Refused docker flags (see refusedRunFlags).
	interactive, tty, publishAll bool
	volumes, publish, mounts     []string
}

// refusedRunFlags are docker run flags fusebox does not take, each with
// why and what to do instead.
var refusedRunFlags = []struct{ name, why string }{
	{"interactive", "-i/--interactive: fusebox runs jobs unattended, with no stdin; pass input as arguments, --env or --env-file, or bake it into the image"},
	{"tty", "-t/--tty: fusebox runs jobs unattended, with no terminal; the output is streamed and kept (see 'fusebox logs')"},
	{"volume", "-v/--volume: a job may run on any host of the fleet, where host paths mean nothing; put files in the image, or pass them between workflow steps as inputs and outputs"},
	{"mount", "--mount: a job may run on any host of the fleet, where host paths mean nothing; put files in the image, or pass them between workflow steps as inputs and outputs"},
	{"publish", "-p/--publish: fusebox runs batch jobs, not services, and publishes no ports; run a service with docker on its host"},
	{"publish-all", "-P/--publish-all: fusebox runs batch jobs, not services, and publishes no ports; run a service with docker on its host"},
}

func (a *app) runCommand() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a container job on the fleet, streaming its output, and exit with its code",
		Long: `Run a container job on the fleet, as docker run does on one engine.

fusebox run submits the job, shows its state changes on stderr as they
happen (queued, launching on a host, running, ...), streams its output,
and exits with its exit code. With -d (--detach) it prints the new job's
id and returns at once; follow it later with 'fusebox logs -f ID'.

Exit codes, as docker run's: the container's own code; 125 when fusebox or
the engine could not run the job (a bad flag, a refused spec, no such
image, no host); 126 when its command cannot be executed; 127 when its
command does not exist in the image; 124 when it timed out; 130 when it
was cancelled (or you stopped waiting with Ctrl-C: the job goes on).

Flags after IMAGE belong to the command; '--' also ends fusebox's flags.
Containers are always removed once their output is kept (--rm is
accepted). -i, -t, -v, --mount, -p and -P are refused: jobs run
unattended on whichever host takes them.

With -H/--docker-host unix:///path/docker.sock (or tcp://host:port), run
the container directly on that one engine, without a server: create,
start, stream the output, wait, remove, and exit with its exit code.`,
		Example: `  fusebox run alpine echo hello
  fusebox run -d --name nightly --memory 512m --timeout 10m -e MODE=fast myimage:1 ./job.sh
  fusebox run --host-label gpu=true --entrypoint python trainer:2 train.py --epochs 3
  fusebox run --host e2 --env-file ./job.env -u 1000:1000 alpine env
  fusebox run -H unix:///var/run/docker.sock --network none alpine uname -a`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("Usage: fusebox run [flags] IMAGE [COMMAND [ARG...]]", "run needs an image")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.refuse(cmd); err != nil {
				return err
			}
			f.entrypointCleared = cmd.Flags().Changed("entrypoint") && f.entrypoint == ""
			spec, err := f.spec(a, args)
			if err != nil {
				return err
			}
			if f.dockerHost != "" {
				if err := f.checkLocal(cmd); err != nil {
					return err
				}
				code, err := a.runLocal(cmd.Context(), f.dockerHost, spec)
				var ue *usageError
				if err != nil && !errors.As(err, &ue) {
					return &codeError{code: code, err: err}
				}
				a.exitCode = code
				return err
			}
			return a.submit(cmd.Context(), f, spec)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after IMAGE are the command's
	fl.BoolVarP(&f.detach, "detach", "d", false, "print the job's id and return, without waiting for it")
	fl.BoolVar(&f.wait, "wait", false, "wait for the job (the default; kept for scripts that pass it)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no state changes on stderr: only the job's own output")
	fl.StringVar(&f.name, "name", "", "a name for the job, usable wherever its id is (one job that has not ended holds it)")
	fl.BoolVar(&f.rm, "rm", false, "accepted: fusebox always removes a job's container once its output is kept")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint ('' clears it)")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group] (names or ids) the command runs as")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE (KEY alone: take it from here); repeatable")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file of KEY=VALUE lines (# comments); repeatable")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "container label KEY=VALUE; repeatable")
	fl.StringArrayVar(&f.hostLabels, "host-label", nil, "run only on hosts with label KEY=VALUE; repeatable")
	fl.StringVar(&f.host, "host", "", "run only on this fleet host (its name, as in 'fusebox hosts')")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPU limit in cores (e.g. 1.5)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit, docker's units: b, k, m, g (powers of 1024), e.g. 64m or 2g")
	fl.DurationVar(&f.timeout, "timeout", 0, "stop the job after this long (e.g. 10m); 0: no limit")
	fl.IntVar(&f.priority, "priority", 0, "higher runs first")
	fl.IntVar(&f.maxAttempts, "max-attempts", 0, "launch attempts after host faults (0: the server's default)")
	fl.DurationVar(&f.retryBackoff, "retry-backoff", 0, "first delay after a host fault (0: the server's default)")
	fl.StringVar(&f.pull, "pull", "", "pull policy: missing (default), always or never")
	fl.StringVar(&f.platform, "platform", "", "os/arch[/variant] of the image to run, e.g. linux/arm64 (where the engine supports it)")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "submit at most once per key: a retry returns the same job")
	fl.StringVar(&f.network, "network", "", "network mode (e.g. none); a host whose config sets network_mode allows only that or none")
	fl.StringVarP(&f.dockerHost, "docker-host", "H", "", "run directly on this Docker engine (unix:///... or tcp://...), without a server")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "refused: jobs have no stdin")
	fl.BoolVarP(&f.tty, "tty", "t", false, "refused: jobs have no terminal")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "refused: no host paths on remote hosts")
	fl.StringArrayVar(&f.mounts, "mount", nil, "refused: no host paths on remote hosts")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "refused: jobs publish no ports")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "refused: jobs publish no ports")
	return cmd
}

// refuse returns a usage error for a docker flag fusebox does not take,
// saying why and what to do instead.
func (f *runFlags) refuse(cmd *cobra.Command) error {
	for _, r := range refusedRunFlags {
		if cmd.Flags().Changed(r.name) {
			why, instead, _ := strings.Cut(r.why, "; ")
			return usagef(strings.ToUpper(instead[:1])+instead[1:]+".", "%s", why)
		}
	}
	if f.detach && f.wait {
		return usagef("Use one: -d returns at once, --wait (the default) follows the job.", "-d/--detach and --wait contradict each other")
	}
	return nil
}

// spec builds the job spec from the flags and IMAGE [COMMAND...].
func (f *runFlags) spec(a *app, args []string) (job.Spec, error) {
	spec := job.Spec{
		Name:           f.name,
		Image:          args[0],
		Command:        args[1:],
		User:           f.user,
		Workdir:        f.workdir,
		CPUs:           f.cpus,
		Timeout:        job.Duration(f.timeout),
		Priority:       f.priority,
		MaxAttempts:    f.maxAttempts,
		RetryBackoff:   job.Duration(f.retryBackoff),
		PullPolicy:     f.pull,
		Platform:       f.platform,
		Network:        f.network,
		IdempotencyKey: f.idempotencyKey,
	}
	if f.entrypoint != "" || f.entrypointCleared {
		spec.Entrypoint = []string{f.entrypoint}
	}
	var err error
	if spec.Env, err = envFiles(f.envFiles, a.getenv); err != nil {
		return spec, err
	}
	env, err := keyValues("--env", f.env, a.getenv)
	if err != nil {
		return spec, err
	}
	for k, v := range env { // --env wins over --env-file, as in docker
		if spec.Env == nil {
			spec.Env = map[string]string{}
		}
		spec.Env[k] = v
	}
	if spec.Labels, err = keyValues("--label", f.labels, nil); err != nil {
		return spec, err
	}
	if spec.Constraints, err = keyValues("--host-label", f.hostLabels, nil); err != nil {
		return spec, err
	}
	if f.host != "" {
		if spec.Constraints == nil {
			spec.Constraints = map[string]string{}
		}
		spec.Constraints[job.ConstraintHost] = f.host
	}
	if f.memory != "" {
		size, err := parseMemory(f.memory)
		if err != nil {
			return spec, usagef("Use a size such as --memory 64m, --memory 512m or --memory 2g (powers of 1024, as docker).", "--memory %s", err)
		}
		spec.MemoryBytes = size
	}
	if f.cpus < 0 {
		return spec, usagef("Use a number of cores such as --cpus 1.5.", "--cpus must not be negative (got %v)", f.cpus)
	}
	if f.timeout < 0 {
		return spec, usagef("Use a duration such as --timeout 10m.", "--timeout must not be negative (got %v)", f.timeout)
	}
	switch f.pull {
	case "", job.PullMissing, job.PullAlways, job.PullNever:
	default:
		return spec, usagef("Use --pull missing, --pull always or --pull never.", "unknown pull policy %q", f.pull)
	}
	return spec, nil
}

// memoryRE is docker's form of a memory size (units.RAMInBytes): a number,
// an optional unit b, k, m, g, t or p, then optional "i" and "b"; every
// unit is a power of 1024, so 64m, 64M, 64mb and 64MiB are all 64 MiB.
var memoryRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// parseMemory reads a memory size as docker run --memory does.
func parseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q: not a size (a number and an optional unit b, k, m or g)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	b := n * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(b), nil
}

// envFiles reads docker-style env files: KEY=VALUE lines, blank lines and
// lines starting with # skipped, a KEY alone taken from this environment
// (left out when it is not set, as docker does). Later files win.
func envFiles(paths []string, getenv func(string) string) (map[string]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	env := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, usagef("Point --env-file at a file of KEY=VALUE lines.", "--env-file: %v", err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimRight(line, "\r")
			if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			line = strings.TrimLeft(line, " \t")
			k, v, ok := strings.Cut(line, "=")
			if k == "" || strings.ContainsAny(k, " \t") {
				return nil, usagef("Each line is KEY=VALUE, or KEY alone to take it from here.", "--env-file %s:%d: %q is not KEY=VALUE", p, i+1, line)
			}
			if !ok {
				if v = getenv(k); v == "" {
					continue
				}
			}
			env[k] = v
		}
	}
	return env, nil
}

// keyValues parses repeated KEY=VALUE flags. With getenv, a KEY alone takes
// its value from this process's environment.
func keyValues(flag string, vals []string, getenv func(string) string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(vals))
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usagef(fmt.Sprintf("Use %s KEY=VALUE.", flag), "%s %q: empty key", flag, kv)
		}
		if !ok {
			if getenv == nil {
				return nil, usagef(fmt.Sprintf("Use %s %s=VALUE.", flag, k), "%s %q: missing =VALUE", flag, kv)
			}
			v = getenv(k)
			if v == "" {
				return nil, usagef(fmt.Sprintf("Set %s here, or use %s %s=VALUE.", k, flag, k), "%s %s: %s is not set in this environment", flag, k, k)
			}
		}
		m[k] = v
	}
	return m, nil
}

// submit sends the job to the server and, unless -d, follows it.
func (a *app) submit(ctx context.Context, f *runFlags, spec job.Spec) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	j, existed, err := c.Submit(ctx, spec)
	if err != nil {
		return &codeError{code: exitCantRun, err: err}
	}
	if existed {
		fmt.Fprintf(a.stderr, "fusebox: job %s already exists with idempotency key %q; not submitted again\n", j.ID, spec.IdempotencyKey)
	}
	if f.detach {
		if a.structured() {
			return a.printJSON(api.SubmitResponse{Job: j, Existed: existed})
		}
		fmt.Fprintln(a.stdout, j.ID)
		return nil
	}
	final, err := a.follow(ctx, c, j, f.quiet)
	if err != nil {
		return err
	}
	a.exitCode = jobExitCode(final)
	return nil
}

// follow shows a job's progress on stderr and its output on stdout and
// stderr until it ends, and returns it as it ended. Both ride streams: the
// job's transitions come from the event stream as they are committed, and
// its output from a log follow opened when it first runs, which the server
// ends when the job ends.
func (a *app) follow(ctx context.Context, c *apiclient.Client, j *job.Job, quiet bool) (*job.Job, error) {
	streamOutput := !a.structured()
	var logs sync.WaitGroup
	defer logs.Wait()
	following := false
	streamed := true // the output was shown as it came (false: show what was collected at the end)
	fj, err := c.WaitTransitions(ctx, j.ID, func(t job.Transition) {
		if !quiet {
			fmt.Fprintf(a.stderr, "fusebox: %s %s\n", j.ID, describeTransition(t))
		}
		if t.To != job.StateRunning || !streamOutput || following {
			return
		}
		following = true
		logs.Go(func() {
			// The server streams every attempt's output and ends with the job.
			err := c.FollowLogs(ctx, j.ID, a.stdout, a.stderr)
			var ae *apiclient.Error
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.As(err, &ae) && ae.Code == api.CodeTooManyFollows:
				streamed = false // nothing was streamed: shown when it ends
				fmt.Fprintf(a.stderr, "fusebox: %s: %v; its output is shown when it ends\n", j.ID, err)
			default:
				fmt.Fprintf(a.stderr, "fusebox: %s: %v\n", j.ID, err)
			}
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, &codeError{code: exitCancelled, err: fmt.Errorf("stopped waiting; job %s goes on (cancel it with 'fusebox cancel %s')", j.ID, j.ID)}
		}
		return nil, &codeError{code: exitCantRun, err: fmt.Errorf("waiting for job %s: %w", j.ID, err)}
	}
	logs.Wait()
	if streamOutput && following && !streamed {
		out, err := c.Logs(ctx, j.ID)
		var ae *apiclient.Error
		switch {
		case err == nil:
			a.stdout.Write(out.Stdout)
			a.stderr.Write(out.Stderr)
		case errors.As(err, &ae) && ae.Code == api.CodeNoLogs:
		default:
			fmt.Fprintf(a.stderr, "fusebox: %s: %v\n", j.ID, err)
		}
	}
	if a.structured() {
		if err := a.printJSON(fj); err != nil {
			return nil, err
		}
	}
	return fj, nil
}

// describeTransition says what happened in t, for people:
// "queued (no host available)", "launching on h2 (attempt 1)".
func describeTransition(t job.Transition) string {
	var s string
	switch t.To {
	case job.StateLaunching:
		s = fmt.Sprintf("launching on %s (attempt %d)", t.Host, t.Attempt)
	case job.StateRunning:
		s = "running on " + t.Host
	default:
		s = string(t.To)
	}
	if t.Reason != "" && t.To != job.StateRunning && t.To != job.StateLaunching {
		s += " (" + t.Reason + ")"
	}
	return s
}

// jobExitCode is the exit code of run for a finished job, as docker run's:
// the container's code; 126 and 127 when its command could not be
// executed or does not exist; 125 when fusebox or the engine could not run
// it (refused, no host, host faults, lost, artifacts); 124 timed out; 130
// cancelled; 1 a failure with no code of its own (a missing output).
func jobExitCode(j *job.Job) int {
	switch j.State {
	case job.StateSucceeded:
		return exitOK
	case job.StateFailed:
		if j.ExitCode != nil && *j.ExitCode != 0 {
			return *j.ExitCode
		}
		switch j.Cause {
		case job.CauseCommandNotFound:
			return exitNotFound
		case job.CauseNotExecutable:
			return exitNotExecutable
		case job.CauseOutput, job.CauseExit:
			return exitError
		}
		return exitCantRun
	case job.StateTimedOut:
		return exitTimedOut
	case job.StateCancelled:
		return exitCancelled
	case job.StateLost:
		return exitCantRun
	}
	return exitError
}
