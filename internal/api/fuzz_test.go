package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"fusebox/internal/job"
)

// FuzzDecodeSpec feeds arbitrary bodies to the submission decoder: it must
// never panic, must explain every refusal as a 400 naming a field or the
// body, and what it accepts must survive a round trip through JSON.
func FuzzDecodeSpec(f *testing.F) {
	for _, seed := range []string{
		`{"image":"alpine"}`,
		`{"image":"alpine","command":["sh","-c","echo hi"],"env":{"A":"1"},"timeout":"90s","memory_bytes":67108864}`,
		`{"image":1}`,
		`{"imagee":"x"}`,
		`{"timeout":"soon"}`,
		`{"command":[1,2]}`,
		`[]`, `null`, ``, `{`, `{"image":"a"} {}`,
		`{"cpus":-1,"max_attempts":1e9,"retry_backoff":12}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := decodeSpec(bytes.NewReader(body))
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status != 400 || re.msg == "" {
				t.Fatalf("refusal %v (%T) is not a 400 with a message", err, err)
			}
			return
		}
		out, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("accepted spec does not encode: %v", err)
		}
		back, err := decodeSpec(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if !reflect.DeepEqual(normal(spec), normal(back)) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", spec, back)
		}
	})
}

// normal makes empty and nil maps and slices equal.
func normal(s job.Spec) job.Spec {
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	if len(s.Constraints) == 0 {
		s.Constraints = nil
	}
	if len(s.Command) == 0 {
		s.Command = nil
	}
	return s
}
