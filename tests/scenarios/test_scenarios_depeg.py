"""A stablecoin depeg: equity reported in a reporting currency with a mark for the quote asset
(engine.ledger.QuoteMarks), so holding USDT through a -12 % depeg moves PnL; the book quoted
in USDT moves the other way; a cross-venue dislocation moves one venue only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np

from engine.config import load_config_file, resolve
from engine.ledger import Ledger, QuoteMarks
from engine.types import load_instruments
from modes.backtest import run_backtest
from replay.synthetic import generate
from scenarios import RunRecords, apply_perturbations, load_scenario
from scenarios.perturbations import CrossVenueDislocation, Depeg

DATA = Path(__file__).parent / "data"
T0 = 1_704_067_200_000_000_000
S = 1_000_000_000


def test_quote_marks_are_linear_between_points_and_exact():
    marks = QuoteMarks("USD", {"USDT": [(10 * S, Decimal(1)), (20 * S, Decimal("0.88")), (25 * S, Decimal("0.88")),
                                        (40 * S, Decimal("0.99"))]})
    marks.bind(T0)
    assert marks.at(T0) == {"USDT": Decimal("1.00000000")}
    assert marks.at(T0 + 15 * S) == {"USDT": Decimal("0.94000000")}
    assert marks.at(T0 + 30 * S) == {"USDT": Decimal("0.91666667")}  # 0.88 + 0.11 x 5/15, half-even
    assert marks.at(T0 + 99 * S) == {"USDT": Decimal("0.99000000")}


def test_ledger_equity_in_the_reporting_currency():
    inst = load_instruments(None)["binance:BTC/USDT"]
    ledger = Ledger({inst.id: inst}, {"binance": {"USDT": Decimal("1000"), "BTC": Decimal("0.5")}})
    marks = {inst.id: Decimal("60000")}
    assert ledger.equity(marks) == Decimal("31000")  # USDT 1:1
    # USD: 1000 x 0.88 + 0.5 x 60000 x 0.88
    assert ledger.equity(marks, {"USDT": Decimal("0.88")}) == Decimal("27280.00")


def test_depeg_moves_pnl_of_the_cash_held(tmp_path):
    sc = load_scenario(DATA / "depeg.toml")
    config = sc.run_config(resolve(load_config_file(DATA / "mm.toml"), {}, base_dir=str(DATA)))
    run = RunRecords(run_backtest(config, tmp_path / "r", write_html=False, feed_transform=sc.feed_transform(),
                                  quote_marks=sc.quote_marks()))
    results = {r.name: r for r in (inv.check(run) for inv in sc.build_invariants())}
    assert results["ledger_reconciles"].status == "pass"
    # 100,000 USDT held: the PnL floor of -5 % breaks once the mark is below 0.95, first at the
    # 15 s sample (mark 0.94, PnL about -6,000)
    broken = results["pnl_bounded"]
    assert broken.status == "fail" and broken.violations[0].ts == T0 + 15 * S
    equity = dict(run.equity)
    assert equity[T0] == Decimal("100000")
    assert Decimal("-0.121") < equity[T0 + 20 * S] / equity[T0] - 1 < Decimal("-0.119")
    summary = json.loads((run.dir / "summary.json").read_text())["run"]
    assert summary["reporting_currency"] == "USD"


def mid_at(chunks, index: int, ts: int) -> float:
    """Mid (ticks) of instrument `index` after the rows up to local time ts."""
    from replay.book import BookScanner
    from scenarios.feed import scan_rows

    scanners = [BookScanner(), BookScanner()]
    data = np.concatenate(list(chunks))
    scan_rows(scanners, data[data["local_ts"] <= ts], [index])
    bids, _bq, asks, _aq = scanners[index].levels()
    return (int(bids[-1]) + int(asks[0])) / 2


def test_depeg_book_and_cross_venue_dislocation_move_their_instruments_only():
    insts = load_instruments(None)
    run = [insts["binance:BTC/USDT"], insts["bybit:BTC/USDT"]]
    rows = np.concatenate(list(generate(run, seed=3, duration_ns=30 * S, start_ns=T0)))

    depeg = Depeg(at="5s", fall="5s", low=0.8, asset="USDT", hold="20s")
    moved = list(apply_perturbations([rows], run, [depeg]))
    before, after = mid_at([rows], 0, T0 + 15 * S), mid_at(moved, 0, T0 + 15 * S)
    assert abs(after / before - 1.25) < 0.001  # 1 / 0.8

    shock = CrossVenueDislocation(venue="bybit", at="5s", fall="1s", move_pct=-50, hold="10s")
    moved = list(apply_perturbations([rows], run, [shock]))
    assert mid_at(moved, 0, T0 + 10 * S) == mid_at([rows], 0, T0 + 10 * S)  # binance untouched
    assert abs(mid_at(moved, 1, T0 + 10 * S) / mid_at([rows], 1, T0 + 10 * S) - 0.5) < 0.001
