package dashboard

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// chartDays is how many days the fleet page's chart shows.
const chartDays = 30

// palette colours the releases of the chart, the newest first.
var palette = []string{"#2456a6", "#1f7a3a", "#9a6700", "#7b3fa0", "#b3261e", "#5b6675"}

// chart is the fleet page's chart of nodes by release, day by day, as SVG geometry
// (drawn by the template, no script).
type chart struct {
	Width, Height int
	Bars          []bar
	Legend        []legendEntry
	Max           int
	From, To      string
}

type bar struct {
	X, W     int
	Segments []segment
}

type segment struct {
	Y, H  int
	Fill  string
	Title string
}

type legendEntry struct {
	Fill, Label string
}

// releaseChart reads the last chartDays days of the release history and lays them out:
// one bar a day, stacked by release, the newest release on top. Nil if there is no
// history yet.
func (d *Dashboard) releaseChart(ctx context.Context) (*chart, error) {
	now := d.cfg.Now().UTC()
	since := now.AddDate(0, 0, -(chartDays - 1))
	history, err := d.cfg.Fleet.ReleaseHistory(ctx, since)
	if err != nil || len(history) == 0 {
		return nil, err
	}
	byDay := map[string]map[uint64]int{}
	var releases []uint64
	for _, c := range history {
		key := c.Day.Format(time.DateOnly)
		if byDay[key] == nil {
			byDay[key] = map[uint64]int{}
		}
		byDay[key][c.Release] += c.Nodes
		if !slices.Contains(releases, c.Release) {
			releases = append(releases, c.Release)
		}
	}
	slices.Sort(releases)
	slices.Reverse(releases) // the newest first: on top, and first in the legend
	fill := func(rel uint64) string {
		i := slices.Index(releases, rel)
		return palette[min(i, len(palette)-1)]
	}
	ch := &chart{Width: 720, Height: 140, From: since.Format(time.DateOnly), To: now.Format(time.DateOnly)}
	for _, counts := range byDay {
		total := 0
		for _, n := range counts {
			total += n
		}
		ch.Max = max(ch.Max, total)
	}
	barW := ch.Width / chartDays
	for i := range chartDays {
		day := since.AddDate(0, 0, i).Format(time.DateOnly)
		b := bar{X: i * barW, W: barW - 2}
		y := ch.Height
		for _, rel := range slices.Backward(releases) { // the oldest at the bottom
			n := byDay[day][rel]
			if n == 0 || ch.Max == 0 {
				continue
			}
			h := max(1, n*ch.Height/ch.Max)
			y -= h
			b.Segments = append(b.Segments, segment{Y: y, H: h, Fill: fill(rel), Title: fmt.Sprintf("%s: %s on release %d", day, plural(n, "node"), rel)})
		}
		ch.Bars = append(ch.Bars, b)
	}
	for _, rel := range releases {
		label := fmt.Sprintf("release %d", rel)
		if rel == releases[len(releases)-1] && len(releases) > len(palette) {
			label = "older"
		}
		ch.Legend = append(ch.Legend, legendEntry{Fill: fill(rel), Label: label})
		if len(ch.Legend) == len(palette) {
			break
		}
	}
	return ch, nil
}
