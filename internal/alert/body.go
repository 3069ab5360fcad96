package alert

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"fusebox/internal/store"
)

// Message is the body of a webhook: Alertmanager's webhook format, version
// "4", so that receivers built for Alertmanager accept it unchanged. Each
// message carries one alert (a group of one): GroupLabels and
// CommonLabels are its labels.
type Message struct {
	Version           string            `json:"version"` // "4"
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing or resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // 0001-01-01T00:00:00Z while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Fingerprint identifies an alert by its labels as Alertmanager does: the
// 64-bit FNV-1a hash of the label names and values in name order, each
// followed by a 0xff byte, as 16 hex digits.
func Fingerprint(labels map[string]string) string {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// groupKey is Alertmanager's group key of a group of one alert: its labels
// as a label set, e.g. {}:{alertname="FuseboxBreakerOpen", host="h1"}.
func groupKey(labels map[string]string) string {
	var b strings.Builder
	b.WriteString("{}:{")
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + strconv.Quote(labels[k]))
	}
	b.WriteString("}")
	return b.String()
}

// message is the webhook body of state s for receiver.
func message(s store.AlertState, receiver, externalURL string) Message {
	a := Alert{
		Status:       s.Status,
		Labels:       s.Labels,
		Annotations:  nonNil(s.Annotations),
		StartsAt:     s.StartsAt.UTC(),
		GeneratorURL: generatorURL(externalURL, s.Labels),
		Fingerprint:  s.Fingerprint,
	}
	if s.Status == store.AlertResolved {
		a.EndsAt = s.EndsAt.UTC()
	}
	return Message{
		Version:           "4",
		GroupKey:          groupKey(s.Labels),
		Status:            s.Status,
		Receiver:          receiver,
		GroupLabels:       s.Labels,
		CommonLabels:      s.Labels,
		CommonAnnotations: a.Annotations,
		ExternalURL:       externalURL,
		Alerts:            []Alert{a},
	}
}

// generatorURL points at what the alert is about in the API: the job, the
// host, or the server.
func generatorURL(externalURL string, labels map[string]string) string {
	if externalURL == "" {
		return ""
	}
	base := strings.TrimRight(externalURL, "/")
	switch {
	case labels[LabelJobID] != "":
		return base + "/v1/jobs/" + labels[LabelJobID]
	case labels[LabelHost] != "":
		return base + "/v1/hosts/" + labels[LabelHost]
	}
	return base + "/"
}

// render encodes m; a Message always encodes.
func render(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("alert: render: " + err.Error())
	}
	return b
}

// newWebhookID returns a new message id: "msg_" and 32 random hex digits.
func newWebhookID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "msg_" + hex.EncodeToString(b[:])
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
