package enginetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// pullWith pulls ref through cli with auth and returns the engine's error:
// the answer's, or the first error message in the progress stream.
func pullWith(ctx context.Context, cli *client.Client, ref, auth string) error {
	res, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	defer res.Close()
	return res.Wait(ctx)
}

// TestDistribution pushes the test image from one private engine to the
// real registry and pulls it on another: with the right credentials it
// arrives with the same ID; wrong ones, a missing tag and a stopped
// registry are refused with the registry's (or the dial's) message; after
// Start it serves again.
func TestDistribution(t *testing.T) {
	img := TestImage(t)
	f := ForTest(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := StartDistribution(ctx, DistributionOptions{Dir: t.TempDir(), Users: map[string]string{"alice": "s3cret"}, Logf: t.Logf})
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { d.Close() })
	ref, err := d.Push(ctx, f.Engines[0].Host(), img.Ref, "fusebox/testjob:v1", "alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := f.Engines[1].Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	err = pullWith(ctx, cli, ref, d.Auth("alice", "wrong"))
	t.Logf("wrong password: %v", err)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("pull with a wrong password: %v, want the registry's unauthorized", err)
	}
	err = pullWith(ctx, cli, d.Addr+"/fusebox/testjob:nope", d.Auth("alice", "s3cret"))
	t.Logf("missing tag: %v", err)
	if err == nil || !strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "unknown") {
		t.Errorf("pull of a missing tag: %v, want not found", err)
	}
	if err := pullWith(ctx, cli, ref, ""); err == nil {
		t.Errorf("pull without credentials succeeded")
	} else {
		t.Logf("no credentials: %v", err)
	}
	if err := pullWith(ctx, cli, ref, d.Auth("alice", "s3cret")); err != nil {
		t.Fatalf("pull: %v", err)
	}
	got, err := cli.ImageInspect(ctx, ref)
	if err != nil || got.ID != img.ID {
		t.Fatalf("pulled image %s (%v), want %s", got.ID, err, img.ID)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	err = pullWith(ctx, cli, ref, d.Auth("alice", "s3cret"))
	t.Logf("stopped: %v", err)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("pull from a stopped registry: %v, want connection refused", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pullWith(ctx, cli, ref, d.Auth("alice", "s3cret")); err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
}
