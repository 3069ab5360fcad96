package engine

import (
	"bytes"
	"testing"
	"time"
)

func TestTailBufferKeepsTheLastMaxBytesInBoundedMemory(t *testing.T) {
	const max = 100
	tb := newTailBuffer(max)
	var all []byte
	for i := range 1000 {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, i%(3*max))
		tb.Write(p)
		all = append(all, p...)
		want := all[len(all)-min(len(all), max):]
		if !bytes.Equal(tb.Bytes(), want) {
			t.Fatalf("after %d writes: %q, want %q", i+1, tb.Bytes(), want)
		}
		if tb.dropped != (len(all) > max) {
			t.Fatalf("after %d writes (%d bytes): dropped = %v", i+1, len(all), tb.dropped)
		}
		if cap(tb.buf) > 2*max {
			t.Fatalf("after %d writes: capacity %d, want at most %d", i+1, cap(tb.buf), 2*max)
		}
	}
}

func TestResumeSince(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	at := func(d time.Duration) streamPos { return streamPos{ts: t0.Add(d), n: 1} }
	for _, tc := range []struct {
		name     string
		pos      [2]streamPos
		want     time.Time
		resuming bool
	}{
		{"nothing yet", [2]streamPos{}, time.Time{}, false},
		{"only stdout: a window back", [2]streamPos{at(0), {}}, t0.Add(-resumeWindow), true},
		{"both close: the earlier", [2]streamPos{at(0), at(-100 * time.Millisecond)}, t0.Add(-100 * time.Millisecond), true},
		{"stderr long quiet: a window back", [2]streamPos{at(0), at(-time.Hour)}, t0.Add(-resumeWindow), true},
	} {
		got, resuming := resumeSince(tc.pos)
		if !got.Equal(tc.want) || resuming != tc.resuming {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, resuming, tc.want, tc.resuming)
		}
	}
}

func TestCutTimestamp(t *testing.T) {
	for _, in := range []string{"2026-12-01T10:05:04.123456789Z hello\n", "2026-12-01T11:05:04.123456789+01:00 hello\n"} {
		ts, p, err := cutTimestamp([]byte(in))
		if err != nil || string(p) != "hello\n" || !ts.Equal(time.Date(2026, 12, 1, 10, 5, 4, 123456789, time.UTC)) {
			t.Errorf("%q: %v %q %v", in, ts, p, err)
		}
	}
	for _, in := range []string{"hello", "2026-12-01T10:05:04.12345678xZ hello", "not-a-time hello"} {
		if _, _, err := cutTimestamp([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	frame := []byte("2026-12-01T10:05:04.123456789Z x")
	if n := testing.AllocsPerRun(100, func() { cutTimestamp(frame) }); n > 0 {
		t.Errorf("cutTimestamp allocates %v times per frame", n)
	}
}
