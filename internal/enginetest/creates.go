package enginetest

import (
	"context"
	"fmt"
	"strconv"
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
	mu   sync.Mutex
	n    map[string]int      // key -> creations
	seen map[string]struct{} // container IDs counted (a re-opened stream may repeat events)
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
// after it returns is missed. An engine restarted during the test is
// followed again when it is back (its stream re-opened with since = the
// last event seen; each container is counted once).
func WatchCreates(tb testing.TB, f *Fleet, filter map[string]string, keyOf func(labels map[string]string) string) *Creates {
	tb.Helper()
	img := TestImage(tb)
	c := &Creates{n: map[string]int{}, seen: map[string]struct{}{}}
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
			var since time.Time
			for {
			read:
				for {
					select {
					case <-ctx.Done():
						return
					case <-events.Err:
						break read
					case m := <-events.Messages:
						if at := time.Unix(0, m.TimeNano); at.After(since) {
							since = at
						}
						key := keyOf(m.Actor.Attributes)
						if m.Actor.Attributes[markerLabel] == "true" {
							key = marker
						}
						c.mu.Lock()
						if _, dup := c.seen[m.Actor.ID]; !dup {
							c.seen[m.Actor.ID] = struct{}{}
							c.n[key]++
						}
						c.mu.Unlock()
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond): // the engine may be restarting
				}
				opts := client.EventsListOptions{Filters: filters}
				if !since.IsZero() {
					opts.Since = strconv.FormatInt(since.Unix(), 10) // whole seconds: repeats are dropped above
				}
				events = cli.Events(ctx, opts)
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

// Lifetimes records, from the engines' own event streams, when each
// container carrying a set of labels started and died: what the engines
// ran, whatever the code under test believes. Tests use it to prove that no
// two containers of one job ever ran at once.
type Lifetimes struct {
	mu   sync.Mutex
	byID map[string]*Lifetime
}

// Lifetime is one container's run. Died is zero while it runs.
type Lifetime struct {
	Engine, ID, Key string
	Started, Died   time.Time
}

// Overlaps returns, for each key, the pairs of containers with that key
// whose runs overlapped (a container still running counts as running until
// now).
func (l *Lifetimes) Overlaps() map[string][][2]Lifetime {
	l.mu.Lock()
	defer l.mu.Unlock()
	by := map[string][]Lifetime{}
	for _, lt := range l.byID {
		if !lt.Started.IsZero() {
			by[lt.Key] = append(by[lt.Key], *lt)
		}
	}
	now := time.Now()
	end := func(x Lifetime) time.Time {
		if x.Died.IsZero() {
			return now
		}
		return x.Died
	}
	out := map[string][][2]Lifetime{}
	for k, lts := range by {
		for i := range lts {
			for j := i + 1; j < len(lts); j++ {
				a, b := lts[i], lts[j]
				if a.Started.Before(end(b)) && b.Started.Before(end(a)) {
					out[k] = append(out[k], [2]Lifetime{a, b})
				}
			}
		}
	}
	return out
}

// Count returns how many containers with key were started.
func (l *Lifetimes) Count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, lt := range l.byID {
		if lt.Key == key && !lt.Started.IsZero() {
			n++
		}
	}
	return n
}

// WatchLifetimes records, for the rest of the test, the start and death of
// every container that carries all of the labels in filter, keyed by what
// keyOf returns for its labels. Like WatchCreates it returns once every
// engine's stream is live. An engine restarted during the test is followed
// again when it is back: its stream is re-opened with since = the last
// event seen, so nothing in between is missed.
func WatchLifetimes(tb testing.TB, f *Fleet, filter map[string]string, keyOf func(labels map[string]string) string) *Lifetimes {
	tb.Helper()
	live := WatchCreates(tb, f, filter, keyOf) // proves every stream live before we start
	_ = live
	l := &Lifetimes{byID: map[string]*Lifetime{}}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	for _, e := range f.Engines {
		since := time.Now().Add(-time.Second)
		go func() {
			for ctx.Err() == nil {
				cli, err := e.Client()
				if err != nil {
					return
				}
				filters := client.Filters{}.Add("type", "container").Add("event", "start").Add("event", "die").Add("event", "destroy")
				for k, v := range filter {
					filters = filters.Add("label", k+"="+v)
				}
				events := cli.Events(ctx, client.EventsListOptions{Filters: filters, Since: strconv.FormatInt(since.Unix(), 10)})
				l.settle(ctx, cli, e.Name)
			read:
				for {
					select {
					case <-ctx.Done():
						break read
					case <-events.Err:
						break read
					case m := <-events.Messages:
						at := time.Unix(0, m.TimeNano)
						if at.After(since) {
							since = at
						}
						l.mu.Lock()
						lt := l.byID[m.Actor.ID]
						if lt == nil {
							lt = &Lifetime{Engine: e.Name, ID: m.Actor.ID, Key: keyOf(m.Actor.Attributes)}
							l.byID[m.Actor.ID] = lt
						}
						switch m.Action {
						case "start":
							if lt.Started.IsZero() {
								lt.Started = at
							}
						case "die":
							lt.Died = at
						case "destroy":
							if lt.Died.IsZero() && !lt.Started.IsZero() {
								lt.Died = at // its death was missed (settle could not tell): no later than this
							}
						}
						l.mu.Unlock()
					}
				}
				cli.Close()
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond): // the engine may be restarting
				}
			}
		}()
	}
	return l
}

// settle asks engine about every container it is believed to run: a
// daemon that went away may have stopped them without the event reaching
// the stream (a restarting daemon closes its streams first).
func (l *Lifetimes) settle(ctx context.Context, cli *client.Client, engine string) {
	l.mu.Lock()
	var ids []string
	for id, lt := range l.byID {
		if lt.Engine == engine && !lt.Started.IsZero() && lt.Died.IsZero() {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	for _, id := range ids {
		res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || res.Container.State == nil || res.Container.State.Running {
			continue // unknown or still running: the stream will tell
		}
		died, err := time.Parse(time.RFC3339Nano, res.Container.State.FinishedAt)
		if err != nil {
			continue
		}
		l.mu.Lock()
		if lt := l.byID[id]; lt.Died.IsZero() {
			lt.Died = died
		}
		l.mu.Unlock()
	}
}
