// Package sim is a simulation of Docker engines, for the scale benchmarks
// only: never for tests of correctness, which run against real engines
// (internal/enginetest).
//
// A simulated engine answers the few Docker API routes fusebox uses (ping,
// version, image inspect and pull, container create, start, inspect, wait,
// logs, stop, remove, list, and the event stream) in process, over an
// in-memory connection that engine.Config.Dial hands to the real engine
// client; so the real fleet (health checks, breakers, limiter, placement)
// and the real dispatcher (launch, monitoring by events, log collection,
// removal) run against it unchanged. Nothing crosses the kernel: thousands
// of simulated engines fit in one process.
//
// Its models are plain and stated: every answer is delayed by
// Model.CallLatency with ±Model.Jitter; a container runs for
// Model.JobRuntime and exits 0 with one line of output; a share
// Model.CreateFailRate of creates are answered 500. An engine can be made
// to fail at once: Kill (every connection is reset and every dial refused,
// as a dead daemon), Hang (connections are accepted and never answered, as
// a deadlocked one), and Resume. The simulation counts what it served
// (Stats), so a benchmark can report, for instance, the health-check rate
// the fleet really achieved.
package sim
