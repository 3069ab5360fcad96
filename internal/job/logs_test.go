package job_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"fusebox/internal/job"
)

func TestLogsRender(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	l := job.Logs{
		Stdout: []byte("one\ntwo\nthree\nfour"),
		// "one" and "two" share a mark (written in one millisecond).
		StdoutMarks: []job.LogMark{{Off: 0, At: t0}, {Off: 8, At: t0.Add(time.Second)}, {Off: 14, At: t0.Add(2 * time.Second)}},
		Stderr:      []byte("oops\n"),
		StderrMarks: []job.LogMark{{Off: 0, At: t0.Add(1500 * time.Millisecond)}},
	}
	for _, tc := range []struct {
		name       string
		since      time.Time
		timestamps bool
		out, errb  string
	}{
		{"as is", time.Time{}, false, "one\ntwo\nthree\nfour", "oops\n"},
		{"timestamps", time.Time{}, true,
			"2026-12-01T15:00:00.000000000Z one\n2026-12-01T15:00:00.000000000Z two\n2026-12-01T15:00:01.000000000Z three\n2026-12-01T15:00:02.000000000Z four",
			"2026-12-01T15:00:01.500000000Z oops\n"},
		{"since", t0.Add(time.Second), false, "three\nfour", "oops\n"},
		{"since, a line's own time", t0.Add(1500 * time.Millisecond), false, "four", "oops\n"},
		{"since after all", t0.Add(time.Hour), false, "", ""},
		{"since and timestamps", t0.Add(2 * time.Second), true, "2026-12-01T15:00:02.000000000Z four", ""},
	} {
		out, errb, err := l.Render(tc.since, tc.timestamps)
		if err != nil || string(out) != tc.out || string(errb) != tc.errb {
			t.Errorf("%s: %q %q %v; want %q %q", tc.name, out, errb, err, tc.out, tc.errb)
		}
	}
	old := job.Logs{Stdout: []byte("kept without times\n")}
	if _, _, err := old.Render(time.Time{}, true); !errors.Is(err, job.ErrNoLogTimes) {
		t.Errorf("output without marks: %v, want ErrNoLogTimes", err)
	}
	if out, _, err := old.Render(time.Time{}, false); err != nil || string(out) != "kept without times\n" {
		t.Errorf("output without marks, as is: %q %v", out, err)
	}
	if out, errb, err := (job.Logs{}).Render(t0, true); err != nil || out != nil || errb != nil {
		t.Errorf("no output: %q %q %v", out, errb, err)
	}
}

func TestLogMarksEncoding(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 123456789, time.UTC)
	marks := []job.LogMark{{0, t0}, {5, t0.Add(time.Millisecond)}, {70000, t0.Add(time.Hour)}, {70001, t0.Add(time.Hour)}}
	got, err := job.DecodeMarks(job.EncodeMarks(marks))
	if err != nil || !reflect.DeepEqual(got, marks) {
		t.Fatalf("round trip: %v %v, want %v", got, err, marks)
	}
	if job.EncodeMarks(nil) != nil {
		t.Error("no marks encode to nil")
	}
	if got, err := job.DecodeMarks(nil); err != nil || got != nil {
		t.Errorf("nil: %v %v", got, err)
	}
	enc := job.EncodeMarks(marks)
	for _, bad := range [][]byte{{0xff}, enc[:len(enc)-1], append(append([]byte{}, enc...), 0)} {
		if _, err := job.DecodeMarks(bad); err == nil {
			t.Errorf("DecodeMarks(%x): no error", bad)
		}
	}
}

func FuzzDecodeMarks(f *testing.F) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f.Add(job.EncodeMarks([]job.LogMark{{0, t0}, {10, t0.Add(time.Second)}}))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		marks, err := job.DecodeMarks(b)
		if err != nil {
			return
		}
		for i := 1; i < len(marks); i++ {
			if marks[i].Off < marks[i-1].Off {
				t.Fatalf("offsets go back: %v", marks)
			}
		}
		again, err := job.DecodeMarks(job.EncodeMarks(marks))
		if err != nil || len(again) != len(marks) {
			t.Fatalf("re-encoding: %v %v", again, err)
		}
	})
}
