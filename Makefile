# The two commands a newcomer needs: `make run` starts Confab, `make test` runs every check
# CI runs. Both install missing system packages first (Debian, apt-get).

CARGO ?= cargo
# Extra flags for the server started by `make run`, e.g. ARGS="--listen 127.0.0.1:9000".
ARGS ?=

# The interop test's Python environment (aiortc), kept outside the clone like a cache.
INTEROP_VENV ?= $(HOME)/.cache/confab/interop-venv
# The browser test's npm packages (playwright-core), installed in the clone.
BROWSER_MODULES = tests/browser/node_modules/.package-lock.json

.PHONY: run demo test test-build deps build bench interop browser screenshots measure-app \
	check-packaging deb compare-cpu

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace

# The app; it starts the bundled signaling server itself when none runs here. Without a
# display (a server machine) it runs the signaling server alone.
run: build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(CARGO) run --release --bin confab -- $(ARGS); \
	else \
		echo "no display: starting the signaling server only (confab server)"; \
		$(CARGO) run --release --bin confab -- server $(ARGS); \
	fi

# The app plus an "Echo bot" to call: a newcomer's first call, no second person needed.
demo: build
	$(CARGO) run --release --bin confab -- demo $(ARGS)

# Pictures of the app in a call for the README, and the UI's frame time, CPU and memory
# (docs/performance.md), on a virtual display.
screenshots: $(BROWSER_MODULES)
	@scripts/install-deps.sh screenshots
	scripts/app-on-xvfb.sh screenshots

measure-app: deps
	scripts/app-on-xvfb.sh measure

# Our crates are compiled by clippy-driver with warnings denied (scripts/lint-rustc), so one
# build is both `cargo clippy --all-targets -- -D warnings` and the test build: the
# dependencies are built once, not checked for Clippy and then built again.
LINTED = RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/scripts/lint-rustc

test: deps
	$(CARGO) fmt --all --check
	$(MAKE) check-packaging
	$(MAKE) test-build
	$(LINTED) $(CARGO) test --workspace --locked
	$(MAKE) interop
	$(MAKE) browser

# Every target of every crate (tests, benches, examples), linted.
test-build: deps
	$(LINTED) $(CARGO) test --workspace --all-targets --locked --no-run

# The desktop entry and the AppStream metainfo that `make deb` installs, checked as desktops
# and software centres read them. AppStream asks for a reverse-DNS id (org.example.App):
# ours is `confab`, the app id the window has had from the start (the Wayland app id, the
# X class and the settings folder's name), and the project has no domain of its own, so
# that one hint is printed but does not fail.
check-packaging: deps
	desktop-file-validate packaging/confab.desktop
	appstreamcli validate --no-net --pedantic --strict \
		--override=cid-desktopapp-is-not-rdns=pedantic packaging/confab.metainfo.xml

# Debian packages, in target/debian/ (or $$CARGO_TARGET_DIR/debian/): confab (the app, its
# desktop entry, icons, AppStream metainfo, manual pages and bash/zsh/fish completions) and
# confab-signaling (the server alone, with a systemd unit). The built binaries write the
# manual pages and completions into the target directory first; lintian checks the result
# (an error fails, warnings are printed). DEB_PROFILE=profiling packages binaries that keep
# their symbols.
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
DEB_PROFILE = release
DEB_BUILT = $(TARGET_DIR)/$(DEB_PROFILE)
DEB_MADE = $(DEB_BUILT)/packaging

deb:
	@scripts/install-deps.sh deb
	$(CARGO) build --locked --profile $(DEB_PROFILE) -p confab -p confab-signaling
	rm -rf $(DEB_MADE)
	mkdir -p $(DEB_MADE)/completions
	$(DEB_BUILT)/confab manpage --out-dir $(DEB_MADE)/man
	$(DEB_BUILT)/confab-signaling --manpage > $(DEB_MADE)/confab-signaling.1
	gzip -9n $(DEB_MADE)/man/*.1 $(DEB_MADE)/confab-signaling.1
	for shell in bash zsh fish; do \
		$(DEB_BUILT)/confab completions $$shell > $(DEB_MADE)/completions/confab.$$shell; \
	done
	rm -f $(TARGET_DIR)/debian/*.deb
	$(CARGO) deb --no-build --profile $(DEB_PROFILE) -p confab
	$(CARGO) deb --no-build --profile $(DEB_PROFILE) -p confab-signaling
	lintian $(TARGET_DIR)/debian/confab_*.deb $(TARGET_DIR)/debian/confab-signaling_*.deb

# Another WebRTC implementation (Python's aiortc) calls Confab and is called by it. It uses
# the confab binary of the test build, whose dependencies have the tests' features (a
# plain `cargo build` rebuilt 26 crates for the difference).
interop: test-build $(INTEROP_VENV)/installed
	INTEROP_PYTHON=$(INTEROP_VENV)/bin/python tests/interop/run.sh

$(INTEROP_VENV)/installed: tests/interop/requirements.txt
	/usr/bin/python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

# The web client the signaling server serves (signaling-server/web/), in a real headless
# Chromium (Debian's) driven by playwright-core (npm, pinned in package-lock.json): a browser
# guest calls `confab headless` and is called by it, joins a group call and adds someone to
# its own, meets a wrong token, a hostile name and a browser without H.264, and two browsers
# call each other over https and wss (the server's --tls-cert and --tls-key). Also prints
# the page's weight, its load-to-online time and the call setup time (docs/performance.md).
browser: test-build $(BROWSER_MODULES)
	node --test --test-reporter=spec tests/browser/calls.test.mjs

$(BROWSER_MODULES): tests/browser/package.json tests/browser/package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { \
		echo "make browser: playwright-core needs Node.js 20 or later, not $$(node --version)" >&2; \
		exit 1; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

# The same call made by Confab and by Chromium, and its CPU per delivered frame for each
# (docs/performance.md, "Side by side with Chromium").
compare-cpu: deps $(BROWSER_MODULES)
	$(CARGO) build --release --bin confab
	CONFAB_BIN=$(TARGET_DIR)/release/confab node tests/browser/compare-cpu.mjs

# Benchmarks are measurements, not checks: see docs/performance.md.
bench: deps
	$(CARGO) bench -p confab-signaling --bench load
	taskset -c 1 $(CARGO) bench -p confab-media --bench codecs
	$(CARGO) bench --bench call
	$(CARGO) bench --bench group_call
	$(CARGO) bench --bench files
	$(CARGO) bench -p confab-protocol --bench safety_code
