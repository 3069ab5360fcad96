package job

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// idEncoding is base32 without i, l, o, u, in its sort order (never changed).
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new id: 48 bits of milliseconds then 32 random bits, in
// a lower-case base32 (no i, l, o, u) that sorts by creation time; 16
// characters. Job ids are these; workflow runs prefix them with "wf-".
func NewID(now time.Time) string {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}
