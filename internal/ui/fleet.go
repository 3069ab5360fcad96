package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

var errCSRF = errors.New("the form's CSRF token is missing or does not match this browser's session (it may be from before a restart): reload the page and try again")

// card is one host card.
type card struct {
	H     fleet.HostStatus
	Admin bool
	CSRF  string
}

// breakerRow is one named breaker of the breakers table.
type breakerRow struct {
	Name, Kind, State, Detail string
	NextProbeAt               time.Time
	Since                     time.Time
}

// queueView is the queue panel.
type queueView struct {
	Stats   api.QueueStats
	Percent int
	Reasons []reasonCount
	Oldest  time.Time
	Err     string
}

type reasonCount struct {
	Reason string
	N      int
}

// fleetView is the body of the fleet page.
type fleetView struct {
	Cards    []card
	Breakers []breakerRow
	Queue    queueView
}

// fleetPage: GET /ui.
func (u *UI) fleetPage(w http.ResponseWriter, r *http.Request) {
	p := u.newPage(w, r, "Fleet", "fleet")
	p.Live = true
	v := fleetView{Breakers: u.breakers(r.Context()), Queue: u.queue(r.Context())}
	for _, h := range u.hosts() {
		v.Cards = append(v.Cards, card{H: h, Admin: p.Admin, CSRF: p.CSRF})
	}
	p.Body = v
	u.render(w, "fleet.html", p)
}

func (u *UI) hosts() []fleet.HostStatus {
	hs := u.o.Fleet.Hosts()
	slices.SortFunc(hs, func(a, b fleet.HostStatus) int { return strings.Compare(a.Name, b.Name) })
	return hs
}

func (u *UI) host(name string) (fleet.HostStatus, bool) {
	for _, h := range u.o.Fleet.Hosts() {
		if h.Name == name {
			return h, true
		}
	}
	return fleet.HostStatus{}, false
}

// hostCard: GET /ui/hosts/{name}/card, the card's HTML alone (what the
// script swaps in on an event).
func (u *UI) hostCard(w http.ResponseWriter, r *http.Request) {
	h, ok := u.host(r.PathValue("name"))
	if !ok {
		http.Error(w, fmt.Sprintf("no host %q", r.PathValue("name")), http.StatusNotFound)
		return
	}
	role := api.RequestRole(r)
	u.render(w, "card", card{H: h, Admin: role == api.RoleAdmin, CSRF: u.csrfToken(w, r)})
}

// breakersFragment: GET /ui/breakers, the breakers table alone.
func (u *UI) breakersFragment(w http.ResponseWriter, r *http.Request) {
	u.render(w, "breakers", u.breakers(r.Context()))
}

// queueFragment: GET /ui/queue, the queue panel alone (swapped in when
// jobs change state).
func (u *UI) queueFragment(w http.ResponseWriter, r *http.Request) {
	u.render(w, "queue", u.queue(r.Context()))
}

// hostAction: POST /ui/hosts/{name}/action, the operator buttons of a
// card (admin, CSRF-checked), applied and stored by Fleet.HostAction as
// the API's POST /v1/hosts/{name}/<action> does.
func (u *UI) hostAction(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if api.RequestRole(r) != api.RoleAdmin {
		u.fail(w, r, http.StatusForbidden, fmt.Errorf("operator actions need an admin token; this one has role %s", api.RequestRole(r)))
		return
	}
	if !u.checkCSRF(r) {
		u.fail(w, r, http.StatusForbidden, errCSRF)
		return
	}
	name := r.PathValue("name")
	action := r.PostFormValue("action")
	switch action {
	case fleet.ActionIsolate, fleet.ActionDrain, fleet.ActionRelease, fleet.ActionReset:
	default:
		u.fail(w, r, http.StatusBadRequest, fmt.Errorf("action %q: must be isolate, drain, release or reset", action))
		return
	}
	reason, err := checkReason(r.PostFormValue("reason"))
	if err != nil {
		u.fail(w, r, http.StatusBadRequest, err)
		return
	}
	op := fleet.Operator{Action: action, By: api.RequestActor(r), Reason: reason, At: time.Now()}
	if err := u.o.Fleet.HostAction(r.Context(), name, op); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, fleet.ErrHostNotFound) {
			status = http.StatusNotFound
		}
		u.fail(w, r, status, fmt.Errorf("%s %s: %w", action, name, err))
		return
	}
	u.log.Info("ui: host "+action, "host", name, "by", op.By, "reason", op.Reason)
	http.Redirect(w, r, "/ui#host-"+name, http.StatusSeeOther)
}

// checkReason applies the API's bounds on an operator action's reason.
func checkReason(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case len(v) > api.MaxReasonBytes:
		return "", fmt.Errorf("reason: %d bytes: at most %d", len(v), api.MaxReasonBytes)
	case !utf8.ValidString(v):
		return "", errors.New("reason: must be valid UTF-8")
	case strings.ContainsFunc(v, unicode.IsControl):
		return "", errors.New("reason: must be one line of text")
	}
	return v, nil
}

// breakers lists every named breaker: from the registry when there is
// one; else the hosts' from the fleet and the others (workflows') from the
// last "breaker" event of each name.
func (u *UI) breakers(ctx context.Context) []breakerRow {
	var rows []breakerRow
	if u.o.Breakers != nil {
		for _, sn := range u.o.Breakers.Snapshots() {
			kind, _, ok := strings.Cut(sn.Name, "/")
			if !ok {
				kind = "other"
			}
			rows = append(rows, breakerRow{Name: sn.Name, Kind: kind, State: sn.State.String(), NextProbeAt: sn.NextProbeAt, Since: sn.OpenedAt,
				Detail: fmt.Sprintf("%d consecutive failures, %d trips, %d rejected", sn.ConsecutiveFailures, sn.Trips, sn.Totals.Rejected)})
		}
		slices.SortFunc(rows, func(a, b breakerRow) int { return strings.Compare(a.Name, b.Name) })
		return rows
	}
	for _, h := range u.hosts() {
		b := h.Breaker
		rows = append(rows, breakerRow{Name: h.Name, Kind: "host", State: b.State.String(), NextProbeAt: b.NextProbeAt, Since: b.OpenedAt,
			Detail: fmt.Sprintf("%d consecutive failures, %d trips, %d rejected", b.ConsecutiveFailures, b.Trips, b.Rejected)})
	}
	if u.o.Events == nil {
		return rows
	}
	last := map[string]event.Event{}
	evs, _ := u.listAll(ctx, event.Filter{Types: []string{event.TypeBreaker}}, 20)
	for _, ev := range evs {
		var b event.Breaker
		if decode(ev, &b) == nil && b.Name != "" {
			last[b.Name] = ev
		}
	}
	var names []string
	for n := range last {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var b event.Breaker
		_ = decode(last[n], &b)
		kind, _, _ := strings.Cut(n, "/")
		rows = append(rows, breakerRow{Name: n, Kind: kind, State: b.To, Since: last[n].At, Detail: b.Reason})
	}
	return rows
}

// listAll reads the events matching f, at most pages pages of 500.
func (u *UI) listAll(ctx context.Context, f event.Filter, pages int) ([]event.Event, error) {
	var all []event.Event
	var after int64
	for range pages {
		evs, err := u.o.Events.List(ctx, event.ListParams{AfterSeq: after, Filter: f, Limit: 500})
		if err != nil {
			return all, err
		}
		all = append(all, evs...)
		if len(evs) < 500 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	return all, nil
}

// queue is the queue panel: depth against the bound, and why the queued
// jobs wait (grouped by reason).
func (u *UI) queue(ctx context.Context) queueView {
	var v queueView
	qs, err := u.o.Jobs.QueueStats(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	v.Stats = qs
	if qs.MaxQueued > 0 {
		v.Percent = min(100, qs.Queued*100/qs.MaxQueued)
	}
	js, err := u.o.Jobs.List(ctx, store.JobListParams{States: []job.State{job.StateQueued}, Limit: 500})
	if err != nil {
		v.Err = err.Error()
		return v
	}
	counts := map[string]int{}
	for _, j := range js {
		reason := j.Reason
		if reason == "" {
			reason = "waiting to be placed"
		}
		counts[reason]++
		if v.Oldest.IsZero() || j.CreatedAt.Before(v.Oldest) {
			v.Oldest = j.CreatedAt
		}
	}
	for r, n := range counts {
		v.Reasons = append(v.Reasons, reasonCount{r, n})
	}
	slices.SortFunc(v.Reasons, func(a, b reasonCount) int {
		if a.N != b.N {
			return b.N - a.N
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return v
}

// decode reads an event's Data into v.
func decode(ev event.Event, v any) error {
	if len(ev.Data) == 0 {
		return errors.New("no data")
	}
	return json.Unmarshal(ev.Data, v)
}
