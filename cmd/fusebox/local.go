package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fusebox/internal/engine"
	"fusebox/internal/job"
)

// Bounds of run --docker-host.
const (
	localStopGrace     = 10 * time.Second // SIGTERM, then SIGKILL after this
	localCleanupBound  = time.Minute      // stop and remove after an interrupt
	localContainerName = "fusebox-run-"   // + random hex
	// localLabel marks containers of run --docker-host. They do not carry
	// the fusebox.managed label, so that a fusebox server sharing the
	// engine never adopts or reaps them.
	localLabel = "fusebox.run"
)

// checkLocal refuses flags that mean nothing without a server.
func (f *runFlags) checkLocal(cmd *cobra.Command) error {
	if !strings.HasPrefix(f.dockerHost, "unix://") && !strings.HasPrefix(f.dockerHost, "tcp://") {
		return usagef("Use --docker-host unix:///var/run/docker.sock or --docker-host tcp://HOST:PORT; to choose fleet hosts, use --host-label KEY=VALUE.",
			"--docker-host %q: not an engine address", f.dockerHost)
	}
	for _, name := range []string{"host-label", "host", "name", "priority", "max-attempts", "retry-backoff", "idempotency-key"} {
		if cmd.Flags().Changed(name) {
			return usagef("Drop it, or submit to a server (without --docker-host).",
				"--%s has no meaning with --docker-host, which runs the container at once on that one engine", name)
		}
	}
	return nil
}

// runLocal runs spec on the engine at addr, without a server: create,
// start, stream the output, wait, remove. It returns the exit code: the
// container's, 127 or 126 when its command is missing or not executable,
// 124 on --timeout, 130 when interrupted, 125 when the engine failed.
func (a *app) runLocal(ctx context.Context, addr string, spec job.Spec) (int, error) {
	if err := spec.Validate(); err != nil {
		return exitUsage, &usageError{err: err, hint: "Run 'fusebox run --help' for usage."}
	}
	eng, err := engine.New(engine.Config{Name: "local", Address: addr})
	if err != nil {
		return exitCantRun, err
	}
	defer eng.Close()

	if err := ensureImage(ctx, eng, spec.Image, spec.PullPolicy); err != nil {
		return exitCantRun, err
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	labels := map[string]string{localLabel: "true"}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	id, err := eng.Create(ctx, engine.ContainerSpec{
		Name:        localContainerName + hex.EncodeToString(suffix[:]),
		Image:       spec.Image,
		Entrypoint:  spec.Entrypoint,
		Cmd:         spec.Command,
		Env:         env,
		WorkingDir:  spec.Workdir,
		User:        spec.User,
		Labels:      labels,
		CPUs:        spec.CPUs,
		MemoryBytes: spec.MemoryBytes,
		Network:     spec.Network,
		Platform:    spec.Platform,
	})
	if err != nil {
		return exitCantRun, err
	}
	// Remove the container whatever happens, even after an interrupt.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), localCleanupBound)
		defer cancel()
		if err := eng.Remove(cctx, id); err != nil {
			fmt.Fprintf(a.stderr, "fusebox: removing container %s: %v\n", short12(id), err)
		}
	}()

	runCtx, cancelRun := ctx, context.CancelFunc(func() {})
	if spec.Timeout > 0 {
		runCtx, cancelRun = context.WithTimeout(ctx, spec.Timeout.Std())
	}
	defer cancelRun()

	if err := eng.Start(runCtx, id); err != nil {
		switch engine.ExecProblemOf(err) {
		case engine.ExecNotFound:
			return exitNotFound, err
		case engine.ExecNotExecutable:
			return exitNotExecutable, err
		}
		return exitCantRun, err
	}
	// The output from the start, until the container exits.
	if err := eng.FollowLogs(runCtx, id, a.stdout, a.stderr); err != nil && runCtx.Err() == nil {
		fmt.Fprintf(a.stderr, "fusebox: following output: %v\n", err)
	}
	code, err := eng.Wait(runCtx, id)
	if runCtx.Err() != nil {
		// Interrupted or timed out: stop it (SIGTERM, then SIGKILL).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), localCleanupBound)
		defer cancel()
		if serr := eng.Stop(sctx, id, localStopGrace); serr != nil {
			fmt.Fprintf(a.stderr, "fusebox: stopping container %s: %v\n", short12(id), serr)
		}
		if ctx.Err() != nil {
			return exitCancelled, errors.New("interrupted; the container was stopped and removed")
		}
		return exitTimedOut, fmt.Errorf("timed out after %s; the container was stopped and removed", spec.Timeout)
	}
	if err != nil {
		return exitCantRun, err
	}
	return code, nil
}

// ensureImage applies the pull policy on the engine.
func ensureImage(ctx context.Context, eng *engine.Client, image, policy string) error {
	if policy == job.PullAlways {
		return eng.ImagePull(ctx, image)
	}
	ok, err := eng.ImageExists(ctx, image)
	if err != nil || ok {
		return err
	}
	if policy == job.PullNever {
		return fmt.Errorf("image %s is not on the engine and --pull is never: load it there, or use --pull missing", image)
	}
	return eng.ImagePull(ctx, image)
}

func short12(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
