package ui

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"fusebox/internal/fleet"
)

var funcs = template.FuncMap{
	"rfc":      rfc,
	"contains": strings.Contains,
	"ago":      ago,
	"until":    until,
	"dur":      dur,
	"latency":  latency,
	"stateTip": stateTip,
	"modeText": modeText,
	"pct":      pct,
	"sortedLabels": func(m map[string]string) []string {
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		slices.Sort(out)
		return out
	},
	"joinLines": func(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") },
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ago is how long ago t was, for people.
func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return dur(time.Since(t)) + " ago"
}

// until is how long until t, for people; "now" once it has passed.
func until(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Until(t)
	if d <= 0 {
		return "now"
	}
	return "in " + dur(d)
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// latency shows a call's duration to two or three significant figures:
// 420µs, 3.1ms, 1.52s.
func latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// stateTip says what a host state means.
func stateTip(s fleet.HostState) string {
	switch s {
	case fleet.HostHealthy:
		return "breaker closed, checks pass"
	case fleet.HostDegraded:
		return "breaker closed, but slow or failing some checks"
	case fleet.HostUnavailable:
		return "breaker open: no jobs placed until the next probe"
	case fleet.HostProbing:
		return "breaker half-open: a probe is let through"
	case fleet.HostIsolated:
		return "isolated by an operator: no new jobs"
	case fleet.HostDraining:
		return "draining: running jobs finish, no new ones"
	}
	return string(s)
}

// pct is n of max as a whole percentage, capped at 100 (0 when max is 0).
func pct(n, max int) int {
	if max <= 0 {
		return 0
	}
	return min(100, n*100/max)
}

// modeText says what a mode of graceful degradation does, for people.
func modeText(m fleet.DegradationMode) string {
	switch m {
	case fleet.ModeLogsDeferred:
		return "logs collected when it is back"
	case fleet.ModePollsStretched:
		return "status polls spaced out"
	case fleet.ModeMonitoringShed:
		return "launches first, monitoring waits"
	}
	return string(m)
}
