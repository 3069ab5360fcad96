package main

import (
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"42m", now.Add(-42 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"2026-12-01T14:04:05Z", time.Date(2026, 12, 1, 14, 4, 5, 0, time.UTC)},
		{"2026-12-01T14:04:05.5+01:00", time.Date(2026, 12, 1, 13, 4, 5, 5e8, time.UTC)},
		{"2026-12-01T14:04:05", time.Date(2026, 12, 1, 14, 4, 5, 0, time.UTC)},
		{"2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"1764600000", time.Unix(1764600000, 0)},
		{"1764600000.25", time.Unix(1764600000, 25e7)},
	} {
		got, err := parseSince(now, tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "2026-13-01", "-1"} {
		if got, err := parseSince(now, bad); err == nil {
			t.Errorf("parseSince(%q) = %v, want an error", bad, got)
		}
	}
}
