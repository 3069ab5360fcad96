package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"fusebox/internal/job"
)

// decodeSpec reads a job.Spec from a JSON object and reports every bad
// field by name: unknown fields, wrong types, and values a field's own
// decoder refuses (a bad duration). A body over the limit returns the
// reader's *http.MaxBytesError.
//
// It decodes the object into raw members first and then each member on its
// own, so that every error, including one from a custom UnmarshalJSON that
// knows nothing of its field, is tied to the member that caused it.
func decodeSpec(r io.Reader) (job.Spec, error) {
	var spec job.Spec
	dec := json.NewDecoder(r)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return spec, err
		case errors.Is(err, io.EOF):
			return spec, badRequest("", "request body is empty: send a job spec as a JSON object, e.g. {\"image\":\"alpine\"}")
		case errors.As(err, &se):
			return spec, badRequest("", "request body is not valid JSON: %v (at byte %d)", err, se.Offset)
		case errors.As(err, &te):
			return spec, badRequest("", "request body must be a JSON object (got %s)", te.Value)
		}
		return spec, badRequest("", "request body is not valid JSON: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return spec, err
		}
		return spec, badRequest("", "request body must hold one JSON object and nothing after it")
	}

	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var problems []Problem
	for _, k := range keys {
		member, err := json.Marshal(map[string]json.RawMessage{k: raw[k]})
		if err != nil {
			problems = append(problems, Problem{Field: k, Message: err.Error()})
			continue
		}
		d := json.NewDecoder(bytes.NewReader(member))
		d.DisallowUnknownFields()
		if err := d.Decode(&spec); err != nil {
			problems = append(problems, memberProblem(k, raw[k], err))
		}
	}
	if len(problems) > 0 {
		parts := make([]string, len(problems))
		for i, p := range problems {
			parts[i] = p.Field + ": " + p.Message
		}
		return spec, &requestError{status: http.StatusBadRequest, code: CodeInvalid,
			msg:   job.ErrInvalid.Error() + ": " + strings.Join(parts, "; "),
			field: problems[0].Field, problems: problems}
	}
	return spec, nil
}

// memberProblem describes the error decoding the object member key, whose
// value is raw.
func memberProblem(key string, raw json.RawMessage, err error) Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" || field == key {
			field = key + elementPath(raw, te.Type)
		}
		return Problem{Field: field, Message: fmt.Sprintf("must be %s (got %s)", jsonType(te.Type), te.Value)}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Problem{Field: strings.Trim(name, `"`), Message: "is not a field of a job spec (see GET /v1/openapi.json, schema JobSpec)"}
	}
	return Problem{Field: key, Message: err.Error()}
}

// elementPath finds, in an object or array raw, the first element that is
// not of type elem, and returns its path suffix (".FOO" or "[2]"); "" when
// raw is neither or every element fits (the member itself is wrong).
func elementPath(raw json.RawMessage, elem reflect.Type) string {
	if elem == nil {
		return ""
	}
	fits := func(v json.RawMessage) bool {
		return json.Unmarshal(v, reflect.New(elem).Interface()) == nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil && obj != nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !fits(obj[k]) {
				return "." + k
			}
		}
		return ""
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		for i, v := range arr {
			if !fits(v) {
				return fmt.Sprintf("[%d]", i)
			}
		}
	}
	return ""
}

// jsonType names a Go type the way a JSON user thinks of it.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "a value of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		if t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	}
	return "a " + t.String()
}

// decodeObject reads an optional JSON object body into v: no body leaves v
// as it is. Unknown fields, a member of the wrong type and anything after
// the object are refused naming the member, with example (the shape of the
// body) in the message. A body over the limit returns the reader's
// *http.MaxBytesError.
func decodeObject(r io.Reader, v any, example string) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil // no body
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te) && te.Field != "":
			return badRequest(te.Field, "must be %s (got %s); the body is %s", jsonType(te.Type), te.Value, example)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(f, "unknown field; the body is %s", example)
		}
		return badRequest("", "request body must be a JSON object such as %s: %v", example, err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return badRequest("", "request body must hold one JSON object and nothing after it")
	}
	return nil
}
