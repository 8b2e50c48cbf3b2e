# Every step a user or CI runs is a target here. The README's two commands:
#   make demo   set everything up, run the tutorial against a local socklab, keep the dashboard up
#   make test   set everything up and run every check and test
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(abspath $(PY))
export PATH := $(abspath $(VENV))/bin:$(PATH)
export CARGO_TERM_COLOR := never
SOCKLAB := target/release/socklab

.PHONY: setup venv system-deps build demo cluster-demo bench-cluster test lint fmt rust-test py-test wheel stubtest cross-check bench clean

setup: system-deps venv build

system-deps:
	bash scripts/install-system-deps.sh

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

build: venv
	cargo build --release -p socklab
	maturin develop --release -q
	$(PY) -c "import usocket, sys; print('usocket', usocket.__file__)"

demo: setup
	bash scripts/demo.sh

# One nats-server and three socklab nodes on loopback, the tutorial against two of them.
cluster-demo: setup
	bash scripts/cluster-demo.sh

lint: venv
	$(PY) scripts/check-layers.py
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests examples benches scripts
	$(VENV)/bin/ruff format --check python tests examples benches scripts
	$(PY) scripts/check_js_layers.py

fmt: venv
	cargo fmt --all
	$(VENV)/bin/ruff format python tests examples benches scripts

rust-test:
	cargo test --release --workspace

py-test: build
	$(PY) -m pytest -q --durations=15 tests

stubtest: build
	$(PY) -m mypy.stubtest usocket._usocket --allowlist python/usocket/stubtest-allowlist.txt

# usocket-core must keep building off Linux: type-check it for macOS (the target's standard
# library comes from rustup; `rustup target add` is a no-op once installed). The socket
# engine only: the TLS feature builds ring's C code, which needs a C compiler for the target.
# Windows is not ported (see docs/usocket.md, "Platforms").
CROSS_TARGETS := x86_64-apple-darwin
# The other targets come from rustup's server; where it cannot be reached the check says so
# and is skipped rather than failing the run.
cross-check:
	@if rustup target add $(CROSS_TARGETS); then \
	  for t in $(CROSS_TARGETS); do echo "cargo check -p usocket-core --target $$t"; \
	    cargo check -q -p usocket-core --no-default-features --target $$t || exit 1; done; \
	else echo "cross-check skipped: rustup could not install $(CROSS_TARGETS) here"; fi

# A wheel builds from the sdist-free tree, as `pip install .` would do.
wheel: venv
	maturin build --release -q -o target/wheels
	ls target/wheels/usocket-*.whl

test: setup lint rust-test cross-check stubtest wheel py-test

bench: setup
	cargo build --release -p socklab -p socklab-bench
	$(PY) benches/usocket_vs_cpython.py
	$(PY) benches/usocket_timeout_load.py
	$(PY) benches/ussl_vs_cpython.py
	$(PY) benches/socklab_bench.py
	$(PY) benches/link_bench.py

# The cluster benchmark (100,000 devices over six nodes; add ARGS=--quick for a small run).
bench-cluster: setup
	cargo build --release -p socklab -p socklab-bench
	$(PY) benches/cluster_bench.py $(ARGS)

clean:
	cargo clean
	rm -rf $(VENV)
