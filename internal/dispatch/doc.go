// Package dispatch runs jobs: it owns the bounded queue, placement of queued
// jobs on the fleet, the launch of each attempt, monitoring until exit, log
// collection, cancel and timeout, failover after host faults, and the
// reconciliation that makes a restart safe.
//
// A job's life (every arrow is one compare-and-set transition in the store,
// committed before the Docker call it permits):
//
//	submit ─► queued ──(placed: attempt+1, host)──► launching ──(started)──► running
//	            ▲  ▲                                   │                       │
//	            │  └──(host fault: backoff, another host)┘                       │
//	            │                                                              │
//	            └──(host unreachable past LostAfter, policy reschedule)──────────┤
//	                                                                           ▼
//	     succeeded | failed | timed_out | cancelled | lost  (logs stored first)
//
// Invariants:
//   - A job is committed before Submit returns; nothing accepted is dropped:
//     every queued job is eventually placed, cancelled, or fails its own
//     limits (attempts, constraints).
//   - Waiting for a host uses no attempt; only a launch does.
//   - One container per attempt: its name is job.ContainerName(id, attempt),
//     so a launch retried after a crash finds the container (name conflict)
//     and adopts it instead of making a second. Containers of a stale attempt
//     or of a finished job are removed by the reconciler, never while their
//     host is unavailable.
//   - Only host faults (engine.ClassHost) count against a host's breaker and
//     use an attempt as a failover; a non-zero exit is the job's own result.
//
// This package must not talk HTTP or parse configuration; it imports the
// store interface, never a concrete store.
package dispatch
