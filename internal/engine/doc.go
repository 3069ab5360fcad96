// Package engine is fusebox's only door to a Docker engine.
//
// It owns one Client per host (unix socket, tcp, or tcp+TLS with client
// certificates, with API-version negotiation so it speaks to Docker 20.10 as
// well as current engines), the deadline of every Docker API call, and the
// classification of every error into one of three classes:
//
//   - ClassHost: the host is at fault (dial refused, TLS failure, a call's own
//     deadline passed while its caller was still waiting, 5xx, 429, a broken
//     connection). Only these count against a host's circuit breaker.
//   - ClassJob: the job is at fault (image not found, invalid spec, bad
//     command, denied pull), or its registry is (a pull refused, failed or
//     too slow while the engine answers: ErrRegistry; a registry outage
//     never counts against a host). Retrying on another host will not help.
//   - ClassIgnored: nobody is at fault (the caller cancelled or its own
//     deadline passed; an expected 404 or 409).
//
// Bounded calls (ping, inspect, create, start, stop, remove, list, image
// inspect/load/pull) each get their own deadline from Timeouts. Streaming
// calls (wait, logs follow, events) go through a second client without a
// whole-request timeout and are bounded only by their context, as nomad's
// docker driver does (getDockerClient vs getInfinityClient). Log reads
// (Logs, CollectLogs) also use that client, under an inactivity deadline
// instead of a whole-read one, so that no amount of output makes them fail;
// CollectLogs follows a running container in bounded memory and resumes a
// broken stream where it was (logs.go). Archive copies (CopyFrom, CopyTo:
// a container's files as a tar, out and in) use it too, under an inactivity
// deadline of their own (Timeouts.Archive) that counts only the engine's
// delays, never the caller's reader or writer (archive.go).
//
// This package must not know about breakers, jobs in the store, or placement:
// it reports what happened and how to count it, and the fleet decides.
package engine
