# Satchel: `make check` is what CI runs (.ci/run); `make example` runs the main job.
GO            ?= go
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BIN           := bin/satchel

.PHONY: all build check deps systest-image fmt-check vet lint tidy-check test example fuzz bench bench-peers clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/satchel

## check: everything CI checks: formatting, vet, lint (staticcheck, depguard layers), tidy, tests with -race,
## system tests in containers included: with SATCHEL_SYSTEST=1 they fail, never skip, if they cannot run
check: export SATCHEL_SYSTEST := 1
check: deps systest-image fmt-check vet lint tidy-check test

## deps: install what the tests need on a fresh Debian machine (idempotent)
deps:
	./scripts/deps.sh

## systest-image: build (about 30 s) or reuse the Debian image that system tests boot (internal/systest)
systest-image:
	./scripts/test-image.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(GOLANGCI_LINT) run ./...

tidy-check:
	@cp go.mod /tmp/satchel-go.mod.bak; cp go.sum /tmp/satchel-go.sum.bak
	@$(GO) mod tidy
	@if ! cmp -s go.mod /tmp/satchel-go.mod.bak || ! cmp -s go.sum /tmp/satchel-go.sum.bak; then \
		echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; diff -u /tmp/satchel-go.mod.bak go.mod; \
		cp /tmp/satchel-go.mod.bak go.mod; cp /tmp/satchel-go.sum.bak go.sum; exit 1; fi

## test: every test (then, without -race, the few that -race makes too slow to run); system tests (internal/systest containers) are skipped where root or the image is missing
test:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Dictionary' ./internal/store ./internal/transfer
	$(GO) test -count=1 -run 'Endless' ./internal/agent

## example: apply the school-server example into an empty directory, twice; the second run must change nothing
example: build
	@root=$${EXAMPLE_ROOT:-$$(mktemp -d /tmp/satchel-example.XXXXXX)}; set -e; \
	echo "== first run: converge school-001 into $$root"; \
	$(BIN) apply --root $$root --state-dir $$root.state --node school-001 --facts examples/school-server/facts/school-001.json --var manage_system=false examples/school-server; \
	echo; echo "== second run: nothing to change (--detailed-exitcode exits 0 only when nothing changed)"; \
	$(BIN) apply --root $$root --state-dir $$root.state --node school-001 --facts examples/school-server/facts/school-001.json --var manage_system=false --detailed-exitcode examples/school-server; \
	echo; echo "The converged tree is in $$root (satchel's own state, backups included, in $$root.state); try: find $$root -type f | sort"

## fuzz: run every fuzz target for a short while
fuzz:
	$(GO) test -run XXX -fuzz FuzzLoad -fuzztime 30s ./internal/lang
	$(GO) test -run XXX -fuzz FuzzUnmarshal -fuzztime 30s ./internal/catalog
	$(GO) test -run XXX -fuzz '^FuzzDecodeFile$$' -fuzztime 30s ./internal/store
	$(GO) test -run XXX -fuzz '^FuzzDecodeTree$$' -fuzztime 30s ./internal/store
	$(GO) test -run XXX -fuzz '^FuzzDecodeDeltaIndex$$' -fuzztime 30s ./internal/store
	$(GO) test -run XXX -fuzz '^FuzzLoadIndex$$' -fuzztime 30s ./internal/store
	$(GO) test -run XXX -fuzz '^FuzzResolve$$' -fuzztime 30s ./internal/transfer
	$(GO) test -run XXX -fuzz '^FuzzParseContentRange$$' -fuzztime 30s ./internal/transfer
	$(GO) test -run XXX -fuzz '^FuzzDecodeManifest$$' -fuzztime 30s ./internal/release
	$(GO) test -run XXX -fuzz '^FuzzParseWindow$$' -fuzztime 30s ./internal/agent
	$(GO) test -run XXX -fuzz '^FuzzParseSize$$' -fuzztime 30s ./internal/agent

## bench: Go benchmarks (engine no-op run, language evaluation, chunking and hashing on one core, tree no-op check)
bench:
	$(GO) test -run XXX -bench . -benchmem ./internal/engine ./internal/lang
	$(GO) test -run XXX -bench 'Chunk' -cpu 1 ./internal/store
	$(GO) test -run XXX -bench 'TreeNoop' ./internal/resource

## bench-transfer: Satchel beside rsync and casync on the shared transfer dataset (root; installs them; ~6 min, ~6 GB in /tmp/xferlab)
.PHONY: bench-transfer
bench-transfer:
	./bench/transfer/bench.sh

## bench-agent: the agent's idle memory, no-change cycle time and bytes, beside cf-agent and puppet apply (~3 min; no root needed)
.PHONY: bench-agent
bench-agent:
	./bench/agent/bench.sh

## bench-server: satchel server under 1,000 and 10,000 simulated agents over mutual TLS: check-ins, report uploads, RSS (~25 min; QUICK=1 for a short try)
.PHONY: bench-server
bench-server:
	./bench/server/bench.sh

## docs: regenerate docs/resources.md from the resource types' schema (a test checks it is current)
.PHONY: docs
docs:
	$(GO) run ./cmd/satchel types --markdown > docs/resources.md

## dist: static binaries for linux amd64 and arm64 and their Debian packages, in dist/ (VERSION=0.1.0)
VERSION ?= 0.1.0
.PHONY: dist
dist:
	rm -rf dist && mkdir -p dist
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w -X github.com/satchelcm/satchel/internal/cli.stampedVersion=$(VERSION)" -o dist/satchel-linux-$$arch ./cmd/satchel || exit 1; \
	done
	cd tools/dist && $(GO) run . -version $(VERSION) -dir ../../dist -repo ../..

## bench-bundle: USB bundles for the shared transfer dataset's v1→v2 update: stick sizes against v2 and the ideal, export and import times (~3 min)
.PHONY: bench-bundle
bench-bundle:
	./bench/bundle/bench.sh

## bench-peers: Satchel beside Puppet and CFEngine on the shared school-server workload (installs them)
bench-peers:
	./bench/peers/bench.sh

## bench-packages: Satchel beside `puppet apply` installing 10 small packages, a fresh container each (root; RUNS=5)
.PHONY: bench-packages
bench-packages:
	./bench/packages/bench.sh

clean:
	rm -rf bin
