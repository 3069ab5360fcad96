package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

// A job's output keeps the time each line was logged: logs with
// timestamps prefix each line with it, as docker logs -t does, and since
// keeps only the later lines; both while following the running job and
// from the output stored once it has ended.
func TestLogsSinceAndTimestamps(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	img := enginetest.TestImage(t)
	c := apiclient.New(startInProcess(t, engines, nil), "")
	ctx := context.Background()
	j, _, err := c.Submit(ctx, job.Spec{Image: img.Ref, Command: []string{"/usr/local/bin/fusebox-testjob",
		"print", "first", "stderr", "oops", "sleep", "1500ms", "print", "second"}})
	if err != nil {
		t.Fatal(err)
	}
	// Followed while it runs, with timestamps: the engine stamps the lines.
	var live, liveErr bytes.Buffer
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.FollowLogsWith(fctx, j.ID, apiclient.LogOptions{Timestamps: true}, &live, &liveErr); err != nil {
		t.Fatal(err)
	}
	stamps := func(what, out string, want ...string) []time.Time {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if out == "" {
			lines = nil
		}
		if len(lines) != len(want) {
			t.Fatalf("%s: %q, want lines %q with times", what, out, want)
		}
		var ts []time.Time
		for i, l := range lines {
			stamp, text, ok := strings.Cut(l, " ")
			at, err := time.Parse(job.TimestampFormat, stamp)
			if !ok || err != nil || text != want[i] || len(stamp) != len("2026-12-01T15:04:05.000000000Z") {
				t.Fatalf("%s: line %q, want %q after a time like 2026-12-01T15:04:05.000000000Z (%v)", what, l, want[i], err)
			}
			ts = append(ts, at)
		}
		return ts
	}
	lt := stamps("followed stdout", live.String(), "first", "second")
	stamps("followed stderr", liveErr.String(), "oops")
	if gap := lt[1].Sub(lt[0]); gap < 1400*time.Millisecond {
		t.Errorf("followed: %v between the lines, want the job's 1.5 s", gap)
	}

	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if end, err := c.Wait(wctx, j.ID); err != nil || end.State != job.StateSucceeded {
		t.Fatalf("job: %v %v", end, err)
	}
	// Stored: the same times, to the millisecond the collector keeps.
	l, err := c.LogsWith(ctx, j.ID, apiclient.LogOptions{Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	st := stamps("stored stdout", string(l.Stdout), "first", "second")
	stamps("stored stderr", string(l.Stderr), "oops")
	for i := range st {
		if d := st[i].Sub(lt[i]).Abs(); d > time.Millisecond {
			t.Errorf("line %d: stored time %v, followed %v", i, st[i], lt[i])
		}
	}
	// Since the second line: only it; stderr's earlier line is gone too.
	l, err = c.LogsWith(ctx, j.ID, apiclient.LogOptions{Since: st[1]})
	if err != nil || string(l.Stdout) != "second\n" || len(l.Stderr) != 0 {
		t.Errorf("since the second line: %q %q %v", l.Stdout, l.Stderr, err)
	}
	// Followed after the end, since and timestamps apply to the stored output.
	live.Reset()
	liveErr.Reset()
	if err := c.FollowLogsWith(ctx, j.ID, apiclient.LogOptions{Since: st[1], Timestamps: true}, &live, &liveErr); err != nil {
		t.Fatal(err)
	}
	stamps("followed after the end, since the second line", live.String(), "second")
	if liveErr.Len() != 0 {
		t.Errorf("stderr since the second line: %q", liveErr.String())
	}
	// Without options, the output as it was written.
	if l, err = c.Logs(ctx, j.ID); err != nil || string(l.Stdout) != "first\nsecond\n" || string(l.Stderr) != "oops\n" {
		t.Errorf("plain: %q %q %v", l.Stdout, l.Stderr, err)
	}
}
