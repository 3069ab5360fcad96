package def

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"fusebox/internal/config"
)

// Problem is one thing wrong with a definition, in the config file's style:
// String gives "file:line:col: field: message". Env is never set.
type Problem = config.Problem

// Problems is the error Parse and Resolve return: every problem found, in
// file order (problems without a line last). Use errors.As to get it.
type Problems []Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	if len(ps) > 1 {
		return fmt.Sprintf("%d workflow problems:\n%s", len(ps), strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

// sortProblems puts problems in file order, those without a line last, and
// drops exact duplicates.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return slices.Compact(ps)
}
