package workflow

import (
	"strings"
	"testing"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/workflow/def"
)

// The retry delay is factor × 2^(n-1) seconds, capped, times [0.5, 1.5]
// with jitter.
func TestBackoff(t *testing.T) {
	var rnd float64
	l := &runLoop{r: &Runner{o: Options{Rand: func() float64 { return rnd }}.WithDefaults()}}
	rt := def.Retries{BackoffFactor: 0.5, MaxBackoff: 3 * time.Second}
	for _, c := range []struct {
		n      int
		jitter bool
		rnd    float64
		want   time.Duration
	}{
		{1, false, 0, 500 * time.Millisecond},
		{2, false, 0, time.Second},
		{3, false, 0, 2 * time.Second},
		{4, false, 0, 3 * time.Second}, // capped
		{60, false, 0, 3 * time.Second},
		{1, true, 0, 250 * time.Millisecond},
		{2, true, 0.5, time.Second},
		{3, true, 1, 3 * time.Second}, // 2s × 1.5
	} {
		rnd = c.rnd
		rt.Jitter = c.jitter
		if got := l.backoff(rt, c.n); got != c.want {
			t.Errorf("backoff(try %d, jitter %v, rand %v) = %v, want %v", c.n, c.jitter, c.rnd, got, c.want)
		}
	}
	// No cap in the definition: the runner's.
	if got := l.backoff(def.Retries{BackoffFactor: 1000}, 1); got != MaxRetryBackoffDefault {
		t.Errorf("uncapped backoff = %v, want %v", got, MaxRetryBackoffDefault)
	}
}

// The key does not depend on map order, changes with every part, and a
// miss names the parts that changed.
func TestCacheKeyAndWhyRan(t *testing.T) {
	s := def.Step{ID: "b", Image: "img", Command: []string{"sh", "-c", "x"}, Env: map[string]string{"A": "1", "B": "2"},
		Outputs: []string{"/out"}, Inputs: []def.Input{{From: "a", Path: "/out", At: "/in"}}}
	ins := []job.Input{{Digest: "sha256:aa", Path: "/in"}}
	base := newKeyParts(s, "sha256:img1", ins)
	s2 := s
	s2.Env = map[string]string{"B": "2", "A": "1"}
	if base.Key() != newKeyParts(s2, "sha256:img1", ins).Key() {
		t.Fatal("the key depends on the env's map order")
	}
	if !strings.HasPrefix(base.Key(), "sha256:") || len(base.Key()) != 71 {
		t.Fatalf("key %q", base.Key())
	}
	cmd := s
	cmd.Command = []string{"sh", "-c", "y"}
	env := s
	env.Env = map[string]string{"A": "1", "B": "3", "C": "0"}
	for _, c := range []struct {
		name  string
		parts keyParts
		why   string
	}{
		{"image", newKeyParts(s, "sha256:img2", ins), "image changed"},
		{"command", newKeyParts(cmd, "sha256:img1", ins), "command changed"},
		{"env", newKeyParts(env, "sha256:img1", ins), "env B changed, env C changed"},
		{"input", newKeyParts(s, "sha256:img1", []job.Input{{Digest: "sha256:bb", Path: "/in"}}), "input /in (from a) changed"},
		{"image and command", newKeyParts(cmd, "sha256:img2", ins), "image changed, command changed"},
	} {
		if c.parts.Key() == base.Key() {
			t.Errorf("%s: the key did not change", c.name)
		}
		if got := whyRan(base.Named(), c.parts.Named()); got != c.why {
			t.Errorf("%s: whyRan = %q, want %q", c.name, got, c.why)
		}
	}
	if got := whyRan(base.Named(), base.Named()); got != "" {
		t.Errorf("whyRan of equal parts = %q", got)
	}
	if strings.Contains(strings.Join(values(base.Named()), " "), "x") {
		t.Error("the named parts hold a value as it is")
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// check refuses what cannot run, naming the field.
func TestCheck(t *testing.T) {
	step := func(id string, deps ...string) def.Step { return def.Step{ID: id, Image: "i", DependsOn: deps} }
	w := func(steps ...def.Step) *def.Resolved {
		return &def.Resolved{Workflow: def.Workflow{Name: "w", Steps: steps}}
	}
	for _, c := range []struct {
		w    *def.Resolved
		want string
	}{
		{nil, "definition is required"},
		{&def.Resolved{}, "name is required"},
		{w(), "at least one"},
		{w(step("a"), step("a")), "used twice"},
		{w(step("a", "zz")), "unknown step \"zz\""},
		{w(step("a", "b"), step("b", "c"), step("c", "a")), "cycle"},
		{w(def.Step{ID: "a"}), "image is required"},
	} {
		err := check(c.w)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("check = %v, want %q", err, c.want)
		}
	}
	if err := check(w(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"))); err != nil {
		t.Errorf("check(diamond) = %v", err)
	}
}
