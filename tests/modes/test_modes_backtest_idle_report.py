"""An idle session's report: net PnL is the trading's (0), the revaluation of the inventory
it held at the start is shown apart (docs/report.md "PnL"). A real backtest on a DuckDB
store: the account starts with 2 BTC and 10,000 USDT, the mid goes from 60001.00 to
60011.00 and later to 59996.00, the strategy never trades.

Hand-computed: equity start = 10000 + 2 x 60001 = 130002.00; end = 10000 + 2 x 59996 =
129992.00; equity change = -10.00 = 2 x (59996 - 60001) = the revaluation; net PnL 0, max
drawdown 0 (the trading's curve is flat)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_modes_backtest_conflation import BTC, MS, T, write_store  # noqa: E402  (its DuckDB helper)

from engine.config import resolve  # noqa: E402
from engine.types import EventKind  # noqa: E402
from modes.backtest import run_backtest  # noqa: E402

IDLE = '''
from engine import Strategy


class Idle(Strategy):
    """Never trades."""
'''


def _store(path) -> str:
    return write_store(path, [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0), (0, EventKind.BOOK_DELTA, 1, 6_000_000, 100_000),
        (0, EventKind.BOOK_DELTA, -1, 6_000_200, 100_000), (0, EventKind.SNAPSHOT_END, 0, 0, 0),
        # mid 60011.00: bid 60010.00 / ask 60012.00
        (1000, EventKind.BOOK_DELTA, 1, 6_001_000, 100_000), (1000, EventKind.BOOK_DELTA, -1, 6_001_200, 100_000),
        (1000, EventKind.BOOK_DELTA, 1, 6_000_000, 0), (1000, EventKind.BOOK_DELTA, -1, 6_000_200, 0),
        # mid 59996.00: bid 59995.00 / ask 59997.00
        (2000, EventKind.BOOK_DELTA, 1, 5_999_500, 100_000), (2000, EventKind.BOOK_DELTA, -1, 5_999_700, 100_000),
        (2000, EventKind.BOOK_DELTA, 1, 6_001_000, 0), (2000, EventKind.BOOK_DELTA, -1, 6_001_200, 0),
        (3000, EventKind.TRADE, 1, 5_999_700, 1_000)])


def test_an_idle_session_has_no_net_pnl_and_shows_the_revaluation_apart(tmp_path):
    from reports.metrics import compute
    from reports.report import pnl_texts, tiles
    from reports.rundir import load_run

    (tmp_path / "idle.py").write_text(IDLE)
    config = resolve({"run": {"strategy": f"{tmp_path / 'idle.py'}:Idle", "data": _store(tmp_path),
                              "instruments": [BTC]},
                      "venues": {"binance": {"profile": "zero-cost", "balances": {"USDT": "10000", "BTC": "2"}}}},
                     {}, base_dir=str(tmp_path))
    config = replace(config, start_ns=T, end_ns=T + 3000 * MS)
    run_backtest(config, tmp_path / "run", write_html=False)
    m = compute(load_run(tmp_path / "run")).sections
    p, h = m["pnl"], m["headline"]
    assert (p["equity_start"], p["equity_end"]) == ("130002", "129992")
    assert p["net"] == h["net_pnl"] == "0"
    assert p["equity_change"] == p["inventory_revaluation"] == h["inventory_revaluation"] == "-10"
    assert p["max_drawdown"] == 0.0  # the account's equity fell 20.00 from its peak; the trading's did not
    t = pnl_texts(p)
    assert (t["net"], t["revaluation"], t["equity_change"]) == ("0", "-10.00", "-10.00")
    tile = tiles({**m, "pnl": p})[0]
    assert tile["label"] == "Net PnL USDT" and tile["parts"] == ["0"]
    assert tile["hint"].endswith("starting inventory revalued -10.00 (not in net PnL)")
