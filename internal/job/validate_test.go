package job

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fields returns the field of every *FieldError in err.
func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		var fe *FieldError
		if errors.As(e, &fe) && fe == e {
			out = append(out, fe.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestValidateRules(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		mod   func(*Spec)
		field string // "" = valid
	}{
		{"minimal", func(s *Spec) {}, ""},
		{"image with registry port and digest", func(s *Spec) {
			s.Image = "127.0.0.1:5000/team/app:v1@sha256:" + strings.Repeat("0", 64)
		}, ""},
		{"image id", func(s *Spec) { s.Image = id }, ""},
		{"image id pull never", func(s *Spec) { s.Image = id; s.PullPolicy = PullNever }, ""},
		{"image id pull always", func(s *Spec) { s.Image = id; s.PullPolicy = PullAlways }, "pull_policy"},
		{"image id upper hex", func(s *Spec) { s.Image = strings.ToUpper(id) }, "image"},
		{"image required", func(s *Spec) { s.Image = "" }, "image"},
		{"image upper case", func(s *Spec) { s.Image = "Busybox" }, "image"},
		{"image nul", func(s *Spec) { s.Image = "a\x00" }, "image"},
		{"image long", func(s *Spec) { s.Image = strings.Repeat("a", 513) }, "image"},
		{"command ok", func(s *Spec) { s.Command = []string{"sh", "-c", "echo ''", ""} }, ""},
		{"name ok", func(s *Spec) { s.Name = "build-1.x_y" }, ""},
		{"name leading dash", func(s *Spec) { s.Name = "-x" }, "name"},
		{"name space", func(s *Spec) { s.Name = "a b" }, "name"},
		{"name long", func(s *Spec) { s.Name = strings.Repeat("a", 129) }, "name"},
		{"entrypoint ok", func(s *Spec) { s.Entrypoint = []string{"/bin/sh", "-c"} }, ""},
		{"entrypoint cleared", func(s *Spec) { s.Entrypoint = []string{""} }, ""},
		{"entrypoint empty program", func(s *Spec) { s.Entrypoint = []string{"", "x"} }, "entrypoint[0]"},
		{"entrypoint nul", func(s *Spec) { s.Entrypoint = []string{"sh", "\x00"} }, "entrypoint[1]"},
		{"user ok", func(s *Spec) { s.User = "1000:1000" }, ""},
		{"user name", func(s *Spec) { s.User = "nobody" }, ""},
		{"user space", func(s *Spec) { s.User = "no body" }, "user"},
		{"user empty group", func(s *Spec) { s.User = "1000:" }, "user"},
		{"user empty user", func(s *Spec) { s.User = ":1000" }, "user"},
		{"network none", func(s *Spec) { s.Network = "none" }, ""},
		{"network container", func(s *Spec) { s.Network = "container:abc" }, "network"},
		{"platform ok", func(s *Spec) { s.Platform = "linux/arm64/v8" }, ""},
		{"platform bad", func(s *Spec) { s.Platform = "linux//amd64" }, "platform"},
		{"command nul", func(s *Spec) { s.Command = []string{"sh", "-c", "x", "\x00"} }, "command[3]"},
		{"command empty program", func(s *Spec) { s.Command = []string{""} }, "command[0]"},
		{"command bad utf8", func(s *Spec) { s.Command = []string{"echo", "\xc3"} }, "command[1]"},
		{"env ok", func(s *Spec) { s.Env = map[string]string{"FOO": "", "a.b-c d": "x=y"} }, ""},
		{"env value nul", func(s *Spec) { s.Env = map[string]string{"FOO": "a\x00"} }, "env.FOO"},
		{"env name =", func(s *Spec) { s.Env = map[string]string{"FOO=BAR": "x"} }, "env.FOO=BAR"},
		{"env name empty", func(s *Spec) { s.Env = map[string]string{"": "x"} }, "env"},
		{"env name nul", func(s *Spec) { s.Env = map[string]string{"\x00": "x"} }, `env."\x00"`},
		{"workdir ok", func(s *Spec) { s.Workdir = "/work/dir" }, ""},
		{"workdir root", func(s *Spec) { s.Workdir = "/" }, ""},
		{"workdir relative", func(s *Spec) { s.Workdir = "work" }, "workdir"},
		{"workdir dot", func(s *Spec) { s.Workdir = "/a/./b" }, "workdir"},
		{"workdir double slash", func(s *Spec) { s.Workdir = "//a" }, "workdir"},
		{"workdir nul", func(s *Spec) { s.Workdir = "/a\x00" }, "workdir"},
		{"workdir long", func(s *Spec) { s.Workdir = "/" + strings.Repeat("a", MaxWorkdirLen) }, "workdir"},
		{"label ok", func(s *Spec) { s.Labels = map[string]string{"team": "x", "a.b/c": ""} }, ""},
		{"label reserved", func(s *Spec) { s.Labels = map[string]string{"fusebox.x": "y"} }, "labels.fusebox.x"},
		{"label empty key", func(s *Spec) { s.Labels = map[string]string{"": "y"} }, "labels"},
		{"label nul", func(s *Spec) { s.Labels = map[string]string{"x": "\x00"} }, "labels.x"},
		{"constraint empty key", func(s *Spec) { s.Constraints = map[string]string{"": "y"} }, "constraints"},
		{"constraint nul", func(s *Spec) { s.Constraints = map[string]string{"zone\x00": "a"} }, `constraints."zone\x00"`},
		{"constraint fusebox key allowed", func(s *Spec) { s.Constraints = map[string]string{"fusebox.zone": "a"} }, ""},
		{"cpus ok", func(s *Spec) { s.CPUs = 0.5 }, ""},
		{"cpus max", func(s *Spec) { s.CPUs = MaxCPUs }, ""},
		{"cpus over", func(s *Spec) { s.CPUs = MaxCPUs + 1 }, "cpus"},
		{"cpus tiny", func(s *Spec) { s.CPUs = 0.005 }, "cpus"},
		{"cpus negative", func(s *Spec) { s.CPUs = -1 }, "cpus"},
		{"memory ok", func(s *Spec) { s.MemoryBytes = 6 << 20 }, ""},
		{"memory max", func(s *Spec) { s.MemoryBytes = MaxMemoryBytes }, ""},
		{"memory over", func(s *Spec) { s.MemoryBytes = MaxMemoryBytes + 1 }, "memory_bytes"},
		{"memory under", func(s *Spec) { s.MemoryBytes = 6<<20 - 1 }, "memory_bytes"},
		{"timeout max", func(s *Spec) { s.Timeout = Duration(MaxTimeout) }, ""},
		{"timeout over", func(s *Spec) { s.Timeout = Duration(MaxTimeout + time.Second) }, "timeout"},
		{"backoff over", func(s *Spec) { s.RetryBackoff = Duration(MaxRetryBackoff + 1) }, "retry_backoff"},
		{"attempts max", func(s *Spec) { s.MaxAttempts = 100 }, ""},
		{"attempts over", func(s *Spec) { s.MaxAttempts = 101 }, "max_attempts"},
		{"idempotency key nul", func(s *Spec) { s.IdempotencyKey = "k\x00" }, "idempotency_key"},
		{"idempotency key long", func(s *Spec) { s.IdempotencyKey = strings.Repeat("k", 257) }, "idempotency_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Spec{Image: "busybox"}
			c.mod(&s)
			err := s.Validate()
			got := fields(err)
			if c.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if len(got) != 1 || got[0] != c.field {
				t.Fatalf("want one problem in %q, got %q: %v", c.field, got, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestValidateLimits(t *testing.T) {
	l := Limits{MaxSpecBytes: 1000, MaxCommandArgs: 3, MaxEnv: 2, MaxLabels: 1, MaxArgBytes: 10}
	ok := Spec{Image: "busybox", Command: []string{"a", "b", "0123456789"},
		Env: map[string]string{"A": "12345678", "B": ""}, Labels: map[string]string{"k": "v"}, Constraints: map[string]string{"z": "a"}}
	if err := ok.ValidateWith(l); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	cases := []struct {
		name  string
		mod   func(*Spec)
		field string
	}{
		{"args", func(s *Spec) { s.Command = append(s.Command, "d") }, "command"},
		{"arg bytes", func(s *Spec) { s.Command[1] = "01234567890" }, "command[1]"},
		{"env count", func(s *Spec) { s.Env["C"] = "" }, "env"},
		{"env bytes", func(s *Spec) { s.Env["A"] = "123456789" }, "env.A"},
		{"labels count", func(s *Spec) { s.Labels["j"] = "" }, "labels"},
		{"label bytes", func(s *Spec) { s.Labels["k"] = "123456789" }, "labels.k"},
		{"constraints count", func(s *Spec) { s.Constraints["y"] = "" }, "constraints"},
		{"spec bytes", func(s *Spec) { s.IdempotencyKey = strings.Repeat("k", 200); s.Workdir = "/" + strings.Repeat("w", 800) }, "spec"},
		// The JSON encoding counts, not only the strings: 100 quotes and
		// escapes of short strings.
		{"spec bytes as json", func(s *Spec) { s.IdempotencyKey = strings.Repeat("\x01", 200) }, "spec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			s.Command = append([]string(nil), ok.Command...)
			s.Env = map[string]string{"A": "12345678", "B": ""}
			s.Labels = map[string]string{"k": "v"}
			s.Constraints = map[string]string{"z": "a"}
			c.mod(&s)
			err := s.ValidateWith(l)
			if got := fields(err); len(got) != 1 || got[0] != c.field {
				t.Fatalf("want one problem in %q, got %q: %v", c.field, got, err)
			}
		})
	}
	// Zero limits are the defaults.
	if DefaultLimits() != (Limits{MaxSpecBytesDefault, MaxCommandArgsDefault, MaxEnvDefault, MaxLabelsDefault, MaxArgBytesDefault}) {
		t.Fatalf("defaults: %+v", DefaultLimits())
	}
}

func TestValidateReportsEverythingBounded(t *testing.T) {
	s := Spec{Image: "Bad Image", Workdir: "rel", CPUs: -1, Env: map[string]string{}}
	for i := range 200 {
		s.Env[strings.Repeat("=", i+1)] = "v"
	}
	err := s.Validate()
	got := fields(err)
	if len(got) != 3+maxPerField {
		t.Fatalf("%d problems listed, want %d: %q", len(got), 3+maxPerField, got)
	}
	for _, f := range []string{"image", "workdir", "cpus", "env.="} {
		found := false
		for _, g := range got {
			found = found || g == f
		}
		if !found {
			t.Errorf("no problem in %s: %q", f, got)
		}
	}
	if !strings.Contains(err.Error(), "env: and 190 more problems") {
		t.Fatalf("the rest is not counted: ...%s", err.Error()[len(err.Error())-80:])
	}
	// Values are never echoed in full.
	if len(err.Error()) > 20000 {
		t.Fatalf("error is %d bytes", len(err.Error()))
	}
}
