"""The execution examples run in backtest on synthetic multi-venue data (shortened runs)."""

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from engine.config import load_config_file, resolve
from modes.backtest import run_backtest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(tmp_path, name, data, params=None):
    config = resolve(load_config_file(EXAMPLES / f"{name}.toml"), {"data": data, "params": params or {}},
                     base_dir=str(EXAMPLES), config_file=f"{name}.toml")
    out = run_backtest(config, tmp_path / name, write_html=False)
    notes = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    notes = [n for n in notes if n["type"] == "note"]
    summary = json.loads((out / "summary.json").read_text())["run"]
    return out, notes, summary


def test_cross_venue_arb_hedges_leg_risk(tmp_path):
    """90 seconds of binance (leader) and okx (20 ms behind): the detector fires, some
    legs miss (the quote is gone when the IOC arrives), every imbalance is hedged: the
    position summed over both venues ends flat up to the counted dust."""
    out, notes, summary = run_example(tmp_path, "cross_venue_arb", "synthetic:11:90s")
    (stats,) = [n for n in notes if n["message"] == "arb_stats"]
    assert int(stats["arbs"]) > 10
    assert int(stats["both_filled"]) > 0
    assert int(stats["leg_misses"]) > 0 and int(stats["hedges"]) >= int(stats["leg_misses"])
    net = sum(Decimal(v) for v in summary["positions"].values())
    assert abs(net) <= Decimal(stats["dust"])
    # each arb's legs: a buy on one venue and a sell on the other, at the observed touches
    arbs = [n for n in notes if n["message"] == "arb"]
    assert all(n["buy"] != n["sell"] for n in arbs)
    assert all(Decimal(n["edge_bps"]) >= Decimal("0.2") for n in arbs)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert {f["venue"] for f in fills} == {"binance", "okx"}


def test_multi_venue_market_maker_quotes_both_venues(tmp_path):
    """Two minutes: post-only quotes on both venues, fills on both, and the inventory summed
    over venues stays within max_position plus one quote."""
    out, notes, summary = run_example(tmp_path, "multi_venue_mm", "synthetic:12:2m")
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    quotes = [o for o in orders if o["post_only"]]
    assert {o["venue"] for o in quotes} == {"binance", "okx"}
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert {f["venue"] for f in fills} == {"binance", "okx"}
    net = sum(Decimal(v) for v in summary["positions"].values())
    assert abs(net) <= Decimal("0.1") + Decimal("0.01")


def test_algo_execution_example_routes_an_almgren_chriss_parent(tmp_path):
    """The shipped algorithm-driven config (Almgren-Chriss, square-root impact, routed over two
    venues), shortened to 3 minutes: the parent fills its 2 BTC from both venues, and the
    schedule and every routing decision are in the audit log."""
    out, _, summary = run_example(tmp_path, "algo_execution", "synthetic:21:3m",
                                  {"options": {"horizon_s": 120, "periods": 4, "risk_aversion": 0.0001,
                                               "sigma": 5.0, "eta": 0.5, "beta": 0.5, "max_slippage_bps": 5}})
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    parent = next(o for o in orders if o["client_id"] == "ac-1")
    # filled, or within one lot: a partial fill on okx (lot 1e-8) can leave less than any
    # venue's minimum (1e-5), which closes the parent as 'remainder_below_min_qty'
    left = Decimal("2") - Decimal(parent["filled_qty"])
    assert 0 <= left < Decimal("0.00001")
    assert parent["status"] == "filled" or parent["reason"] == "remainder_below_min_qty"
    children = [o for o in orders if o["parent_id"] == "ac-1"]
    assert {o["venue"] for o in children} == {"binance", "okx"}
    records = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    assert [r["period"] for r in records if r.get("action") == "algo_schedule"][:1] == [0]
    assert any(r.get("action") == "route" for r in records)
