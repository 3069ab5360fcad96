package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it accepts validates
// again cleanly, and that what it refuses comes with well-formed problems.
// Its seed corpus is testdata/fuzz/FuzzParse; grow it with
//
//	go test -fuzz=FuzzParse -fuzztime=60s ./internal/config
func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile("../../examples/fusebox.yaml"); err == nil {
		f.Add(example)
	}
	for _, s := range []string{
		"",
		"listen: :7070\n",
		"hosts:\n  - name: h1\n    address: tcp://10.0.0.1:2376\n    tls: {ca: /ca.pem, cert: /c.pem, key: /k.pem}\n",
		"x-h: &h {capacity: 2}\nhosts:\n  - <<: *h\n    name: a\n    address: unix:///a.sock\n",
		"circuit_breaker:\n  reset_timeout: 30s\n  failure_rate: {}\n  slow_call: {rate: 0.5}\n",
		"max_queued_jobs: 10\n",
		"a: &a [*a]\n",
		"hosts: [{name: a, address: unix:///a, labels: {<<: {x: y}}}]\n",
		"logs: {max_bytes: 1.5MiB}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, nil)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted config does not validate again: %v\ninput: %q", err, data)
			}
			c.DB()
			return
		}
		if c != nil {
			t.Fatalf("config returned with problems: %v", err)
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error %T is not Problems: %v", err, err)
		}
		for _, p := range ps {
			if p.Message == "" || p.Line < 0 || p.Column < 0 || p.String() == "" {
				t.Fatalf("malformed problem %#v", p)
			}
		}
		if _, err2 := Parse("f.yaml", data, nil); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
		}
	})
}
