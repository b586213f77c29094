"""The "Market data" page (docs/market-data.md) runs as written, and the run-config page's
spec example (docs/backtest.md) agrees with the source.

Every ```sh and ```python block of the section is run, in order, in a scratch directory
that sees the repository's `tests/` and `examples/` (the commands use paths relative to
the repository root); `tickparity` is this environment's console script.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from engine.types import load_instruments

ROOT = Path(__file__).resolve().parents[2]


PAGES = {"Market data": "docs/market-data.md", "Run config": "docs/backtest.md"}


def _section(title: str) -> str:
    """The section `title` of its documentation page (the whole page when it is its title)."""
    text = "\n" + (ROOT / PAGES[title]).read_text()
    if text.startswith(f"\n# {title}\n"):
        return text
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _blocks(section: str) -> list[tuple[str, str]]:
    return re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)


def test_market_data_examples_run_as_written(tmp_path):
    blocks = _blocks(_section("Market data"))
    assert [lang for lang, _ in blocks].count("sh") >= 1 and any(lang == "python" for lang, _ in blocks)
    for name in ("tests", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    exe = Path(sys.executable).parent / "tickparity"
    env = {**os.environ, "TICKPARITY_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    # shell blocks first (they make the data the Python block reads), then Python
    for lang, body in sorted(blocks, key=lambda b: b[0] != "sh"):
        if lang == "sh":
            for command in body.replace("\\\n", " ").strip().splitlines():
                argv = shlex.split(command)
                assert argv[0] == "tickparity", command
                done = subprocess.run([str(exe), *argv[1:]], cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=300)
                assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        else:
            done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, f"{body}\n{done.stderr[-2000:]}"
    # what the section says of the example: the same fills from the store window and the file
    fills = [pq.read_table(tmp_path / "runs" / name / "fills.parquet").to_pylist()
             for name in ("binance-window", "binance-file")]
    assert fills[0] and fills[0] == fills[1]
    specs = json.loads((tmp_path / "runs" / "binance-window" / "instruments.json").read_text())
    assert specs["binance:BTC/USDT"]["lot_size"] == "0.00000001"


def test_readme_spec_example_is_the_shipped_spec():
    block = re.search(r'```toml\n(\["binance:BTC/USDT"\].*?)```', _section("Run config"), flags=re.S)
    assert block is not None
    example = tomllib.loads(block.group(1))["binance:BTC/USDT"]
    shipped = tomllib.loads((ROOT / "engine" / "instruments.toml").read_text())["binance:BTC/USDT"]
    assert example == shipped


def test_shipped_binance_specs_match_exchange_info():
    """tick = PRICE_FILTER tickSize, lot = LOT_SIZE stepSize, min_qty = LOT_SIZE minQty,
    min_notional = MIN_NOTIONAL (or NOTIONAL) minNotional, from the exchangeInfo the file
    names as its source (tests/data/binance-rest, an extract of it)."""
    raw = json.loads((ROOT / "tests/data/binance-rest/exchangeInfo-2021-10-12-filters.json").read_text())
    filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]} for s in raw["symbols"]}
    binance = [i for i in load_instruments().values() if i.venue == "binance"]
    assert len(binance) == len(filters) == 14
    for inst in binance:
        f = filters[inst.venue_symbol]
        notional = f.get("NOTIONAL", f.get("MIN_NOTIONAL"))
        got = (inst.tick_size, inst.lot_size, inst.min_qty, inst.min_notional)
        want = (Decimal(f["PRICE_FILTER"]["tickSize"]), Decimal(f["LOT_SIZE"]["stepSize"]),
                Decimal(f["LOT_SIZE"]["minQty"]), Decimal(notional["minNotional"]))
        assert got == want, inst.id
    assert load_instruments()["binance:BTC/USDT"].min_notional == Decimal("10")
