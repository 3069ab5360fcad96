package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// probeCommand is a path no image has: starting it makes a healthy engine
// answer "executable file not found" (a 4xx) without running anything.
const probeCommand = "/.fusebox-probe/does-not-exist"

// diagnose decides who is at fault when the engine answered a job's create
// or start with a server error (5xx). Docker gives a 5xx for a broken host
// (its runtime cannot start anything, nomad#11888) and for some specs a
// user controls (a workdir below a file, say), so the status alone must not
// count against the host. diagnose asks the host to start a probe
// container of the same image that cannot run (its command does not
// exist): a healthy engine refuses it with a 4xx once it has set the
// container up, which clears the host: the failure never counts against
// it, and the job tries another host while it has attempts left
// (*refusedHere). A probe that fails like the job did leaves it a host
// fault.
//
// Errors that are not an answered 5xx are returned as they are.
func (d *Dispatcher) diagnose(ctx context.Context, h *fleet.Host, j *job.Job, err error) error {
	if !engine.Answered(err) || engine.ClassOf(err) != engine.ClassHost {
		return err
	}
	perr := d.probe(ctx, h, j.Spec.Image)
	if perr != nil {
		d.log.Warn("the engine fails a probe container too: host fault", "host", h.Name(), "job", j.ID, "err", err, "probe", perr)
		return err
	}
	d.log.Info("the engine refused the job but starts containers: not a host fault", "host", h.Name(), "job", j.ID, "err", err)
	return &refusedHere{&engine.Error{Host: h.Name(), Op: opOf(err), Class: engine.ClassJob,
		Err: fmt.Errorf("the engine could not run this job's container (it runs others): %w", err)}}
}

// refusedHere is a launch the engine refused with a server error while a
// probe shows it runs other containers: the job's spec, or state the daemon
// keeps for this one container. It never counts against the host (its class
// is ClassJob); the job may try another host while attempts are left.
type refusedHere struct{ err error }

func (e *refusedHere) Error() string { return e.err.Error() }
func (e *refusedHere) Unwrap() error { return e.err }

// probe creates and starts a container of image whose command does not
// exist, and removes it. nil means the engine set it up and refused it as
// a healthy engine does (an answered 4xx, or an exit).
func (d *Dispatcher) probe(ctx context.Context, h *fleet.Host, image string) error {
	c := h.Client()
	name := fmt.Sprintf("fusebox-probe-%s-%d", h.Name(), time.Now().UnixNano())
	id, err := c.Create(ctx, engine.ContainerSpec{
		Name: name, Image: image, Cmd: []string{probeCommand},
		Labels: map[string]string{fleet.LabelCanary: "true"},
	})
	if err != nil {
		return fmt.Errorf("probe create: %w", err)
	}
	defer c.Remove(context.WithoutCancel(ctx), id)
	err = c.Start(ctx, id)
	if err == nil || (engine.Answered(err) && engine.ClassOf(err) == engine.ClassJob) {
		return nil
	}
	return fmt.Errorf("probe start: %w", err)
}

func opOf(err error) string {
	var e *engine.Error
	if errors.As(err, &e) {
		return e.Op
	}
	return "launch"
}
