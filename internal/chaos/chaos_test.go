package chaos

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/enginetest"
)

var (
	full    = flag.Bool("chaos.full", false, "run the full form of the chaos scenarios (make chaos): faults held 30s to a minute, the 5,000-submission storm")
	tableTo = flag.String("chaos.table", "", "write the figures as a markdown table to this file")
	only    = flag.String("chaos.only", "", "run only the scenarios whose names contain this")
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// Every scenario, each on its own private engines and its own fusebox
// serve, ends with its line of figures and passes: nothing lost, no job
// alive twice at once, one container per attempt, every submission
// answered, every accepted job ended.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos scenarios take minutes; make chaos runs the full form")
	}
	sz := Short()
	if *full {
		sz = Full()
	}
	t.Logf("chaos: %s", sz.Describe())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin, err := BuildFusebox(ctx, t.TempDir())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	scenarios := Scenarios(sz)
	rows := make([]*Figures, len(scenarios))
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		rows := slices.DeleteFunc(slices.Clone(rows), func(f *Figures) bool { return f == nil })
		var b strings.Builder
		if err := Table(&b, rows); err != nil {
			t.Error(err)
		}
		b.WriteString("\n")
		if err := Record(&b, rows); err != nil {
			t.Error(err)
		}
		t.Logf("chaos (%s):\n%s", sz.Describe(), b.String())
		if *tableTo != "" {
			head := "chaos, " + sz.Describe() + "\n\n"
			if err := os.WriteFile(*tableTo, []byte(head+b.String()), 0o644); err != nil {
				t.Error(err)
			}
		}
	})
	slots := make(chan struct{}, max(1, sz.Parallel))
	for i, sc := range scenarios {
		if *only != "" && !strings.Contains(sc.Name, *only) {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			if sz.Parallel > 1 {
				t.Parallel()
			}
			slots <- struct{}{}
			defer func() { <-slots }()
			f := Run(t, bin, sz, sc)
			mu.Lock()
			rows[i] = f
			mu.Unlock()
			t.Log(f.Line())
			if !f.Pass() {
				t.Errorf("%s", f.Line())
			}
		})
	}
}
