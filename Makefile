# tickparity: `make demo` and `make test` work on a fresh machine (Python 3.11, git, make).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed
STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
DEMO_DATA := data/demo.duckdb

.PHONY: setup demo test bench lint clean

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

test: $(STAMP)
	$(BIN)/python -m pytest --durations=15

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache
