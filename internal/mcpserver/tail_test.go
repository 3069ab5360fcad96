package mcpserver

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in              string
		lines, maxBytes int
		want            string
		cut             int
	}{
		{"", 10, 100, "", 0},
		{"a\nb\nc\n", 10, 100, "a\nb\nc\n", 0},
		{"a\nb\nc\n", 2, 100, "b\nc\n", 2},
		{"a\nb\nc", 2, 100, "b\nc", 2},
		{"a\nb\nc\n", 1, 100, "c\n", 4},
		{"1111\n2222\n3333\n", 10, 7, "3333\n", 10}, // begins at a line start
		{"x\n" + strings.Repeat("y", 20), 10, 5, "yyyyy", 17},
	} {
		got, cut := tail([]byte(c.in), c.lines, c.maxBytes)
		if got != c.want || cut != c.cut {
			t.Errorf("tail(%q, %d, %d) = %q, %d; want %q, %d", c.in, c.lines, c.maxBytes, got, cut, c.want, c.cut)
		}
	}
	// Never splits a character, never exceeds the bound.
	s := []byte(strings.Repeat("é€😀", 50))
	for n := 1; n < 40; n++ {
		got, _ := tail(s, 100, n)
		if !utf8.ValidString(got) || len(got) > n {
			t.Errorf("max %d: %q", n, got)
		}
	}
}
