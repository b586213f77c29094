"""The request budget of a backtest's venue (`[venues.X] request_budget`, venues/sim/budget.py):
the live session's order-count limiter, hand-computed cases."""

from __future__ import annotations

import inspect
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.config import resolve
from engine.errors import ConfigError
from modes.backtest import run_backtest
from venues.sim import SimVenueConfig
from venues.sim.budget import MAX_WAIT_NS, REFUSE, SEND, WAIT, RequestBudget, budget_limits

ROOT = Path(__file__).resolve().parents[3]
S = 1_000_000_000


def test_orders_per_window_send_wait_refuse():
    """3 orders per 10 s, wait at most 1 s: at 1, 2, 3 s sent; at 4 s the window [0, 10) is
    full for 6 s more: refused until 10 s; at 9.5 s it waits 0.5 s: held to 10 s, booked
    there; at 10.5 and 11 s the new window takes two more (3 with the held one); at 12 s
    refused until 20 s."""
    b = RequestBudget(((3, 10 * S),), MAX_WAIT_NS, 0)
    assert [b.decide(t * S) for t in (1, 2, 3)] == [(SEND, S), (SEND, 2 * S), (SEND, 3 * S)]
    assert b.decide(4 * S) == (REFUSE, 10 * S)
    assert b.decide(9_500_000_000) == (WAIT, 10 * S)
    b.book(10 * S)
    assert b.decide(10_500_000_000) == (SEND, 10_500_000_000)
    assert b.decide(11 * S) == (SEND, 11 * S)
    assert b.decide(12 * S) == (REFUSE, 20 * S)
    # phase: windows [0.25 s + 10k s, ...): at 10.2 s still the first window's
    p = RequestBudget(((1, 10 * S),), MAX_WAIT_NS, 250_000_000)
    assert p.decide(1 * S) == (SEND, S)
    assert p.decide(10_200_000_000) == (WAIT, 10_250_000_000)


def test_the_numbers_are_the_live_limiters():
    """One place for Binance's numbers (venues.emulator.ratelimit.LIMITS) and the gateway's
    wait (Gateway max_order_wait_s)."""
    from venues.ccxt.gateway import Gateway
    from venues.ccxt.ratelimit import WeightLimiter

    assert inspect.signature(Gateway.__init__).parameters["max_order_wait_s"].default * S == MAX_WAIT_NS
    live = WeightLimiter.for_venue("binance")
    assert budget_limits("binance") == ((live.orders_per_10s, 10 * S), (live.orders_per_day, 86400 * S))
    assert budget_limits("binanceusdm") == ((300, 10 * S), (1200, 60 * S))
    cfg = SimVenueConfig.from_table("binance", {"request_budget": True})
    assert cfg.request_budget == (((50, 10 * S), (160_000, 86400 * S)), MAX_WAIT_NS, 0)
    assert SimVenueConfig.from_table("binance", {}).request_budget is None  # off by default
    assert cfg.config_hash != SimVenueConfig.from_table("binance", {}).config_hash
    cfg = SimVenueConfig.from_table("binance", {"request_budget": {"orders": 3, "window_s": 10, "max_wait_ms": 2500,
                                                                   "phase_ns": 7}})
    assert cfg.request_budget == (((3, 10 * S),), 2_500_000_000, 7)


@pytest.mark.parametrize(("value", "says"), [
    ("yes", "request_budget = 'yes': expected true, false or a table"),
    ({"orders": 3}, "request_budget: give orders and window_s together"),
    ({"orders": 0, "window_s": 10}, "request_budget.orders = 0: expected an integer >= 1"),
    ({"per": 3}, "request_budget: unknown key(s) ['per']"),
])
def test_a_bad_budget_is_named(value, says):
    with pytest.raises(ConfigError, match=r"\[venues.binance\] " + says.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        SimVenueConfig.from_table("binance", {"request_budget": value})


def _twap(tmp_path, budget):
    config = resolve({"run": {"strategy": "examples/twap.py:TWAP", "data": "synthetic:11:1m",
                              "instruments": ["binance:BTC/USDT"],
                              "params": {"side": "buy", "quantity": "0.5", "horizon_s": 20, "slices": 10}},
                      "venues": {"binance": {"profile": "zero-cost", "balances": {"USDT": "10000000"},
                                             "latency": {"entry_ns": 0, "response_ns": 0, "feed_ns": 5_000_000},
                                             "request_budget": budget}}},
                     {}, base_dir=str(ROOT))
    start = 1_704_067_200_000_000_000  # a whole 10 s; the first slice goes out at 2 s (the book's feed latency)
    run = run_backtest(replace(config, start_ns=start, end_ns=start + 60 * S), tmp_path / "run", write_html=False)
    orders = sorted((o for o in pq.read_table(run / "orders.parquet").to_pylist() if o["type"] != "parent"),
                    key=lambda o: o["created_ts"])
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    return start, orders, fills


def test_a_twap_over_the_budget_is_refused_as_the_session_would_be(tmp_path):
    """The example TWAP, a slice every 2 s from 2 s; 3 orders per 10 s, windows from 1 s
    (phase): slices at 2, 4, 6 s fill; at 8 s the window [1, 11) is full for 3 s more (> 1
    s): refused locally (request_budget) and the venue rate_limited until 11 s, so the
    timer at 10 s sends nothing; 12, 14, 16 s fill in [11, 21); 18 s refused the same way,
    20 s skipped; 22 and 24 s (the last slice sweeps the rest) fill: 0.5 BTC in all."""
    start, orders, fills = _twap(tmp_path, {"orders": 3, "window_s": 10, "phase_ns": S})
    assert [(o["created_ts"] - start) // S for o in orders] == [2, 4, 6, 8, 12, 14, 16, 18, 22, 24]
    refused = [(o["created_ts"] - start) // S for o in orders if o["reason"] == "request_budget"]
    assert refused == [8, 18]
    assert sum(Decimal(f["qty"]) for f in fills) == Decimal("0.5")


def test_an_order_within_the_wait_is_held_to_the_next_window(tmp_path):
    """The same with max_wait_ms = 3000: the slice of 8 s waits 3 s and goes out at 11 s
    (booked in [11, 21)); the one of 10 s waits 1 s to 11 s too; 12 s is the window's third;
    14 s would wait 7 s: refused, rate_limited until 21 s (16, 18, 20 s skipped); 22 s,
    then 24, 26 s: 10 slices, 0.5 BTC."""
    start, orders, fills = _twap(tmp_path, {"orders": 3, "window_s": 10, "phase_ns": S, "max_wait_ms": 3000})
    assert [(o["created_ts"] - start) // S for o in orders] == [2, 4, 6, 8, 10, 12, 14, 22, 24, 26]
    assert [(o["created_ts"] - start) // S for o in orders if o["reason"] == "request_budget"] == [14]
    by_client = {o["client_id"]: o for o in orders}
    held = [f for f in fills if by_client[f["client_id"]]["created_ts"] - start in (8 * S, 10 * S)]
    assert held and all(f["exch_ts"] == start + 11 * S for f in held)  # reached the venue at 11 s
    assert sum(Decimal(f["qty"]) for f in fills) == Decimal("0.5")


def test_a_compiled_strategy_with_a_budget_is_named_and_runs_without_the_fast_path(tmp_path, request, capsys,
                                                                                   monkeypatch):
    """examples/compiled_market_maker.py with request_budget: the numba loop cannot apply
    it, so the run is refused naming the key (and writes nothing); with fast_path = False
    it runs through the adapter: 5 orders per 10 s window, the synthetic data starts on a
    window (2024-01-01T00:00:00Z), the 5 s run never reaches the next one (and a wait
    longer than 1 s refuses), so exactly 5 orders reach the venue and every other is
    refused request_budget."""
    from engine.compiled import CompiledStrategy
    from modes.cli import main

    root = request.config.rootpath
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\nstrategy = "{root}/examples/compiled_market_maker.py:CompiledTouchQuoter"\n'
                   'data = "synthetic:5:5s"\nseed = 3\n[run.params]\nqty = "0.01"\nevery_ms = 100\n'
                   '[venues.binance]\nbalances = { USDT = "100000", BTC = "1" }\n'
                   "request_budget = { orders = 5, window_s = 10 }\n")
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "fast"), "--no-report"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: [venues.binance] request_budget: needs a Python strategy (a compiled strategy's orders never cross "
        "the Python venue adapter; set fast_path = False on the strategy class)")
    assert not (tmp_path / "fast").exists()
    monkeypatch.setattr(CompiledStrategy, "fast_path", False)
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "py"), "--no-report"]) == 0
    orders = pq.read_table(tmp_path / "py" / "orders.parquet").to_pylist()
    refused = [o for o in orders if o["reason"] == "request_budget"]
    assert len(orders) - len(refused) == 5 and len(refused) > 0
    assert all(o["status"] == "rejected" for o in refused)
