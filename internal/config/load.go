package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Load reads the config file at path (none if path is ""), applies the
// FUSEBOX_* environment, fills the defaults and validates the result. Relative
// TLS file paths in the file are taken relative to the file's directory, and
// the TLS files must exist.
//
// On failure the error is Problems, listing every problem found.
func Load(path string) (*Config, error) {
	c, probs := load(path, os.LookupEnv)
	if len(probs) > 0 {
		return nil, Problems(probs)
	}
	return c, nil
}

// Check returns every problem Load would report for path (with the current
// environment), for `fusebox config check`. None means the config is good.
func Check(path string) []Problem {
	_, probs := load(path, os.LookupEnv)
	return probs
}

// Parse is Load without the file system: data is the file's content (none if
// empty), name is the file's name for problems, and env looks up environment
// variables (nil: none are set). Relative TLS paths are left as they are and
// TLS files are not checked.
func Parse(name string, data []byte, env func(string) (string, bool)) (*Config, error) {
	c, _, probs := parse(name, data, env)
	if len(probs) > 0 {
		return nil, Problems(probs)
	}
	return c, nil
}

func load(path string, env lookupFunc) (*Config, []Problem) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			reason := err
			var pe *fs.PathError
			if errors.As(err, &pe) {
				reason = pe.Err
			}
			return nil, []Problem{{File: path, Message: "cannot read the config file: " + reason.Error(), err: err}}
		}
		data = b
	}
	c, src, probs := parse(path, data, env)
	if path != "" {
		resolveTLSPaths(c, src, filepath.Dir(path))
	}
	probs = append(probs, checkTLSFiles(c, src)...)
	return c, sortProblems(probs)
}

// parse is the core of Load and Parse: defaults, then the file, then the
// environment, then validation.
func parse(name string, data []byte, env lookupFunc) (*Config, *sources, []Problem) {
	src := newSources(name)
	c := defaults(env, src)
	body, probs := parseYAML(name, data)
	if body != nil {
		d := newDecoder(src, body)
		d.decode("", body, reflect.ValueOf(c).Elem(), nil)
		probs = append(probs, d.probs...)
	}
	probs = append(probs, applyEnv(c, env, src)...)
	c.LogLevel = strings.ToLower(c.LogLevel)
	probs = append(probs, validate(c, src)...)
	return c, src, sortProblems(probs)
}

// yamlError is what the errors of goccy/go-yaml's parser provide.
type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

// parseYAML parses data into the body of its one document; nil if data holds
// no document.
func parseYAML(name string, data []byte) (body ast.Node, probs []Problem) {
	defer func() {
		if r := recover(); r != nil { // the parser must not take fusebox down
			body, probs = nil, []Problem{{File: name, Message: fmt.Sprintf("invalid YAML: the parser failed (%v)", r)}}
		}
	}()
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		p := Problem{File: name, Message: "invalid YAML: " + err.Error()}
		var ye yamlError
		if errors.As(err, &ye) {
			p.Message = "invalid YAML: " + ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				p.Line, p.Column = tk.Position.Line, tk.Position.Column
			}
		}
		return nil, []Problem{p}
	}
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			at := pos(doc.Body)
			probs = append(probs, Problem{File: name, Line: at.Line, Column: at.Column,
				Message: "only one YAML document is allowed; remove this one or the --- before it"})
			continue
		}
		body = doc.Body
	}
	return body, probs
}

// resolveTLSPaths makes the relative TLS paths written in the file relative
// to dir, the file's directory.
func resolveTLSPaths(c *Config, src *sources, dir string) {
	for i := range c.Hosts {
		t := c.Hosts[i].TLS
		if t == nil {
			continue
		}
		for key, p := range map[string]*string{"ca": &t.CA, "cert": &t.Cert, "key": &t.Key} {
			o, ok := src.at[fmt.Sprintf("hosts[%d].tls.%s", i, key)]
			if ok && o.line > 0 && *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	for key, p := range map[string]*string{"cert": &c.API.TLS.Cert, "key": &c.API.TLS.Key} {
		if o, ok := src.at["api.tls."+key]; ok && o.line > 0 && *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// checkTLSFiles checks that the TLS files of every host, and the API's,
// can be read.
func checkTLSFiles(c *Config, src *sources) []Problem {
	type file struct{ field, path string }
	files := []file{{"api.tls.cert", c.API.TLS.Cert}, {"api.tls.key", c.API.TLS.Key}}
	for i, h := range c.Hosts {
		if h.TLS == nil {
			continue
		}
		for _, f := range []struct{ key, path string }{{"ca", h.TLS.CA}, {"cert", h.TLS.Cert}, {"key", h.TLS.Key}} {
			files = append(files, file{fmt.Sprintf("hosts[%d].tls.%s", i, f.key), f.path})
		}
	}
	var probs []Problem
	for _, f := range files {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err == nil {
			fh.Close()
			continue
		}
		reason := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason = pe.Err
		}
		p := src.problem(f.field, fmt.Sprintf("cannot read %s: %v", f.path, reason))
		p.err = err
		probs = append(probs, p)
	}
	return probs
}
