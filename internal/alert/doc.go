// Package alert tells operators, by webhook, when fusebox needs them: a
// host's breaker opened, every host is out, the queue is nearly full, a host
// is degraded, a job was lost; and again when it is over.
//
// # Alerts
//
// Each alert is a firing/resolved pair identified by its labels (alertname,
// severity, host or job_id where relevant), whose Fingerprint is computed
// as Alertmanager computes it:
//
//	FuseboxBreakerOpen     host   warning   the host's breaker is open or half-open (not forced
//	                                        open: an isolate is the operator's choice); resolved when it closes
//	FuseboxAllHostsOut     -      critical  there are hosts and none is healthy or degraded
//	FuseboxQueueNearlyFull -      warning   queued jobs >= queue_threshold × max_queued_jobs
//	FuseboxHostDegraded    host   warning   the host has been degraded for DegradedFor (1m): a host
//	                                        passes through degraded on its way out and back
//	FuseboxWorkflowBreakerOpen workflow warning  a workflow's breaker is open or half-open: its runs
//	                                        failed by their own fault; resolved when it closes
//	FuseboxJobLost         job_id warning   a job reached state lost; it fires once and resolves by
//	                       (host)           itself JobLostResolveTimeout (5m) after, as Alertmanager's
//	                                        resolve_timeout does: a lost job stays lost
//
// Annotations carry a summary and a description that says what to do, in
// the words of deploy/prometheus/alerts.yaml, which has the same alerts as
// Prometheus rules (with a "for:" delay these webhooks do not have).
//
// The evaluator is woken by the event stream (job transitions, breaker and
// host state changes, operator actions) and every EvalInterval. Each pass
// compares a Snapshot of the fleet and queue (the level alerts) and the job
// transitions to lost since its cursor with the stored state of every alert
// (store.AlertState), and enqueues what changed together with the event
// cursor it has processed, in one store transaction. So a restart neither
// fires an alert that is firing again, nor misses a resolve that happened
// while fusebox was down (the first pass after the restart sees that the
// condition is gone), nor forgets a lost job (the events after the cursor
// are read again). A still-firing alert is sent again RepeatInterval (4h)
// after it was last sent, as Alertmanager's repeat_interval does. When the
// Snapshot cannot be read, the level alerts are left as they are.
//
// # Webhooks
//
// Each change is one notice per receiver: a POST of Alertmanager's webhook
// body (Message: version "4", groupKey, status, receiver, groupLabels,
// commonLabels, commonAnnotations, externalURL, alerts[] with status,
// labels, annotations, startsAt, endsAt "0001-01-01T00:00:00Z" while
// firing, generatorURL, fingerprint), so that receivers built for
// Alertmanager (chat bridges, paging tools) take it unchanged. Every
// message is a group of one alert: groupLabels and commonLabels are its
// labels, truncatedAlerts is 0.
//
// Every delivery is signed per Standard Webhooks: headers webhook-id (the
// notice's, the same on every retry), webhook-timestamp (unix seconds of
// this attempt) and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" under the receiver's secret "whsec_<base64 key>"
// (24 to 64 bytes; make one with `echo whsec_$(openssl rand -base64 32)`);
// Content-Type application/json, User-Agent fusebox.
//
// # Delivery
//
// Notices wait in a durable outbox in the store (store.AlertNotice). Each
// receiver has its own delivery goroutine and its own breaker: it sends
// the receiver's oldest undelivered notice, and only once that is
// delivered the next one, so a receiver sees its notices in the order they
// were enqueued. A 2xx answer is a delivery (recorded with an
// alert.delivery event in the same transaction); anything else is retried
// after an exponential backoff with full jitter (Backoff doubling up to
// MaxBackoff). No answer, a 5xx, 408, 429 or a redirect count against the
// receiver's breaker; other 4xx do not (the receiver is up and refuses the
// body: it is retried all the same, and `fusebox alerts` shows the error).
// While the breaker is open the goroutine waits for it instead of calling.
// A dead receiver holds up nothing but its own goroutine; nothing is ever
// dropped, and a Manager started on the same store after a stop or a crash
// delivers what is pending. A receiver added to the configuration gets the
// changes from then on (and the firing alerts at their next repeat); the
// notices of one removed wait in the outbox, logged at start, until it is
// configured again.
//
// Delivery is at least once: a receiver sees a webhook-id twice only when
// it answered 2xx and fusebox stopped before the store recorded that. A
// receiver drops such a repeat (and replays) by remembering the ids it has
// seen for the timestamp tolerance. One Manager per store: two fusebox
// processes on one database would both deliver.
//
// # Verifying a delivery
//
// Verify does what a receiver does; in Go, without this package:
//
//	func verify(secret string, r *http.Request, body []byte) bool {
//		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
//		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
//		if t, err := strconv.ParseInt(ts, 10, 64); err != nil || math.Abs(float64(time.Now().Unix()-t)) > 300 {
//			return false // no timestamp, or too old: a replay
//		}
//		mac := hmac.New(sha256.New, key)
//		fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
//		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
//		return slices.ContainsFunc(strings.Fields(r.Header.Get("webhook-signature")),
//			func(s string) bool { return hmac.Equal([]byte(s), []byte(want)) })
//	}
//
// This package owns the alert rules, the webhook body, signing and the
// delivery loops. It reads the fleet through Source, the event stream
// through Events and keeps its state through Store (store.Store is one);
// internal/server adapts them, internal/api and cmd/fusebox call Test and
// Receivers.
package alert
