package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/job"
)

// runFlags are the flags of fusebox run.
type runFlags struct {
	wait           bool
	env            []string
	labels         []string
	hostLabels     []string
	workdir        string
	cpus           float64
	memory         string
	timeout        time.Duration
	priority       int
	maxAttempts    int
	retryBackoff   time.Duration
	pull           string
	idempotencyKey string

	dockerHost string // --docker-host (or --host): run on this engine, without a server
	network    string
}

func (a *app) runCommand() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Submit a container job (and, with --wait, follow it to the end)",
		Long: `Submit a container job to the fusebox server.

Without --wait, print the new job's id and return. With --wait, show its
state changes on stderr as they happen (queued, launching on a host,
running, ...), stream its output, and exit with its exit code: the
container's own code, 124 if it timed out, 130 if it was cancelled, 1 if it
failed without an exit code or was lost, 125 if fusebox could not run it.

Flags after IMAGE belong to the command; '--' also ends fusebox's flags.

With --docker-host unix:///path/docker.sock (or tcp://host:port), run the
container directly on that one engine, without a server: create, start,
stream the output, wait, remove, and exit with its exit code.`,
		Example: `  fusebox run alpine echo hello
  fusebox run --wait --memory 512MiB --timeout 10m --env MODE=fast myimage:1 ./job.sh
  fusebox run --wait --host-label gpu=true -- trainer --epochs 3
  fusebox run --docker-host unix:///var/run/docker.sock --network none alpine uname -a`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("Usage: fusebox run [flags] IMAGE [COMMAND [ARG...]]", "run needs an image")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(a, args)
			if err != nil {
				return err
			}
			if f.dockerHost != "" {
				if err := f.checkLocal(cmd); err != nil {
					return err
				}
				code, err := a.runLocal(cmd.Context(), f.dockerHost, f.network, spec)
				var ue *usageError
				if err != nil && !errors.As(err, &ue) {
					return &codeError{code: code, err: err}
				}
				a.exitCode = code
				return err
			}
			if cmd.Flags().Changed("network") {
				return usagef("The fleet's hosts set their own network_mode in the server's config.", "--network is only for --docker-host")
			}
			return a.submit(cmd.Context(), f, spec)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after IMAGE are the command's
	fl.BoolVar(&f.wait, "wait", false, "follow the job to its end and exit with its exit code")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE (KEY alone: take it from here); repeatable")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "container label KEY=VALUE; repeatable")
	fl.StringArrayVar(&f.hostLabels, "host-label", nil, "run only on hosts with label KEY=VALUE; repeatable")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPU limit in cores (e.g. 1.5)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 512MiB, 2GiB)")
	fl.DurationVar(&f.timeout, "timeout", 0, "stop the job after this long (e.g. 10m); 0: no limit")
	fl.IntVar(&f.priority, "priority", 0, "higher runs first")
	fl.IntVar(&f.maxAttempts, "max-attempts", 0, "launch attempts after host faults (0: the server's default)")
	fl.DurationVar(&f.retryBackoff, "retry-backoff", 0, "first delay after a host fault (0: the server's default)")
	fl.StringVar(&f.pull, "pull", "", "pull policy: missing (default), always or never")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "submit at most once per key: a retry returns the same job")
	fl.StringVar(&f.dockerHost, "docker-host", "", "run directly on this Docker engine (unix:///... or tcp://...), without a server")
	fl.StringVar(&f.dockerHost, "host", "", "same as --docker-host")
	fl.StringVar(&f.network, "network", "", "with --docker-host: the container's network mode (e.g. none)")
	return cmd
}

// spec builds the job spec from the flags and IMAGE [COMMAND...].
func (f *runFlags) spec(a *app, args []string) (job.Spec, error) {
	spec := job.Spec{
		Image:          args[0],
		Command:        args[1:],
		Workdir:        f.workdir,
		CPUs:           f.cpus,
		Timeout:        job.Duration(f.timeout),
		Priority:       f.priority,
		MaxAttempts:    f.maxAttempts,
		RetryBackoff:   job.Duration(f.retryBackoff),
		PullPolicy:     f.pull,
		IdempotencyKey: f.idempotencyKey,
	}
	var err error
	if spec.Env, err = keyValues("--env", f.env, a.getenv); err != nil {
		return spec, err
	}
	if spec.Labels, err = keyValues("--label", f.labels, nil); err != nil {
		return spec, err
	}
	if spec.Constraints, err = keyValues("--host-label", f.hostLabels, nil); err != nil {
		return spec, err
	}
	if f.memory != "" {
		size, err := config.ParseSize(f.memory)
		if err != nil {
			return spec, usagef("Use a size such as --memory 512MiB or --memory 2GiB.", "--memory %s", err)
		}
		spec.MemoryBytes = int64(size)
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

// submit sends the job to the server, and with --wait follows it.
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
	if !f.wait {
		if a.output == "json" {
			return a.printJSON(api.SubmitResponse{Job: j, Existed: existed})
		}
		fmt.Fprintln(a.stdout, j.ID)
		return nil
	}
	final, err := a.follow(ctx, c, j)
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
func (a *app) follow(ctx context.Context, c *apiclient.Client, j *job.Job) (*job.Job, error) {
	streamOutput := a.output != "json"
	var logs sync.WaitGroup
	defer logs.Wait()
	following := false
	streamed := true // the output was shown as it came (false: show what was collected at the end)
	fj, err := c.WaitTransitions(ctx, j.ID, func(t job.Transition) {
		fmt.Fprintf(a.stderr, "fusebox: %s %s\n", j.ID, describeTransition(t))
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
	if a.output == "json" {
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

// jobExitCode is the exit code of run --wait for a finished job.
func jobExitCode(j *job.Job) int {
	switch j.State {
	case job.StateSucceeded:
		return exitOK
	case job.StateFailed:
		if j.ExitCode != nil && *j.ExitCode != 0 {
			return *j.ExitCode
		}
		return exitError
	case job.StateTimedOut:
		return exitTimedOut
	case job.StateCancelled:
		return exitCancelled
	}
	return exitError
}
