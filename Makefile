# hearsay build and test entry points. `make test` is what CI runs.
GO      ?= go
BIN     := bin/hearsay
PKGS    := ./...
# Pure packages run under the race detector; they have no I/O, so it is cheap.
PURE    := ./ring/... ./gossip/... ./failover/... ./migrate/...
# The packages with goroutines also run under it, in -short mode (about a
# minute on 2 cores) so the process tests run once, below, without it.
RACY    := ./node/... ./bpf/... ./internal/...

.PHONY: all build test test-short bench lint generate run sim sim-massfail clean fuzz compare bench-repl bench-failover bench-reshard soak scale

all: build

# hearsay --version prints this and the commit Go records from git.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)

# The node binary is built without cgo: static, and on 100 idle nodes about
# 350 KiB less PSS per node (no C runtime per thread). Tests keep cgo, which
# the race detector needs.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/hearsay

test: build
	$(GO) vet $(PKGS)
	sh bpf/check-generated.sh
	$(GO) test -race -count=1 $(PURE)
	$(GO) test -race -short -count=1 $(RACY)
	$(GO) test -count=1 -timeout 15m -json $(PKGS) | $(GO) run ./internal/testsummary

test-short:
	$(GO) test -short -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

# Every fuzz target in turn, FUZZTIME each (go test fuzzes one target per run).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The simulator's three cluster experiments at 1000 nodes.
sim: build
	./$(BIN) sim cluster --nodes 1000 --scenario join
	./$(BIN) sim cluster --nodes 1000 --scenario fail
	./$(BIN) sim cluster --nodes 1000 --scenario config

# Single failover against 100 of 250 masters failing at once over 1000
# nodes, seeds 1-5: each run's line, the table of medians and their ratio
# (README.md, "Many masters failing at once"). About five minutes.
sim-massfail:
	$(GO) test -run '^$$' -bench '^BenchmarkMassFail$$' -benchtime 1x -count=1 -timeout 30m ./bench/sim

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# Side-by-side benchmark against Redis 7 (issue 3 Targets); several minutes.
# COMPARE_FLAGS=-quick for a one-minute run, e.g. COMPARE_FLAGS='-quick -out compare.txt'.
compare: build
	$(GO) run ./bench/compare/cmd/compare -hearsay $(BIN) $(COMPARE_FLAGS)

# Replication side by side with Redis 7: full sync of 1M keys, the worst
# GET stall during it, SET throughput with a replica attached.
bench-repl: build
	$(GO) run ./bench/replbench -hearsay $(BIN) $(REPLBENCH_FLAGS)

# Failover time side by side with Redis 7: kill -9 of a master until every
# survivor lists its replica as master, node timeout 1s, 5 trials each.
bench-failover: build
	$(GO) run ./bench/failoverbench -hearsay $(BIN) $(FAILOVERBENCH_FLAGS)

# Slot migration side by side with Redis 7: 1000 slots holding 100,000 keys
# moved by redis-cli --cluster reshard on both systems and by hearsay's
# atomic path, with the slowest write a client saw during each move.
bench-reshard: build
	$(GO) run ./bench/reshardbench -hearsay $(BIN) $(RESHARDBENCH_FLAGS)

# Ten minutes of a cluster at node timeout 100 ms with every core busy:
# counts false failovers (exits 1 if there is one).
soak: build
	$(GO) run ./bench/soak -hearsay $(BIN) $(SOAK_FLAGS)

# N real hearsay nodes and N real redis-server nodes, one system at a time:
# create time, time until every node knows all N, and over an idle window
# bus bytes (TCP, UDP; nftables counters, so root), CPU, context switches
# and RSS per node. SCALE_N="30" for one size; SCALE_FLAGS=-json etc.
SCALE_N ?= 30 100 200
scale: build
	$(GO) run ./bench/scale/cmd/scale -hearsay $(BIN) -n '$(SCALE_N)' $(SCALE_FLAGS)

# Regenerating the XDP objects needs clang (and the llvm-strip its package
# recommends); the libbpf headers are vendored in bpf/include.
generate:
	BPF2GO_STRIP=$${BPF2GO_STRIP:-$$(sh bpf/llvm-strip.sh)} $(GO) generate ./bpf/...

run: build
	./$(BIN) demo

clean:
	rm -rf bin
