# dist_test: the commands a developer and CI use.
#   make demo   run the example suite end to end on the embedded default
#   make test   lint, then every test with the race detector (what CI runs)

GO      ?= go
BIN     := bin/dist_test
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH     ?= .
COUNT     ?= 6

PREFIX  ?= /usr/local

.PHONY: all build install test lint demo bench chaos clean

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
	cd examples/suite && $(GO) vet ./...

test: lint
	$(GO) test -race -count=1 -timeout 20m ./...

demo:
	./examples/demo.sh

# Benchmarks against the real services (start them with: eval "$$(.ci/services)"),
# COUNT runs each, summarised by benchstat. BENCH=Submit selects some.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -count $(COUNT) -benchtime 3x ./server/ ./cmd/dist_test/ ./isolate/... | tee bench.txt
	$(GO) run $(BENCHSTAT) bench.txt

# The long chaos run: 2,000 tasks under random faults (CHAOS_SEED=n repeats a
# schedule; CI runs the short form, 300 tasks with seed 1, in make test).
chaos:
	CHAOS_TASKS=$${CHAOS_TASKS:-2000} CHAOS_SEED=$${CHAOS_SEED:-$$(date +%s)} \
		$(GO) test -count=1 -run '^TestChaos$$' -timeout 20m -v ./cmd/dist_test/ | grep -v '^=== '

clean:
	rm -rf bin .demo examples/bin
