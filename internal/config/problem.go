package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is, which field,
// and what is wrong with it and what to do.
type Problem struct {
	File    string // the config file; "" when the value did not come from one
	Line    int    // 1-based; 0 when unknown
	Column  int    // 1-based; 0 when unknown
	Env     string // the environment variable the value came from, if it did
	Field   string // the field's path, e.g. hosts[1].capacity; "" for the file as a whole
	Message string // what is wrong and what to do, e.g. "must be at least 1 (got -2)"

	err error // the cause, if any (e.g. fs.ErrNotExist), for Problems.Unwrap
}

// String formats p as "file:line:col: field: message", or
// "$VAR: field: message" for a value from the environment, leaving out what
// is unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Env != "":
		b.WriteString("$" + p.Env)
	case p.Line > 0:
		b.WriteString(p.File)
		if p.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	default:
		b.WriteString(p.File)
	}
	for _, s := range []string{p.Field, p.Message} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Problems is the error Load, Parse and Validate return: every problem found,
// in file order (problems without a line last). Use errors.As to get it.
type Problems []Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	if len(ps) > 1 {
		return fmt.Sprintf("%d config problems:\n%s", len(ps), strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the causes behind the problems that have one, so that, for
// example, errors.Is(err, fs.ErrNotExist) tells a missing file.
func (ps Problems) Unwrap() []error {
	var errs []error
	for _, p := range ps {
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	return errs
}

func problemsErr(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return Problems(ps)
}

// origin is where a value came from: a position in the file or a variable.
type origin struct {
	line, col int
	env       string
}

// sources records the origin of each value set by the file or the
// environment, by field path. A nil *sources records nothing.
type sources struct {
	file   string
	at     map[string]origin
	broken map[string]bool // paths whose value could not be read, so is still the default
}

func newSources(file string) *sources {
	return &sources{file: file, at: map[string]origin{}, broken: map[string]bool{}}
}

// markBroken records that the value at path could not be read: validation
// says nothing more about it, rather than judge the default left in its place.
func (s *sources) markBroken(path string) {
	if s != nil && path != "" {
		s.broken[path] = true
	}
}

// isBroken reports whether the value at path, or one it is inside, could not
// be read.
func (s *sources) isBroken(path string) bool {
	if s == nil {
		return false
	}
	for p := path; p != ""; p = parentPath(p) {
		if s.broken[p] {
			return true
		}
	}
	return false
}

func (s *sources) set(path string, line, col int) {
	if s != nil {
		s.at[path] = origin{line: line, col: col}
	}
}

func (s *sources) setEnv(path, env string) {
	if s != nil {
		s.at[path] = origin{env: env}
	}
}

// clear forgets the origins of path and of everything inside it.
func (s *sources) clear(path string) {
	if s == nil {
		return
	}
	inside := func(p string) bool {
		return p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[")
	}
	for p := range s.at {
		if inside(p) {
			delete(s.at, p)
		}
	}
	for p := range s.broken {
		if inside(p) {
			delete(s.broken, p)
		}
	}
}

// has reports whether the value at path came from the file or the
// environment.
func (s *sources) has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.at[path]
	return ok
}

// problem makes a problem for path, placed where its value (or, failing
// that, its nearest enclosing value) came from.
func (s *sources) problem(path, msg string) Problem {
	p := Problem{Field: path, Message: msg}
	if s == nil {
		return p
	}
	p.File = s.file
	for q := path; q != ""; q = parentPath(q) {
		if o, ok := s.at[q]; ok {
			p.Line, p.Column, p.Env = o.line, o.col, o.env
			if o.env != "" {
				p.File = ""
			}
			break
		}
	}
	return p
}

// parentPath returns hosts[1] for hosts[1].tls, hosts for hosts[1], and ""
// for a top-level field.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// joinPath appends a key to a field path.
func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// sortProblems puts problems in file order, those without a line last, and
// drops exact duplicates.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return slices.CompactFunc(ps, func(a, b Problem) bool {
		return a.File == b.File && a.Line == b.Line && a.Column == b.Column && a.Env == b.Env &&
			a.Field == b.Field && a.Message == b.Message
	})
}

// Suggest returns the candidate closest to name, if it is close enough to be
// a likely typo, or "". Other file formats (workflow definitions) use it for
// their "did you mean" hints.
func Suggest(name string, candidates []string) string { return suggest(name, candidates) }

// suggest returns the candidate closest to name, if it is close enough to be
// a likely typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(name)/3) || bestD >= len(name) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting an
// adjacent swap as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
