package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In the file and the environment it is written
// as an integer number of bytes or as a number with a unit: B, KiB, MiB, GiB,
// TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. "512KiB".
type Size int64

var sizeUnits = []struct {
	name string
	mult int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

// String writes s with the largest unit that divides it exactly, e.g. "1MiB".
func (s Size) String() string {
	if s != 0 {
		for _, u := range sizeUnits {
			if u.mult > 1 && int64(s)%u.mult == 0 {
				return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a size written as ParseSize accepts.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize reads "1048576", "1MiB", "1.5 MiB", "512KiB" or "10MB". Units are
// case-insensitive. Negative sizes are refused.
func ParseSize(text string) (Size, error) {
	t := strings.TrimSpace(text)
	num, mult := t, int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.name) && strings.EqualFold(t[len(t)-len(u.name):], u.name) {
			num, mult = strings.TrimSpace(t[:len(t)-len(u.name)]), u.mult
			break
		}
	}
	if num == "" || strings.ContainsAny(num, " \t") {
		return 0, fmt.Errorf("must be a size like 1048576, 512KiB or 1MiB (got %q)", text)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("must not be negative (got %q)", text)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("is too large (got %q)", text)
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(num, "xXpP_") {
		return 0, fmt.Errorf("must be a size like 1048576, 512KiB or 1MiB (got %q)", text)
	}
	if f < 0 {
		return 0, fmt.Errorf("must not be negative (got %q)", text)
	}
	b := f * float64(mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("is too large (got %q)", text)
	}
	return Size(math.Round(b)), nil
}

// parseDuration reads a Go duration such as "30s" or "1m30s". A bare number
// other than 0 is refused: the unit must be written.
func parseDuration(text string) (time.Duration, error) {
	t := strings.TrimSpace(text)
	if isNumber(t) && t != "0" {
		return 0, fmt.Errorf("needs a unit: write %q (or ms, m, h) (got %s)", t+"s", t)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf(`must be a duration such as "30s", "1m30s" or "500ms" (got %q)`, text)
	}
	return d, nil
}

// isNumber reports whether s is a plain decimal number such as 30, -1.5 or
// 1e3.
func isNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	digits, dot, exp := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && !exp:
			dot = true
		case (c == 'e' || c == 'E') && digits > 0 && !exp:
			exp = true
			if i+1 < len(s) && (s[i+1] == '+' || s[i+1] == '-') {
				i++
			}
		default:
			return false
		}
	}
	return digits > 0 && !strings.HasSuffix(s, "e") && !strings.HasSuffix(s, "E")
}
