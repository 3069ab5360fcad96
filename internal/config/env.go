package config

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts the name of every environment variable that overrides a
// field: FUSEBOX_ then the field's path upper-cased, with "_" for ".", e.g.
// FUSEBOX_CIRCUIT_BREAKER_FAILURE_THRESHOLD.
const EnvPrefix = "FUSEBOX_"

// EnvHosts replaces the host list: "h1=unix:///a.sock,h2=tcp://10.0.0.2:2376".
const EnvHosts = EnvPrefix + "HOSTS"

// legacyEnv are the variables of the system fusebox replaces, accepted with
// the same meaning. A FUSEBOX_ variable for the same field wins.
var legacyEnv = []struct{ name, path string }{
	{"CIRCUIT_BREAKER_ENABLED", "circuit_breaker.enabled"},
	{"CIRCUIT_BREAKER_FAILURE_THRESHOLD", "circuit_breaker.failure_threshold"},
	{"CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "circuit_breaker.recovery_timeout"},
	{"MAX_QUEUED_JOBS", "queue.max_queued_jobs"},
}

// geteuid is os.Geteuid, replaceable in tests.
var geteuid = os.Geteuid

// lookupFunc reads an environment variable; a nil one reads nothing.
type lookupFunc func(string) (string, bool)

// get returns the variable's value; unset and empty are the same.
func (f lookupFunc) get(name string) string {
	if f == nil {
		return ""
	}
	v, _ := f(name)
	return v
}

// EnvName returns the variable that overrides the field at path, e.g.
// FUSEBOX_QUEUE_MAX_QUEUED_JOBS for queue.max_queued_jobs.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// EnvNames lists every variable that overrides a field, in file order (aliases
// and old names not included), and EnvHosts.
func EnvNames() []string {
	var names []string
	eachLeaf(reflect.TypeFor[Config](), "", func(path string, _ fieldInfo, _ string) {
		names = append(names, EnvName(path))
	})
	return append(names, EnvHosts)
}

// eachLeaf calls fn for every scalar field of the struct type t (not those
// inside lists or maps), with its path, its tags and its parent's path.
func eachLeaf(t reflect.Type, parent string, fn func(path string, f fieldInfo, parent string)) {
	for _, f := range fieldsOf(t) {
		p := joinPath(parent, f.name)
		ft := t.Field(f.index).Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == durationType || ft == sizeType:
			fn(p, f, parent)
		case ft.Kind() == reflect.Struct:
			eachLeaf(ft, p, fn)
		case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map:
		default:
			fn(p, f, parent)
		}
	}
}

// envApplier applies environment overrides onto a Config.
type envApplier struct {
	env   lookupFunc
	src   *sources
	probs []Problem
}

func (e *envApplier) add(env, path, format string, args ...any) {
	e.probs = append(e.probs, Problem{Env: env, Field: path, Message: fmt.Sprintf(format, args...)})
	e.src.markBroken(path)
}

// applyEnv overrides the fields of c that have a variable set, and replaces
// the hosts when FUSEBOX_HOSTS is set.
func applyEnv(c *Config, env lookupFunc, src *sources) []Problem {
	if env == nil {
		return nil
	}
	e := &envApplier{env: env, src: src}
	e.walk(reflect.ValueOf(c).Elem(), "")
	e.hosts(c)
	return e.probs
}

// walk applies the variables of the struct v's fields; it reports whether any
// was set. An optional section (failure_rate, slow_call) that is off is
// turned on, with its defaults, when one of its variables is set.
func (e *envApplier) walk(v reflect.Value, parent string) bool {
	found := false
	for _, f := range fieldsOf(v.Type()) {
		fv, p := v.Field(f.index), joinPath(parent, f.name)
		t := fv.Type()
		switch {
		case t == durationType || t == sizeType:
			found = e.leaf(fv, p, f, parent) || found
		case t.Kind() == reflect.Struct:
			found = e.walk(fv, p) || found
		case t.Kind() == reflect.Pointer:
			if !fv.IsNil() {
				found = e.walk(fv.Elem(), p) || found
			} else if nv := newValue(t.Elem()); e.walk(nv.Elem(), p) {
				fv.Set(nv)
				found = true
			}
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Map:
		default:
			found = e.leaf(fv, p, f, parent) || found
		}
	}
	return found
}

// leaf applies the variable of one scalar field, if set.
func (e *envApplier) leaf(v reflect.Value, path string, f fieldInfo, parent string) bool {
	var set []string
	for _, key := range append([]string{f.name}, f.aliases...) {
		if name := EnvName(joinPath(parent, key)); e.env.get(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) > 1 {
		e.add(set[0], path, "$%s are the same setting; unset one", strings.Join(set, " and $"))
		return false
	}
	if len(set) == 0 {
		for _, l := range legacyEnv {
			if l.path == path && e.env.get(l.name) != "" {
				set = append(set, l.name)
				break
			}
		}
	}
	if len(set) == 0 {
		return false
	}
	name := set[0]
	if err := setText(v, e.env.get(name)); err != nil {
		e.add(name, path, "%v", err)
		return false
	}
	e.src.setEnv(path, name)
	return true
}

// hosts replaces c.Hosts from FUSEBOX_HOSTS.
func (e *envApplier) hosts(c *Config) {
	val := e.env.get(EnvHosts)
	if val == "" {
		return
	}
	var hosts []Host
	ok := true
	for item := range strings.SplitSeq(val, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, found := strings.Cut(item, "=")
		if !found {
			e.add(EnvHosts, fmt.Sprintf("hosts[%d]", len(hosts)), "%q must be name=address, e.g. h1=unix:///var/run/docker.sock", item)
			ok = false
		}
		hosts = append(hosts, DefaultHost(strings.TrimSpace(name), strings.TrimSpace(addr)))
	}
	if len(hosts) == 0 {
		e.add(EnvHosts, "hosts", "must list at least one name=address, e.g. h1=unix:///var/run/docker.sock")
		return
	}
	if !ok {
		return
	}
	c.Hosts = hosts
	e.src.clear("hosts")
	e.src.setEnv("hosts", EnvHosts)
}

// setText sets the scalar v from text, as an environment variable writes it.
func setText(v reflect.Value, text string) error {
	t := v.Type()
	s := strings.TrimSpace(text)
	switch {
	case t == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case t == sizeType:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case t.Kind() == reflect.String:
		v.SetString(text)
	case t.Kind() == reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("must be true or false (got %q)", text)
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("must be a whole number (got %q)", text)
		}
		v.SetInt(n)
	case t.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("must be a number (got %q)", text)
		}
		v.SetFloat(f)
	default:
		panic("config: unsupported field type " + t.String())
	}
	return nil
}

// parseBool reads true/false, 1/0, yes/no and on/off, in any case.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on", "t", "y":
		return true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}
