package def

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it refuses comes with
// well-formed problems, and that what it accepts either resolves with its
// defaults, with a Resolved whose JSON round-trips exactly, or is refused
// by Resolve with Problems. Its seed corpus is testdata/fuzz/FuzzParse and
// the templates; grow it with
//
//	go test -fuzz=FuzzParse -fuzztime=60s ./internal/workflow/def
func FuzzParse(f *testing.F) {
	for _, tp := range Templates() {
		f.Add(tp.Source)
	}
	f.Add([]byte(resolveSrc))
	for _, s := range []string{
		"",
		head + "steps: [{id: a}]\n",
		head + "steps:\n  - id: a\n    depends_on: [b]\n  - id: b\n    depends_on: [a]\n",
		"name: w\nparams: [{name: p, type: int, default: 1}]\nsteps: [{id: a, image: 'i:${params.p}', command: ['$${x}']}]\n",
		"name: w\nx: &a {id: s, image: i}\nsteps: [*a, {<<: *a, id: t}]\n",
		head + "steps: [{id: a, memory: 64m, cpus: 0.5, timeout: 1m, retries: 3, retry_backoff_factor: 0.25}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse(data, "f.yaml")
		if err != nil {
			if w != nil {
				t.Fatalf("a workflow came back with problems: %v", err)
			}
			checkProblems(t, err)
			if _, err2 := Parse(data, "f.yaml"); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
			}
			return
		}
		defaults := map[string]string{}
		for _, p := range w.Params {
			if p.Required {
				defaults[p.Name] = map[ParamType]string{ParamString: "x", ParamInt: "1", ParamBool: "true"}[p.Type]
			}
		}
		r, err := w.Resolve(defaults)
		if err != nil {
			checkProblems(t, err)
			return
		}
		if len(r.Steps) != len(w.Steps) {
			t.Fatalf("%d steps resolved from %d", len(r.Steps), len(w.Steps))
		}
		placed := map[string]bool{}
		for _, st := range r.Steps {
			for _, dep := range st.DependsOn {
				if !placed[dep] {
					t.Fatalf("step %s comes before its dependency %s", st.ID, dep)
				}
			}
			placed[st.ID] = true
		}
		roundTrip(t, r)
	})
}

func checkProblems(t *testing.T, err error) {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error %T is not Problems: %v", err, err)
	}
	for _, p := range ps {
		if p.Message == "" || p.Line < 0 || p.Column < 0 || p.String() == "" {
			t.Fatalf("malformed problem %#v", p)
		}
	}
}
