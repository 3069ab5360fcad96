package def

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const resolveSrc = `name: w
params:
  - {name: tag, default: "1.0"}
  - {name: n, type: int, default: 3}
  - {name: loud, type: bool, default: false}
  - {name: zone, description: where to run}
defaults:
  image: app:${params.tag}
  env: {N: "${params.n}"}
steps:
  - id: report
    depends_on: [test]
    command: [sh, -c, 'echo $${HOME} ${HOME} $$ ${params.loud}']
    outputs: [/out]
  - id: build
    workdir: /src/${params.tag}
    constraints: {zone: "${params.zone}"}
    outputs: [/out, /logs]
  - id: lint
    command: [lint]
  - id: test
    inputs: [{from: build, path: /out, at: /in}]
    outputs: [/out]
`

func TestResolve(t *testing.T) {
	w, err := Parse([]byte(resolveSrc), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(w)
	r, err := w.Resolve(map[string]string{"zone": "eu", "n": "7"})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(w); string(after) != string(before) {
		t.Errorf("Resolve changed the workflow")
	}
	if want := map[string]string{"tag": "1.0", "n": "7", "loud": "false", "zone": "eu"}; !reflect.DeepEqual(r.Params, want) {
		t.Errorf("params %v, want %v", r.Params, want)
	}
	var ids []string
	for _, st := range r.Steps {
		ids = append(ids, st.ID)
	}
	// build before test before report; lint, independent, keeps its place
	// after build.
	if want := []string{"build", "lint", "test", "report"}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
	byID := map[string]Step{}
	for _, st := range r.Steps {
		byID[st.ID] = st
	}
	if got := byID["report"].Command[2]; got != "echo ${HOME} ${HOME} $$ false" {
		t.Errorf("report command %q", got)
	}
	if b := byID["build"]; b.Image != "app:1.0" || b.Workdir != "/src/1.0" || b.Constraints["zone"] != "eu" || b.Env["N"] != "7" {
		t.Errorf("build %+v", b)
	}
	if r.Defaults.Image != "app:1.0" || r.Defaults.Env["N"] != "7" {
		t.Errorf("defaults %+v", r.Defaults)
	}
	if got := byID["test"].DependsOn; !slices.Equal(got, []string{"build"}) {
		t.Errorf("test depends on %v, want [build]: its input adds it", got)
	}
	want := []Output{{"build", "/logs"}, {"test", "/out"}, {"report", "/out"}}
	if !reflect.DeepEqual(r.Results, want) {
		t.Errorf("results %v, want %v in run order (build's /out goes to test)", r.Results, want)
	}
	roundTrip(t, r)
}

func roundTrip(t *testing.T, r *Resolved) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back Resolved
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(&back, r) {
		b2, _ := json.Marshal(&back)
		t.Fatalf("JSON does not round-trip:\n%s\n%s\n%#v\n%#v", b, b2, r, &back)
	}
}

func TestResolveProblems(t *testing.T) {
	w, err := Parse([]byte(resolveSrc), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   []string
	}{
		{"required missing", nil, []string{"w.yaml: params.zone: is required (it has no default): where to run"}},
		{"unknown and typed", map[string]string{"zone": "z", "tga": "2", "n": "x", "loud": "yes", "other": "1"}, []string{
			"w.yaml: params.other: unknown param; w takes tag, n, loud, zone",
			"w.yaml: params.tga: unknown param; did you mean tag?",
			`w.yaml: params.n: must be a whole number for an int param (got "x")`,
			`w.yaml: params.loud: must be true or false for a bool param (got "yes")`}},
		{"bad text", map[string]string{"zone": "a\x00b"}, []string{
			"w.yaml: params.zone: must be valid UTF-8 text without NUL bytes"}},
		{"invalid step after substitution", map[string]string{"zone": "z", "tag": "BAD TAG"}, []string{
			"w.yaml:11: steps[0].image: is not a valid image reference ([registry/]name[:tag][@digest], lower case): invalid reference format (got \"app:BAD TAG\")",
			"w.yaml:15: steps[1].image: is not a valid image reference ([registry/]name[:tag][@digest], lower case): invalid reference format (got \"app:BAD TAG\")",
			"w.yaml:19: steps[2].image: is not a valid image reference ([registry/]name[:tag][@digest], lower case): invalid reference format (got \"app:BAD TAG\")",
			"w.yaml:21: steps[3].image: is not a valid image reference ([registry/]name[:tag][@digest], lower case): invalid reference format (got \"app:BAD TAG\")"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := w.Resolve(tc.params)
			if err == nil {
				t.Fatalf("resolved: %+v", r)
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
	noParams, err := Parse([]byte("name: v\nsteps: [{id: a, image: i}]\n"), "v.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noParams.Resolve(map[string]string{"x": "1"}); err == nil || err.Error() != "v.yaml: params.x: unknown param; v takes none" {
		t.Errorf("unknown param of a workflow without params: %v", err)
	}
	r, err := noParams.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Params != nil || r.Results != nil {
		t.Errorf("params %v, results %v: want nil", r.Params, r.Results)
	}
	roundTrip(t, r)
}

func TestOrderKeepsFileOrder(t *testing.T) {
	src := head + `steps:
  - {id: e, depends_on: [d]}
  - {id: a}
  - {id: d, depends_on: [b, c]}
  - {id: c, depends_on: [a]}
  - {id: b, depends_on: [a]}
  - {id: x}
`
	w, err := Parse([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range r.Steps {
		ids = append(ids, st.ID)
	}
	if want := []string{"a", "c", "b", "d", "e", "x"}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}

func TestSubstitute(t *testing.T) {
	vals := map[string]string{"a": "A", "b-c": "BC", "e": ""}
	lookup := func(n string) (string, bool) { v, ok := vals[n]; return v, ok }
	for in, want := range map[string]string{
		"":                         "",
		"plain $HOME ${HOME} $":    "plain $HOME ${HOME} $",
		"${params.a}${params.b-c}": "ABC",
		"x${params.e}y":            "xy",
		"$${params.a}":             "${params.a}",
		"$$${params.a}":            "$${params.a}",
		"$$$${params.a}":           "$$${params.a}",
		"${params.a}}":             "A}",
	} {
		got, err := substitute(in, lookup)
		if err != nil || got != want {
			t.Errorf("substitute(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${params.zz}", "${params.a", "${params.}", "${params.a.b}"} {
		if got, err := substitute(in, lookup); err == nil {
			t.Errorf("substitute(%q) = %q, want an error", in, got)
		}
	}
}
