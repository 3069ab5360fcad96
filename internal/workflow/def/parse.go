package def

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"fusebox/internal/config"
	"fusebox/internal/job"
)

// Defaults of a definition.
const (
	// DefaultRetryBackoffFactor is retry_backoff_factor when no level sets
	// it: one second before the first retry, two before the second, ...
	DefaultRetryBackoffFactor = 1.0
	// DefaultMaxBackoff is max_backoff when no level sets it.
	DefaultMaxBackoff = 5 * time.Minute
)

// Bounds of a definition.
const (
	MaxSteps      = 500 // steps of one workflow
	MaxParams     = 100 // params of one workflow
	MaxRetries    = 100 // max_retries of a step
	MaxNameLen    = 100 // characters of a workflow's name, a step's id or a param's name
	MaxDescLen    = 4096
	MaxDependsOn  = 100 // depends_on entries of one step
	MaxBackoffCap = job.MaxRetryBackoff
)

var (
	topKeys = []string{"name", "description", "category", "params", "defaults", "timeout",
		"caching_enabled", "use_circuit_breaker", "circuit_breaker", "steps",
		"max_retries", "retry_backoff_factor", "retry_jitter"}
	paramKeys    = []string{"name", "type", "default", "description"}
	breakerKeys  = []string{"failure_threshold", "reset_timeout", "half_open_timeout"}
	defaultsKeys = []string{"image", "env", "timeout", "constraints", "cache", "max_retries",
		"retry_backoff_factor", "retry_jitter", "max_backoff", "max_attempts", "cpus", "memory", "workdir"}
	stepKeys = []string{"id", "image", "command", "env", "workdir", "depends_on", "inputs", "outputs",
		"timeout", "constraints", "cache", "max_retries", "retry_backoff_factor", "retry_jitter",
		"max_backoff", "max_attempts", "cpus", "memory"}
	inputKeys    = []string{"from", "path", "at"}
	retryAliases = map[string]string{"retries": "max_retries"}
)

// settings are the fields a step can set and defaults (or, for the retry
// fields, the top level) can give it; nil where not written.
type settings struct {
	image, workdir         *string
	env, constraints       map[string]string
	timeout, maxBackoff    *time.Duration
	cache, jitter          *bool
	maxRetries, attempts   *int
	backoff, cpus          *float64
	memory                 *int64
	envSet, constraintsSet bool
}

// Parse reads a workflow definition: data is the YAML, file names it in
// problems (a path or a template name). Every problem found is reported
// at once, as Problems; a definition Parse accepts has its defaults applied
// to each step (image, env and constraints merged under the step's own,
// retries, cache, limits), inputs' steps added to depends_on, and no cycle.
// Its ${params.x} references are substituted by Resolve.
func Parse(data []byte, file string) (*Workflow, error) {
	body, probs := parseYAML(file, data)
	if body == nil {
		if len(probs) == 0 {
			probs = []Problem{{File: file, Message: "the definition is empty; it needs a name and steps"}}
		}
		return nil, Problems(sortProblems(probs))
	}
	d := newDecoder(file, body)
	d.probs = probs
	w := &Workflow{File: file, CachingEnabled: true, UseCircuitBreaker: true}
	p := &reader{d: d, w: w, params: map[string]bool{}}
	p.top(body)
	if len(d.probs) > 0 {
		return nil, Problems(sortProblems(d.probs))
	}
	return w, nil
}

// reader holds what is read so far.
type reader struct {
	d      *decoder
	w      *Workflow
	params map[string]bool // declared names
	top3   settings        // top-level max_retries, retry_backoff_factor, retry_jitter
	defs   settings
	nDeps  []int // depends_on entries written, by step (inputs add theirs after)
	stepsN ast.Node
	// subst are the string fields where ${params.x} applies, checked once
	// every param is known.
	subst []substField
}

type substField struct{ path, text string }

func (p *reader) top(body ast.Node) {
	d, w := p.d, p.w
	var paramsN, defaultsN ast.Node
	haveName, haveSteps := false, false
	ok := d.fields("", body, topKeys, nil, func(key, path string, v ast.Node) {
		switch key {
		case "name":
			if s, ok := d.str(path, v); ok {
				haveName = true
				w.Name = s
				p.checkName(path, s, "letters, digits, '_', '.' and '-'", true)
			}
		case "description":
			if s, ok := d.str(path, v); ok {
				w.Description = s
				if len(s) > MaxDescLen {
					d.add(path, "is longer than %d bytes", MaxDescLen)
				}
			}
		case "category":
			if s, ok := d.str(path, v); ok {
				w.Category = s
				p.checkName(path, s, "letters, digits, '_', '.' and '-'", true)
			}
		case "params":
			paramsN = v
		case "defaults":
			defaultsN = v
		case "timeout":
			w.Timeout, _ = d.duration(path, v)
			p.checkTimeout(path, w.Timeout)
		case "caching_enabled":
			if b, ok := d.boolean(path, v); ok {
				w.CachingEnabled = b
			}
		case "use_circuit_breaker":
			if b, ok := d.boolean(path, v); ok {
				w.UseCircuitBreaker = b
			}
		case "circuit_breaker":
			p.breaker(path, v)
		case "steps":
			haveSteps = true
			p.stepsN = v
		case "max_retries", "retry_backoff_factor", "retry_jitter":
			p.setting(&p.top3, key, path, v)
		}
	})
	if !ok {
		if len(d.probs) == 0 {
			d.addAt("", *pos(body), "the definition must be a mapping with a name and steps")
		}
		return
	}
	if !haveName {
		d.addAt("name", *pos(body), "is required: a name for the workflow (letters, digits, '_', '.', '-')")
	}
	if paramsN != nil {
		p.paramList(paramsN)
	}
	if defaultsN != nil {
		d.fields("defaults", defaultsN, defaultsKeys, retryAliases, func(key, path string, v ast.Node) {
			p.setting(&p.defs, key, path, v)
		})
		for _, k := range []string{"max_retries", "retry_backoff_factor", "retry_jitter"} {
			a, b := "defaults."+k, k
			if _, ok := d.at[a]; ok {
				if _, ok := d.at[b]; ok {
					d.add(a, "%s (line %d) and %s (line %d) are the same setting; keep one", b, d.at[b].Line, a, d.at[a].Line)
				}
			}
		}
	}
	w.Defaults = p.stepDefaults()
	if !haveSteps || p.stepsN == nil {
		d.addAt("steps", *pos(body), "is required: a list of steps, each with an id and a command")
	} else {
		p.stepList(p.stepsN)
	}
	for _, f := range p.subst {
		p.checkRefs(f.path, f.text)
	}
	p.graph()
}

// checkName checks a name's characters: letters, digits, '_', '-', and '.'
// if dots.
func (p *reader) checkName(path, s, allowed string, dots bool) bool {
	switch {
	case s == "":
		p.d.add(path, "must not be empty")
		return false
	case len(s) > MaxNameLen:
		p.d.add(path, "is longer than %d characters", MaxNameLen)
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || dots && r == '.'
		if !ok || i == 0 && (r == '-' || r == '.') {
			p.d.add(path, "must be %s, not starting with '-' or '.' (got %q)", allowed, s)
			return false
		}
	}
	return true
}

func (p *reader) checkTimeout(path string, t time.Duration) {
	if t > job.MaxTimeout {
		p.d.add(path, "must be at most 720h (30 days); 0 means none")
	}
}

func (p *reader) breaker(path string, n ast.Node) {
	d, b := p.d, &p.w.CircuitBreaker
	d.fields(path, n, breakerKeys, nil, func(key, path string, v ast.Node) {
		switch key {
		case "failure_threshold":
			if i, ok := d.integer(path, v); ok {
				if i < 0 || i > 1000 {
					d.add(path, "must be between 1 and 1000, or 0 for the server's default (got %d)", i)
				}
				b.FailureThreshold = i
			}
		case "reset_timeout":
			b.ResetTimeout, _ = d.duration(path, v)
			p.checkTimeout(path, b.ResetTimeout)
		case "half_open_timeout":
			b.HalfOpenTimeout, _ = d.duration(path, v)
			p.checkTimeout(path, b.HalfOpenTimeout)
		}
	})
}

func (p *reader) paramList(n ast.Node) {
	d := p.d
	first := map[string]string{}
	d.list("params", n, func(i int, path string, v ast.Node) {
		if i == MaxParams {
			d.add("params", "has more than %d params", MaxParams)
		}
		var prm Param
		prm.Type = ParamString
		haveDefault, haveName := false, false
		ok := d.fields(path, v, paramKeys, nil, func(key, path string, v ast.Node) {
			switch key {
			case "name":
				if s, ok := d.str(path, v); ok && p.checkName(path, s, "letters, digits, '_' and '-'", false) {
					prm.Name, haveName = s, true
				}
			case "type":
				if s, ok := d.str(path, v); ok {
					switch ParamType(s) {
					case ParamString, ParamInt, ParamBool:
						prm.Type = ParamType(s)
					default:
						d.add(path, "must be string, int or bool (got %q)", s)
					}
				}
			case "default":
				if s, ok := d.str(path, v); ok {
					prm.Default, haveDefault = s, true
				}
			case "description":
				prm.Description, _ = d.str(path, v)
			}
		})
		if !ok {
			if !d.hasProblemAt(path) {
				d.add(path, "must be a mapping with a name")
			}
			return
		}
		if !haveName {
			if !d.hasProblemAt(path + ".name") {
				d.add(path, "needs a name")
			}
			return
		}
		if prev, dup := first[prm.Name]; dup {
			d.add(path+".name", "duplicate param %q (also %s)", prm.Name, prev)
			return
		}
		first[prm.Name] = path
		prm.Required = !haveDefault
		if haveDefault {
			if err := checkValue(prm.Type, prm.Default); err != nil {
				d.add(path+".default", "%v", err)
			}
		}
		p.params[prm.Name] = true
		p.w.Params = append(p.w.Params, prm)
	})
}

// checkValue checks a param's value against its type.
func checkValue(t ParamType, v string) error {
	switch t {
	case ParamInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("must be a whole number for an int param (got %q)", v)
		}
	case ParamBool:
		if v != "true" && v != "false" {
			return fmt.Errorf("must be true or false for a bool param (got %q)", v)
		}
	}
	return nil
}

// setting reads one field of a step or of defaults (or a top-level retry
// field) into s.
func (p *reader) setting(s *settings, key, path string, v ast.Node) {
	d := p.d
	str := func() *string {
		if t, ok := d.str(path, v); ok {
			return &t
		}
		return nil
	}
	switch key {
	case "image":
		if s.image = str(); s.image != nil {
			p.substitutable(path, *s.image)
			if *s.image == "" {
				d.add(path, "must not be empty")
			}
		}
	case "workdir":
		if s.workdir = str(); s.workdir != nil {
			p.substitutable(path, *s.workdir)
			p.absPath(path, *s.workdir, true)
		}
	case "env", "constraints":
		m := d.strMap(path, v)
		for _, k := range sortedKeys(m) {
			p.substitutable(joinPath(path, k), m[k])
		}
		if key == "env" {
			s.env, s.envSet = m, true
		} else {
			s.constraints, s.constraintsSet = m, true
		}
	case "timeout", "max_backoff":
		if t, ok := d.duration(path, v); ok {
			if key == "timeout" {
				p.checkTimeout(path, t)
				s.timeout = &t
			} else {
				if t > MaxBackoffCap {
					d.add(path, "must be at most %s", MaxBackoffCap)
				}
				s.maxBackoff = &t
			}
		}
	case "cache", "retry_jitter":
		if b, ok := d.boolean(path, v); ok {
			if key == "cache" {
				s.cache = &b
			} else {
				s.jitter = &b
			}
		}
	case "max_retries":
		if i, ok := d.integer(path, v); ok {
			if i < 0 || i > MaxRetries {
				d.add(path, "must be between 0 and %d (got %d)", MaxRetries, i)
			}
			s.maxRetries = &i
		}
	case "max_attempts":
		if i, ok := d.integer(path, v); ok {
			if i < 0 || i > job.MaxAttemptsLimit {
				d.add(path, "must be between 0 (the server's default) and %d (got %d)", job.MaxAttemptsLimit, i)
			}
			s.attempts = &i
		}
	case "retry_backoff_factor":
		if f, ok := d.number(path, v); ok {
			if f < 0 || f > MaxBackoffCap.Seconds() {
				d.add(path, "must be a number of seconds between 0 and %g (got %g)", MaxBackoffCap.Seconds(), f)
			}
			s.backoff = &f
		}
	case "cpus":
		if f, ok := d.number(path, v); ok {
			if f != 0 && (f < job.MinCPUs || f > job.MaxCPUs) {
				d.add(path, "must be between %g and %d cores, or 0 for no limit (got %g)", job.MinCPUs, job.MaxCPUs, f)
			}
			s.cpus = &f
		}
	case "memory":
		if m, ok := d.size(path, v); ok {
			if m != 0 && (m < job.MinMemoryBytes || m > job.MaxMemoryBytes) {
				d.add(path, "must be between 6MiB (Docker's minimum) and 1TiB, or 0 for no limit")
			}
			s.memory = &m
		}
	}
}

// substitutable records a field where ${params.x} applies.
func (p *reader) substitutable(path, text string) {
	if strings.Contains(text, "${") {
		p.subst = append(p.subst, substField{path, text})
	}
}

// checkRefs reports ${params.x} references to undeclared params and
// malformed ones.
func (p *reader) checkRefs(path, text string) {
	_, err := substitute(text, func(name string) (string, bool) {
		return "", p.params[name]
	})
	var unknown *unknownParamError
	if errors.As(err, &unknown) {
		names := make([]string, len(p.w.Params))
		for i, prm := range p.w.Params {
			names[i] = prm.Name
		}
		if s := config.Suggest(unknown.name, names); s != "" {
			p.d.add(path, "${params.%s} refers to a param the workflow does not declare; did you mean ${params.%s}?", unknown.name, s)
			return
		}
	}
	if err != nil {
		p.d.add(path, "%v", err)
	}
}

// absPath checks an absolute clean path in a container. With subst, a
// path holding a reference is checked by Resolve instead.
func (p *reader) absPath(path_, s string, subst bool) bool {
	if subst && strings.Contains(s, "${") {
		return true
	}
	switch {
	case s == "":
		p.d.add(path_, "is required: an absolute path in the container, e.g. /out")
	case len(s) > job.MaxWorkdirLen:
		p.d.add(path_, "is longer than %d bytes", job.MaxWorkdirLen)
	case !strings.HasPrefix(s, "/"):
		p.d.add(path_, "must be an absolute path, e.g. /out (got %q)", s)
	case path.Clean(s) != s:
		p.d.add(path_, "must be a clean path (no '.', '..', '//' or trailing '/'): %q", path.Clean(s))
	case s == "/" && !subst:
		p.d.add(path_, "must not be the root directory")
	default:
		return true
	}
	return false
}

// stepDefaults makes the Defaults of the workflow from defaults (and the
// top-level retry fields).
func (p *reader) stepDefaults() StepDefaults {
	s := p.defs
	var sd StepDefaults
	if s.image != nil {
		sd.Image = *s.image
	}
	if s.workdir != nil {
		sd.Workdir = *s.workdir
	}
	sd.Env, sd.Constraints = s.env, s.constraints
	if s.timeout != nil {
		sd.Timeout = *s.timeout
	}
	sd.Cache = s.cache
	sd.Retries = Retries{Max: 0, BackoffFactor: DefaultRetryBackoffFactor, MaxBackoff: DefaultMaxBackoff, Jitter: true}
	for _, lvl := range []settings{p.top3, s} {
		applyRetries(&sd.Retries, lvl)
	}
	if s.attempts != nil {
		sd.MaxAttempts = *s.attempts
	}
	if s.cpus != nil {
		sd.CPUs = *s.cpus
	}
	if s.memory != nil {
		sd.MemoryBytes = *s.memory
	}
	return sd
}

func applyRetries(r *Retries, s settings) {
	if s.maxRetries != nil {
		r.Max = *s.maxRetries
	}
	if s.backoff != nil {
		r.BackoffFactor = *s.backoff
	}
	if s.maxBackoff != nil {
		r.MaxBackoff = *s.maxBackoff
	}
	if s.jitter != nil {
		r.Jitter = *s.jitter
	}
}

func (p *reader) stepList(n ast.Node) {
	d, w := p.d, p.w
	ok := d.list("steps", n, func(i int, path string, v ast.Node) {
		if i == MaxSteps {
			d.add("steps", "has more than %d steps", MaxSteps)
		}
		if i >= MaxSteps {
			return
		}
		st := Step{Line: d.at[path].Line}
		var s settings
		isMap := d.fields(path, v, stepKeys, retryAliases, func(key, path string, v ast.Node) {
			switch key {
			case "id":
				if id, ok := d.str(path, v); ok && p.checkName(path, id, "letters, digits, '_' and '-'", false) {
					st.ID = id
				}
			case "command":
				p.command(path, v, &st)
			case "depends_on":
				deps, _ := d.strList(path, v)
				if len(deps) > MaxDependsOn {
					d.add(path, "has more than %d entries", MaxDependsOn)
					deps = deps[:MaxDependsOn]
				}
				for j, dep := range deps {
					if dep == "" {
						d.add(indexPath(path, j), "must be a step id (got nothing)")
						continue
					}
					if k := slices.Index(deps[:j], dep); k >= 0 && dep != "" {
						d.add(indexPath(path, j), "lists %q twice (also %s)", dep, indexPath(path, k))
						continue
					}
					st.DependsOn = append(st.DependsOn, dep)
				}
			case "inputs":
				p.inputs(path, v, &st)
			case "outputs":
				outs, _ := d.strList(path, v)
				if len(outs) > job.MaxArtifacts {
					d.add(path, "has more than %d entries", job.MaxArtifacts)
				}
				for j, o := range outs {
					op := indexPath(path, j)
					if !p.absPath(op, o, false) {
						continue
					}
					if k := slices.Index(outs[:j], o); k >= 0 {
						d.add(op, "%q is also %s", o, indexPath(path, k))
						continue
					}
					st.Outputs = append(st.Outputs, o)
				}
			default:
				p.setting(&s, key, path, v)
			}
		})
		if !isMap {
			if _, written := d.at[path]; written && !d.hasProblemAt(path) {
				d.add(path, "must be a mapping with an id and a command")
			}
			p.nDeps = append(p.nDeps, 0)
			w.Steps = append(w.Steps, st)
			return
		}
		if st.ID == "" && !d.hasProblemAt(path+".id") {
			d.add(path, "needs an id (letters, digits, '_' and '-')")
		}
		p.nDeps = append(p.nDeps, len(st.DependsOn))
		w.Steps = append(w.Steps, p.applyDefaults(path, st, s))
	})
	if ok && len(w.Steps) == 0 {
		d.add("steps", "must list at least one step")
	}
}

// hasProblemAt reports whether a problem names path already.
func (d *decoder) hasProblemAt(path string) bool {
	for _, pr := range d.probs {
		if pr.Field == path {
			return true
		}
	}
	return false
}

func (p *reader) command(path string, v ast.Node, st *Step) {
	d := p.d
	if r := d.resolveQuiet(v); r != nil {
		if _, isStr := scalarValue(r); isStr {
			if _, isMap := r.(*ast.MappingNode); !isMap {
				d.addAt(path, *pos(v), `must be a list of arguments, e.g. ["sh", "-c", "make test"] (a string is not split into words; write it as a list)`)
				return
			}
		}
	}
	args, ok := d.strList(path, v)
	if !ok {
		return
	}
	for j, a := range args {
		p.substitutable(indexPath(path, j), a)
	}
	if len(args) > 0 && args[0] == "" {
		d.add(indexPath(path, 0), "must not be empty: it is the program to run")
	}
	if len(args) == 0 {
		args = nil
	}
	st.Command = args
}

func (p *reader) inputs(path string, v ast.Node, st *Step) {
	d := p.d
	d.list(path, v, func(j int, ip string, v ast.Node) {
		if j == job.MaxArtifacts {
			d.add(path, "has more than %d entries", job.MaxArtifacts)
		}
		var in Input
		ok := d.fields(ip, v, inputKeys, nil, func(key, kp string, v ast.Node) {
			s, _ := d.str(kp, v)
			switch key {
			case "from":
				in.From = s
			case "path":
				in.Path = s
			case "at":
				in.At = s
			}
		})
		if !ok {
			if !d.hasProblemAt(ip) {
				d.add(ip, "must be a mapping with from and path")
			}
			return
		}
		for _, f := range []struct{ k, v string }{{"from", in.From}, {"path", in.Path}} {
			if k := f.k; f.v == "" && !d.hasProblemAt(ip+"."+k) {
				d.add(ip, "needs %s: the step and the output path it names", k)
			}
		}
		if _, ok := d.at[ip+".at"]; ok {
			p.absPath(ip+".at", in.At, false)
		} else {
			in.At = in.Path
		}
		st.Inputs = append(st.Inputs, in)
	})
}

// applyDefaults gives st the fields it does not write from the defaults.
func (p *reader) applyDefaults(path string, st Step, s settings) Step {
	sd := p.w.Defaults
	st.Image = sd.Image
	if s.image != nil {
		st.Image = *s.image
	}
	if st.Image == "" && s.image == nil {
		p.d.add(path, "needs an image: set image here or in defaults")
	}
	st.Workdir = sd.Workdir
	if s.workdir != nil {
		st.Workdir = *s.workdir
	}
	st.Env = merge(sd.Env, s.env)
	st.Constraints = merge(sd.Constraints, s.constraints)
	st.Timeout = sd.Timeout
	if s.timeout != nil {
		st.Timeout = *s.timeout
	}
	st.Cache = p.w.CachingEnabled
	if sd.Cache != nil {
		st.Cache = *sd.Cache
	}
	if s.cache != nil {
		st.Cache = *s.cache
	}
	st.Retries = sd.Retries
	applyRetries(&st.Retries, s)
	st.MaxAttempts, st.CPUs, st.MemoryBytes = sd.MaxAttempts, sd.CPUs, sd.MemoryBytes
	if s.attempts != nil {
		st.MaxAttempts = *s.attempts
	}
	if s.cpus != nil {
		st.CPUs = *s.cpus
	}
	if s.memory != nil {
		st.MemoryBytes = *s.memory
	}
	// Inputs add their steps to depends_on.
	for _, in := range st.Inputs {
		if in.From != "" && !slices.Contains(st.DependsOn, in.From) {
			st.DependsOn = append(st.DependsOn, in.From)
		}
	}
	return st
}

// merge returns base with over's entries on top; nil if both are empty.
func merge(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// graph checks the steps' references: duplicate ids, unknown depends_on and
// inputs, inputs naming undeclared outputs, and cycles.
func (p *reader) graph() {
	d, w := p.d, p.w
	index := map[string]int{}
	for i, st := range w.Steps {
		if st.ID == "" {
			continue
		}
		if j, dup := index[st.ID]; dup {
			d.add(indexPath("steps", i)+".id", "duplicate step id %q (also steps[%d], line %d)", st.ID, j, w.Steps[j].Line)
			continue
		}
		index[st.ID] = i
	}
	ids := make([]string, 0, len(index))
	for _, st := range w.Steps {
		if st.ID != "" {
			ids = append(ids, st.ID)
		}
	}
	unknown := func(path, id string) {
		msg := fmt.Sprintf("unknown step %q", id)
		if s := suggestID(id, ids); s != "" {
			msg += "; did you mean " + s + "?"
		}
		d.add(path, "%s", msg)
	}
	for i, st := range w.Steps {
		sp := indexPath("steps", i)
		for j, dep := range st.DependsOn[:p.nDeps[i]] {
			if _, ok := index[dep]; !ok && dep != "" {
				unknown(indexPath(sp+".depends_on", j), dep)
			} else if dep == st.ID {
				d.add(indexPath(sp+".depends_on", j), "dependency cycle: %s -> %s (a step cannot depend on itself)", dep, dep)
			}
		}
		ats := map[string]int{}
		for j, in := range st.Inputs {
			ip := indexPath(sp+".inputs", j)
			k, ok := index[in.From]
			switch {
			case in.From == "":
			case in.From == st.ID:
				d.add(ip+".from", "a step cannot take its own output as an input")
			case !ok:
				unknown(ip+".from", in.From)
			case !slices.Contains(w.Steps[k].Outputs, in.Path):
				outs := "declares no outputs"
				if o := w.Steps[k].Outputs; len(o) > 0 {
					outs = "declares " + strings.Join(o, ", ")
				}
				d.add(ip+".path", "step %q does not declare the output %q (it %s)", in.From, in.Path, outs)
			}
			if in.At == "" {
				continue
			}
			if prev, dup := ats[in.At]; dup {
				d.add(ip+".at", "inputs[%d] is unpacked at %s too; give one of them another at", prev, in.At)
			}
			ats[in.At] = j
		}
	}
	for _, c := range cycles(w.Steps, index) {
		names := make([]string, len(c))
		for i, k := range c {
			names[i] = w.Steps[k].ID
		}
		d.add(indexPath("steps", c[0])+".depends_on", "dependency cycle: %s", strings.Join(names, " -> "))
	}
}

func suggestID(id string, ids []string) string {
	for _, c := range ids {
		if strings.EqualFold(c, id) {
			return c
		}
	}
	return config.Suggest(id, ids)
}

// cycles finds the cycles of the dependency graph, at least one in every
// group of steps that depend on each other, each as step indexes from a
// step back to itself.
func cycles(steps []Step, index map[string]int) [][]int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(steps))
	var stack []int
	var found [][]int
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, dep := range steps[i].DependsOn {
			j, ok := index[dep]
			if !ok || j == i { // unknown, or itself: reported on their own
				continue
			}
			switch color[j] {
			case white:
				visit(j)
			case grey:
				// stack[k:] runs from j to i, each depending on the next;
				// name it in the order it would run (a -> b: b needs a),
				// from its first step in the file.
				c := slices.Clone(stack[slices.Index(stack, j):])
				slices.Reverse(c)
				m := slices.Index(c, slices.Min(c))
				c = slices.Concat(c[m:], c[:m])
				found = append(found, append(c, c[0]))
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range steps {
		if color[i] == white {
			visit(i)
		}
	}
	return found
}
