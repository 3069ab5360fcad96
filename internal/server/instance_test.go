package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// Two fusebox servers, each with its own store, on the same Docker host:
// each labels its containers with its instance id, and neither's sweep for
// dangling containers (which runs as it starts) removes the other's.
func TestTwoFuseboxesOnOneHostLeaveEachOthersContainers(t *testing.T) {
	engines := enginetest.ForTest(t, 1)
	img := enginetest.TestImage(t)
	ctx := context.Background()
	a := apiclient.New(startInProcess(t, engines, nil), "")
	ja, _, err := a.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "print", "from a", "sleep", "3s"}})
	if err != nil {
		t.Fatal(err)
	}
	var cid string
	enginetest.Eventually(t, 30*time.Second, "a's job runs", func() bool {
		d, err := a.Get(ctx, ja.ID)
		if err == nil && d.Job.State == job.StateRunning {
			cid = d.Job.ContainerID
		}
		return cid != ""
	})
	direct, err := engines.Engines[0].Client()
	if err != nil {
		t.Fatal(err)
	}
	ins, err := direct.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	instA := ins.Container.Config.Labels[job.LabelInstance]
	if instA == "" {
		t.Fatalf("a's container has no %s label: %v", job.LabelInstance, ins.Container.Config.Labels)
	}
	// b starts (and sweeps) while a's container runs.
	b := apiclient.New(startInProcess(t, engines, nil), "")
	jb, _, err := b.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob", "print", "from b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		c    *apiclient.Client
		id   string
		want string
	}{{a, ja.ID, "from a\n"}, {b, jb.ID, "from b\n"}} {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		end, err := w.c.Wait(wctx, w.id)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		logs, err := w.c.Logs(ctx, w.id)
		if end.State != job.StateSucceeded || err != nil || string(logs.Stdout) != w.want {
			t.Errorf("job %s: %s (%s), output %q (%v)", w.id, end.State, end.Reason, logs.Stdout, err)
		}
	}
	// a removes its own container once its job has ended.
	enginetest.Eventually(t, 30*time.Second, "a's container removed by a", func() bool {
		_, err := direct.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
		return err != nil
	})
	bd, err := b.Get(ctx, jb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bd.Job.ContainerID == cid {
		t.Fatal("one container for two jobs")
	}
}
