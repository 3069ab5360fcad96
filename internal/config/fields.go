package config

import (
	"reflect"
	"strings"
	"sync"
	"time"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// fieldInfo is one key of a section, read from the struct tags.
type fieldInfo struct {
	name    string   // the yaml key
	aliases []string // older keys with the same meaning
	index   int
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

// fieldsOf returns the keys of the struct type t.
func fieldsOf(t reflect.Type) []fieldInfo {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]fieldInfo)
	}
	var fs []fieldInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		f := fieldInfo{name: name, index: i}
		if a := sf.Tag.Get("alias"); a != "" {
			f.aliases = strings.Split(a, ",")
		}
		fs = append(fs, f)
	}
	fieldCache.Store(t, fs)
	return fs
}

// lookupField finds key among fs, by name or alias.
func lookupField(fs []fieldInfo, key string) (fieldInfo, bool) {
	for _, f := range fs {
		if f.name == key {
			return f, true
		}
		for _, a := range f.aliases {
			if a == key {
				return f, true
			}
		}
	}
	return fieldInfo{}, false
}

// fieldNames lists the keys (and aliases) of fs, for suggestions.
func fieldNames(fs []fieldInfo) []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.name)
		names = append(names, f.aliases...)
	}
	return names
}

// newValue returns a pointer to a new t with its defaults: a host, an
// alert receiver, a failure_rate or slow_call section starts from its
// defaults, anything else from zero.
func newValue(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	switch p := p.Interface().(type) {
	case *Host:
		*p = DefaultHost("", "")
	case *FailureRate:
		*p = DefaultFailureRate()
	case *SlowCall:
		*p = DefaultSlowCall()
	case *AlertReceiver:
		*p = DefaultAlertReceiver("", "", "")
	}
	return p
}

// movedKeys are keys accepted at one level that mean a field elsewhere: the
// old top-level max_queued_jobs is queue.max_queued_jobs.
var movedKeys = map[string]string{
	"max_queued_jobs": "queue.max_queued_jobs",
}

// fieldByPath returns the field of the struct v at a dotted path of keys.
func fieldByPath(v reflect.Value, path string) reflect.Value {
	for key := range strings.SplitSeq(path, ".") {
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		f, _ := lookupField(fieldsOf(v.Type()), key)
		v = v.Field(f.index)
	}
	return v
}

var (
	leafOnce  sync.Once
	leafPaths map[string][]string // key -> every path it names, e.g. capacity -> [hosts[].capacity]
)

// pathsNamed returns the paths of every field whose key is key, anywhere in
// the file format.
func pathsNamed(key string) []string {
	leafOnce.Do(func() {
		leafPaths = map[string][]string{}
		var walk func(t reflect.Type, path string)
		walk = func(t reflect.Type, path string) {
			for _, f := range fieldsOf(t) {
				p := joinPath(path, f.name)
				for _, k := range append([]string{f.name}, f.aliases...) {
					leafPaths[k] = append(leafPaths[k], p)
				}
				ft := t.Field(f.index).Type
				switch ft.Kind() {
				case reflect.Pointer:
					ft = ft.Elem()
				case reflect.Slice:
					ft, p = ft.Elem(), p+"[]"
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, p)
				}
			}
		}
		walk(reflect.TypeFor[Config](), "")
	})
	return leafPaths[key]
}
