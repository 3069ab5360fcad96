package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkRefusal fails t unless err is a 400 with a message, or the reader's
// size limit.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var re *requestError
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return
	}
	if !errors.As(err, &re) || re.status != 400 || re.msg == "" {
		t.Fatalf("refusal %v (%T) is not a 400 with a message", err, err)
	}
}

// FuzzDecodeHostAction feeds arbitrary bodies to the decoder of an
// operator action (POST /v1/hosts/{name}/isolate and the others): it must
// never panic, must refuse with a 400, and a reason it accepts is one
// line of valid UTF-8 within MaxReasonBytes that decodes the same again.
func FuzzDecodeHostAction(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"reason":"disk failing"}`, `{"reason":"  padded  "}`, `{"reason":1}`,
		`{"reason":"a\nb"}`, `{"reasons":"x"}`, `{"reason":"\u0000"}`, `[]`, `null`, `{"reason":"x"} {}`,
		`{"reason":"` + strings.Repeat("x", MaxReasonBytes+1) + `"}`, `{"reason":"\xff"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeHostAction(bytes.NewReader(body))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(req.Reason) > MaxReasonBytes || !utf8.ValidString(req.Reason) || strings.ContainsFunc(req.Reason, unicode.IsControl) ||
			req.Reason != strings.TrimSpace(req.Reason) {
			t.Fatalf("accepted reason %q", req.Reason)
		}
		out, _ := json.Marshal(req)
		back, err := decodeHostAction(bytes.NewReader(out))
		if err != nil || back != req {
			t.Fatalf("round trip of %s: %+v, %v", out, back, err)
		}
	})
}

// FuzzDecodeWorkflowRunRequest feeds arbitrary bodies to the decoder of
// POST /v1/workflows/runs: it must never panic, must refuse with a 400
// naming the member or the body, and what it accepts survives a round
// trip through JSON.
func FuzzDecodeWorkflowRunRequest(f *testing.F) {
	for _, seed := range []string{
		`{"template":"diamond","task_id":"t1","params":{"n":"3"}}`,
		`{"definition":"name: x\nsteps:\n  a:\n    image: alpine\n"}`,
		`{"template":1}`, `{"params":{"n":3}}`, `{"params":[]}`, `{"templat":"x"}`,
		``, `{`, `[]`, `null`, `{} {}`, `{"use_circuit_breaker":"yes"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req WorkflowRunRequest
		if err := decodeObject(bytes.NewReader(body), &req, `{"template": "diamond"}`); err != nil {
			checkRefusal(t, err)
			return
		}
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
		var back WorkflowRunRequest
		if err := decodeObject(bytes.NewReader(out), &back, `{}`); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if len(req.Params) == 0 {
			req.Params, back.Params = nil, nil
		}
		if !reflect.DeepEqual(req, back) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, back)
		}
	})
}
