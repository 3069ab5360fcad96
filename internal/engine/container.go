package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerSpec is what Create needs to make one container.
type ContainerSpec struct {
	Name        string // deterministic, so a retried create conflicts instead of duplicating
	Image       string
	Entrypoint  []string // nil: the image's
	Cmd         []string
	Env         []string // KEY=value
	WorkingDir  string
	User        string // user[:group]; "": the image's
	Labels      map[string]string
	CPUs        float64 // 0: no limit
	MemoryBytes int64   // 0: no limit
	// Network is the container's network mode; "": the host's
	// (Config.NetworkMode). A host with a network mode of its own allows
	// only that one and "none" (see Create).
	Network  string
	Platform string // os[/arch[/variant]]; "": the engine's
}

// networkMode returns the network mode of a container asking for want on
// a host whose configured mode is host ("": the engine's default). A host
// with a mode of its own caps what its jobs get: that mode, or "none"
// (less never hurts); any other is the job's fault.
func networkMode(hostName, host, want string) (string, error) {
	switch {
	case want == "" || want == host:
		return host, nil
	case host == "" || want == "none":
		return want, nil
	}
	allowed := fmt.Sprintf("%q or \"none\"", host)
	if host == "none" {
		allowed = `"none"`
	}
	// Refused before any request: as a daemon's 4xx, nothing was made.
	return "", &Error{Host: hostName, Op: "container create", Class: ClassJob, Answered: true,
		Err: fmt.Errorf("network %q is not allowed on this host: its network_mode is %q, so a job may ask for %s only", want, host, allowed)}
}

// parsePlatform reads os[/arch[/variant]].
func parsePlatform(s string) *ocispec.Platform {
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, "/", 3)
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p
}

// Container is what fusebox needs to know of a container's state.
type Container struct {
	ID         string
	Name       string
	Image      string
	Labels     map[string]string
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string // the engine's error starting or running it, if any
	StartedAt  time.Time
	FinishedAt time.Time
}

// Exited reports whether the container has run and stopped.
func (c *Container) Exited() bool { return c.Status == "exited" || c.Status == "dead" }

// Create creates a container. A name that is already taken returns an error
// that errors.Is ErrNameConflict (class ignored): the caller decides whether
// the existing container is its own to adopt.
func (c *Client) Create(ctx context.Context, s ContainerSpec) (id string, err error) {
	network, err := networkMode(c.name, c.network, s.Network)
	if err != nil {
		return "", err
	}
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        s.Env,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Labels:     s.Labels,
	}
	hc := &container.HostConfig{}
	if network != "" {
		hc.NetworkMode = container.NetworkMode(network)
	}
	if s.CPUs > 0 {
		hc.Resources.NanoCPUs = int64(math.Round(s.CPUs * 1e9))
	}
	if s.MemoryBytes > 0 {
		hc.Resources.Memory = s.MemoryBytes
	}
	err = c.call(ctx, "container create", c.timeouts.Create, func(ctx context.Context) error {
		res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: s.Name, Platform: parsePlatform(s.Platform)})
		id = res.ID
		return err
	})
	return id, err
}

// ExecProblem says why an engine refused to start a container's command.
type ExecProblem int

const (
	ExecOK            ExecProblem = iota // not an exec problem (or no error)
	ExecNotFound                         // the command does not exist in the image (docker run exits 127)
	ExecNotExecutable                    // it exists but cannot be executed: no permission, a directory (126)
)

// ExecProblemOf reads a refused create or start: whether the engine
// refused it because the container's command is missing or not
// executable. The engine says so only in its message, from the OCI
// runtime (there is no typed error for it); this is the one place that
// reads it, with the phrases the docker CLI itself maps to 127 and 126.
// Only an answered refusal (a 4xx) is read, never a host fault.
func ExecProblemOf(err error) ExecProblem {
	var e *Error
	if err == nil || !errors.As(err, &e) || !e.Answered || e.Class != ClassJob {
		return ExecOK
	}
	msg := e.Err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return ExecNotFound
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return ExecNotExecutable
	}
	return ExecOK
}

// Start starts a created container. Starting one that already runs is not
// an error.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, "container start", c.timeouts.Start, func(ctx context.Context) error {
		_, err := c.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	})
}

// Inspect returns a container's state. An unknown container returns an
// error that errors.Is ErrNotFound.
func (c *Client) Inspect(ctx context.Context, id string) (*Container, error) {
	var out *Container
	err := c.call(ctx, "container inspect", c.timeouts.Inspect, func(ctx context.Context) error {
		res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		out = fromInspect(res.Container)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		err = reclass(err, ClassIgnored)
	}
	return out, err
}

func fromInspect(r container.InspectResponse) *Container {
	ct := &Container{ID: r.ID, Name: trimSlash(r.Name)}
	if r.Config != nil {
		ct.Image = r.Config.Image
		ct.Labels = r.Config.Labels
	}
	if s := r.State; s != nil {
		ct.Status = string(s.Status)
		ct.Running = s.Running
		ct.ExitCode = s.ExitCode
		ct.OOMKilled = s.OOMKilled
		ct.Error = s.Error
		ct.StartedAt = parseTime(s.StartedAt)
		ct.FinishedAt = parseTime(s.FinishedAt)
	}
	return ct
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// Wait blocks until the container is not running and returns its exit
// code. It is bounded only by ctx (a job may run for hours).
func (c *Client) Wait(ctx context.Context, id string) (exitCode int, err error) {
	res := c.stream.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return int(r.StatusCode), &Error{Host: c.name, Op: "container wait", Class: ClassHost, Err: errors.New(r.Error.Message)}
		}
		return int(r.StatusCode), nil
	case err := <-res.Error:
		return -1, classify(ctx, c.name, "container wait", err)
	}
}

// Stop sends the container SIGTERM and, after grace, SIGKILL. A container
// that is already stopped or gone is not an error.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	err := c.call(ctx, "container stop", c.timeouts.Stop+grace, func(ctx context.Context) error {
		_, err := c.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
		return err
	})
	if errors.Is(err, ErrNotFound) || cerrdefs.IsNotModified(err) {
		return nil
	}
	return err
}

// Remove removes a container (forcibly, with its anonymous volumes). A
// container that is already gone, or already being removed, is not an
// error.
func (c *Client) Remove(ctx context.Context, id string) error {
	err := c.call(ctx, "container remove", c.timeouts.Remove, func(ctx context.Context) error {
		_, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return err
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNameConflict) {
		return nil
	}
	return err
}

// List returns every container (running or not) carrying all of labels.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]*Container, error) {
	f := client.Filters{}
	for k, v := range labels {
		f = f.Add("label", k+"="+v)
	}
	var out []*Container
	err := c.call(ctx, "container list", c.timeouts.List, func(ctx context.Context) error {
		res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		for _, s := range res.Items {
			ct := &Container{ID: s.ID, Image: s.Image, Labels: s.Labels, Status: string(s.State)}
			if len(s.Names) > 0 {
				ct.Name = trimSlash(s.Names[0])
			}
			ct.Running = ct.Status == "running"
			out = append(out, ct)
		}
		return err
	})
	return out, err
}

// reclass returns err with its class changed.
func reclass(err error, class Class) error {
	var e *Error
	if errors.As(err, &e) {
		cp := *e
		cp.Class = class
		return &cp
	}
	return err
}
