package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// decoder walks the YAML syntax tree onto a Config by the yaml tags of its
// fields, recording where each value came from and collecting every problem
// instead of stopping at the first.
type decoder struct {
	src     *sources
	probs   []Problem
	anchors map[string][]ast.Node // by name, in document order
	budget  int                   // nodes left to visit; bounds alias and merge expansion
}

// maxNodes bounds the work of one decode, so that aliases and merge keys that
// expand exponentially cannot hang fusebox.
const maxNodes = 100_000

// maxAliasDepth bounds chains of aliases.
const maxAliasDepth = 32

func newDecoder(src *sources, body ast.Node) *decoder {
	d := &decoder{src: src, anchors: map[string][]ast.Node{}, budget: maxNodes}
	d.collectAnchors(body)
	return d
}

func (d *decoder) add(path string, at *token.Position, format string, args ...any) {
	p := Problem{File: d.src.file, Field: path, Message: fmt.Sprintf(format, args...)}
	if at != nil {
		p.Line, p.Column = at.Line, at.Column
	}
	d.probs = append(d.probs, p)
	d.src.markBroken(path)
}

// collectAnchors records every &anchor of the document.
func (d *decoder) collectAnchors(n ast.Node) {
	switch n := n.(type) {
	case *ast.AnchorNode:
		if name := scalarText(n.Name); name != "" {
			d.anchors[name] = append(d.anchors[name], n)
		}
		d.collectAnchors(n.Value)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			d.collectAnchors(mv.Key)
			d.collectAnchors(mv.Value)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(n.Key)
		d.collectAnchors(n.Value)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			d.collectAnchors(v)
		}
	case *ast.TagNode:
		d.collectAnchors(n.Value)
	case *ast.MappingKeyNode:
		d.collectAnchors(n.Value)
	}
}

// resolve looks through anchors, tags and aliases to the node that holds the
// value. It returns nil (after adding a problem) for an alias it cannot
// resolve.
func (d *decoder) resolve(path string, n ast.Node) ast.Node {
	for range maxAliasDepth {
		switch v := n.(type) {
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
				d.add(path, pos(v), "unknown anchor *%s (an anchor must be defined with &%s before it is used)", name, name)
				return nil
			}
			n = target
		default:
			return n
		}
	}
	d.add(path, pos(n), "aliases nest too deeply")
	return nil
}

// spend uses one unit of the budget; it reports false (once adding a problem)
// when the budget is spent.
func (d *decoder) spend(at *token.Position) bool {
	d.budget--
	if d.budget == 0 {
		d.add("", at, "the document expands to more than %d values (aliases or merge keys nest too much)", maxNodes)
	}
	return d.budget > 0
}

// decode sets v, of any type used in Config, from n; at is the position of
// the key that introduced n (nil for a list element).
func (d *decoder) decode(path string, n ast.Node, v reflect.Value, at *token.Position) {
	if at == nil || isScalar(n) {
		at = pos(n)
	}
	d.src.set(path, at.Line, at.Column)
	where := pos(n)
	n = d.resolve(path, n)
	if n == nil || !d.spend(where) {
		return
	}
	t := v.Type()
	if _, ok := n.(*ast.NullNode); ok {
		// null (or nothing after the colon) means the default; for an
		// optional section, that the section is off.
		if t.Kind() == reflect.Pointer {
			v.SetZero()
		}
		return
	}
	bad := func(want string) { d.add(path, where, "must be %s (got %s)", want, describe(n)) }
	switch {
	case t == durationType:
		text, ok := scalarValue(n)
		if !ok {
			bad(`a duration such as "30s"`)
			return
		}
		dur, err := parseDuration(text)
		if err != nil {
			d.add(path, where, "%v", err)
			return
		}
		v.SetInt(int64(dur))
	case t == sizeType:
		text, ok := scalarValue(n)
		if !ok {
			bad(`a size such as "1MiB" or a number of bytes`)
			return
		}
		s, err := ParseSize(text)
		if err != nil {
			d.add(path, where, "%v", err)
			return
		}
		v.SetInt(int64(s))
	case t.Kind() == reflect.String:
		text, ok := scalarValue(n)
		if !ok {
			bad("a string")
			return
		}
		v.SetString(text)
	case t.Kind() == reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			bad("true or false")
			return
		}
		v.SetBool(b.Value)
	case t.Kind() == reflect.Int:
		i, ok := n.(*ast.IntegerNode)
		if !ok {
			bad("a whole number")
			return
		}
		switch x := i.Value.(type) {
		case int64:
			v.SetInt(x)
		case uint64:
			if x > math.MaxInt64 {
				d.add(path, where, "is too large (got %s)", describe(n))
				return
			}
			v.SetInt(int64(x))
		}
	case t.Kind() == reflect.Float64:
		switch x := n.(type) {
		case *ast.IntegerNode:
			f, _ := strconv.ParseFloat(fmt.Sprint(x.Value), 64)
			v.SetFloat(f)
		case *ast.FloatNode:
			v.SetFloat(x.Value)
		case *ast.StringNode:
			// The parser reads some YAML floats (1e3) as strings; take them
			// when written without quotes.
			f, err := strconv.ParseFloat(x.Value, 64)
			if err != nil || !isNumber(x.Value) || x.GetToken().Type != token.StringType {
				bad("a number")
				return
			}
			v.SetFloat(f)
		default:
			bad("a number")
		}
	case t.Kind() == reflect.Struct:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			bad("a mapping of settings")
			return
		}
		d.structMapping(path, m, v)
	case t.Kind() == reflect.Pointer:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			bad("a mapping of settings (or null to leave it off)")
			return
		}
		if v.IsNil() {
			v.Set(newValue(t.Elem()))
		}
		d.structMapping(path, m, v.Elem())
	case t.Kind() == reflect.Slice:
		s, ok := n.(*ast.SequenceNode)
		if !ok {
			bad("a list")
			return
		}
		d.src.clear(path)
		d.src.set(path, at.Line, at.Column)
		list := reflect.MakeSlice(t, len(s.Values), len(s.Values))
		for i, e := range s.Values {
			list.Index(i).Set(newValue(t.Elem()).Elem())
			d.decode(fmt.Sprintf("%s[%d]", path, i), e, list.Index(i), nil)
		}
		v.Set(list)
	case t.Kind() == reflect.Map:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			bad("a mapping of names to strings")
			return
		}
		d.stringMap(path, m, v)
	default:
		panic("config: unsupported field type " + t.String())
	}
}

// entry is one key: value of a mapping, after merge keys (<<) are expanded.
type entry struct {
	key    string
	keyPos *token.Position
	value  ast.Node
	merged bool // from a << merge, overridden by any key written in place
}

// entries lists the keys of m: those written in it, then those merged into it
// with << that it does not write itself.
func (d *decoder) entries(path string, m *ast.MappingNode, depth int) []entry {
	var own, merged []entry
	have := map[string]bool{}
	for _, mv := range m.Values {
		if !d.spend(pos(mv.Key)) {
			return own
		}
		if mv.Key.IsMergeKey() {
			if depth > maxAliasDepth {
				d.add(path, pos(mv.Key), "merge keys nest too deeply")
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
					d.add(path, pos(mv.Key), "<< must merge a mapping or a list of mappings (got %s)", describe(r))
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
			d.add(path, pos(mv.Key), "keys must be plain names (got %s)", describe(k))
			continue
		}
		have[key] = true
		own = append(own, entry{key: key, keyPos: pos(mv.Key), value: mv.Value})
	}
	for _, e := range merged { // the first merged source wins, as in YAML
		if !have[e.key] {
			have[e.key] = true
			own = append(own, e)
		}
	}
	return own
}

// structMapping sets the fields of the struct v from the keys of m.
func (d *decoder) structMapping(path string, m *ast.MappingNode, v reflect.Value) {
	fields := fieldsOf(v.Type())
	set := map[string]entry{} // canonical name -> entry that set it
	var moved []entry
	for _, e := range d.entries(path, m, 0) {
		f, ok := lookupField(fields, e.key)
		if !ok {
			switch {
			case path == "" && movedKeys[e.key] != "":
				if prev, dup := set["moved:"+e.key]; dup {
					if !e.merged {
						d.add(movedKeys[e.key], e.keyPos, "duplicate key %s (first set on line %d); keep one", e.key, prev.keyPos.Line)
					}
					continue
				}
				set["moved:"+e.key] = e
				moved = append(moved, e)
			case path == "" && strings.HasPrefix(e.key, "x-"):
				// Extension keys (for anchors) are ignored, as in Compose files.
			default:
				d.unknown(joinPath(path, e.key), e, fields)
			}
			continue
		}
		if prev, dup := set[f.name]; dup {
			switch {
			case e.merged:
			case prev.key == e.key:
				d.add(joinPath(path, e.key), e.keyPos, "duplicate key (first set on line %d); keep one", prev.keyPos.Line)
			default:
				d.add(joinPath(path, f.name), e.keyPos, "%s (line %d) and %s (line %d) are the same setting (%s is its old name); keep one",
					prev.key, prev.keyPos.Line, e.key, e.keyPos.Line, strings.Join(f.aliases, ", "))
			}
			continue
		}
		set[f.name] = e
		d.decode(joinPath(path, f.name), e.value, v.Field(f.index), e.keyPos)
	}
	for _, e := range moved {
		target := movedKeys[e.key]
		if o, ok := d.src.at[target]; ok {
			d.add(target, e.keyPos, "%s (line %d) and %s (line %d) are the same setting (%s is its old name); keep %s",
				e.key, e.keyPos.Line, target, o.line, e.key, target)
			continue
		}
		d.decode(target, e.value, fieldByPath(v, target), e.keyPos)
	}
}

// unknown reports a key that names no field, with the closest known key.
func (d *decoder) unknown(path string, e entry, fields []fieldInfo) {
	msg := "unknown field"
	if s := suggest(e.key, fieldNames(fields)); s != "" {
		msg += "; did you mean " + s + "?"
	} else if ps := pathsNamed(strings.ToLower(e.key)); len(ps) == 1 {
		msg += "; did you mean " + ps[0] + "?"
	} else if len(ps) > 1 {
		msg += "; " + e.key + " belongs in one of " + strings.Join(ps, ", ")
	}
	d.add(path, e.keyPos, "%s", msg)
}

// stringMap sets the map[string]string v (labels) from m.
func (d *decoder) stringMap(path string, m *ast.MappingNode, v reflect.Value) {
	out := map[string]string{}
	first := map[string]*token.Position{}
	for _, e := range d.entries(path, m, 0) {
		p := joinPath(path, e.key)
		if at, dup := first[e.key]; dup {
			if !e.merged {
				d.add(p, e.keyPos, "duplicate key (first set on line %d); keep one", at.Line)
			}
			continue
		}
		first[e.key] = e.keyPos
		val := d.resolve(p, e.value)
		if val == nil {
			continue
		}
		if _, null := val.(*ast.NullNode); null {
			out[e.key] = ""
			continue
		}
		text, ok := scalarValue(val)
		if !ok {
			d.add(p, pos(e.value), "must be a string (got %s)", describe(val))
			continue
		}
		out[e.key] = text
	}
	if len(out) == 0 {
		v.SetZero()
		return
	}
	v.Set(reflect.ValueOf(out))
}

// pos returns where n starts.
func pos(n ast.Node) *token.Position {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
		return pos(m.Values[0].Key)
	}
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return &token.Position{}
	}
	return n.GetToken().Position
}

func isScalar(n ast.Node) bool {
	_, ok := scalarValue(n)
	return ok
}

// scalarValue returns the text of a scalar node: the value of a string, the
// source text of a number or boolean.
func scalarValue(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		if n.Value == nil {
			return "", true
		}
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// scalarText is scalarValue's text, or "" for anything else.
func scalarText(n ast.Node) string {
	s, _ := scalarValue(n)
	return s
}

// describe names what a node is, for "got ..." in a message.
func describe(n ast.Node) string {
	switch n := n.(type) {
	case nil:
		return "nothing"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "null"
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := scalarValue(n)
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return strconv.Quote(s)
	case *ast.AliasNode:
		return "*" + scalarText(n.Value)
	}
	if s, ok := scalarValue(n); ok {
		return s
	}
	return n.Type().String()
}
