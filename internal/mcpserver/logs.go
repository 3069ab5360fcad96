package mcpserver

import (
	"bytes"
	"unicode/utf8"
)

// Bounds of a log tail.
const (
	TailLinesDefault = 100
	TailLinesMax     = 5000
	MaxBytesDefault  = 16 << 10
	MaxBytesMax      = 256 << 10
)

// tail returns the last lines of b (at most lines lines and maxBytes bytes,
// cut at a character boundary) and how many bytes it left out before them.
func tail(b []byte, lines, maxBytes int) (string, int) {
	start := 0
	// Count lines from the end; a final newline ends the last line, it does
	// not start another.
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	n := 0
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n == lines {
				start = i + 1
				break
			}
		}
	}
	if len(b)-start > maxBytes {
		start = len(b) - maxBytes
		for start < len(b) && !utf8.RuneStart(b[start]) {
			start++
		}
		// Begin at a line start when one is in the kept part.
		if i := bytes.IndexByte(b[start:], '\n'); i >= 0 && i+1 < len(b)-start && start > 0 && b[start-1] != '\n' {
			start += i + 1
		}
	}
	return string(bytes.ToValidUTF8(b[start:], []byte("\uFFFD"))), start
}
