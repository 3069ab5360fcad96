#!/usr/bin/env bash
# A workflow that keeps failing trips its circuit breaker, is refused fast
# while the breaker is open, and recovers once it is fixed: one probe run
# goes through after the open time, and its success closes the breaker.
#
# Against a running `fusebox serve` (with at least one host that has the
# image flaky-report.yaml runs, fusebox/testjob:latest by default):
#
#   FUSEBOX_SERVER=http://127.0.0.1:7070 ./run.sh
#
# Environment: FUSEBOX_SERVER (default http://127.0.0.1:7070), FUSEBOX (the
# fusebox binary, default: fusebox on PATH), FUSEBOX_TOKEN if the server
# wants one, IMAGE (the image the step runs). Exits 0 only if every act
# went as told.
set -euo pipefail

export FUSEBOX_SERVER="${FUSEBOX_SERVER:-http://127.0.0.1:7070}"
FUSEBOX="${FUSEBOX:-fusebox}"
IMAGE="${IMAGE:-fusebox/testjob:latest}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wf="$here/flaky-report.yaml"
task="cb-example-$(date +%s)-$$"

say() { printf '\n== %s\n' "$*"; }
die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 1
}
now_ms() { date +%s%3N; }

# run ARGS...: `fusebox workflow run` of the example, echoed with its
# output (progress on stderr, then the step table); its exit code is left
# in $rc and its output in $err.
run() {
	printf '$ fusebox workflow run flaky-report.yaml %s\n' "$*"
	rc=0
	err="$("$FUSEBOX" workflow run "$wf" --task-id "$task" --param image="$IMAGE" "$@" 2>&1)" || rc=$?
	if [[ -n "$err" ]]; then printf '%s\n' "$err" | sed 's/^/  /'; fi
	printf '  (exit code %d)\n' "$rc"
}

# seconds DURATION: a Go duration as the CLI prints it (10s, 1m5s, 2m0s)
# in whole seconds, rounded up.
seconds() {
	local d="$1" total=0 n
	if [[ "$d" =~ ^([0-9]+)h(.*)$ ]]; then total=$((BASH_REMATCH[1] * 3600)) d="${BASH_REMATCH[2]}"; fi
	if [[ "$d" =~ ^([0-9]+)m(.*)$ ]]; then total=$((total + BASH_REMATCH[1] * 60)) d="${BASH_REMATCH[2]}"; fi
	if [[ "$d" =~ ^([0-9]+)(\.[0-9]+)?s$ ]]; then
		n="${BASH_REMATCH[1]}"
		[[ -n "${BASH_REMATCH[2]}" ]] && n=$((n + 1))
		total=$((total + n))
	fi
	echo "$total"
}

# retry_after: the wait the last refusal named, in seconds.
retry_after() {
	local d
	d="$(sed -n -E 's/.*retry (in|after) ([0-9hms.]+).*/\2/p' <<<"$err" | head -n1)"
	[[ -n "$d" ]] || die "the refusal did not say when to retry: $err"
	seconds "$d"
}

"$FUSEBOX" workflow templates >/dev/null 2>&1 ||
	die "no fusebox server answers at $FUSEBOX_SERVER (start one: fusebox serve; or set FUSEBOX_SERVER)"
since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

say "0. the upstream is up: the workflow succeeds"
for _ in 1 2 3; do # still open from an earlier story on this server? wait it out
	run
	[[ $rc -eq 125 && "$err" == *"retry "* ]] || break
	wait_s="$(retry_after)"
	echo "(the breaker is still open from an earlier story; waiting ${wait_s}s)"
	sleep "$wait_s"
done
[[ $rc -eq 0 ]] || die "the first run: exit code $rc, want 0 (does a host have $IMAGE? see fusebox image load)"

say "1. the upstream is down: the workflow fails, run after run (failure_threshold: 2)"
for i in 1 2; do
	run --param fail=true
	[[ $rc -eq 1 ]] || die "failing run $i: exit code $rc, want 1 (the run failed)"
done

say "2. its breaker is open: the next start is refused at once, with when to retry"
t0="$(now_ms)"
run --param fail=true
refused_ms=$(($(now_ms) - t0))
[[ $rc -eq 125 ]] || die "the start after 2 failures: exit code $rc, want 125 (refused by the breaker)"
wait_s="$(retry_after)"
echo "refused in ${refused_ms} ms (the CLI's whole run, process start included); retry in ${wait_s}s"
echo "the fixed workflow is refused too while the breaker is open: the breaker is the workflow's"
run
[[ $rc -eq 125 ]] || die "the fixed run while open: exit code $rc, want 125"

say "3. the upstream is fixed; after the reset timeout one probe run goes through"
echo "waiting ${wait_s}s (reset_timeout: 10s, with jitter)"
sleep "$wait_s"
for _ in 1 2 3; do # the open time has jitter: wait what a refusal still says
	run
	[[ $rc -eq 125 && "$err" == *"retry "* ]] || break
	wait_s="$(retry_after)"
	echo "not yet: waiting ${wait_s}s more"
	sleep "$wait_s"
done
[[ $rc -eq 0 ]] || die "the probe run: exit code $rc, want 0"

say "4. the probe succeeded: the breaker is closed, and runs start again"
run
[[ $rc -eq 0 ]] || die "the run after the probe: exit code $rc, want 0"

say "the runs of this story (fusebox workflow runs --task-id $task)"
"$FUSEBOX" workflow runs --task-id "$task"

say "the breaker's transitions (fusebox events -o json --type breaker --since $since)"
# One JSON event a line; keep this workflow's breaker's.
raw="$("$FUSEBOX" events -o json --type breaker --since "$since")"
events="$(sed -n 's|.*"at":"\([^"]*\)".*"name":"workflow/flaky-report","from":"\([^"]*\)","to":"\([^"]*\)".*|  \1  workflow/flaky-report  \2 -> \3|p' <<<"$raw")"
printf '%s\n' "$events"
grep -q -- ' closed -> open' <<<"$events" || die "want the breaker to have opened; the breaker events: $raw"
grep -q -- ' half-open -> closed' <<<"$events" || die "want a probe to have closed the breaker; the breaker events: $raw"
printf '\nok: tripped after 2 failed runs, refused in %d ms, closed again by one probe run\n' "$refused_ms"
