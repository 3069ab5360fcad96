package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
)

// pullSetup starts a registry with the test image pushed to it under a name
// of its own, and removes the image from e when the test ends.
func pullSetup(t *testing.T, e *enginetest.Engine) (*enginetest.Registry, enginetest.Pushed) {
	t.Helper()
	img := enginetest.TestImage(t)
	r, err := enginetest.StartRegistry(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := r.Push(img, fmt.Sprintf("fusebox/pull:%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli, err := e.Client()
		if err != nil {
			return
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, p.Ref, client.ImageRemoveOptions{Force: true})
	})
	return r, p
}

func wantAbsent(t *testing.T, c *engine.Client, ref string) {
	t.Helper()
	ok, err := c.ImageExists(context.Background(), ref)
	if err != nil || ok {
		t.Fatalf("after a failed pull, %s exists=%v (%v); want absent", ref, ok, err)
	}
}

func TestImagePullFromRegistry(t *testing.T) {
	f := enginetest.Shared(t, 1)
	e := f.Engines[0]
	_, p := pullSetup(t, e)
	c := newClient(t, e, "", engine.Timeouts{})
	ctx := context.Background()
	if err := c.ImagePull(ctx, p.Ref); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if ok, err := c.ImageExists(ctx, p.Ref); err != nil || !ok {
		t.Fatalf("after the pull: exists=%v %v", ok, err)
	}
	if ok, err := c.ImageExists(ctx, p.ID); err != nil || !ok {
		t.Fatalf("the pulled image has not the pushed ID %s: %v %v", p.ID, ok, err)
	}
	if id, err := c.ImageID(ctx, p.Ref); err != nil || id != p.ID {
		t.Fatalf("ImageID(%s) = %q, %v; want %s", p.Ref, id, err, p.ID)
	}
	if _, err := c.ImageID(ctx, "fusebox/never-pulled:1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("ImageID of a missing image: %v", err)
	}
}

// A registry that stalls mid-blob past the pull's deadline: an error, not
// success, and the registry's fault, not the host's (the engine answers).
func TestImagePullStalledPastDeadline(t *testing.T) {
	f := enginetest.Shared(t, 1)
	e := f.Engines[0]
	r, p := pullSetup(t, e)
	r.SetBlobFault(enginetest.BlobFault{Kind: enginetest.BlobStall})
	c := newClient(t, e, "", engine.Timeouts{ImagePull: 4 * time.Second})
	began := time.Now()
	err := c.ImagePull(context.Background(), p.Ref)
	if err == nil {
		t.Fatal("a pull cut off by its deadline reported success")
	}
	wantClass(t, err, engine.ClassJob)
	if !errors.Is(err, engine.ErrRegistry) {
		t.Fatalf("%v does not wrap ErrRegistry", err)
	}
	if r.Stalls() < 1 {
		t.Fatalf("the pull never reached the stalled blob (%v): %v", time.Since(began), err)
	}
	wantAbsent(t, c, p.Ref)
}

// The caller cancelling a stalled pull: an error, ignored.
func TestImagePullCallerCancelled(t *testing.T) {
	f := enginetest.Shared(t, 1)
	e := f.Engines[0]
	r, p := pullSetup(t, e)
	r.SetBlobFault(enginetest.BlobFault{Kind: enginetest.BlobStall})
	c := newClient(t, e, "", engine.Timeouts{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ImagePull(ctx, p.Ref) }()
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	if err := r.WaitStalled(wctx, 1); err != nil {
		cancel()
		t.Fatal(err)
	}
	cancel()
	err := <-done
	if err == nil {
		t.Fatal("a cancelled pull reported success")
	}
	wantClass(t, err, engine.ClassIgnored)
	wantAbsent(t, c, p.Ref)
}

func TestImagePullMissingIsJobFault(t *testing.T) {
	f := enginetest.Shared(t, 1)
	e := f.Engines[0]
	r, p := pullSetup(t, e)
	c := newClient(t, e, "", engine.Timeouts{})
	for _, ref := range []string{r.Addr + "/fusebox/nope:1", p.Ref + "-missing-tag"} {
		err := c.ImagePull(context.Background(), ref)
		if err == nil {
			t.Fatalf("pull of %s succeeded", ref)
		}
		wantClass(t, err, engine.ClassJob)
	}
}

func TestImagePullInvalidReferenceIsJobFault(t *testing.T) {
	// No engine needed: nothing is sent.
	c, err := engine.New(engine.Config{Name: "none", Address: "unix:///nonexistent/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ref := range []string{"team/UPPER:x", "a b", "sha256:abc", "sha256:" + fmt.Sprintf("%064d", 0), "x@sha256:abc"} {
		err := c.ImagePull(context.Background(), ref)
		wantClass(t, err, engine.ClassJob)
		if engine.IsUnreachable(err) {
			t.Fatalf("%s: an invalid reference is not an unreachable host: %v", ref, err)
		}
	}
}

// A daemon that hangs or dies mid-pull is the host's fault.
func TestImagePullHostFaults(t *testing.T) {
	f := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, f)
	e := f.Engines[0]

	t.Run("hung", func(t *testing.T) {
		r, p := pullSetup(t, e)
		r.SetBlobFault(enginetest.BlobFault{Kind: enginetest.BlobStall})
		c := newClient(t, e, "", engine.Timeouts{ImagePull: 10 * time.Second, Ping: time.Second})
		done := make(chan error, 1)
		// The deadline passes while dockerd is stopped: its ping fails too.
		go func() { done <- c.ImagePull(context.Background(), p.Ref) }()
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		defer wcancel()
		if err := r.WaitStalled(wctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := e.Hang(); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if rerr := e.Resume(); rerr != nil {
			t.Fatal(rerr)
		}
		if err == nil {
			t.Fatal("a pull on a hung daemon reported success")
		}
		wantClass(t, err, engine.ClassHost)
	})
	t.Run("killed", func(t *testing.T) {
		r, p := pullSetup(t, e)
		r.SetBlobFault(enginetest.BlobFault{Kind: enginetest.BlobStall})
		c := newClient(t, e, "", engine.Timeouts{})
		done := make(chan error, 1)
		go func() { done <- c.ImagePull(context.Background(), p.Ref) }()
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		defer wcancel()
		if err := r.WaitStalled(wctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := e.Kill(); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-done:
		case <-wctx.Done():
			t.Fatal("the pull did not return after its daemon was killed")
		}
		if err == nil {
			t.Fatal("a pull whose daemon died reported success")
		}
		wantClass(t, err, engine.ClassHost)
		if engine.IsUnreachable(err) {
			t.Fatalf("the pull was sent; its outcome is unknown, not unreachable: %v", err)
		}
	})
}
