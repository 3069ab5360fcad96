package engine

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/client"
)

// Event is a container event from the engine's event stream.
type Event struct {
	ContainerID string
	Action      string // start, die, oom, destroy, ...
	Labels      map[string]string
	ExitCode    int // for die; -1 if unknown
	Time        time.Time
}

// Events streams container events for containers carrying all of labels,
// until ctx is done or the stream breaks. The error channel receives one
// classified error when the stream ends for any reason but ctx.
func (c *Client) Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error) {
	f := client.Filters{}.Add("type", "container")
	for k, v := range labels {
		f = f.Add("label", k+"="+v)
	}
	res := c.stream.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan Event, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m, ok := <-res.Messages:
				if !ok {
					return
				}
				ev := Event{
					ContainerID: m.Actor.ID,
					Action:      string(m.Action),
					Labels:      m.Actor.Attributes,
					ExitCode:    -1,
					Time:        time.Unix(0, m.TimeNano),
				}
				if s, ok := m.Actor.Attributes["exitCode"]; ok {
					if n, err := strconv.Atoi(s); err == nil {
						ev.ExitCode = n
					}
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-res.Err:
				if ctx.Err() == nil {
					errc <- classify(ctx, c.name, "events", err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// SawStart reports whether the engine's own event log (the recent events
// the running daemon keeps in memory) holds the start of container id since
// since. A daemon keeps only its own recent events: a container started
// before the daemon last restarted is not in it.
func (c *Client) SawStart(ctx context.Context, id string, since time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeouts.List)
	defer cancel()
	f := client.Filters{}.Add("type", "container").Add("container", id).Add("event", "start")
	res := c.stream.Events(ctx, client.EventsListOptions{
		Filters: f,
		Since:   strconv.FormatInt(since.Unix(), 10),
		Until:   strconv.FormatInt(time.Now().Unix()+1, 10),
	})
	seen := false
	for {
		select {
		case <-res.Messages:
			seen = true
		case err := <-res.Err:
			if errors.Is(err, io.EOF) || err == nil {
				return seen, nil
			}
			return seen, classify(ctx, c.name, "events", err)
		}
	}
}
