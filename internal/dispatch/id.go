package dispatch

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a new job id: 48 bits of milliseconds then 32 random bits,
// in a lower-case base32 that sorts by creation time (16 characters).
func newID(now time.Time) string {
	var b [10]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	rand.Read(b[6:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
