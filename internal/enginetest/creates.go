package enginetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Creates counts container creations on a fleet's engines, from the
// engines' own event streams: what an engine did, whatever the code under
// test believes it did. Tests use it to prove a container was created
// exactly once.
type Creates struct {
	mu sync.Mutex
	n  map[string]int // key -> creations
}

// Count returns how many containers whose labels gave key were created.
func (c *Creates) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// WatchCreates counts, for the rest of the test, the creation of every
// container that carries all of the labels in filter, under the key that
// keyOf returns for its labels. It returns once every engine's event stream
// is live (it has seen a marker container's creation), so nothing created
// after it returns is missed.
func WatchCreates(tb testing.TB, f *Fleet, filter map[string]string, keyOf func(labels map[string]string) string) *Creates {
	tb.Helper()
	img := TestImage(tb)
	c := &Creates{n: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	const markerLabel = "fusebox.enginetest.marker"
	for _, e := range f.Engines {
		cli, err := e.Client()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cli.Close() })
		filters := client.Filters{}.Add("type", "container").Add("event", "create")
		for k, v := range filter {
			filters = filters.Add("label", k+"="+v)
		}
		marker := "marker-" + e.Name
		events := cli.Events(ctx, client.EventsListOptions{Filters: filters})
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-events.Err:
					return
				case m := <-events.Messages:
					key := keyOf(m.Actor.Attributes)
					if m.Actor.Attributes[markerLabel] == "true" {
						key = marker
					}
					c.mu.Lock()
					c.n[key]++
					c.mu.Unlock()
				}
			}
		}()
		labels := map[string]string{markerLabel: "true"}
		for k, v := range filter {
			labels[k] = v
		}
		for i := 0; c.Count(marker) == 0; i++ {
			if i == 50 {
				tb.Fatalf("enginetest: the event stream of %s reported no create", e.Name)
			}
			res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
				Name:       fmt.Sprintf("fbmarker-%s-%d", e.Name, time.Now().UnixNano()),
				Config:     &container.Config{Image: img.Ref, Labels: labels},
				HostConfig: &container.HostConfig{NetworkMode: "none"},
			})
			if err != nil {
				tb.Fatalf("enginetest: marker container on %s: %v", e.Name, err)
			}
			for d := time.Now().Add(time.Second); c.Count(marker) == 0 && time.Now().Before(d); {
				time.Sleep(10 * time.Millisecond)
			}
			cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	return c
}
