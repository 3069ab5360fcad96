package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp" // unix seconds of the attempt
	HeaderSignature = "webhook-signature" // "v1,<base64>", space-separated when several
)

// SecretPrefix starts every receiver secret: "whsec_" then the key in
// base64.
const SecretPrefix = "whsec_"

// Bounds of a secret's key, in bytes, as the Standard Webhooks spec
// recommends.
const (
	SecretMinBytes = 24
	SecretMaxBytes = 64
)

// VerifyToleranceDefault is the tolerance Verify uses when given 0: how far
// a delivery's timestamp may be from now.
const VerifyToleranceDefault = 5 * time.Minute

// ErrVerify is the sentinel of every Verify failure.
var ErrVerify = errors.New("webhook verification failed")

// ParseSecret decodes a "whsec_<base64>" secret into its key.
func ParseSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("secret must start with %q (then the key in base64)", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("secret: the part after %q is not base64: %w", SecretPrefix, err)
	}
	if len(key) < SecretMinBytes || len(key) > SecretMaxBytes {
		return nil, fmt.Errorf("secret: key is %d bytes, must be %d to %d; generate one with: echo whsec_$(openssl rand -base64 32)",
			len(key), SecretMinBytes, SecretMaxBytes)
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature of a delivery:
// "v1,<base64 of HMAC-SHA256(key, id.ts.body)>", ts in unix seconds.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", fmt.Errorf("alert: sign: %w", err)
	}
	return sign(key, id, ts.Unix(), body), nil
}

func sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does with a delivery: it checks that h carries
// a webhook-id, a webhook-timestamp within tolerance of now (0:
// VerifyToleranceDefault), and a webhook-signature of which one v1 entry is
// the HMAC of id.timestamp.body under secret. Every failure is ErrVerify.
// To drop replays, a receiver also remembers the webhook-ids it has seen
// for the tolerance.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if tolerance <= 0 {
		tolerance = VerifyToleranceDefault
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s header", ErrVerify, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrVerify, HeaderTimestamp, tsText)
	}
	if skew := math.Abs(float64(time.Now().Unix() - ts)); skew > tolerance.Seconds() {
		return fmt.Errorf("%w: timestamp %d is %vs from now, more than %v", ErrVerify, ts, skew, tolerance)
	}
	want := sign(key, id, ts, body)
	for s := range strings.FieldsSeq(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signature matches", ErrVerify)
}
