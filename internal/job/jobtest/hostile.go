// Package jobtest holds test data about job specs that several packages'
// tests share: the corpus of hostile specs. Product code must not import it.
package jobtest

import (
	"strconv"
	"strings"
	"time"

	"fusebox/internal/job"
)

// Hostile is one spec a hostile or careless user might submit.
type Hostile struct {
	Name string
	Spec job.Spec
	// Refused: submit must refuse it with a *job.FieldError for Field.
	Refused bool
	Field   string
	// Otherwise the spec is accepted at submit (it is valid as far as can
	// be told without a host), and must then end in WantState on its
	// first attempt, as the job's own doing, with every breaker still
	// closed. Why says what the engine does with it.
	WantState job.State
	Why       string
}

// HostileSpecs returns the corpus, every spec built on image (a valid
// reference of an image the test hosts have, such as enginetest's test
// image, which must have /bin/sh and no /nonexistent). Accepted specs use
// pull_policy "never" unless the pull is the point, so that they never
// reach a registry.
func HostileSpecs(image string) []Hostile {
	base := func(mod func(*job.Spec)) job.Spec {
		s := job.Spec{Image: image, Command: []string{"true"}, PullPolicy: job.PullNever, MaxAttempts: 1}
		mod(&s)
		return s
	}
	refused := func(name, field string, mod func(*job.Spec)) Hostile {
		return Hostile{Name: name, Spec: base(mod), Refused: true, Field: field}
	}
	accepted := func(name string, want job.State, why string, mod func(*job.Spec)) Hostile {
		return Hostile{Name: name, Spec: base(mod), WantState: want, Why: why}
	}
	big := strings.Repeat("x", job.MaxArgBytesDefault+1)
	return []Hostile{
		// NUL bytes: the engine's API refuses them (or the kernel does, at
		// exec), often as a 500.
		refused("nul in env value", "env.A", func(s *job.Spec) { s.Env = map[string]string{"A": "x\x00y"} }),
		refused("nul in env name", `env."A\x00B"`, func(s *job.Spec) { s.Env = map[string]string{"A\x00B": "x"} }),
		refused("nul in command", "command[1]", func(s *job.Spec) { s.Command = []string{"echo", "a\x00b"} }),
		refused("nul in workdir", "workdir", func(s *job.Spec) { s.Workdir = "/tmp\x00/x" }),
		refused("nul in image", "image", func(s *job.Spec) { s.Image = image + "\x00" }),
		refused("nul in label value", "labels.a", func(s *job.Spec) { s.Labels = map[string]string{"a": "\x00"} }),
		refused("nul in constraint", "constraints.zone", func(s *job.Spec) { s.Constraints = map[string]string{"zone": "a\x00"} }),
		refused("invalid utf-8 in env", "env.A", func(s *job.Spec) { s.Env = map[string]string{"A": "\xff\xfe"} }),
		// Env names.
		refused("env name with =", "env.A=B", func(s *job.Spec) { s.Env = map[string]string{"A=B": "c"} }),
		refused("empty env name", "env", func(s *job.Spec) { s.Env = map[string]string{"": "c"} }),
		// Image references the engine cannot parse.
		refused("upper-case image", "image", func(s *job.Spec) { s.Image = "Alpine:latest" }),
		refused("image with space", "image", func(s *job.Spec) { s.Image = "alpine latest" }),
		refused("image with bad tag", "image", func(s *job.Spec) { s.Image = "alpine:-x" }),
		refused("image with bad digest", "image", func(s *job.Spec) { s.Image = "alpine@sha256:abc" }),
		refused("bare hex image", "image", func(s *job.Spec) { s.Image = strings.Repeat("a", 64) }),
		refused("image only colons", "image", func(s *job.Spec) { s.Image = "::" }),
		refused("invalid image, pull always", "image", func(s *job.Spec) { s.Image = "team/UPPER"; s.PullPolicy = job.PullAlways }),
		refused("image id, pull always", "pull_policy", func(s *job.Spec) {
			s.Image = "sha256:" + strings.Repeat("0", 64)
			s.PullPolicy = job.PullAlways
		}),
		refused("image too long", "image", func(s *job.Spec) { s.Image = strings.Repeat("a", job.MaxImageLen+1) }),
		// Workdir.
		refused("relative workdir", "workdir", func(s *job.Spec) { s.Workdir = "tmp" }),
		refused("unclean workdir", "workdir", func(s *job.Spec) { s.Workdir = "/tmp/../etc" }),
		refused("workdir trailing slash", "workdir", func(s *job.Spec) { s.Workdir = "/tmp/" }),
		// Command.
		refused("empty program", "command[0]", func(s *job.Spec) { s.Command = []string{"", "x"} }),
		refused("too many args", "command", func(s *job.Spec) { s.Command = make([]string, job.MaxCommandArgsDefault+1); s.Command[0] = "true" }),
		refused("arg too long", "command[1]", func(s *job.Spec) { s.Command = []string{"echo", big} }),
		// Counts and sizes.
		refused("too many env", "env", func(s *job.Spec) { s.Env = manyKeys(job.MaxEnvDefault + 1) }),
		refused("too many labels", "labels", func(s *job.Spec) { s.Labels = manyKeys(job.MaxLabelsDefault + 1) }),
		refused("too many constraints", "constraints", func(s *job.Spec) { s.Constraints = manyKeys(job.MaxLabelsDefault + 1) }),
		refused("env entry too long", "env.BIG", func(s *job.Spec) { s.Env = map[string]string{"BIG": big} }),
		refused("spec too large", "spec", func(s *job.Spec) {
			half := strings.Repeat("y", job.MaxArgBytesDefault-16)
			s.Command = []string{"echo", half, half, half}
		}),
		refused("empty label key", "labels", func(s *job.Spec) { s.Labels = map[string]string{"": "x"} }),
		refused("reserved label", "labels.fusebox.job_id", func(s *job.Spec) { s.Labels = map[string]string{"fusebox.job_id": "other"} }),
		// Resources and times.
		refused("cpus huge", "cpus", func(s *job.Spec) { s.CPUs = 1e9 }),
		refused("cpus tiny", "cpus", func(s *job.Spec) { s.CPUs = 0.001 }),
		refused("memory tiny", "memory_bytes", func(s *job.Spec) { s.MemoryBytes = 1 }),
		refused("memory huge", "memory_bytes", func(s *job.Spec) { s.MemoryBytes = 1 << 50 }),
		refused("timeout negative", "timeout", func(s *job.Spec) { s.Timeout = -1 }),
		refused("timeout huge", "timeout", func(s *job.Spec) { s.Timeout = job.Duration(1 << 62) }),
		refused("backoff huge", "retry_backoff", func(s *job.Spec) { s.RetryBackoff = job.Duration(1 << 62) }),
		refused("attempts huge", "max_attempts", func(s *job.Spec) { s.MaxAttempts = 1 << 30 }),
		refused("unknown pull policy", "pull_policy", func(s *job.Spec) { s.PullPolicy = "sometimes" }),

		// Valid specs the engine still refuses or that cannot run.
		accepted("workdir below a file", job.StateFailed, "the runtime cannot make the working directory (ENOTDIR) at start",
			func(s *job.Spec) { s.Workdir = "/bin/sh/x" }),
		accepted("command not found", job.StateFailed, "exec fails at start: no such file",
			func(s *job.Spec) { s.Command = []string{"/nonexistent"} }),
		accepted("command not executable", job.StateFailed, "exec fails at start: permission denied",
			func(s *job.Spec) { s.Command = []string{"/tmp"} }),
		accepted("more cpus than the host has", job.StateFailed, "the engine refuses a CPU limit above the host's CPUs at create",
			func(s *job.Spec) { s.CPUs = job.MaxCPUs }),
		accepted("image not on the host, pull never", job.StateFailed, "the image is missing and may not be pulled",
			func(s *job.Spec) { s.Image = "fusebox/absent:1" }),
		accepted("image id not on the host", job.StateFailed, "an ID names no image on the host and cannot be pulled",
			func(s *job.Spec) { s.Image = "sha256:" + strings.Repeat("0", 64); s.PullPolicy = job.PullMissing }),
		accepted("registry unreachable, pull always", job.StateFailed, "the engine answers that it cannot reach the registry",
			func(s *job.Spec) { s.Image = "127.0.0.1:1/fusebox/absent:1"; s.PullPolicy = job.PullAlways }),
		accepted("odd env name", job.StateSucceeded, "the engine passes any name without '=' or NUL through",
			func(s *job.Spec) { s.Env = map[string]string{"A B.c-d": "1"} }),
		accepted("exits non-zero", job.StateFailed, "a non-zero exit is the job's result",
			func(s *job.Spec) { s.Command = []string{"false"} }),
		accepted("short timeout", job.StateTimedOut, "a job past its timeout is timed out, not a host fault",
			func(s *job.Spec) {
				s.Command = []string{"sleep", "30"}
				s.Timeout = job.Duration(100 * time.Millisecond)
			}),
	}
}

// manyKeys returns n distinct entries K0=v ... K(n-1)=v.
func manyKeys(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["K"+strconv.Itoa(i)] = "v"
	}
	return m
}
