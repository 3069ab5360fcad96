package job

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// LogMark times part of a stream: its bytes from Off on were written (the
// engine logged them) at At, up to the next mark's Off. Marks of a stream
// are in order of Off, the first at 0. Output written within one
// millisecond, or more lines than the collector keeps marks for, shares a
// mark: a line's time is then that of an earlier line, never a later one.
type LogMark struct {
	Off int       `json:"off"`
	At  time.Time `json:"at"`
}

// ErrNoLogTimes is returned by Render when asked for times (since or
// timestamps) of output that was kept without them.
var ErrNoLogTimes = errors.New("this job's output was kept without times (collected by an older fusebox)")

// TimestampFormat is how Render stamps each line with timestamps: as
// docker logs -t does, RFC 3339 in UTC with nine digits of fraction.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Render returns the streams as docker logs prints them: only the lines
// written at or after since (if not zero), each prefixed with its time and
// a space when timestamps is set. Without either it returns them as they
// are.
func (l Logs) Render(since time.Time, timestamps bool) (stdout, stderr []byte, err error) {
	if since.IsZero() && !timestamps {
		return l.Stdout, l.Stderr, nil
	}
	if stdout, err = renderStream(l.Stdout, l.StdoutMarks, since, timestamps); err != nil {
		return nil, nil, fmt.Errorf("stdout: %w", err)
	}
	if stderr, err = renderStream(l.Stderr, l.StderrMarks, since, timestamps); err != nil {
		return nil, nil, fmt.Errorf("stderr: %w", err)
	}
	return stdout, stderr, nil
}

func renderStream(b []byte, marks []LogMark, since time.Time, timestamps bool) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(marks) == 0 {
		return nil, ErrNoLogTimes
	}
	var out bytes.Buffer
	m := 0
	for off := 0; off < len(b); {
		end := len(b)
		if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		for m+1 < len(marks) && marks[m+1].Off <= off {
			m++
		}
		at := marks[m].At
		if since.IsZero() || !at.Before(since) {
			if timestamps {
				out.WriteString(at.UTC().Format(TimestampFormat))
				out.WriteByte(' ')
			}
			out.Write(b[off:end])
		}
		off = end
	}
	return out.Bytes(), nil
}

// EncodeMarks packs marks for a store: a count, then each mark's offset
// and time as deltas from the previous (varints). Nil for none.
func EncodeMarks(marks []LogMark) []byte {
	if len(marks) == 0 {
		return nil
	}
	b := binary.AppendUvarint(nil, uint64(len(marks)))
	prevOff, prevAt := 0, int64(0)
	for _, m := range marks {
		at := m.At.UnixNano()
		b = binary.AppendUvarint(b, uint64(m.Off-prevOff))
		b = binary.AppendVarint(b, at-prevAt)
		prevOff, prevAt = m.Off, at
	}
	return b
}

// DecodeMarks reads what EncodeMarks wrote. Empty input is no marks.
func DecodeMarks(b []byte) ([]LogMark, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) { // each mark takes two bytes at least
		return nil, errors.New("log marks: bad count")
	}
	b = b[k:]
	marks := make([]LogMark, 0, n)
	off, at := 0, int64(0)
	for i := range n {
		d, k := binary.Uvarint(b)
		if k <= 0 || d > uint64(1<<40) {
			return nil, fmt.Errorf("log marks: mark %d: bad offset", i)
		}
		b = b[k:]
		t, k := binary.Varint(b)
		if k <= 0 {
			return nil, fmt.Errorf("log marks: mark %d: bad time", i)
		}
		b = b[k:]
		off += int(d)
		at += t
		marks = append(marks, LogMark{Off: off, At: time.Unix(0, at).UTC()})
	}
	if len(b) != 0 {
		return nil, errors.New("log marks: trailing bytes")
	}
	return marks, nil
}
