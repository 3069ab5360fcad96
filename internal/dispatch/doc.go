// Package dispatch runs jobs: it owns the bounded queue, placement of queued
// jobs on the fleet, the launch of each attempt, monitoring until exit, log
// collection, cancel and timeout, failover after host faults, and the
// reconciliation that makes a restart safe.
//
// A job's life (every arrow is one compare-and-set transition in the store,
// committed before the Docker call it permits):
//
//	submit ─► queued ─(placed: attempt+1, host)─► launching ─(started)─► running
//	running ─► succeeded | failed | timed_out | cancelled | lost   (logs stored first)
//
//	launching ─► queued     host fault: backoff, another host; or the request
//	                        never reached the host: undone, no attempt used
//	launching ─► launching  the answer was lost: confirming the container by
//	                        name (adopt it, settle it, or declare the host lost)
//	launching, running ─► queued | lost   host unreachable past LostAfter
//	                        (lost-host policy); the container is fenced
//	running ─► queued       the daemon went down under it: another host
//	any non-terminal ─► cancelled
//
// Invariants:
//   - A job is committed before Submit returns; nothing accepted is dropped:
//     every queued job is eventually placed, cancelled, or fails its own
//     limits (attempts, constraints). Every store write on the launch, run
//     and requeue paths is retried until it succeeds or the dispatcher
//     stops (commit, retryStore).
//   - Waiting for a host uses no attempt; only a launch that reached its
//     host does.
//   - One container per attempt: its name is job.ContainerName(id, attempt),
//     so a launch retried after a crash finds the container (name conflict)
//     and adopts it instead of making a second. Containers of a stale attempt
//     or of a finished job are removed by the reconciler, never while their
//     host is unavailable.
//   - No two containers of a job at once: a launch whose answer was lost is
//     fenced (fence.go) until its container is settled or its host declared
//     lost, and a container left on a lost host is removed before that host
//     gets another job.
//   - Only host faults (engine.ClassHost) count against a host's breaker and
//     use an attempt as a failover; a non-zero exit is the job's own result,
//     and a 5xx the engine gives a spec is diagnosed by a probe (diagnose.go)
//     before it may count.
//   - Operator isolation or draining stops new work only: what runs there is
//     monitored to its end.
//
// This package must not talk HTTP or parse configuration; it imports the
// store interface, never a concrete store.
package dispatch
