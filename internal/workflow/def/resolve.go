package def

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"fusebox/internal/config"
	"fusebox/internal/job"
)

// Resolve gives the workflow's parameters their values (params, by name;
// a param not given takes its default), substitutes ${params.x} in every
// step's image, command, env values, workdir and constraint values ($${
// is a literal ${), checks each step as the job it will run, orders the
// steps so that each comes after its dependencies (file order among
// independent steps) and lists the run's results. w is not changed.
//
// Unknown params, values of the wrong type and missing required params are
// Problems, as are steps that the substituted values make invalid.
func (w *Workflow) Resolve(params map[string]string) (*Resolved, error) {
	var probs []Problem
	prob := func(line int, field, format string, args ...any) {
		probs = append(probs, Problem{File: w.File, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	declared := make([]string, len(w.Params))
	for i, p := range w.Params {
		declared[i] = p.Name
	}
	for _, k := range sortedKeys(params) {
		if slices.Contains(declared, k) {
			continue
		}
		msg := "unknown param"
		switch s := config.Suggest(k, declared); {
		case s != "":
			msg += "; did you mean " + s + "?"
		case len(declared) == 0:
			msg += fmt.Sprintf("; %s takes none", w.Name)
		default:
			msg += fmt.Sprintf("; %s takes %s", w.Name, strings.Join(declared, ", "))
		}
		prob(0, "params."+k, "%s", msg)
	}
	values := map[string]string{}
	for _, p := range w.Params {
		v, given := params[p.Name]
		switch {
		case given:
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				prob(0, "params."+p.Name, "must be valid UTF-8 text without NUL bytes")
			} else if err := checkValue(p.Type, v); err != nil {
				prob(0, "params."+p.Name, "%v", err)
			}
		case p.Required:
			msg := "is required (it has no default)"
			if p.Description != "" {
				msg += ": " + p.Description
			}
			prob(0, "params."+p.Name, "%s", msg)
		default:
			v = p.Default
		}
		values[p.Name] = v
	}
	if len(probs) > 0 {
		return nil, Problems(sortProblems(probs))
	}
	lookup := func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	}
	sub := func(line int, field, text string) string {
		out, err := substitute(text, lookup)
		if err != nil {
			prob(line, field, "%v", err)
		}
		return out
	}
	subMap := func(line int, field string, m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for _, k := range sortedKeys(m) {
			out[k] = sub(line, joinPath(field, k), m[k])
		}
		return out
	}

	r := &Resolved{Workflow: *w}
	if len(values) > 0 {
		r.Params = values
	}
	r.Params = maps.Clone(r.Params)
	r.Workflow.Params = slices.Clone(w.Params)
	dft := &r.Defaults
	dft.Image = sub(0, "defaults.image", w.Defaults.Image)
	dft.Workdir = sub(0, "defaults.workdir", w.Defaults.Workdir)
	dft.Env = subMap(0, "defaults.env", w.Defaults.Env)
	dft.Constraints = subMap(0, "defaults.constraints", w.Defaults.Constraints)
	if w.Defaults.Cache != nil {
		c := *w.Defaults.Cache
		dft.Cache = &c
	}

	steps := make([]Step, len(w.Steps))
	for i, st := range w.Steps {
		f := indexPath("steps", i)
		st.Image = sub(st.Line, f+".image", st.Image)
		st.Workdir = sub(st.Line, f+".workdir", st.Workdir)
		if st.Command != nil {
			cmd := make([]string, len(st.Command))
			for j, a := range st.Command {
				cmd[j] = sub(st.Line, indexPath(f+".command", j), a)
			}
			st.Command = cmd
		}
		st.Env = subMap(st.Line, f+".env", st.Env)
		st.Constraints = subMap(st.Line, f+".constraints", st.Constraints)
		st.DependsOn = slices.Clone(st.DependsOn)
		st.Inputs = slices.Clone(st.Inputs)
		st.Outputs = slices.Clone(st.Outputs)
		steps[i] = st
		spec := job.Spec{
			Image: st.Image, Command: st.Command, Env: st.Env, Workdir: st.Workdir,
			Constraints: st.Constraints, CPUs: st.CPUs, MemoryBytes: st.MemoryBytes,
			Timeout: job.Duration(st.Timeout), MaxAttempts: st.MaxAttempts, Outputs: st.Outputs,
		}
		for _, fe := range fieldErrors(spec.Validate()) {
			prob(st.Line, f+"."+fe.Field, "%s", strings.TrimPrefix(fe.Error(), fe.Field+": "))
		}
	}
	if len(probs) > 0 {
		return nil, Problems(sortProblems(probs))
	}
	r.Steps = order(steps)
	r.Results = results(r.Steps)
	return r, nil
}

// fieldErrors lists the *job.FieldError in err.
func fieldErrors(err error) []*job.FieldError {
	var out []*job.FieldError
	var walk func(error)
	walk = func(err error) {
		var fe *job.FieldError
		switch u := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		default:
			if errors.As(err, &fe) {
				out = append(out, fe)
			} else if err != job.ErrInvalid {
				out = append(out, &job.FieldError{Field: "spec", Reason: err.Error()})
			}
		}
	}
	walk(err)
	return out
}

// order sorts steps so that each comes after the steps it depends on,
// keeping file order among steps that could run in either order. The steps
// have no cycle (Parse refused it).
func order(steps []Step) []Step {
	index := make(map[string]int, len(steps))
	for i, st := range steps {
		index[st.ID] = i
	}
	waiting := make([]int, len(steps)) // dependencies not yet placed
	needed := make([][]int, len(steps))
	for i, st := range steps {
		for _, dep := range st.DependsOn {
			if j, ok := index[dep]; ok {
				waiting[i]++
				needed[j] = append(needed[j], i)
			}
		}
	}
	out := make([]Step, 0, len(steps))
	done := make([]bool, len(steps))
	for len(out) < len(steps) {
		next := -1
		for i := range steps { // the first ready step in the file
			if !done[i] && waiting[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 { // a cycle: cannot happen after Parse; keep the rest in file order
			for i := range steps {
				if !done[i] {
					out = append(out, steps[i])
				}
			}
			break
		}
		done[next] = true
		out = append(out, steps[next])
		for _, k := range needed[next] {
			waiting[k]--
		}
	}
	return out
}

// results lists the outputs no step takes as an input, in step order.
func results(steps []Step) []Output {
	used := map[Output]bool{}
	for _, st := range steps {
		for _, in := range st.Inputs {
			used[Output{Step: in.From, Path: in.Path}] = true
		}
	}
	var out []Output
	for _, st := range steps {
		for _, p := range st.Outputs {
			if o := (Output{Step: st.ID, Path: p}); !used[o] {
				out = append(out, o)
			}
		}
	}
	return out
}

// unknownParamError is a ${params.x} naming no declared param.
type unknownParamError struct{ name string }

func (e *unknownParamError) Error() string {
	return fmt.Sprintf("${params.%s} refers to a param the workflow does not declare; add it under params, or write $${ for a literal ${", e.name)
}

// substitute replaces ${params.NAME} in text with lookup(NAME), and $${ with
// a literal ${. Any other ${...} (a shell variable) is left as written.
func substitute(text string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(text, "${") {
		return text, nil
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		rest := text[i:]
		switch {
		case strings.HasPrefix(rest, "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(rest, "${params."):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated %q: close it with }, or write $${ for a literal ${", shorten(rest))
			}
			name := rest[len("${params."):end]
			if !validParamName(name) {
				return "", fmt.Errorf("%q is not a param reference: write ${params.NAME} with a param's name", rest[:end+1])
			}
			v, ok := lookup(name)
			if !ok {
				return "", &unknownParamError{name}
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(text[i])
			i++
		}
	}
	return b.String(), nil
}

func validParamName(s string) bool {
	if s == "" || len(s) > MaxNameLen || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
