package def

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"fusebox/internal/config"
)

// decoder walks the YAML syntax tree of a definition, recording where each
// field is (by path, e.g. steps[1].inputs[0].from) and collecting every
// problem instead of stopping at the first.
type decoder struct {
	file    string
	probs   []Problem
	at      map[string]token.Position // where the value at a path was written
	anchors map[string][]ast.Node     // by name, in document order
	budget  int                       // nodes left to visit; bounds alias and merge expansion
}

// maxNodes bounds the work of one decode, so that aliases and merge keys that
// expand exponentially cannot hang fusebox.
const maxNodes = 100_000

// maxAliasDepth bounds chains of aliases and nested merge keys.
const maxAliasDepth = 32

// entry is one key: value of a mapping, after merge keys (<<) are expanded.
type entry struct {
	key    string
	keyPos token.Position
	value  ast.Node
	merged bool // from a << merge, overridden by any key written in place
}

func newDecoder(file string, body ast.Node) *decoder {
	d := &decoder{file: file, at: map[string]token.Position{}, anchors: map[string][]ast.Node{}, budget: maxNodes}
	d.collectAnchors(body, 0)
	return d
}

// addAt adds a problem for path at a position.
func (d *decoder) addAt(path string, at token.Position, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: at.Line, Column: at.Column, Field: path, Message: fmt.Sprintf(format, args...)})
}

// add adds a problem for path, placed where its value (or, failing that, its
// nearest enclosing value) was written.
func (d *decoder) add(path string, format string, args ...any) {
	d.addAt(path, d.where(path), format, args...)
}

// where returns the position recorded for path or the nearest path it is
// inside.
func (d *decoder) where(path string) token.Position {
	for p := path; ; p = parentPath(p) {
		if at, ok := d.at[p]; ok {
			return at
		}
		if p == "" {
			return token.Position{}
		}
	}
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if depth > 1000 {
		return
	}
	switch n := n.(type) {
	case *ast.AnchorNode:
		if name := scalarText(n.Name); name != "" {
			d.anchors[name] = append(d.anchors[name], n)
		}
		d.collectAnchors(n.Value, depth+1)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			d.collectAnchors(mv.Key, depth+1)
			d.collectAnchors(mv.Value, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(n.Key, depth+1)
		d.collectAnchors(n.Value, depth+1)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			d.collectAnchors(v, depth+1)
		}
	case *ast.TagNode:
		d.collectAnchors(n.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(n.Value, depth+1)
	}
}

// resolve looks through anchors, tags and aliases to the node that holds the
// value, and spends one unit of the budget. It returns nil (after adding a
// problem) for an alias it cannot resolve or when the budget is spent; a
// null value is returned as nil with no problem, meaning "not set".
func (d *decoder) resolve(path string, n ast.Node) ast.Node {
	where := *pos(n)
	d.budget--
	if d.budget == 0 {
		d.addAt(path, where, "the document expands to more than %d values (aliases or merge keys nest too much)", maxNodes)
	}
	if d.budget <= 0 {
		return nil
	}
	for range maxAliasDepth {
		switch v := n.(type) {
		case nil, *ast.NullNode:
			return nil
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingKeyNode:
			n = v.Value
		case *ast.AliasNode:
			name := scalarText(v.Value)
			var target ast.Node
			for _, a := range d.anchors[name] { // the last anchor before the alias
				if a.GetToken().Position.Offset < v.GetToken().Position.Offset {
					target = a
				}
			}
			if target == nil {
				d.addAt(path, where, "unknown anchor *%s (an anchor must be defined with &%s before it is used)", name, name)
				return nil
			}
			n = target
		default:
			return n
		}
	}
	d.addAt(path, where, "aliases nest too deeply")
	return nil
}

// entries lists the keys of m: those written in it, then those merged into it
// with << that it does not write itself.
func (d *decoder) entries(path string, m *ast.MappingNode, depth int) []entry {
	var own, merged []entry
	have := map[string]bool{}
	for _, mv := range m.Values {
		if mv.Key.IsMergeKey() {
			if depth > maxAliasDepth {
				d.addAt(path, *pos(mv.Key), "merge keys nest too deeply")
				continue
			}
			src := d.resolve(path, mv.Value)
			sources := []ast.Node{src}
			if s, ok := src.(*ast.SequenceNode); ok {
				sources = s.Values
			}
			for _, s := range sources {
				r := d.resolve(path, s)
				if r == nil {
					continue
				}
				sm, ok := r.(*ast.MappingNode)
				if !ok {
					d.addAt(path, *pos(mv.Key), "<< must merge a mapping or a list of mappings (got %s)", describe(r))
					continue
				}
				for _, e := range d.entries(path, sm, depth+1) {
					e.merged = true
					merged = append(merged, e)
				}
			}
			continue
		}
		k := d.resolve(path, mv.Key)
		key, ok := scalarValue(k)
		if !ok {
			d.addAt(path, *pos(mv.Key), "keys must be plain names (got %s)", describe(k))
			continue
		}
		have[key] = true
		own = append(own, entry{key: key, keyPos: *pos(mv.Key), value: mv.Value})
	}
	for _, e := range merged { // the first merged source wins, as in YAML
		if !have[e.key] {
			have[e.key] = true
			own = append(own, e)
		}
	}
	return own
}

// fields reads the mapping n of a section whose keys are known: each key
// (or an alias of one, from aliases: old name -> key) is passed to set with
// its canonical name and its path; unknown and duplicate keys are problems.
// It reports false if n is not a mapping (or not set).
func (d *decoder) fields(path string, n ast.Node, known []string, aliases map[string]string, set func(key, path string, v ast.Node)) bool {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return false
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.addAt(path, where, "must be a mapping of settings (got %s)", describe(n))
		return false
	}
	first := map[string]entry{}
	for _, e := range d.entries(path, m, 0) {
		key := e.key
		if a, ok := aliases[key]; ok {
			key = a
		}
		p := joinPath(path, key)
		if !contains(known, key) {
			msg := "unknown field"
			cands := append([]string(nil), known...)
			for a := range aliases {
				cands = append(cands, a)
			}
			if s := config.Suggest(e.key, cands); s != "" {
				msg += "; did you mean " + s + "?"
			} else {
				msg += "; known fields are " + strings.Join(known, ", ")
			}
			d.addAt(joinPath(path, e.key), e.keyPos, "%s", msg)
			continue
		}
		if prev, dup := first[key]; dup {
			switch {
			case e.merged:
			case prev.key == e.key:
				d.addAt(p, e.keyPos, "duplicate key (first set on line %d); keep one", prev.keyPos.Line)
			default:
				d.addAt(p, e.keyPos, "%s (line %d) and %s (line %d) are the same setting; keep one", prev.key, prev.keyPos.Line, e.key, e.keyPos.Line)
			}
			continue
		}
		first[key] = e
		d.at[p] = e.keyPos
		set(key, p, e.value)
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// list reads the sequence n, passing each element to each with its path.
// It reports false if n is not a list (or not set).
func (d *decoder) list(path string, n ast.Node, each func(i int, path string, v ast.Node)) bool {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return false
	}
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		d.addAt(path, where, "must be a list (got %s)", describe(n))
		return false
	}
	for i, v := range s.Values {
		p := indexPath(path, i)
		d.at[p] = *pos(v)
		each(i, p, v)
	}
	return true
}

// str reads a string (or the text of a number or boolean). ok is false if
// it is not set or not a string (then with a problem).
func (d *decoder) str(path string, n ast.Node) (string, bool) {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return "", false
	}
	s, ok := scalarValue(n)
	if !ok {
		d.addAt(path, where, "must be a string (got %s)", describe(n))
		return "", false
	}
	switch {
	case !utf8.ValidString(s):
		d.addAt(path, where, "must be valid UTF-8 text")
		return "", false
	case strings.ContainsRune(s, 0):
		d.addAt(path, where, "must not contain a NUL byte")
		return "", false
	}
	return s, true
}

// strList reads a list of strings.
func (d *decoder) strList(path string, n ast.Node) ([]string, bool) {
	var out []string
	ok := d.list(path, n, func(_ int, p string, v ast.Node) {
		s, _ := d.str(p, v)
		out = append(out, s)
	})
	return out, ok
}

// strMap reads a mapping of names to strings (env, constraints).
func (d *decoder) strMap(path string, n ast.Node) map[string]string {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return nil
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.addAt(path, where, "must be a mapping of names to strings (got %s)", describe(n))
		return nil
	}
	out := map[string]string{}
	first := map[string]token.Position{}
	for _, e := range d.entries(path, m, 0) {
		p := joinPath(path, e.key)
		if at, dup := first[e.key]; dup {
			if !e.merged {
				d.addAt(p, e.keyPos, "duplicate key (first set on line %d); keep one", at.Line)
			}
			continue
		}
		first[e.key] = e.keyPos
		d.at[p] = e.keyPos
		switch {
		case e.key == "":
			d.addAt(path, e.keyPos, "has an empty name")
			continue
		case !utf8.ValidString(e.key) || strings.ContainsAny(e.key, "=\x00"):
			d.addAt(p, e.keyPos, `the name must be valid UTF-8 without "=" or NUL`)
			continue
		}
		if _, null := d.resolveQuiet(e.value).(*ast.NullNode); null {
			out[e.key] = ""
			continue
		}
		if s, ok := d.str(p, e.value); ok {
			out[e.key] = s
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// resolveQuiet looks through anchors and tags (not aliases) without
// spending budget, to tell a null written in place.
func (d *decoder) resolveQuiet(n ast.Node) ast.Node {
	for range maxAliasDepth {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

// integer reads a whole number.
func (d *decoder) integer(path string, n ast.Node) (int, bool) {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return 0, false
	}
	i, ok := n.(*ast.IntegerNode)
	if !ok {
		d.addAt(path, where, "must be a whole number (got %s)", describe(n))
		return 0, false
	}
	switch x := i.Value.(type) {
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int(x), true
		}
	case uint64:
		if x <= math.MaxInt32 {
			return int(x), true
		}
	}
	d.addAt(path, where, "is too large (got %s)", describe(n))
	return 0, false
}

// number reads a finite number.
func (d *decoder) number(path string, n ast.Node) (float64, bool) {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return 0, false
	}
	var f float64
	switch x := n.(type) {
	case *ast.IntegerNode:
		f, _ = strconv.ParseFloat(fmt.Sprint(x.Value), 64)
	case *ast.FloatNode:
		f = x.Value
	case *ast.StringNode:
		// The parser reads some floats (1e3) as strings; take them when
		// written without quotes.
		v, err := strconv.ParseFloat(x.Value, 64)
		if err != nil || x.GetToken().Type != token.StringType || strings.ContainsAny(x.Value, "xXpP_nNiI") {
			d.addAt(path, where, "must be a number (got %s)", describe(n))
			return 0, false
		}
		f = v
	default:
		d.addAt(path, where, "must be a number (got %s)", describe(n))
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.addAt(path, where, "must be a finite number (got %s)", describe(n))
		return 0, false
	}
	return f, true
}

// boolean reads true or false.
func (d *decoder) boolean(path string, n ast.Node) (bool, bool) {
	where := *pos(n)
	n = d.resolve(path, n)
	if n == nil {
		return false, false
	}
	b, ok := n.(*ast.BoolNode)
	if !ok {
		d.addAt(path, where, "must be true or false (got %s)", describe(n))
		return false, false
	}
	return b.Value, true
}

// duration reads a Go duration such as "30s"; a bare number other than 0 is
// refused (the unit must be written), and so is a negative one.
func (d *decoder) duration(path string, n ast.Node) (time.Duration, bool) {
	where := *pos(n)
	text, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	t := strings.TrimSpace(text)
	if _, err := strconv.ParseFloat(t, 64); err == nil && t != "0" {
		d.addAt(path, where, "needs a unit: write %q (or ms, m, h) (got %s)", t+"s", t)
		return 0, false
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		d.addAt(path, where, `must be a duration such as "30s", "1m30s" or "500ms" (got %q)`, text)
		return 0, false
	}
	if v < 0 {
		d.addAt(path, where, "must not be negative (got %s)", text)
		return 0, false
	}
	return v, true
}

// size reads a memory size: bytes, Docker's units (64m, 1g: powers of
// 1024, b k m g t, either case) or config.ParseSize's (64MiB, 1GB).
func (d *decoder) size(path string, n ast.Node) (int64, bool) {
	where := *pos(n)
	text, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	v, err := parseMemory(text)
	if err != nil {
		d.addAt(path, where, "%v", err)
		return 0, false
	}
	return v, true
}

// parseMemory reads a size as size does.
func parseMemory(text string) (int64, error) {
	t := strings.TrimSpace(text)
	if i := len(t) - 1; i > 0 && t[i-1] >= '0' && t[i-1] <= '9' {
		if shift, ok := map[byte]uint{'b': 0, 'k': 10, 'm': 20, 'g': 30, 't': 40}[t[i]|0x20]; ok {
			n, err := strconv.ParseInt(t[:i], 10, 64)
			if err != nil || n < 0 || n > math.MaxInt64>>shift {
				return 0, fmt.Errorf("must be a size like 64m, 512MiB or 1GiB (got %q)", text)
			}
			return n << shift, nil
		}
	}
	s, err := config.ParseSize(t)
	if err != nil {
		return 0, fmt.Errorf("must be a size like 64m, 512MiB or 1GiB (got %q)", text)
	}
	return int64(s), nil
}

// The YAML source helpers are the config package's: a definition is read
// as the configuration file is.
func parseYAML(file string, data []byte) (ast.Node, []Problem) { return config.ParseYAML(file, data) }
func pos(n ast.Node) *token.Position                           { return config.NodePos(n) }
func scalarValue(n ast.Node) (string, bool)                    { return config.ScalarValue(n) }
func describe(n ast.Node) string                               { return config.DescribeNode(n) }
func parentPath(p string) string                               { return config.ParentPath(p) }
func joinPath(parent, key string) string                       { return config.JoinPath(parent, key) }

func scalarText(n ast.Node) string {
	s, _ := scalarValue(n)
	return s
}
