package def

import (
	"cmp"
	"embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed templates/*.yaml
var templateFS embed.FS

// Template is a shipped workflow definition, runnable on the demo image
// (fusebox/testjob:latest) with its params' defaults.
type Template struct {
	Name        string
	Category    string
	Description string
	Params      []Param
	Source      []byte // the YAML, as shipped
}

// Parse parses the template's source.
func (t Template) Parse() (*Workflow, error) { return Parse(t.Source, t.Name) }

// Templates lists the shipped templates by category, then name. It panics
// if one does not parse: a test proves they all do.
func Templates() []Template {
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		panic(fmt.Sprintf("workflow templates: %v", err))
	}
	var out []Template
	for _, e := range entries {
		src, err := templateFS.ReadFile("templates/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("workflow templates: %v", err))
		}
		name := strings.TrimSuffix(e.Name(), ".yaml")
		w, err := Parse(src, name)
		if err != nil {
			panic(fmt.Sprintf("workflow template %s: %v", name, err))
		}
		out = append(out, Template{Name: w.Name, Category: w.Category, Description: w.Description, Params: w.Params, Source: src})
	}
	slices.SortFunc(out, func(a, b Template) int {
		return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// LookupTemplate returns the shipped template called name.
func LookupTemplate(name string) (Template, bool) {
	for _, t := range Templates() {
		if t.Name == name {
			return t, true
		}
	}
	return Template{}, false
}
