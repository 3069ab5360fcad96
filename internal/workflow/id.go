package workflow

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a new run id: "wf-", then 48 bits of milliseconds and 32
// random bits in a lower-case base32 that sorts by creation time.
func newID(now time.Time) string {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return "wf-" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}
