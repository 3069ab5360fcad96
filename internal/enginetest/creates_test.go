package enginetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The watchers follow an engine through a restart: a container created
// and run after it is counted, and each container once, though the
// re-opened stream repeats the events of the same second.
func TestWatchersFollowARestart(t *testing.T) {
	f := ForTest(t, 1)
	RequireFaults(t, f)
	e := f.Engines[0]
	img := TestImage(t)
	filter := map[string]string{"watch.test": "true"}
	key := func(l map[string]string) string { return l["watch.key"] }
	creates := WatchCreates(t, f, filter, key)
	lives := WatchLifetimes(t, f, filter, key)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(k string) {
		t.Helper()
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       fmt.Sprintf("watch-%s-%d", k, time.Now().UnixNano()),
			Config:     &container.Config{Image: img.Ref, Cmd: []string{"/usr/local/bin/fusebox-testjob", "exit", "0"}, Labels: map[string]string{"watch.test": "true", "watch.key": k}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run("before")
	eventually(t, 30*time.Second, "the first container counted", func() error {
		if creates.Count("before") != 1 || lives.Count("before") != 1 {
			return fmt.Errorf("creates %d, started %d", creates.Count("before"), lives.Count("before"))
		}
		return nil
	})
	if err := e.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	run("after")
	eventually(t, 30*time.Second, "the container after the restart counted", func() error {
		if creates.Count("after") != 1 || lives.Count("after") != 1 {
			return fmt.Errorf("creates %d, started %d", creates.Count("after"), lives.Count("after"))
		}
		return nil
	})
	if n := creates.Count("before"); n != 1 {
		t.Errorf("the container before the restart counted %d times, want 1", n)
	}
}
