package ui

import (
	"fmt"
	"net/http"
	"time"

	"fusebox/internal/event"
)

// TimelineWindow is how far back the timeline looks by default
// (?window= picks another, from TimelineMinWindow to TimelineMaxWindow).
const (
	TimelineWindow    = time.Hour
	TimelineMinWindow = time.Minute
	TimelineMaxWindow = 24 * time.Hour
)

// timeline is the picture of the last hour (or window): one lane per host, coloured
// by its breaker's state, with a mark for each operator action.
type timeline struct {
	Width, Height int
	Lanes         []lane
	Ticks         []tlTick
	Events        int
	From, To      time.Time
	Window        time.Duration
}

type lane struct {
	Name      string
	Y, LabelY int
	Segs      []seg
	Ops       []opMark
}

type seg struct {
	X, W  int
	Class string
	Title string
}

type opMark struct {
	X     int
	D     string // the marker's path
	Title string
}

type tlTick struct {
	X     int
	Label string
}

const (
	tlLabel = 130 // width of the host names
	tlPlot  = 900 // width of the hour
	tlLane  = 26
	tlTop   = 10
)

// timelinePage: GET /ui/timeline.
func (u *UI) timelinePage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	window := TimelineWindow
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < TimelineMinWindow || d > TimelineMaxWindow {
			u.fail(w, r, http.StatusBadRequest, fmt.Errorf("window %q: must be a duration from %v to %v (10m, 1h)", v, TimelineMinWindow, TimelineMaxWindow))
			return
		}
		window = d
	}
	var evs []event.Event
	var note string
	if u.o.Events != nil {
		var err error
		evs, err = u.listAll(r.Context(), event.Filter{Types: []string{event.TypeHostBreaker, event.TypeOperatorAction},
			Since: now.Add(-window)}, 20)
		if err != nil {
			note = "Reading the event log failed: " + err.Error()
		}
	} else {
		note = "The event stream is not enabled on this server."
	}
	p := u.newPage(w, r, "Timeline", "timeline")
	tl := u.buildTimeline(evs, now, window)
	p.Body = struct {
		T    timeline
		Note string
	}{tl, note}
	u.render(w, "timeline.html", p)
}

func (u *UI) buildTimeline(evs []event.Event, now time.Time, window time.Duration) timeline {
	from := now.Add(-window)
	x := func(t time.Time) int {
		if t.Before(from) {
			t = from
		}
		return tlLabel + int(float64(tlPlot)*float64(t.Sub(from))/float64(window))
	}
	tl := timeline{From: from, To: now, Events: len(evs), Window: window}
	byHost := map[string][]event.Event{}
	for _, ev := range evs {
		byHost[ev.Host] = append(byHost[ev.Host], ev)
	}
	for i, h := range u.hosts() {
		y := tlTop + i*tlLane
		ln := lane{Name: h.Name, Y: y, LabelY: y + tlLane/2 + 4}
		state, at := h.Breaker.State.String(), from
		// The state at the start of the hour is where its first
		// transition in the hour came from.
		for _, ev := range byHost[h.Name] {
			if ev.Type == event.TypeHostBreaker {
				var b event.Breaker
				if decode(ev, &b) == nil {
					state = b.From
				}
				break
			}
		}
		for _, ev := range byHost[h.Name] {
			switch ev.Type {
			case event.TypeHostBreaker:
				var b event.Breaker
				if decode(ev, &b) != nil {
					continue
				}
				ln.Segs = append(ln.Segs, mkSeg(x(at), x(ev.At), state, at, ev.At))
				state, at = b.To, ev.At
			case event.TypeOperatorAction:
				var op struct{ Action, By, Reason string }
				_ = decode(ev, &op)
				mx := x(ev.At)
				title := fmt.Sprintf("%s %s by %s", ev.At.Format("15:04:05"), op.Action, op.By)
				if op.Reason != "" {
					title += ": " + op.Reason
				}
				ln.Ops = append(ln.Ops, opMark{X: mx, Title: title,
					D: fmt.Sprintf("M%d %d l-5 -8 h10 z", mx, y+tlLane-4)})
			}
		}
		ln.Segs = append(ln.Segs, mkSeg(x(at), x(now), state, at, now))
		tl.Lanes = append(tl.Lanes, ln)
	}
	tl.Height = tlTop + len(tl.Lanes)*tlLane + 24
	tl.Width = tlLabel + tlPlot + 70
	layout := "15:04"
	if window < 10*time.Minute {
		layout = "15:04:05"
	}
	for i := 0; i <= 6; i++ {
		t := from.Add(window * time.Duration(i) / 6)
		tl.Ticks = append(tl.Ticks, tlTick{X: x(t), Label: t.Format(layout)})
	}
	return tl
}

func mkSeg(x1, x2 int, state string, from, to time.Time) seg {
	class := "seg-other"
	switch state {
	case "closed", "open", "half-open", "forced-open":
		class = "seg-" + state
	}
	return seg{X: x1, W: max(1, x2-x1), Class: class,
		Title: fmt.Sprintf("%s from %s to %s", state, from.Format("15:04:05"), to.Format("15:04:05"))}
}
