package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"fusebox/internal/event"
	"fusebox/internal/job"
)

type openAPIDocument struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPICoversEveryRoute checks that every registered route is in the
// document, and that the document describes no route that does not exist.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	s := New(Config{}, nil, nil, nil, nil)
	registered := map[string]bool{}
	for _, rt := range s.routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		registered[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", rt.pattern)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !registered[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which is not a route", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPISchemasMatchTypes checks that each schema has exactly the JSON
// fields of the Go type it describes.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"JobSpec":              reflect.TypeFor[job.Spec](),
		"Job":                  reflect.TypeFor[job.Job](),
		"Transition":           reflect.TypeFor[job.Transition](),
		"Attempt":              reflect.TypeFor[job.Attempt](),
		"Input":                reflect.TypeFor[job.Input](),
		"Output":               reflect.TypeFor[job.Output](),
		"SubmitResponse":       reflect.TypeFor[SubmitResponse](),
		"JobList":              reflect.TypeFor[JobList](),
		"JobDetail":            reflect.TypeFor[JobDetail](),
		"LogsResponse":         reflect.TypeFor[LogsResponse](),
		"LogEvent":             reflect.TypeFor[LogEvent](),
		"QueueStats":           reflect.TypeFor[QueueStats](),
		"WhoAmI":               reflect.TypeFor[WhoAmI](),
		"HostStatus":           reflect.TypeFor[Host](),
		"BreakerStatus":        reflect.TypeFor[HostBreaker](),
		"LimiterStatus":        reflect.TypeFor[HostCalls](),
		"CallLatency":          reflect.TypeFor[HostCallLatency](),
		"HostList":             reflect.TypeFor[HostList](),
		"HostResponse":         reflect.TypeFor[HostResponse](),
		"HostOperator":         reflect.TypeFor[HostOperator](),
		"HostActionRequest":    reflect.TypeFor[HostActionRequest](),
		"HostTransition":       reflect.TypeFor[HostTransition](),
		"HostTransitionList":   reflect.TypeFor[HostTransitionList](),
		"Error":                reflect.TypeFor[ErrorResponse](),
		"Problem":              reflect.TypeFor[Problem](),
		"Event":                reflect.TypeFor[event.Event](),
		"AlertsResponse":       reflect.TypeFor[AlertsResponse](),
		"WorkflowRunRequest":   reflect.TypeFor[WorkflowRunRequest](),
		"BreakerList":          reflect.TypeFor[BreakerList](),
		"ToolCallRequest":      reflect.TypeFor[ToolCallRequest](),
		"BreakerInfo":          reflect.TypeFor[BreakerInfo](),
		"WorkflowRunResponse":  reflect.TypeFor[WorkflowRunResponse](),
		"WorkflowRunList":      reflect.TypeFor[WorkflowRunList](),
		"WorkflowRun":          reflect.TypeFor[WorkflowRun](),
		"WorkflowStep":         reflect.TypeFor[WorkflowStep](),
		"WorkflowResult":       reflect.TypeFor[WorkflowResult](),
		"WorkflowTemplateList": reflect.TypeFor[WorkflowTemplateList](),
		"WorkflowTemplate":     reflect.TypeFor[WorkflowTemplate](),
		"WorkflowParam":        reflect.TypeFor[WorkflowParam](),
		"AlertReceiver":        reflect.TypeFor[AlertReceiver](),
		"FiringAlert":          reflect.TypeFor[FiringAlert](),
		"AlertTestRequest":     reflect.TypeFor[AlertTestRequest](),
		"AlertTestResponse":    reflect.TypeFor[AlertTestResponse](),
		"AlertTestResult":      reflect.TypeFor[AlertTestResult](),
		"ImageList":            reflect.TypeFor[ImageList](),
		"ImageSummary":         reflect.TypeFor[ImageSummary](),
		"ImageLoadLine":        reflect.TypeFor[ImageLoadLine](),
		"ImageProgress":        reflect.TypeFor[ImageProgress](),
		"ImageHostResult":      reflect.TypeFor[ImageHostResult](),
		"ImageRequest":         reflect.TypeFor[ImageRequest](),
		"ImageResults":         reflect.TypeFor[ImageResults](),
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s missing", name)
			continue
		}
		var want, got []string
		for i := range typ.NumField() {
			tag := typ.Field(i).Tag.Get("json")
			n, _, _ := strings.Cut(tag, ",")
			if n != "-" && n != "" {
				want = append(want, n)
			}
		}
		for p := range schema.Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("schema %s has %v; %v has %v", name, got, typ, want)
		}
	}
}

func TestCompleteUTF8(t *testing.T) {
	s := []byte("aé€😀")
	for i := range len(s) + 1 {
		cut := completeUTF8(s[:i])
		if !utf8.Valid(s[:cut]) {
			t.Errorf("prefix %d: cut %d is not valid UTF-8", i, cut)
		}
		if i-cut > 3 {
			t.Errorf("prefix %d: held back %d bytes", i, i-cut)
		}
	}
	if got := completeUTF8([]byte{'a', 0xff}); got != 2 {
		t.Errorf("invalid byte held back: %d", got)
	}
}

// TestStreamWriterKeepsCharacters writes a text one byte at a time and
// checks that the events put it back together without U+FFFD.
func TestStreamWriterKeepsCharacters(t *testing.T) {
	rec := httptest.NewRecorder()
	ew := &eventWriter{w: rec, rc: http.NewResponseController(rec), timeout: time.Second}
	sw := ew.stream("stdout")
	text := "héllo wörld € 😀\n"
	for i := range len(text) {
		if _, err := sw.Write([]byte{text[i]}); err != nil {
			t.Fatal(err)
		}
	}
	sw.close()
	var got strings.Builder
	for line := range strings.Lines(rec.Body.String()) {
		var ev LogEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(ev.Data, utf8.RuneError) {
			t.Errorf("event with U+FFFD: %q", ev.Data)
		}
		got.WriteString(ev.Data)
	}
	if got.String() != text {
		t.Errorf("got %q, want %q", got.String(), text)
	}
}
