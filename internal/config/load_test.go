package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cleanEnv unsets the variables Load reads that could be set where the tests
// run.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, n := range append(EnvNames(), "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
		"CIRCUIT_BREAKER_ENABLED", "CIRCUIT_BREAKER_FAILURE_THRESHOLD", "CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "MAX_QUEUED_JOBS",
		"FUSEBOX_CIRCUIT_BREAKER_RESET_TIMEOUT") {
		t.Setenv(n, "")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadNoFile(t *testing.T) {
	cleanEnv(t)
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	if c.Hosts[0].Address != DockerHostDefault || c.Listen != ListenDefault {
		t.Errorf("Load(\"\") = %+v", c)
	}
	if ps := Check(""); ps != nil {
		t.Errorf("Check(\"\") = %v", ps)
	}
}

func TestLoadAppliesEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("FUSEBOX_QUEUE_MAX_QUEUED_JOBS", "77")
	t.Setenv("DOCKER_HOST", "unix:///run/docker.sock")
	p := writeFile(t, t.TempDir(), "fusebox.yaml", "queue:\n  max_queued_jobs: 5\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.MaxQueuedJobs != 77 || c.Hosts[0].Address != "unix:///run/docker.sock" {
		t.Errorf("Load = %+v", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	cleanEnv(t)
	p := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if got, want := err.Error(), p+": cannot read the config file: no such file or directory"; got != want {
		t.Errorf("Load(missing) = %q, want %q", got, want)
	}
	if ps := Check(p); len(ps) != 1 || ps[0].File != p {
		t.Errorf("Check(missing) = %v", ps)
	}
}

func TestLoadProblemsNameTheFile(t *testing.T) {
	cleanEnv(t)
	p := writeFile(t, t.TempDir(), "fb.yaml", "listen: :1\nhosts:\n  - name: h1\n    address: unix:///a.sock\n    capacity: -2\n")
	_, err := Load(p)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("Load = %v", err)
	}
	if got, want := ps[0].String(), p+":5:15: hosts[0].capacity: must be at least 1 (got -2)"; got != want {
		t.Errorf("problem = %q, want %q", got, want)
	}
	if got := Check(p); !reflect.DeepEqual(got, []Problem(ps)) {
		t.Errorf("Check = %v, want %v", got, ps)
	}
}

func TestLoadTLSFiles(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ca.pem", "cert.pem", "key.pem"} {
		writeFile(t, filepath.Join(dir, "certs"), n, "x")
	}
	abs := filepath.Join(dir, "certs", "ca.pem")
	p := writeFile(t, dir, "fusebox.yaml", `hosts:
  - name: h1
    address: tcp://10.0.0.1:2376
    tls:
      ca: `+abs+`
      cert: certs/cert.pem
      key: ./certs/key.pem
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CA: abs, Cert: filepath.Join(dir, "certs", "cert.pem"), Key: filepath.Join(dir, "certs", "key.pem")}
	if *c.Hosts[0].TLS != want {
		t.Errorf("tls = %+v, want %+v", *c.Hosts[0].TLS, want)
	}

	// Parse leaves relative paths alone and reads no files.
	data, _ := os.ReadFile(p)
	pc, err := Parse(p, data, nil)
	if err != nil || pc.Hosts[0].TLS.Cert != "certs/cert.pem" {
		t.Errorf("Parse: %v, %+v", err, pc.Hosts[0].TLS)
	}

	// A missing file is a problem at its line, and Problems unwraps to it.
	p = writeFile(t, dir, "bad.yaml", "hosts:\n  - name: h1\n    address: tcp://10.0.0.1:2376\n    tls:\n      ca: nope.pem\n")
	_, err = Load(p)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v", err)
	}
	if got, want := ps[0].String(), p+":5:11: hosts[0].tls.ca: cannot read "+filepath.Join(dir, "nope.pem")+": no such file or directory"; got != want {
		t.Errorf("problem = %q\n           want %q", got, want)
	}
}

func TestExampleFile(t *testing.T) {
	cleanEnv(t)
	const path = "../../examples/fusebox.yaml"
	c, err := Load(path)
	if err != nil {
		t.Fatalf("examples/fusebox.yaml does not load:\n%v", err)
	}
	if ps := Check(path); len(ps) != 0 {
		t.Errorf("Check(example) = %v", ps)
	}
	// The example shows the defaults.
	want := defaults(nil, nil)
	want.DataDir = DataDirSystem
	if !reflect.DeepEqual(c, want) {
		t.Errorf("the example is not the defaults:\n got %+v\nwant %+v", c, want)
	}
}

// TestEveryKeyIsDocumented checks that the example file and the package
// documentation mention every key of the format.
func TestEveryKeyIsDocumented(t *testing.T) {
	example, err := os.ReadFile("../../examples/fusebox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for _, f := range fieldsOf(rt) {
			p := joinPath(path, f.name)
			for _, text := range []struct{ name, s string }{{"examples/fusebox.yaml", string(example)}, {"doc.go", string(doc)}} {
				for _, k := range append([]string{f.name}, f.aliases...) {
					if !strings.Contains(text.s, k+":") && !strings.Contains(text.s, k+" ") {
						t.Errorf("%s does not mention %s (%s)", text.name, k, p)
					}
				}
			}
			ft := rt.Field(f.index).Type
			if ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
