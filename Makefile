# fusebox — run `make demo` for the failover story on three private Docker
# engines, `make test` for the whole suite against real engines.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0
# Packages whose tests run with the race detector (the concurrent ones).
RACE_PKGS   := ./breaker/... ./internal/fleet/... ./internal/dispatch/... ./internal/store/... ./internal/api/... ./internal/event/... ./internal/apiclient/... ./internal/alert/... ./internal/workflow/... ./internal/image/... ./internal/sim/...

.PHONY: all build deps deps-test demo test test-short chaos bench bench-run fuzz lint fmt clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

deps:
	@./scripts/deps.sh

# What the tests need besides: promtool (Debian's prometheus) and chromium.
deps-test:
	@./scripts/deps.sh --test

# Three private engines: one job run directly on each with `fusebox run
# -H` (--docker-host), then the failover story: a stream of jobs, one host hung and
# brought back, and a summary; then the diamond workflow, run twice (the
# second all cached).
demo: deps
	$(GO) build -o bin/ ./cmd/fusebox ./cmd/fusebox-demo
	./bin/fusebox-demo -fusebox ./bin/fusebox

# Everything, against real Docker engines (started privately, as root).
test: deps-test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -p 1 -race $(RACE_PKGS)

# The chaos suite in its full form (internal/chaos): every fault scenario
# against private engines and a real fusebox serve, faults held 30 s to a
# minute, the 5,000-submission storm; prints the table of figures (also in
# bin/chaos.md). make test runs the short form.
chaos: deps
	@mkdir -p bin
	$(GO) test -count=1 -timeout 90m -run '^TestChaos$$' ./internal/chaos/ -args -chaos.full -chaos.table=$(CURDIR)/bin/chaos.md; \
	rc=$$?; cat bin/chaos.md 2>/dev/null; exit $$rc

test-short:
	$(GO) test -count=1 -short ./...

# make bench: every benchmark run below (bench-run), in one go, then one
# report of them all (cmd/fusebox-bench-report): Markdown printed and in
# $(BENCH_DIR)/bench-report.md, JSON in bench-report.json, the scale plot
# in bench-scale.svg; the raw go test output in bench.txt. Add a
# benchmark run to bench-run and it is in the report. docs/performance.md
# holds a report with the machine it ran on.
BENCH_DIR ?= bin/bench

bench:
	@mkdir -p $(BENCH_DIR)
	$(MAKE) --no-print-directory bench-run 2>&1 | tee $(BENCH_DIR)/bench.txt
	$(GO) run ./cmd/fusebox-bench-report -in $(BENCH_DIR)/bench.txt -md $(BENCH_DIR)/bench-report.md \
		-json $(BENCH_DIR)/bench-report.json -svg $(BENCH_DIR)/bench-scale.svg

bench-run: bench-breaker
	$(GO) test -run '^$$' -bench . -benchmem ./internal/store/... ./internal/engine/... ./internal/event/... ./internal/alert/...
	$(GO) test -run '^$$' -bench RunWaitAgainstDockerRun -benchtime 20x ./internal/server/
	$(GO) test -run '^$$' -bench DispatchWithDeadAlertReceiver -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench DiamondAgainstByHand -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench CopyOutIn -benchtime 5x ./internal/workflow/artifact/
	$(GO) test -run '^$$' -bench ImageLoadAgainstDockerLoad -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench ImageTransfer -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench PullAgainstDockerPull -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench APIAgainstEngine -benchtime 3x -timeout 20m ./internal/server/
	$(GO) test -run '^$$' -bench FailFast -benchtime 1x -count 3 -timeout 20m ./internal/server/
	$(GO) test -run '^$$' -bench SlowHostDegradation -benchtime 1x -count 3 -timeout 20m ./internal/server/
	$(GO) test -run '^$$' -bench GetJob -benchtime 200x ./internal/mcpserver/
	$(GO) test -run '^$$' -bench ScaleSimulated -benchtime 1x -timeout 30m ./internal/sim/

# make fuzz: each fuzz target for FUZZTIME. Crashers land in the package's
# testdata/fuzz/<Target>/ (commit them: they are regression tests that
# every go test runs); the corpus the fuzzer grows stays in the Go cache
# ($$(go env GOCACHE)/fuzz), so the next run starts from it.
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	./breaker:FuzzBreaker \
	./internal/config:FuzzParse \
	./internal/job:FuzzValidate \
	./internal/job:FuzzDecodeMarks \
	./internal/api:FuzzDecodeSpec \
	./internal/api:FuzzDecodeHostAction \
	./internal/api:FuzzDecodeWorkflowRunRequest \
	./internal/workflow/def:FuzzParse

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in $$pkg ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: the files above need formatting (make fmt)"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin

-include Makefile.breaker
