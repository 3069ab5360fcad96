package def

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// head is the start of most definitions below: a name and an image for
// every step.
const head = "name: w\ndefaults: {image: img}\n"

func TestParseProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // every problem, in order, as Problem.String gives it
	}{
		{"empty", "", []string{"w.yaml: the definition is empty; it needs a name and steps"}},
		{"not a mapping", "[1, 2]\n", []string{"w.yaml:1:1: must be a mapping of settings (got a list)"}},
		{"invalid yaml", "name: [\n", []string{"w.yaml:1:7: invalid YAML: sequence end token ']' not found"}},
		{"two documents", head + "steps: [{id: a}]\n---\nname: v\n", []string{
			"w.yaml:5:1: only one YAML document is allowed; remove this one or the --- before it"}},
		{"name and steps required", "description: d\n", []string{
			"w.yaml:1:1: name: is required: a name for the workflow (letters, digits, '_', '.', '-')",
			"w.yaml:1:1: steps: is required: a list of steps, each with an id and a command"}},
		{"no steps", "name: w\nsteps: []\n", []string{"w.yaml:2:1: steps: must list at least one step"}},
		{"unknown key with suggestion", head + "stpes: [{id: a}]\n", []string{
			"w.yaml:1:1: steps: is required: a list of steps, each with an id and a command",
			"w.yaml:3:1: stpes: unknown field; did you mean steps?"}},
		{"unknown step key", head + "steps:\n  - id: a\n    comand: [x]\n", []string{
			"w.yaml:5:5: steps[0].comand: unknown field; did you mean command?"}},
		{"unknown key without suggestion", head + "steps:\n  - id: a\n    inputs: [{from: a, path: /x, zzzzzz: 1}]\n", []string{
			"w.yaml:5:15: steps[0].inputs[0].from: a step cannot take its own output as an input",
			"w.yaml:5:34: steps[0].inputs[0].zzzzzz: unknown field; known fields are from, path, at"}},
		{"duplicate key", head + "steps:\n  - id: a\n    id: b\n", []string{
			"w.yaml:5:5: steps[0].id: duplicate key (first set on line 4); keep one"}},
		{"retries alias twice", head + "steps:\n  - id: a\n    retries: 1\n    max_retries: 2\n", []string{
			"w.yaml:6:5: steps[0].max_retries: retries (line 5) and max_retries (line 6) are the same setting; keep one"}},
		{"top-level and defaults retries", "name: w\nmax_retries: 1\ndefaults: {image: i, max_retries: 2}\nsteps: [{id: a}]\n", []string{
			"w.yaml:3:22: defaults.max_retries: max_retries (line 2) and defaults.max_retries (line 3) are the same setting; keep one"}},
		{"duplicate step ids", head + "steps:\n  - id: a\n  - id: b\n  - id: a\n", []string{
			`w.yaml:6:5: steps[2].id: duplicate step id "a" (also steps[0], line 4)`}},
		{"step without id", head + "steps:\n  - image: x\n", []string{
			"w.yaml:4:5: steps[0]: needs an id (letters, digits, '_' and '-')"}},
		{"bad ids and names", "name: 'my flow'\ncategory: -x\ndefaults: {image: i}\nsteps:\n  - id: a.b\n", []string{
			`w.yaml:1:1: name: must be letters, digits, '_', '.' and '-', not starting with '-' or '.' (got "my flow")`,
			`w.yaml:2:1: category: must be letters, digits, '_', '.' and '-', not starting with '-' or '.' (got "-x")`,
			`w.yaml:5:5: steps[0].id: must be letters, digits, '_' and '-', not starting with '-' or '.' (got "a.b")`}},
		{"no image", "name: w\nsteps:\n  - id: a\n    command: [true]\n", []string{
			"w.yaml:3:5: steps[0]: needs an image: set image here or in defaults"}},
		{"command as a string", head + "steps:\n  - id: a\n    command: make test\n", []string{
			`w.yaml:5:14: steps[0].command: must be a list of arguments, e.g. ["sh", "-c", "make test"] (a string is not split into words; write it as a list)`}},
		{"empty program", head + "steps:\n  - id: a\n    command: ['', x]\n", []string{
			"w.yaml:5:15: steps[0].command[0]: must not be empty: it is the program to run"}},
		{"unknown depends_on", head + "steps:\n  - id: build\n  - id: b\n    depends_on: [buidl, zzz]\n", []string{
			`w.yaml:6:18: steps[1].depends_on[0]: unknown step "buidl"; did you mean build?`,
			`w.yaml:6:25: steps[1].depends_on[1]: unknown step "zzz"`}},
		{"depends_on twice", head + "steps:\n  - id: a\n  - id: b\n    depends_on: [a, a]\n", []string{
			`w.yaml:6:21: steps[1].depends_on[1]: lists "a" twice (also steps[1].depends_on[0])`}},
		{"input from unknown step", head + "steps:\n  - id: a\n    inputs: [{from: z, path: /out}]\n", []string{
			`w.yaml:5:15: steps[0].inputs[0].from: unknown step "z"`}},
		{"input of an undeclared output", head + "steps:\n  - id: a\n    outputs: [/out]\n  - id: b\n    inputs: [{from: a, path: /res}]\n  - id: c\n    inputs: [{from: b, path: /x}]\n", []string{
			`w.yaml:7:24: steps[1].inputs[0].path: step "a" does not declare the output "/res" (it declares /out)`,
			`w.yaml:9:24: steps[2].inputs[0].path: step "b" does not declare the output "/x" (it declares no outputs)`}},
		{"input without from", head + "steps:\n  - id: a\n    inputs: [{path: /out}]\n", []string{
			"w.yaml:5:14: steps[0].inputs[0]: needs from: the step and the output path it names"}},
		{"two inputs at one path", head + "steps:\n  - id: a\n    outputs: [/out]\n  - id: b\n    outputs: [/out]\n  - id: c\n    inputs: [{from: a, path: /out}, {from: b, path: /out}]\n", []string{
			"w.yaml:9:37: steps[2].inputs[1].at: inputs[0] is unpacked at /out too; give one of them another at"}},
		{"paths", head + "steps:\n  - id: a\n    outputs: [out, /a/../b, /, /x, /x]\n    workdir: w\n  - id: b\n    inputs: [{from: a, path: /x, at: 'in/'}]\n", []string{
			`w.yaml:5:15: steps[0].outputs[0]: must be an absolute path, e.g. /out (got "out")`,
			`w.yaml:5:20: steps[0].outputs[1]: must be a clean path (no '.', '..', '//' or trailing '/'): "/b"`,
			"w.yaml:5:29: steps[0].outputs[2]: must not be the root directory",
			`w.yaml:5:36: steps[0].outputs[4]: "/x" is also steps[0].outputs[3]`,
			`w.yaml:6:5: steps[0].workdir: must be an absolute path, e.g. /out (got "w")`,
			`w.yaml:8:34: steps[1].inputs[0].at: must be an absolute path, e.g. /out (got "in/")`}},
		{"cycle", head + "steps:\n  - id: a\n    depends_on: [c]\n  - id: b\n    depends_on: [a]\n  - id: c\n    depends_on: [b]\n  - id: d\n    depends_on: [d]\n", []string{
			"w.yaml:5:5: steps[0].depends_on: dependency cycle: a -> b -> c -> a",
			"w.yaml:11:18: steps[3].depends_on[0]: dependency cycle: d -> d (a step cannot depend on itself)"}},
		{"cycle through inputs", head + "steps:\n  - id: a\n    outputs: [/o]\n    inputs: [{from: b, path: /o, at: /i}]\n  - id: b\n    outputs: [/o]\n    inputs: [{from: a, path: /o, at: /i}]\n", []string{
			"w.yaml:4:5: steps[0].depends_on: dependency cycle: a -> b -> a"}},
		{"params", "name: w\nparams:\n  - name: n\n    type: int\n    default: abc\n  - name: b\n    type: bool\n    default: yes\n  - {name: n}\n  - name: t\n    type: float\n  - name: 'a b'\n  - {description: x}\nsteps:\n  - id: a\n    image: ${params.zzzz}\n    command: [echo, '${params.nn}', '$${params.zz}', '${params.', '${params.a b}']\n", []string{
			`w.yaml:5:5: params[0].default: must be a whole number for an int param (got "abc")`,
			`w.yaml:8:5: params[1].default: must be true or false for a bool param (got "yes")`,
			`w.yaml:9:6: params[2].name: duplicate param "n" (also params[0])`,
			`w.yaml:11:5: params[3].type: must be string, int or bool (got "float")`,
			`w.yaml:12:5: params[4].name: must be letters, digits, '_' and '-', not starting with '-' or '.' (got "a b")`,
			"w.yaml:13:5: params[5]: needs a name",
			"w.yaml:16:5: steps[0].image: ${params.zzzz} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${",
			"w.yaml:17:21: steps[0].command[1]: ${params.nn} refers to a param the workflow does not declare; did you mean ${params.n}?",
			`w.yaml:17:54: steps[0].command[3]: unterminated "${params.": close it with }, or write $${ for a literal ${`,
			`w.yaml:17:67: steps[0].command[4]: "${params.a b}" is not a param reference: write ${params.NAME} with a param's name`}},
		{"refs in env, constraints, workdir and defaults", "name: w\ndefaults:\n  image: '${params.x}'\n  env: {A: '${params.y}'}\nsteps:\n  - id: a\n    workdir: /${params.z}\n    constraints: {zone: '${params.q}'}\n", []string{
			"w.yaml:3:3: defaults.image: ${params.x} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${",
			"w.yaml:4:9: defaults.env.A: ${params.y} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${",
			"w.yaml:7:5: steps[0].workdir: ${params.z} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${",
			"w.yaml:8:19: steps[0].constraints.zone: ${params.q} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${"}},
		{"values", "name: w\ntimeout: -1s\nmax_retries: 101\nretry_backoff_factor: -1\ncircuit_breaker: {failure_threshold: -1, reset_timeout: 5, half_open_timeout: x}\ncaching_enabled: maybe\ndefaults: {image: i, cpus: 2000, memory: 1m, max_attempts: 101}\nsteps:\n  - id: a\n    memory: 64x\n    cpus: .nan\n    timeout: 10\n    max_backoff: 48h\n    cache: 1\n    env: {A: [1], '': x}\n", []string{
			"w.yaml:2:10: timeout: must not be negative (got -1s)",
			"w.yaml:3:1: max_retries: must be between 0 and 100 (got 101)",
			"w.yaml:4:1: retry_backoff_factor: must be a number of seconds between 0 and 86400 (got -1)",
			"w.yaml:5:19: circuit_breaker.failure_threshold: must be between 1 and 1000, or 0 for the server's default (got -1)",
			`w.yaml:5:57: circuit_breaker.reset_timeout: needs a unit: write "5s" (or ms, m, h) (got 5)`,
			`w.yaml:5:79: circuit_breaker.half_open_timeout: must be a duration such as "30s", "1m30s" or "500ms" (got "x")`,
			`w.yaml:6:18: caching_enabled: must be true or false (got "maybe")`,
			"w.yaml:7:22: defaults.cpus: must be between 0.01 and 1024 cores, or 0 for no limit (got 2000)",
			"w.yaml:7:34: defaults.memory: must be between 6MiB (Docker's minimum) and 1TiB, or 0 for no limit",
			"w.yaml:7:46: defaults.max_attempts: must be between 0 (the server's default) and 100 (got 101)",
			`w.yaml:10:13: steps[0].memory: must be a size like 64m, 512MiB or 1GiB (got "64x")`,
			"w.yaml:11:11: steps[0].cpus: must be a number (got .nan)",
			`w.yaml:12:14: steps[0].timeout: needs a unit: write "10s" (or ms, m, h) (got 10)`,
			"w.yaml:13:5: steps[0].max_backoff: must be at most 24h0m0s",
			"w.yaml:14:12: steps[0].cache: must be true or false (got 1)",
			"w.yaml:15:14: steps[0].env.A: must be a string (got a list)",
			"w.yaml:15:19: steps[0].env: has an empty name"}},
		{"nulls", "name: w\nparams: [{name: ~}]\ndefaults: {image: i}\nsteps:\n  - id: ~\n  - id: b\n    depends_on: [~]\n    inputs: [{from: ~, path: /x}]\n", []string{
			"w.yaml:2:10: params[0]: needs a name",
			"w.yaml:5:5: steps[0]: needs an id (letters, digits, '_' and '-')",
			"w.yaml:7:18: steps[1].depends_on[0]: must be a step id (got nothing)",
			"w.yaml:8:14: steps[1].inputs[0]: needs from: the step and the output path it names"}},
		{"anchors", "name: w\nx: &a [*a]\nsteps: *nope\n", []string{
			"w.yaml:2:1: x: unknown field; known fields are name, description, category, params, defaults, timeout, caching_enabled, use_circuit_breaker, circuit_breaker, steps, max_retries, retry_backoff_factor, retry_jitter",
			"w.yaml:3:8: steps: unknown anchor *nope (an anchor must be defined with &nope before it is used)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Parse([]byte(tc.yaml), "w.yaml")
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", w)
			}
			if w != nil {
				t.Errorf("a workflow came back with the error")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestProblemsError(t *testing.T) {
	_, err := Parse([]byte("name: w\n"), "f.yaml")
	if got, want := err.Error(), "f.yaml:1:1: steps: is required: a list of steps, each with an id and a command"; got != want {
		t.Errorf("one problem: %q, want %q", got, want)
	}
	_, err = Parse([]byte("steps: 1\n"), "f.yaml")
	if got := err.Error(); !strings.HasPrefix(got, "2 workflow problems:\nf.yaml:") {
		t.Errorf("two problems: %q", got)
	}
}

func TestParseDefaults(t *testing.T) {
	src := `name: w
max_retries: 2
retry_jitter: false
caching_enabled: false
defaults:
  image: base
  env: {A: a, B: b}
  constraints: {zone: z1}
  timeout: 1m
  retry_backoff_factor: 0.5
  max_attempts: 4
  cpus: 1.5
  memory: 64m
  workdir: /work
steps:
  - id: plain
  - id: own
    image: other
    env: {B: own, C: c}
    constraints: {disk: ssd}
    timeout: 2m
    cache: true
    retries: 5
    retry_backoff_factor: 0
    retry_jitter: true
    max_backoff: 10s
    max_attempts: 1
    cpus: 0.5
    memory: 128MiB
    workdir: /src
    command: [make, test]
`
	w, err := Parse([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plain, own := w.Steps[0], w.Steps[1]
	wantPlain := Step{ID: "plain", Image: "base", Env: map[string]string{"A": "a", "B": "b"}, Workdir: "/work",
		Timeout: time.Minute, Constraints: map[string]string{"zone": "z1"}, Cache: false,
		Retries:     Retries{Max: 2, BackoffFactor: 0.5, MaxBackoff: DefaultMaxBackoff, Jitter: false},
		MaxAttempts: 4, CPUs: 1.5, MemoryBytes: 64 << 20, Line: 16}
	if !reflect.DeepEqual(plain, wantPlain) {
		t.Errorf("plain step:\n%+v\nwant\n%+v", plain, wantPlain)
	}
	wantOwn := Step{ID: "own", Image: "other", Command: []string{"make", "test"},
		Env: map[string]string{"A": "a", "B": "own", "C": "c"}, Workdir: "/src", Timeout: 2 * time.Minute,
		Constraints: map[string]string{"zone": "z1", "disk": "ssd"}, Cache: true,
		Retries:     Retries{Max: 5, BackoffFactor: 0, MaxBackoff: 10 * time.Second, Jitter: true},
		MaxAttempts: 1, CPUs: 0.5, MemoryBytes: 128 << 20, Line: 17}
	if !reflect.DeepEqual(own, wantOwn) {
		t.Errorf("own step:\n%+v\nwant\n%+v", own, wantOwn)
	}
	if w.CachingEnabled || !w.UseCircuitBreaker {
		t.Errorf("caching_enabled %v, use_circuit_breaker %v", w.CachingEnabled, w.UseCircuitBreaker)
	}

	// Nothing set: the built-in defaults.
	w, err = Parse([]byte("name: w\nsteps: [{id: a, image: i}]\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := w.Steps[0]
	if want := (Retries{Max: 0, BackoffFactor: DefaultRetryBackoffFactor, MaxBackoff: DefaultMaxBackoff, Jitter: true}); st.Retries != want {
		t.Errorf("retries %+v, want %+v", st.Retries, want)
	}
	if !st.Cache || !w.CachingEnabled || !w.UseCircuitBreaker {
		t.Errorf("cache %v, caching_enabled %v, use_circuit_breaker %v: want all true", st.Cache, w.CachingEnabled, w.UseCircuitBreaker)
	}
	// defaults.cache overrides caching_enabled; the step's overrides both.
	w, err = Parse([]byte("name: w\ndefaults: {image: i, cache: false}\nsteps: [{id: a}, {id: b, cache: true}]\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.Steps[0].Cache || !w.Steps[1].Cache {
		t.Errorf("cache: a %v (want false), b %v (want true)", w.Steps[0].Cache, w.Steps[1].Cache)
	}
}

func TestParseMemoryUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"64m": 64 << 20, "64M": 64 << 20, "1g": 1 << 30, "64MiB": 64 << 20, "10MB": 10e6, "1.5GiB": 3 << 29,
		"7340032": 7 << 20, "8192k": 8 << 20, "0": 0,
	} {
		got, err := parseMemory(in)
		if err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "64x", "1e400", "99999999999999999999g"} {
		if got, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	src := `name: w
defaults: {image: i}
steps:
  - &base
    id: a
    env: {X: "1"}
    command: [true]
  - <<: *base
    id: b
`
	w, err := Parse([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b := w.Steps[1]; b.ID != "b" || b.Env["X"] != "1" || !slices.Equal(b.Command, []string{"true"}) {
		t.Errorf("merged step: %+v", b)
	}
	// Merge keys that expand exponentially are bounded.
	var b strings.Builder
	b.WriteString("name: w\nx-0: &m0 {a: 1, b: 2, c: 3}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "x-%d: &m%d {<<: [*m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("steps:\n  - <<: *m8\n    id: s\n    image: i\n")
	if _, err := Parse([]byte(b.String()), "w.yaml"); err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("alias bomb: %v", err)
	}
}
