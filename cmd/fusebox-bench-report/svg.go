package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// scalePoint is one host count of the simulated scale benchmark.
type scalePoint struct {
	hosts   float64
	metrics map[string]float64
}

// scalePlots are the panels of the scale plot: how each cost grows with
// the hosts.
var scalePlots = []struct{ unit, title string }{
	{"place-ns/job", "placement, ns per job"},
	{"heap-MB", "process heap, MB"},
	{"health-checks/s", "health checks per second"},
	{"goodput-jobs/s", "goodput, jobs/s (steady)"},
	{"goodput-after-fail-jobs/s", "goodput, jobs/s (10% of hosts killed)"},
	{"goroutines", "goroutines"},
}

// scaleSeries picks the simulated scale results (family ScaleSimulated,
// cases "hosts=N/..."), by host count.
func scaleSeries(rep *Report) []scalePoint {
	var pts []scalePoint
	for _, r := range rep.Results {
		if r.Family != "ScaleSimulated" {
			continue
		}
		first, _, _ := strings.Cut(r.Case, "/")
		n, ok := strings.CutPrefix(first, "hosts=")
		if !ok {
			continue
		}
		h, err := strconv.ParseFloat(n, 64)
		if err != nil || h <= 0 {
			continue
		}
		pts = append(pts, scalePoint{hosts: h, metrics: r.Metrics})
	}
	slices.SortFunc(pts, func(a, b scalePoint) int { return int(a.hosts - b.hosts) })
	return pts
}

// writeSVG draws one log-log panel per metric of scalePlots: the metric
// against the number of simulated hosts. It writes nothing (and returns
// false) without scale results.
func writeSVG(w io.Writer, pts []scalePoint) bool {
	if len(pts) < 2 {
		return false
	}
	const (
		pw, ph     = 300, 200 // panel
		ml, mr     = 60, 15   // margins inside a panel
		mt, mb     = 28, 36
		cols, gapX = 3, 10
	)
	rows := (len(scalePlots) + cols - 1) / cols
	W, H := cols*(pw+gapX)+gapX, rows*ph+40
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(w, `<text x="%d" y="20" font-size="14" font-weight="bold">fusebox at scale, by simulation (internal/sim): each cost against the number of simulated hosts (log-log)</text>`+"\n", gapX)
	xmin, xmax := math.Log10(pts[0].hosts), math.Log10(pts[len(pts)-1].hosts)
	for i, p := range scalePlots {
		ox, oy := gapX+(i%cols)*(pw+gapX), 30+(i/cols)*ph
		var xs, ys []float64
		for _, pt := range pts {
			if v, ok := pt.metrics[p.unit]; ok && v > 0 {
				xs, ys = append(xs, math.Log10(pt.hosts)), append(ys, math.Log10(v))
			}
		}
		fmt.Fprintf(w, `<g transform="translate(%d,%d)">`+"\n", ox, oy)
		fmt.Fprintf(w, `<rect x="0" y="0" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", pw, ph-6)
		fmt.Fprintf(w, `<text x="%d" y="16" font-weight="bold">%s</text>`+"\n", ml, esc(p.title))
		x0, x1, y0, y1 := float64(ml), float64(pw-mr), float64(ph-mb), float64(mt)
		fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/><line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", x0, y0, x1, y0, x0, y0, x0, y1)
		if len(ys) == 0 {
			fmt.Fprintf(w, `<text x="%g" y="%g">not measured</text></g>`+"\n", x0+10, (y0+y1)/2)
			continue
		}
		ymin, ymax := math.Floor(slices.Min(ys)), math.Ceil(slices.Max(ys))
		if ymax-ymin < 1 {
			ymax = ymin + 1
		}
		px := func(x float64) float64 { return x0 + (x-xmin)/(xmax-xmin)*(x1-x0) }
		py := func(y float64) float64 { return y0 - (y-ymin)/(ymax-ymin)*(y0-y1) }
		for d := math.Ceil(xmin); d <= xmax; d++ {
			fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", px(d), y0+14, esc(tick(d)))
		}
		for d := ymin; d <= ymax; d++ {
			fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/><text x="%g" y="%g" text-anchor="end">%s</text>`+"\n", x0, py(d), x1, py(d), x0-4, py(d)+4, esc(tick(d)))
		}
		fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="middle">hosts</text>`+"\n", (x0+x1)/2, y0+28)
		var path []string
		for j := range xs {
			path = append(path, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(ys[j])))
		}
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="#1f6feb" stroke-width="2"/>`+"\n", strings.Join(path, " "))
		for j := range xs {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1f6feb"><title>%s hosts: %s</title></circle>`+"\n", px(xs[j]), py(ys[j]), num(math.Pow(10, xs[j])), num(math.Pow(10, ys[j])))
		}
		fmt.Fprint(w, "</g>\n")
	}
	fmt.Fprint(w, "</svg>\n")
	return true
}

// tick labels a power of ten.
func tick(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
