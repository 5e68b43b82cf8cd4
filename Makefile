# The two commands a newcomer needs: `make run` starts Confab, `make test` runs every check
# CI runs. Both install missing system packages first (Debian, apt-get).

CARGO ?= cargo
# Extra flags for the server started by `make run`, e.g. ARGS="--listen 127.0.0.1:9000".
ARGS ?=

.PHONY: run test deps build check bench

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace

run: build
	$(CARGO) run --release --bin confab -- server $(ARGS)

test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

# Benchmarks are measurements, not checks: see docs/performance.md.
bench: deps
	$(CARGO) bench -p confab-signaling --bench load
	taskset -c 1 $(CARGO) bench -p confab-media --bench codecs
