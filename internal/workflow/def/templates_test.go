package def

import (
	"slices"
	"strings"
	"testing"
)

func TestTemplates(t *testing.T) {
	ts := Templates()
	var got []string
	for _, tp := range ts {
		got = append(got, tp.Category+"/"+tp.Name)
	}
	want := []string{"ci/ci-pipeline", "data/data-processing", "examples/diamond", "maintenance/maintenance", "ml/ml-training"}
	if !slices.Equal(got, want) {
		t.Fatalf("templates %v, want %v", got, want)
	}
	for _, tp := range ts {
		t.Run(tp.Name, func(t *testing.T) {
			if tp.Description == "" || len(tp.Params) == 0 {
				t.Errorf("no description or params: %+v", tp)
			}
			w, err := tp.Parse()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range w.Params {
				if p.Required {
					t.Errorf("param %s has no default: a template runs with none given", p.Name)
				}
			}
			r, err := w.Resolve(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range r.Steps {
				if st.Image != "fusebox/testjob:latest" {
					t.Errorf("step %s runs %s, want the demo image", st.ID, st.Image)
				}
				if len(st.Command) == 0 || len(st.Outputs) == 0 {
					t.Errorf("step %s has no command or no outputs", st.ID)
				}
				for _, a := range st.Command {
					if strings.Contains(a, "${params.") {
						t.Errorf("step %s: unsubstituted reference in %q", st.ID, a)
					}
				}
			}
			if len(r.Results) == 0 {
				t.Errorf("no results")
			}
			roundTrip(t, r)
			if back, ok := LookupTemplate(tp.Name); !ok || string(back.Source) != string(tp.Source) {
				t.Errorf("LookupTemplate(%q) = %v", tp.Name, ok)
			}
		})
	}
	if _, ok := LookupTemplate("nope"); ok {
		t.Errorf("LookupTemplate found a template that does not exist")
	}
}

// The diamond's shape: b and c both take a's output and can run at the
// same time; d takes both; d's output is the only result.
func TestTemplateDiamond(t *testing.T) {
	tp, _ := LookupTemplate("diamond")
	w, err := tp.Parse()
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Resolve(map[string]string{"lines": "5"})
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	for _, st := range r.Steps {
		deps[st.ID] = st.DependsOn
	}
	if !slices.Equal(deps["a"], nil) || !slices.Equal(deps["b"], []string{"a"}) || !slices.Equal(deps["c"], []string{"a"}) || !slices.Equal(deps["d"], []string{"b", "c"}) {
		t.Errorf("depends_on %v", deps)
	}
	if want := []Output{{"d", "/out"}}; !slices.Equal(r.Results, want) {
		t.Errorf("results %v, want %v", r.Results, want)
	}
	if !strings.Contains(r.Steps[0].Command[2], "seq 1 5 ") {
		t.Errorf("a's command %q: lines not substituted", r.Steps[0].Command[2])
	}
	if !strings.Contains(r.Steps[3].Command[2], "sha256sum") {
		t.Errorf("d writes no checksum: %q", r.Steps[3].Command[2])
	}
}
