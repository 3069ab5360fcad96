// Package fleet owns the Docker hosts: one engine client and one circuit
// breaker per host, the active health checks that feed those breakers, and
// placement (which host a job goes to).
//
// Host states, as users see them, are derived from the breaker and the
// operator's choices:
//
//	healthy ──(slow or failing checks)──► degraded
//	   │  ▲                                   │
//	   │  └──────(probe succeeds)─────┐       │ (host faults trip the breaker)
//	   ▼                              │       ▼
//	unavailable (open) ──(open time passes)──► probing (half-open)
//	                    ◄──(probe fails: longer open time)──┘
//
//	isolated: operator forced the breaker open; draining: no new jobs.
//
// An operator acts through Act, which keeps who, why and when
// (HostStatus.Operator, and the state's reason: "isolated by alice: disk
// failing"); the fleet remembers nothing across restarts itself: the
// server stores each action and gives it back with Restore before Start.
//
// Every launch is one breaker call: placement takes the breaker's permit and
// the launch reports its outcome through the Lease. Jobs go only to hosts
// whose breaker is closed; the half-open probes are the health checks (a
// ping through the breaker, scheduled for the moment the open time ends),
// so no job spends an attempt probing a host that is likely still down.
// Monitoring calls are breaker calls too; only host faults count as
// failures (engine.ClassHost).
//
// The health checks are an ejection rule of their own, apart from the
// breaker's count of failed real calls (as Envoy separates active health
// checking from outlier detection): while the breaker is closed a check is
// a plain ping, not a breaker call; after a failed one the next comes
// after UnhealthyInterval, and UnhealthyThreshold failures in a row trip
// the breaker open at once (breaker.Trip) for BaseEjectionTime × the trips
// in a row. With the defaults (1 s interval, 1 s ping deadline, 2 failures,
// 250 ms) a hung daemon is out within about 3.5 s and a dead one within
// 1.5 s, and a hung daemon that comes back is probed and closed about 5 s
// after its ejection.
//
// Ejection for slowness (checks that time out: the daemon takes the
// connection and does not answer in time) is capped, as Envoy caps outlier
// ejection: no more than HealthConfig.MaxEjectedPercent of the hosts are
// out at once for it, and the last host in never is (a panic threshold:
// with every host slow, fusebox keeps using one rather than ejecting them
// all). A slow host kept in shows degraded with the reason, and placement
// puts it after the others. A host that refuses connections is ejected
// whatever the cap.
//
// A daemon can answer ping and still fail every start (nomad#11888), and
// Docker 20.10 even blames such a start on the request (400). With canaries
// enabled, each host periodically starts a known-good container; while a
// host's canary fails it gets no jobs (placement skips it, its status is
// degraded) and the failure counts against its breaker; the canary runs
// again at every health check, beside the pings and never holding them up,
// until it passes.
//
// Each host also has an adaptive limit on its in-flight Docker calls (AIMD:
// it grows while calls return at their usual speed, per operation, and is
// cut when they turn slow or fail), so an overloaded daemon is not pushed
// over. When the limit is reached, calls wait by lane: launches first, then
// status checks, then log collection and cleanup (WithLane). Health-check
// pings and streaming calls bypass it.
//
// This package must not touch the store or job state: it says where a job
// can run and how each host is doing; the dispatcher decides what happens to
// jobs.
package fleet
