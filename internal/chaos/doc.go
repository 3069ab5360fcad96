// Package chaos is fusebox's fault suite: scripted scenarios that put a
// real `fusebox serve` (the binary, started, SIGKILLed and started again)
// in front of real private Docker engines (internal/enginetest) and break
// things while jobs are submitted: an engine SIGKILLed, SIGSTOPped or
// restarted, connections reset, slowed or swallowed by a proxy, answers
// dropped after the daemon acted, fusebox itself killed mid-load and
// mid-workflow, every engine down while the queue fills, a submit storm.
//
// Each scenario ends with one line of Figures, counted two ways: from the
// API (every submission's answer, every accepted job's end, its
// submit-to-running time, the breaker transitions of /v1/events) and from
// the engines' own event streams (containers created per attempt and per
// job, and whether two containers of one job were ever alive at once,
// whatever fusebox believes). The verdict passes when nothing was lost,
// no job ran twice at once, no attempt had two containers, every
// submission was answered (accepted + refused = submitted), every accepted
// job ended, and the scenario's own expectations held (the queue limit
// reached, a workflow run succeeded). Table prints the figures as a
// markdown table; Record the lines, with the path of each scenario's job
// slowest to run.
//
// TestChaos runs every scenario in its short form as part of `go test`
// (make test); `make chaos` runs the full form (-chaos.full: faults held
// 30 s to a minute, the 5,000-submission storm) and writes the table.
// Both run the same code: only Sizes differ.
//
// It imports fusebox only through the API (internal/apiclient and the
// wire types) and the binary: it tests the product from outside, as a
// user's scripts would.
package chaos
