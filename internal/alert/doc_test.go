package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// verifyLikeDoc is the verification example of doc.go, word for word but
// for taking the headers instead of the request: the tests check that it
// accepts fusebox's deliveries.
func verifyLikeDoc(secret string, h http.Header, body []byte) bool {
	r := &http.Request{Header: h}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if t, err := strconv.ParseInt(ts, 10, 64); err != nil || math.Abs(float64(time.Now().Unix()-t)) > 300 {
		return false // no timestamp, or too old: a replay
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return slices.ContainsFunc(strings.Fields(r.Header.Get("webhook-signature")),
		func(s string) bool { return hmac.Equal([]byte(s), []byte(want)) })
}
