package engine

import (
	"bytes"
	"reflect"
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

func TestTailBufferMarks(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	b := newTailBuffer(10)
	b.WriteAt([]byte("ab\n"), t0)
	b.WriteAt([]byte("cd\n"), t0.Add(500*time.Microsecond)) // same millisecond: shares the mark
	b.WriteAt([]byte("ef\n"), t0.Add(time.Second))
	if got, want := b.Marks(), []LogMark{{0, t0}, {6, t0.Add(time.Second)}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
	// Past max the first bytes go, and so do their marks; the mark of the
	// first kept byte stays, at 0.
	b.WriteAt([]byte("gh\n"), t0.Add(2*time.Second))
	b.WriteAt([]byte("ij\n"), t0.Add(3*time.Second))
	if got := string(b.Bytes()); got != "\nef\ngh\nij\n" {
		t.Fatalf("bytes %q", got)
	}
	want := []LogMark{{0, t0}, {1, t0.Add(time.Second)}, {4, t0.Add(2 * time.Second)}, {7, t0.Add(3 * time.Second)}}
	if got := b.Marks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("marks after dropping %v, want %v", got, want)
	}
	// Many tiny lines keep a bounded number of marks.
	b = newTailBuffer(1 << 10)
	for i := range 100000 {
		b.WriteAt([]byte("x\n"), t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(b.Marks()); n > b.maxMarks() || n < b.maxMarks()/2 {
		t.Fatalf("%d marks kept, want at most %d", n, b.maxMarks())
	}
	m := b.Marks()
	for i := 1; i < len(m); i++ {
		if m[i].Off <= m[i-1].Off || !m[i].At.After(m[i-1].At) {
			t.Fatalf("marks out of order at %d: %v %v", i, m[i-1], m[i])
		}
	}
	if m[0].Off != 0 || m[len(m)-1].At != t0.Add(99999*time.Second) {
		t.Fatalf("first mark %v, last %v", m[0], m[len(m)-1])
	}
}
