// Package workflow runs workflows: DAGs of container steps (a
// def.Resolved), each step try a fusebox job on the fleet, with the run
// and its steps kept in the store (store.WorkflowStore), so that a Runner
// started on the same store resumes every run another left unfinished:
// finished steps are never run again, running steps are adopted through
// their jobs.
//
// # A run
//
// Submit stores the run with all its steps (pending) and starts its loop.
// The loop reads the run and its steps from the store each time it is
// woken — by a job.transition event of one of its jobs (event.Bus), by an
// identical step ending, by Cancel, by a retry's time, and at least every
// ReconcileInterval (events wake, the store is the truth) — and moves
// what can move: a step whose dependencies (depends_on and its inputs'
// steps) are all succeeded or cached starts; independent steps run at
// once. A failed step (after its retries) fails the run: the jobs of the
// running steps are cancelled, the steps not started are skipped. The
// run's timeout and Cancel end it the same way. When every step is done
// the run succeeds with its results (the outputs no step consumes).
//
// # A step try
//
// Each try is one job: the step's image, command, env (plus
// FUSEBOX_STEP_TRY=<try>), workdir, constraints, timeout, cpus, memory,
// max_attempts, its inputs (the digests of its dependencies' outputs,
// unpacked at their mount paths) and its outputs, labelled workflow.run
// and workflow.step, with idempotency key "wf/<run>/<step>/<try>". The
// try is stored as submitted before its job is submitted, so a crash in
// between resubmits the same key and finds the same job.
//
// Only the step's own failure uses a retry (the job's Cause is exit,
// timeout, output or refused): try n+1 starts retry_backoff_factor ×
// 2^(n-1) seconds after try n failed, capped at the step's max backoff
// (Options.MaxRetryBackoff when it has none), times a uniform random
// factor in [0.5, 1.5] with retry_jitter; the time is stored (NextAt) and
// survives a restart. A job that ended through the fleet (host faults
// used up its attempts, no host, the artifact store) already failed over
// inside the dispatcher: the step fails at once and the run with cause
// fleet. A job the dispatcher refuses (an invalid spec) fails the step as
// its own; one whose constraints no configured host carries, as the
// fleet's.
//
// # The cache
//
// A step with caching on (cache, caching_enabled) has a key: the SHA-256
// of the canonical JSON of the image ID it would run (Images, a digest,
// never a tag), its command, env, workdir, declared outputs, constraints
// and each input's digest with its mount path (params are substituted
// already). A live entry whose outputs are all still in the artifact store
// makes the step cached: its outputs are reused and no job runs. Otherwise
// the step records why it ran (WhyRan): "first run", the parts that
// changed since the step's latest entry ("image changed", "command
// changed", "env FOO changed", "input /in (from a) changed", ...), "cache
// entry expired", "outputs no longer stored", "cache off", "skip-cache".
// Only succeeded steps are stored, for Options.CacheTTL. Two steps with the
// same key at once run once: the second waits ("waiting for identical step
// <run>/<step>") and then hits the entry the first stored (or runs, if the
// first failed). A skip-cache run does not read the cache but writes it.
//
// # The breaker
//
// A run that uses its workflow's breaker (use_circuit_breaker, or the
// request's override) passes it at Submit: the breaker "workflow/<name>"
// in the registry given to New, created with Options.Breaker overridden by
// the definition's failure_threshold (consecutive failed runs),
// reset_timeout (open duration) and half_open_timeout (how long a probe
// run holds its slot). An open breaker refuses Submit at once with its
// *breaker.OpenError (RetryAfter). When the run ends, its token reports a
// success, a failure for its own failure (a step's own, or the run's
// timeout), and nothing for the fleet's failure or a cancellation. A run
// resumed by another Runner has lost its token: it reports on a new one
// if the breaker admits it, and not at all if the breaker refuses.
// Breakers live in memory: a new process starts with them closed.
//
// # Lifecycle
//
// Start subscribes to job transitions, then resumes the store's active
// runs; Stop ends every loop and waits for them (safe twice and before
// Start); the runs stay in the store. A retention loop deletes runs
// finished more than Options.Retention ago and cache entries expired that
// long.
//
// This package imports the store's interface, never a concrete store, and
// no HTTP: internal/server wires it to the dispatcher, the bus, the image
// resolver, the artifact store and the breaker registry.
package workflow
