package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// Limits bound what one spec may hold, so that no submission can make the
// server hold or move an unbounded amount of data (the scheduler and the
// store handle whole specs). A zero field means its default.
type Limits struct {
	// MaxSpecBytes bounds the spec's JSON encoding, as it is stored;
	// default 64 KiB.
	MaxSpecBytes int
	// MaxCommandArgs bounds len(Command); default 1024.
	MaxCommandArgs int
	// MaxEnv bounds the number of environment variables; default 256.
	MaxEnv int
	// MaxLabels bounds the number of labels, and separately the number of
	// constraints; default 64.
	MaxLabels int
	// MaxArgBytes bounds each command argument, each env entry
	// (KEY=value), each label and each constraint (key=value); default
	// 32 KiB (the kernel takes up to 128 KiB per argument).
	MaxArgBytes int
}

// Default limits.
const (
	MaxSpecBytesDefault   = 64 << 10
	MaxCommandArgsDefault = 1024
	MaxEnvDefault         = 256
	MaxLabelsDefault      = 64
	MaxArgBytesDefault    = 32 << 10
)

// Fixed bounds of a spec, not configurable: beyond them a value is a
// mistake, not a big job.
const (
	MaxImageLen          = 512     // characters of Spec.Image
	MaxWorkdirLen        = 4096    // PATH_MAX
	MaxIdempotencyKeyLen = 256     // characters
	MaxCPUs              = 1024    // cores
	MinCPUs              = 0.01    // Docker's smallest CPU limit
	MinMemoryBytes       = 6 << 20 // Docker's smallest memory limit
	MaxMemoryBytes       = 1 << 40 // 1 TiB
	MaxAttemptsLimit     = 100     // Spec.MaxAttempts
	MaxTimeout           = 30 * 24 * time.Hour
	MaxRetryBackoff      = 24 * time.Hour
)

// maxPerField bounds the problems listed for one top-level field; the rest
// are counted.
const maxPerField = 10

// DefaultLimits returns the limits a zero Limits means.
func DefaultLimits() Limits { return Limits{}.WithDefaults() }

// WithDefaults returns l with every zero (or negative) field set to its
// default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSpecBytes, MaxSpecBytesDefault)
	def(&l.MaxCommandArgs, MaxCommandArgsDefault)
	def(&l.MaxEnv, MaxEnvDefault)
	def(&l.MaxLabels, MaxLabelsDefault)
	def(&l.MaxArgBytes, MaxArgBytesDefault)
	return l
}

// FieldError names the field of a bad input and what is wrong with it.
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s: %s (got %v)", e.Field, e.Reason, e.Value)
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid job spec")

// Validate is ValidateWith(DefaultLimits()).
func (s *Spec) Validate() error { return s.ValidateWith(Limits{}) }

// ValidateWith checks s against everything a Docker engine would refuse
// (so that no spec a user writes can make a healthy host look faulty) and
// against l, and returns every problem found, each naming its field:
// image, command[3], env.FOO, workdir, labels.x, constraints.zone, ... The
// returned error wraps ErrInvalid and each *FieldError; past 10 problems
// in one top-level field (env, command, ...) the rest are counted, not
// listed.
//
// Checked: the name, when set, is a docker container name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters); the entrypoint's
// entries as the command's; user is user[:group] without spaces; network
// is a network mode ("none", "bridge", "host" or a network's name, not
// "container:..."); platform is os[/arch[/variant]]; the image is a valid reference (distribution/reference, as the
// engine parses it) or an image ID "sha256:<64 hex>", which cannot be
// pulled; no string holds a NUL byte or invalid UTF-8; env names are
// non-empty and hold no "="; the workdir is absolute and clean; label and
// constraint keys are non-empty; the command's first word, if any, is not
// empty; the counts and sizes of l; cpus in [0.01, 1024], memory_bytes in
// [6 MiB, 1 TiB], timeout in [0, 30 days], retry_backoff in [0, 24 h],
// max_attempts in [0, 100].
func (s *Spec) ValidateWith(l Limits) error {
	l = l.WithDefaults()
	v := &validator{}
	s.validateImage(v)
	s.validateName(v)
	s.validateCommand(v, l)
	s.validateRunAs(v, l)
	s.validateEnv(v, l)
	s.validateWorkdir(v)
	s.validateArtifacts(v)
	validateMap(v, "labels", s.Labels, l, true)
	validateMap(v, "constraints", s.Constraints, l, false)
	s.validateResources(v)
	switch s.PullPolicy {
	case "", PullMissing, PullAlways, PullNever:
	default:
		v.add("pull_policy", quoteShort(s.PullPolicy), `must be one of "missing", "always", "never"`)
	}
	if len(s.IdempotencyKey) > MaxIdempotencyKeyLen {
		v.add("idempotency_key", len(s.IdempotencyKey), fmt.Sprintf("is longer than %d characters", MaxIdempotencyKeyLen))
	}
	v.text("idempotency_key", s.IdempotencyKey)
	// The whole spec, as stored: a cheap lower bound first, so that a huge
	// spec is refused without encoding it.
	if n := s.stringBytes(); n > l.MaxSpecBytes {
		v.add("spec", n, fmt.Sprintf("is larger than %d bytes", l.MaxSpecBytes))
	} else if b, err := json.Marshal(s); err != nil {
		v.add("spec", nil, "cannot be encoded: "+err.Error())
	} else if len(b) > l.MaxSpecBytes {
		v.add("spec", len(b), fmt.Sprintf("is larger than %d bytes as JSON", l.MaxSpecBytes))
	}
	return v.err()
}

// validator collects problems, at most maxPerField for each top-level
// field (env, command, labels, ...), so that a spec with a million bad
// entries gets a short answer.
type validator struct {
	errs   []error
	counts map[string]int // problems per top-level field
	more   []string       // top-level fields with more problems, in order
}

func (v *validator) add(field string, value any, reason string) {
	top := field
	if i := strings.IndexAny(field, ".["); i >= 0 {
		top = field[:i]
	}
	if v.counts == nil {
		v.counts = map[string]int{}
	}
	v.counts[top]++
	if n := v.counts[top]; n > maxPerField {
		if n == maxPerField+1 {
			v.more = append(v.more, top)
		}
		return
	}
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Reason: reason})
}

// text checks that a string holds no NUL byte and is valid UTF-8.
func (v *validator) text(field, s string) bool {
	if i := strings.IndexByte(s, 0); i >= 0 {
		v.add(field, nil, fmt.Sprintf("contains a NUL byte (at byte %d)", i))
		return false
	}
	if !utf8.ValidString(s) {
		v.add(field, nil, "is not valid UTF-8")
		return false
	}
	return true
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	errs := append([]error{ErrInvalid}, v.errs...)
	for _, top := range v.more {
		errs = append(errs, fmt.Errorf("%s: and %d more problems", top, v.counts[top]-maxPerField))
	}
	return errors.Join(errs...)
}

// IsImageID reports whether ref is a full image ID, "sha256:" and 64
// lower-case hex digits: it names an image already on a host and cannot
// be pulled.
func IsImageID(ref string) bool {
	hex, ok := strings.CutPrefix(ref, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for i := range len(hex) {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Spec) validateImage(v *validator) {
	switch {
	case s.Image == "":
		v.add("image", nil, "is required")
		return
	case len(s.Image) > MaxImageLen:
		v.add("image", len(s.Image), fmt.Sprintf("is longer than %d characters", MaxImageLen))
		return
	case !v.text("image", s.Image):
		return
	case IsImageID(s.Image):
		if s.PullPolicy == PullAlways {
			v.add("pull_policy", nil, `must not be "always" with an image ID: an ID cannot be pulled; use a name, or pull_policy "missing" or "never"`)
		}
		return
	}
	if _, err := reference.ParseNormalizedNamed(s.Image); err != nil {
		v.add("image", strconv.Quote(s.Image), "is not a valid image reference ([registry/]name[:tag][@digest], lower case): "+err.Error())
	}
}

// MaxNameLen bounds Spec.Name.
const MaxNameLen = 128

// validName reports whether name is a docker container name:
// [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func validName(name string) bool {
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return name != ""
}

func (s *Spec) validateName(v *validator) {
	switch n := s.Name; {
	case n == "":
	case len(n) > MaxNameLen:
		v.add("name", len(n), fmt.Sprintf("is longer than %d characters", MaxNameLen))
	case !validName(n):
		v.add("name", quoteShort(n), "must start with a letter or digit and hold only letters, digits, '_', '.' and '-' (as a docker container name)")
	}
}

// validateRunAs checks entrypoint, user, network and platform.
func (s *Spec) validateRunAs(v *validator, l Limits) {
	if len(s.Entrypoint) > l.MaxCommandArgs {
		v.add("entrypoint", len(s.Entrypoint), fmt.Sprintf("has more than %d arguments", l.MaxCommandArgs))
	} else {
		if len(s.Entrypoint) > 1 && s.Entrypoint[0] == "" {
			v.add("entrypoint[0]", nil, `must not be empty: it is the program to run ([""] alone clears the image's entrypoint)`)
		}
		for i, a := range s.Entrypoint {
			f := fmt.Sprintf("entrypoint[%d]", i)
			if len(a) > l.MaxArgBytes {
				v.add(f, len(a), fmt.Sprintf("is longer than %d bytes", l.MaxArgBytes))
				continue
			}
			v.text(f, a)
		}
	}
	word := func(field, val, form string, ok func(string) bool) {
		switch {
		case val == "":
		case len(val) > 256:
			v.add(field, len(val), "is longer than 256 characters")
		case !v.text(field, val):
		case !ok(val):
			v.add(field, quoteShort(val), "must be "+form)
		}
	}
	word("user", s.User, "user[:group], names or numeric ids, without spaces (e.g. 1000:1000 or nobody)", func(u string) bool {
		user, group, _ := strings.Cut(u, ":")
		return user != "" && !strings.ContainsAny(u, " \t\n/") && (group != "" || !strings.HasSuffix(u, ":"))
	})
	word("network", s.Network, `a network mode: "none", "bridge", "host" or a network's name ("container:..." is not allowed)`, func(n string) bool {
		return !strings.HasPrefix(n, "container:") && validName(n)
	})
	word("platform", s.Platform, "os[/arch[/variant]], e.g. linux/amd64 or linux/arm64/v8", func(p string) bool {
		parts := strings.Split(p, "/")
		if len(parts) > 3 {
			return false
		}
		for _, part := range parts {
			if part == "" || !validName(part) {
				return false
			}
		}
		return true
	})
}

func (s *Spec) validateCommand(v *validator, l Limits) {
	if len(s.Command) > l.MaxCommandArgs {
		v.add("command", len(s.Command), fmt.Sprintf("has more than %d arguments", l.MaxCommandArgs))
		return
	}
	if len(s.Command) > 0 && s.Command[0] == "" {
		v.add("command[0]", nil, "must not be empty: it is the program to run")
	}
	for i, a := range s.Command {
		f := fmt.Sprintf("command[%d]", i)
		if len(a) > l.MaxArgBytes {
			v.add(f, len(a), fmt.Sprintf("is longer than %d bytes", l.MaxArgBytes))
			continue
		}
		v.text(f, a)
	}
}

func (s *Spec) validateEnv(v *validator, l Limits) {
	if len(s.Env) > l.MaxEnv {
		v.add("env", len(s.Env), fmt.Sprintf("has more than %d variables", l.MaxEnv))
		return
	}
	for _, k := range sortedKeys(s.Env) {
		val := s.Env[k]
		f := "env." + fieldKey(k)
		switch {
		case k == "":
			v.add("env", nil, "has an empty variable name")
			continue
		case len(k)+1+len(val) > l.MaxArgBytes:
			v.add(f, len(k)+1+len(val), fmt.Sprintf("is longer than %d bytes as NAME=value", l.MaxArgBytes))
			continue
		case strings.ContainsRune(k, '='):
			v.add(f, nil, `the variable name must not contain "="`)
		}
		if v.text(f, k) {
			v.text(f, val)
		}
	}
}

func (s *Spec) validateWorkdir(v *validator) {
	w := s.Workdir
	switch {
	case w == "":
	case len(w) > MaxWorkdirLen:
		v.add("workdir", len(w), fmt.Sprintf("is longer than %d bytes", MaxWorkdirLen))
	case !v.text("workdir", w):
	case !strings.HasPrefix(w, "/"):
		v.add("workdir", strconv.Quote(w), "must be an absolute path, e.g. /work")
	case path.Clean(w) != w:
		v.add("workdir", strconv.Quote(w), fmt.Sprintf("must be a clean path (no '.', '..', '//' or trailing '/'): %q", path.Clean(w)))
	}
}

// MaxArtifacts bounds Spec.Inputs and, separately, Spec.Outputs.
const MaxArtifacts = 64

// validateArtifacts checks inputs (a digest and an absolute clean path
// each) and outputs (absolute clean paths, none twice).
func (s *Spec) validateArtifacts(v *validator) {
	absClean := func(field, p string) {
		switch {
		case p == "":
			v.add(field, nil, "is required: an absolute path in the container, e.g. /out")
		case len(p) > MaxWorkdirLen:
			v.add(field, len(p), fmt.Sprintf("is longer than %d bytes", MaxWorkdirLen))
		case !v.text(field, p):
		case !strings.HasPrefix(p, "/"):
			v.add(field, strconv.Quote(p), "must be an absolute path, e.g. /out")
		case path.Clean(p) != p:
			v.add(field, strconv.Quote(p), fmt.Sprintf("must be a clean path (no '.', '..', '//' or trailing '/'): %q", path.Clean(p)))
		case p == "/":
			v.add(field, strconv.Quote(p), "must not be the root directory")
		}
	}
	if len(s.Inputs) > MaxArtifacts {
		v.add("inputs", len(s.Inputs), fmt.Sprintf("has more than %d entries", MaxArtifacts))
	} else {
		for i, in := range s.Inputs {
			f := fmt.Sprintf("inputs[%d]", i)
			if !ValidDigest(in.Digest) {
				v.add(f+".digest", quoteShort(in.Digest), `must be "sha256:" and 64 lower-case hex digits`)
			}
			absClean(f+".path", in.Path)
		}
	}
	if len(s.Outputs) > MaxArtifacts {
		v.add("outputs", len(s.Outputs), fmt.Sprintf("has more than %d entries", MaxArtifacts))
		return
	}
	seen := map[string]int{}
	for i, p := range s.Outputs {
		f := fmt.Sprintf("outputs[%d]", i)
		absClean(f, p)
		if j, dup := seen[p]; dup {
			v.add(f, strconv.Quote(p), fmt.Sprintf("is also outputs[%d]", j))
		}
		seen[p] = i
	}
}

// ValidDigest reports whether d is "sha256:" and 64 lower-case hex digits.
func ValidDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validateMap checks labels or constraints.
func validateMap(v *validator, name string, m map[string]string, l Limits, labels bool) {
	if len(m) > l.MaxLabels {
		v.add(name, len(m), fmt.Sprintf("has more than %d entries", l.MaxLabels))
		return
	}
	for _, k := range sortedKeys(m) {
		f := name + "." + fieldKey(k)
		switch {
		case k == "":
			v.add(name, nil, "has an empty key")
			continue
		case len(k)+1+len(m[k]) > l.MaxArgBytes:
			v.add(f, len(k)+1+len(m[k]), fmt.Sprintf("is longer than %d bytes as key=value", l.MaxArgBytes))
			continue
		case labels && strings.HasPrefix(k, "fusebox."):
			v.add(f, nil, `keys starting "fusebox." are reserved`)
		}
		if v.text(f, k) {
			v.text(f, m[k])
		}
	}
}

func (s *Spec) validateResources(v *validator) {
	switch c := s.CPUs; {
	case math.IsNaN(c) || math.IsInf(c, 0):
		v.add("cpus", c, "must be a number of cores")
	case c < 0:
		v.add("cpus", c, "must not be negative")
	case c > 0 && c < MinCPUs:
		v.add("cpus", c, fmt.Sprintf("must be at least %g (Docker's minimum), or 0 for no limit", MinCPUs))
	case c > MaxCPUs:
		v.add("cpus", c, fmt.Sprintf("must be at most %d", MaxCPUs))
	}
	switch m := s.MemoryBytes; {
	case m < 0:
		v.add("memory_bytes", m, "must not be negative")
	case m > 0 && m < MinMemoryBytes:
		v.add("memory_bytes", m, "must be at least 6 MiB (Docker's minimum), or 0 for no limit")
	case m > MaxMemoryBytes:
		v.add("memory_bytes", m, "must be at most 1 TiB")
	}
	switch t := s.Timeout.Std(); {
	case t < 0:
		v.add("timeout", s.Timeout, "must not be negative")
	case t > MaxTimeout:
		v.add("timeout", s.Timeout, "must be at most 720h (30 days); 0 means no timeout")
	}
	switch b := s.RetryBackoff.Std(); {
	case b < 0:
		v.add("retry_backoff", s.RetryBackoff, "must not be negative")
	case b > MaxRetryBackoff:
		v.add("retry_backoff", s.RetryBackoff, "must be at most 24h")
	}
	if s.MaxAttempts < 0 {
		v.add("max_attempts", s.MaxAttempts, "must not be negative")
	} else if s.MaxAttempts > MaxAttemptsLimit {
		v.add("max_attempts", s.MaxAttempts, fmt.Sprintf("must be at most %d", MaxAttemptsLimit))
	}
}

// stringBytes is the length of every string in s: a lower bound of its
// JSON encoding.
func (s *Spec) stringBytes() int {
	n := len(s.Image) + len(s.Workdir) + len(s.PullPolicy) + len(s.IdempotencyKey) +
		len(s.Name) + len(s.User) + len(s.Network) + len(s.Platform)
	for _, a := range s.Command {
		n += len(a)
	}
	for _, a := range s.Entrypoint {
		n += len(a)
	}
	for _, m := range []map[string]string{s.Env, s.Labels, s.Constraints} {
		for k, val := range m {
			n += len(k) + len(val)
		}
	}
	return n
}

// fieldKey is a map key as it appears in a field name: as is when it is
// short and printable, quoted otherwise.
func fieldKey(k string) string {
	if len(k) > 64 {
		return strconv.Quote(k[:64]) + "..."
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(k)
		}
	}
	return k
}

// quoteShort quotes s, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
