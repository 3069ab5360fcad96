# fusebox — run `make demo` for the failover story on three private Docker
# engines, `make test` for the whole suite against real engines.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0
# Packages whose tests run with the race detector (the concurrent ones).
RACE_PKGS   := ./breaker/... ./internal/fleet/... ./internal/dispatch/... ./internal/store/... ./internal/api/... ./internal/event/... ./internal/apiclient/... ./internal/alert/... ./internal/workflow/...

.PHONY: all build deps deps-test demo test test-short chaos bench lint fmt clean

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

bench: bench-breaker
	$(GO) test -run '^$$' -bench . -benchmem ./internal/store/... ./internal/engine/... ./internal/event/... ./internal/alert/...
	$(GO) test -run '^$$' -bench RunWaitAgainstDockerRun -benchtime 10x ./internal/server/
	$(GO) test -run '^$$' -bench DispatchWithDeadAlertReceiver -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench DiamondAgainstByHand -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench CopyOutIn -benchtime 5x ./internal/workflow/artifact/
	$(GO) test -run '^$$' -bench ImageLoadAgainstDockerLoad -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench ImageTransfer -benchtime 3x ./internal/server/
	$(GO) test -run '^$$' -bench PullAgainstDockerPull -benchtime 3x ./internal/server/

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: the files above need formatting (make fmt)"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin

-include Makefile.breaker
