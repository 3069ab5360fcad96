package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// secretKeys are the keys whose inline values are secrets: Show replaces
// them with Redacted (the _file and _env keys, which name where a secret
// is, stay).
var secretKeys = []string{"token", "secret", "password", "identity_token"}

// Show returns c as `fusebox config show` prints it: every setting by its
// key in the file, durations and sizes as they are written there, secrets
// replaced by Redacted. The values are maps, slices and scalars, ready to
// encode as YAML or JSON.
func (c *Config) Show() map[string]any {
	m, _ := showValue(reflect.ValueOf(*c), "").(map[string]any)
	return m
}

func showValue(v reflect.Value, key string) any {
	t := v.Type()
	switch {
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t == sizeType:
		return Size(v.Int()).String()
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return showValue(v.Elem(), key)
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range fieldsOf(t) {
			m[f.name] = showValue(v.Field(f.index), f.name)
		}
		return m
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = showValue(v.Index(i), key)
		}
		return out
	case reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			m[fmt.Sprint(k.Interface())] = showValue(v.MapIndex(k), "")
		}
		return m
	case reflect.String:
		if v.String() != "" && slices.Contains(secretKeys, key) {
			return Redacted
		}
		return v.String()
	}
	return v.Interface()
}

// UnknownEnv returns the FUSEBOX_* variables of environ ("KEY=value"
// entries, as os.Environ) that match no setting, sorted, each with the
// closest setting's variable when one is near ("" otherwise). Names in
// known (the command line's own, such as FUSEBOX_SERVER) are not reported.
func UnknownEnv(environ []string, known ...string) [][2]string {
	valid := map[string]bool{}
	for _, n := range append(EnvNames(), known...) {
		valid[n] = true
	}
	var names []string
	eachLeaf(reflect.TypeFor[Config](), "", func(path string, f fieldInfo, parent string) {
		for _, a := range f.aliases {
			valid[EnvName(joinPath(parent, a))] = true
		}
	})
	for n := range valid {
		names = append(names, strings.ToLower(n))
	}
	sort.Strings(names)
	var out [][2]string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || valid[name] {
			continue
		}
		out = append(out, [2]string{name, strings.ToUpper(suggest(name, names))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// CheckDataDir reports whether fusebox serve could create and write the
// data directory dir: the directory, or its nearest existing parent, must
// be a directory this process may write into.
func CheckDataDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("data_dir %q cannot be created: %s is not a directory", dir, p)
		case err == nil:
			if err := syscall.Access(p, 0x2|0x1); err != nil { // W_OK|X_OK
				return fmt.Errorf("data_dir %q cannot be created or written: %s: %w", dir, p, err)
			}
			return nil
		case !os.IsNotExist(err) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("data_dir %q: %w", dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("data_dir %q cannot be created: no parent exists", dir)
		}
		p = parent
	}
}
