# tickparity: `make demo` and `make test` work on a fresh machine (Python 3.11, git, make).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed
STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
DEMO_DATA := data/demo.duckdb

.PHONY: setup demo test bench bench-nautilus lint clean

# the demo needs the package only; the test extras (chDB, 0.5 GB; hypothesis; ruff) come with `make test`
$(BASE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	@touch $(BENCH_STAMP)

setup: $(STAMP)

$(DEMO_DATA): | $(BASE_STAMP)
	$(BIN)/tickparity data generate --to duckdb:$(DEMO_DATA) --instrument binance:BTC/USDT --seed 7 --duration 1h

demo: $(BASE_STAMP) $(DEMO_DATA)
	$(BIN)/tickparity backtest --config examples/market_maker.toml

# the suite on TEST_WORKERS processes (pytest-xdist; README "Quick start"): many tests wait on
# sockets and timers, so more workers than cores pay. A test file is one unit of work
# (its module/session fixtures are built once); tests/conftest.py makes the wall-clock session
# files one group together, and hands the slowest files out first
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# NautilusTrader as the race's optional peer (bench/nautilus.py): its own venv on Python 3.12
# (python3.12 on PATH, else pyenv's), then the market-maker race on 1M events with it
NAUTILUS_VENV := .venv-nautilus
NAUTILUS_VERSION := 1.231.0
$(NAUTILUS_VENV)/.installed:
	@py=$$(python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | tail -1); \
	test -n "$$py" || { echo "bench-nautilus: no Python 3.12 found (NautilusTrader needs >= 3.12)"; exit 2; }; \
	$$py -m venv $(NAUTILUS_VENV) && $(NAUTILUS_VENV)/bin/python -m pip install -q nautilus_trader==$(NAUTILUS_VERSION)
	@touch $@

bench-nautilus: $(BENCH_STAMP) $(NAUTILUS_VENV)/.installed
	$(BIN)/python -m bench.bench_sim --quick --cases mm --nautilus yes

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache
