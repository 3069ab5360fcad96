package job

import (
	"encoding/json"
	"testing"
)

// FuzzValidate: ValidateWith never panics, on a spec read from JSON or one
// built from raw strings (which may hold what JSON cannot: invalid UTF-8);
// and a spec that validates survives a JSON round trip unchanged and still
// validates, so that what the store keeps is what was checked. Seeds are
// below and in testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"image":"busybox","command":["sh","-c","echo hi"],"env":{"A":"1"},"workdir":"/w"}`), "", "", "", "")
	f.Add([]byte(`{"image":"127.0.0.1:5000/a/b:c@sha256:0000000000000000000000000000000000000000000000000000000000000000"}`), "", "", "", "")
	f.Add([]byte(`{"image":"sha256:abababababababababababababababababababababababababababababababab","pull_policy":"always"}`), "", "", "", "")
	f.Add([]byte(`{"image":"a","env":{"A=B":"\u0000"},"labels":{"":"x"},"cpus":1e300,"memory_bytes":-1,"timeout":-5}`), "", "", "", "")
	f.Add([]byte(`{"image":"a","timeout":"720h","retry_backoff":"24h","max_attempts":100}`), "x", "\xff", "K", "/a/../b")
	f.Add([]byte(`{"image":"a","name":"build-1","entrypoint":["/bin/sh","-c"],"user":"1000:1000","network":"none","platform":"linux/amd64"}`), "", "", "", "")
	f.Add([]byte(`{"image":"a","name":"-x","entrypoint":[""],"user":"a b","network":"container:x","platform":"linux//","timeout":60}`), "", "", "", "")
	f.Add([]byte(`not json`), "busybox", "a\x00b", "", "/tmp")
	f.Fuzz(func(t *testing.T, data []byte, image, arg, envKey, workdir string) {
		var s Spec
		_ = json.Unmarshal(data, &s)
		if image != "" {
			s.Image = image
		}
		if arg != "" {
			s.Command = append(s.Command, arg)
		}
		if envKey != "" {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env[envKey] = arg
		}
		if workdir != "" {
			s.Workdir = workdir
		}
		small := Limits{MaxSpecBytes: 2048, MaxCommandArgs: 8, MaxEnv: 8, MaxLabels: 4, MaxArgBytes: 256}
		_ = s.ValidateWith(small)
		if s.Validate() != nil {
			return
		}
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("a valid spec does not encode: %v", err)
		}
		var back Spec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a valid spec does not decode: %v\n%s", err, b)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("valid before the round trip, not after: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Fatalf("the round trip changed the spec:\n%s\n%s", b, b2)
		}
	})
}
