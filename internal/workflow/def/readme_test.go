package def_test

import (
	"os"
	"strings"
	"testing"

	"fusebox/internal/workflow/def"
)

// TestReadmeExample: the workflow the README shows parses and resolves.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Workflows")
	if !ok {
		t.Fatal("README has no Workflows section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	src, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README's Workflows section has no yaml block")
	}
	w, err := def.Parse([]byte(src), "README.md")
	if err != nil {
		t.Fatalf("the README's workflow: %v\n%s", err, src)
	}
	r, err := w.Resolve(nil)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(r.Steps) != 2 || r.Steps[1].Retries.Max != 2 || r.Steps[1].Retries.BackoffFactor != 0.5 || !strings.Contains(r.Steps[0].Command[2], "built 1.0") {
		t.Fatalf("resolved: %+v", r.Steps)
	}
}
