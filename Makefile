# dist_test: the commands a developer and CI use.
#   make demo   run the example suite end to end on the embedded default
#   make test   lint, the builds for macOS and Windows (make cross), a few
#               seconds of each fuzz target, then every test with the race
#               detector (what CI runs)
#   make fuzz   each fuzz target for FUZZTIME (1m)
#   make bench  the figures of docs/performance.md beside their baselines
#   make profile  a CPU profile of master and slave dispatching no-op tasks
#   make image  the container image of infra/Dockerfile, stamped with VERSION

GO      ?= go
BIN     := bin/dist_test
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# Pinned, so that a new release's checks never fail a build by themselves.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCH     ?= .
COUNT     ?= 1

PREFIX  ?= /usr/local

# Fuzzing: make test runs each target for FUZZTIME_SHORT, make fuzz for
# FUZZTIME; FUZZ=Name runs only the targets whose name contains Name.
FUZZTIME       ?= 1m
FUZZTIME_SHORT ?= 3s
FUZZ           ?= Fuzz

# The client commands (submit, watch, fetch, cancel, status, jobs, isolate
# archive, batcharchive) run on laptops: make cross builds the program for
# each of CROSS and vets, tests included, the packages that run there. The
# slave's packages (slave/..., isolate/fetch, isolate/cache) build there
# too but are Linux's: the slave refuses to start elsewhere.
CROSS    ?= darwin/amd64 darwin/arm64 windows/amd64
PORTABLE := ./client/... ./internal/... ./isolate ./isolate/isolatefile/... \
            ./isolate/archive/... ./isolate/cas/... ./server/... ./web/...

.PHONY: all build install test lint cross fuzz fuzz-short demo image bench profile chaos clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/dist_test

# Lays out dist_test under PREFIX with the two names the original's
# frontends run: $(PREFIX)/bin/isolate (put it on PATH) and
# $(PREFIX)/bin/client (Kudu finds it as $$DIST_TEST_HOME/bin/client).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/dist_test
	ln -sf dist_test $(DESTDIR)$(PREFIX)/bin/isolate
	ln -sf dist_test $(DESTDIR)$(PREFIX)/bin/client

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd examples/suite && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

test: lint cross fuzz-short
	$(GO) test -race -count=1 -timeout 28m ./...

cross:
	@set -e; for target in $(CROSS); do \
		echo "cross: $$target"; \
		GOOS=$${target%/*} GOARCH=$${target#*/} $(GO) build -o /dev/null ./cmd/dist_test; \
		GOOS=$${target%/*} GOARCH=$${target#*/} $(GO) vet $(PORTABLE); \
	done

# go test -fuzz takes one target at a time: every func FuzzXxx of a
# _test.go file is run in turn. A failure stops the loop and leaves the
# input in that package's testdata/fuzz/FuzzXxx/, where it stays as a seed
# once the bug is fixed. Minimizing is kept short so that the time goes to
# fuzzing. Go 1.26 may end a run with a bare "context deadline exceeded"
# at the -fuzztime boundary, with no failing input (go.dev/issue/75804,
# fixed in Go 1.27): that alone is not a failure.
fuzz:
	@set -e; out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $${file#./}); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file | grep -- '$(FUZZ)'); do \
			echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
			if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg >$$out 2>&1; then \
				grep -v '^fuzz: elapsed' $$out || true; \
			elif grep -q '^    context deadline exceeded$$' $$out && ! grep -q 'Failing input written' $$out; then \
				echo "fuzz: $$name: Go's deadline race at the end of -fuzztime (go.dev/issue/75804), not a failure"; \
			else \
				cat $$out; exit 1; \
			fi; \
		done; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

demo:
	VERSION=$(VERSION) ./examples/demo.sh

# The container image of infra/Dockerfile, stamped with the version.
image:
	docker build -f infra/Dockerfile --build-arg VERSION=$(VERSION) -t dist_test:$(VERSION) .

# The figures of docs/performance.md, each beside its baseline measured in
# the same run, then the micro-benchmarks; benchstat summarises bench.txt
# (and, with DIST_TEST_BASELINE, compares the two builds).
# They need the services: eval "$$(.ci/services)". COUNT=3 gives medians
# (the default, 1, took 18 minutes on 2 cores busy with other work); BENCH selects,
# e.g. BENCH=Dispatch/backend=local. DIST_TEST_BASELINE=/path/to/dist_test
# runs the end-to-end ones on that build too, as build=base beside
# build=head: see docs/performance.md.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -skip '^BenchmarkProfile$$' -count $(COUNT) -benchtime 1x -timeout 4h ./cmd/dist_test/ | tee bench.txt
	$(GO) test -run '^$$' -bench '$(BENCH)' -count $(COUNT) -benchtime 3x ./server/ ./isolate/... | tee -a bench.txt
	$(GO) run $(BENCHSTAT) bench.txt
	@if [ -n "$$DIST_TEST_BASELINE" ]; then $(GO) run $(BENCHSTAT) -col '/build@(base head)' bench.txt; fi

# A CPU profile of `dist_test local` (master and slave in the test process)
# dispatching 8,000 no-op tasks on 32 slots.
profile:
	mkdir -p bin
	$(GO) test -run '^$$' -bench '^BenchmarkProfile$$' -benchtime 1x -timeout 1h -cpuprofile bin/cpu.pprof -o bin/dist_test.test ./cmd/dist_test/
	@echo "CPU profile: bin/cpu.pprof; view it with"
	@echo "  $(GO) tool pprof -top bin/dist_test.test bin/cpu.pprof | head -40"
	@echo "  $(GO) tool pprof -http=localhost:8080 bin/dist_test.test bin/cpu.pprof"

# The long chaos run: 2,000 tasks under random faults (CHAOS_SEED=n repeats a
# schedule; CI runs the short form, 300 tasks with seed 1, in make test).
# CHAOS_TEST=TestChaosMasters runs it on three masters behind HAProxy.
CHAOS_TEST ?= TestChaos
chaos:
	CHAOS_TASKS=$${CHAOS_TASKS:-2000} CHAOS_SEED=$${CHAOS_SEED:-$$(date +%s)} \
		$(GO) test -count=1 -run '^$(CHAOS_TEST)$$' -timeout 20m -v ./cmd/dist_test/ | grep -v '^=== '

clean:
	rm -rf bin .demo examples/bin
