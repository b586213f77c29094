"""Execution algorithms through the backtest on synthetic data, with hand-computed schedules.

Every run: examples/algo_execution.py starts one algorithm at the first timer (the start of
the data, 2024-01-01T00:00:00Z = T0) on binance:BTC/USDT (lot 0.00001 BTC).
"""

import json
from decimal import Decimal

import pyarrow.parquet as pq

from engine.config import resolve
from engine.execution.almgren_chriss import ImpactModel, closed_form_trajectory
from modes.backtest import run_backtest

T0 = 1_704_067_200_000_000_000
S = 1_000_000_000


def run(tmp_path, algo, options, *, quantity="0.5", seed=3, risk=None, data_seed=3, side="buy"):
    config = resolve({"run": {
        "strategy": "examples/algo_execution.py:AlgoExecution", "data": f"synthetic:{data_seed}:120s",
        "seed": seed, "params": {"algo": algo, "quantity": quantity, "side": side, "options": options}},
        "venues": {"binance": {"latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000},
                               "maker_fee_bps": 1.0, "taker_fee_bps": 5.0,
                               "balances": {"USDT": "1000000", "BTC": "10"}}},
        "risk": risk or {}}, {})
    out = run_backtest(config, tmp_path / f"{algo}-{seed}", write_html=False)
    rows = pq.read_table(out / "orders.parquet").to_pylist()
    children = [r for r in rows if r["parent_id"] == "exec-1"]
    parent = next(r for r in rows if r["client_id"] == "exec-1")
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    return out, children, parent, audit


def schedules(audit):
    return [r for r in audit if r.get("action") == "algo_schedule"]


def test_twap_four_equal_slices(tmp_path):
    """0.5 BTC over 60 s in 4 slices: interval 15 s; slice k at T0 + 15k s for 0.125 BTC;
    cumulative targets 0.125, 0.25, 0.375, 0.5 (and 0.5 at the horizon T0 + 60 s)."""
    _, children, parent, audit = run(tmp_path, "twap", {"horizon_s": 60, "slices": 4})
    assert [c["created_ts"] for c in children] == [T0, T0 + 15 * S, T0 + 30 * S, T0 + 45 * S]
    assert [Decimal(c["qty"]) for c in children] == [Decimal("0.125")] * 4
    assert all(c["tif"] == "IOC" for c in children)
    assert parent["status"] == "filled" and Decimal(parent["filled_qty"]) == Decimal("0.5")
    (plan,) = schedules(audit)
    assert plan["times"] == [T0, T0 + 15 * S, T0 + 30 * S, T0 + 45 * S, T0 + 60 * S]
    assert plan["target"] == ["0.125", "0.25", "0.375", "0.5", "0.5"]


def test_twap_randomised_timing_is_seeded_and_bounded(tmp_path):
    """randomize = 0.5: slice k moves by u * 0.5 * 15 s, u in [-1/2, 1/2): within +-3.75 s of
    T0 + 15k s (the first never before T0); the same run seed gives the same times."""
    opts = {"horizon_s": 60, "slices": 4, "randomize": 0.5}
    times = {}
    for seed in (1, 1, 2):
        _, children, parent, audit = run(tmp_path, "twap", opts, seed=seed)
        (plan,) = schedules(audit)
        got = plan["times"][:4]
        for k, t in enumerate(got):
            assert abs(t - (T0 + 15 * k * S)) <= 3.75 * S
            assert t >= T0
        assert [c["created_ts"] for c in children][:4] == got
        assert parent["status"] == "filled"
        times.setdefault(seed, []).append(got)
    assert times[1][0] == times[1][1]
    assert times[1][0] != times[2][0]


def test_twap_passive_posts_at_the_touch_and_catches_up(tmp_path):
    """Passive: each slice is a post-only child at the best bid; what a slice has not filled
    by the next slice is cancelled and re-posted with the next slice's quantity (catch-up);
    at the horizon the remainder goes as IOC (finish = aggressive)."""
    out, children, parent, _ = run(tmp_path, "twap", {"horizon_s": 60, "slices": 4, "style": "passive"})
    first = children[0]
    assert first["tif"] == "GTX" and first["post_only"]
    # posted at the bid seen when the parent opened (same instant)
    assert Decimal(first["price"]) == Decimal(parent["arrival_bid"])
    assert any(c["tif"] == "GTX" and c["created_ts"] == T0 + 15 * S for c in children)
    # never more working + filled than the schedule allows at each child's creation
    for c in children:
        k = (c["created_ts"] - T0) // (15 * S)
        assert Decimal(c["qty"]) <= Decimal("0.125") * min(k + 1, 4)
    assert sum(Decimal(c["filled_qty"]) for c in children) == Decimal(parent["filled_qty"])
    assert parent["status"] in ("filled", "cancelled")


def test_vwap_slices_follow_the_curve(tmp_path):
    """curve [1, 3, 2, 4] (sum 10) over 60 s: buckets at T0 + 0/15/30/45 s; cumulative
    targets 0.5 * 1/10 = 0.05, 0.5 * 4/10 = 0.2, 0.5 * 6/10 = 0.3, 0.5: children 0.05, 0.15,
    0.10, 0.20."""
    _, children, parent, audit = run(tmp_path, "vwap", {"horizon_s": 60, "curve": [1, 3, 2, 4]})
    assert [Decimal(c["qty"]) for c in children] == [Decimal(x) for x in ("0.05", "0.15", "0.1", "0.2")]
    assert [c["created_ts"] for c in children] == [T0, T0 + 15 * S, T0 + 30 * S, T0 + 45 * S]
    assert schedules(audit)[0]["target"] == ["0.05", "0.2", "0.3", "0.5", "0.5"]
    assert parent["status"] == "filled"


def test_almgren_chriss_first_trade_is_the_closed_form(tmp_path):
    """Linear impact (beta = 1), sigma = 5 $/sqrt(s) (the prior: min_samples is never reached
    before the first period), eta = 1, gamma = 0, lambda = 1e-3, 4 periods of 15 s:
    eta~ = 1, kappa~^2 = 1e-3 * 25 / 1 = 0.025, cosh(15 kappa) = 1 + 0.025 * 225 / 2 = 3.8125.
    The first child is X - x_1 rounded down to lots, the closed form's first trade."""
    opts = {"horizon_s": 60, "periods": 4, "risk_aversion": 1e-3, "sigma": 5, "eta": 1,
            "min_samples": 1000}
    _, children, parent, audit = run(tmp_path, "almgren_chriss", opts)
    model = ImpactModel(sigma=5.0, eta=1.0)
    x = closed_form_trajectory(0.5, 60.0, 4, model, 1e-3)
    first = (Decimal(str(0.5 - x[1])) / Decimal("0.00001")).to_integral_value(rounding="ROUND_DOWN") * Decimal("0.00001")
    assert Decimal(children[0]["qty"]) == first
    assert children[0]["created_ts"] == T0
    plans = schedules(audit)
    assert len(plans) == 4  # re-planned at each period start from what is left
    assert [p["period"] for p in plans] == [0, 1, 2, 3]
    # each re-plan starts from the quantity filled so far
    for p in plans:
        before = sum(Decimal(c["filled_qty"]) for c in children if c["created_ts"] < p["ts"])
        assert Decimal(p["filled"]) == before
    assert parent["status"] == "filled"


def test_pov_stays_within_participation_bounds(tmp_path):
    """rate 0.1, max 0.2: at the end, filled <= 0.2 x market volume seen (prints of the run's
    trades table up to the parent's end) and >= the 0.05 floor minus one child in flight."""
    out, children, parent, _ = run(tmp_path, "pov", {"rate": "0.1", "min_rate": "0.05", "max_rate": "0.2",
                                                     "horizon_s": 60, "min_child": "0.01"})
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    done = parent["done_ts"]
    volume = sum(Decimal(t["qty"]) for t in trades if t["ts"] <= done)
    filled = Decimal(parent["filled_qty"])
    assert filled == Decimal("0.5")
    assert filled <= Decimal("0.2") * volume
    assert all(Decimal(c["qty"]) >= Decimal("0.01") or c is children[-1] for c in children)


def test_limit_then_market_escalates_after_timeout(tmp_path):
    """Rest at the bid (post-only) at T0; at the 100 ms re-peg check the bid has moved, so the
    child is cancelled and re-posted at the new bid once the cancel is confirmed; after the
    200 ms timeout the unfilled rest goes as one IOC (capped 10 bps through the ask)."""
    _, children, parent, audit = run(tmp_path, "limit_then_market", {"timeout_ms": 200, "repeg_ms": 100})
    assert [c["tif"] for c in children] == ["GTX", "GTX", "IOC"]
    assert children[0]["created_ts"] == T0 and Decimal(children[0]["price"]) == Decimal(parent["arrival_bid"])
    assert [c["status"] for c in children] == ["cancelled", "cancelled", "filled"]
    assert children[2]["created_ts"] >= T0 + 200_000_000
    assert parent["status"] == "filled"


def test_limit_then_market_aborts_beyond_max_slippage(tmp_path):
    """abort_slippage_bps = 0.01 with a long timeout: the first re-peg after the ask moves up
    more than 0.01 bps from the arrival ask cancels everything; the parent closes 'max_slippage'."""
    _, children, parent, audit = run(tmp_path, "limit_then_market",
                                     {"timeout_ms": 60_000, "repeg_ms": 100, "abort_slippage_bps": "0.01"},
                                     quantity="5")
    assert parent["status"] == "cancelled" and parent["reason"] == "max_slippage"
    assert all(c["status"] in ("cancelled", "filled") for c in children)


def test_risk_refusals_are_handled(tmp_path):
    """max_order_notional 5000 USDT: a 0.125 BTC child (~7,500 USDT) is refused; the algorithm
    caps later children at half the refused one (0.0625 BTC, ~3,750 USDT) and goes on.
    max_position 0.2: the third 0.125 BTC slice would hold 0.25 > 0.2: refused, and the
    algorithm stops with the parent cancelled for 'max_position'."""
    _, children, parent, audit = run(tmp_path, "twap", {"horizon_s": 60, "slices": 4},
                                     risk={"max_order_notional": 5000})
    assert children[0]["status"] == "rejected" and children[0]["reason"] == "max_order_notional"
    assert all(Decimal(c["qty"]) <= Decimal("0.0625") for c in children[1:])
    assert any(c["status"] == "filled" for c in children[1:])
    rejects = [r for r in audit if r.get("action") == "algo_reject"]
    assert rejects[0]["reason"] == "max_order_notional"

    _, children, parent, _ = run(tmp_path, "twap", {"horizon_s": 60, "slices": 4}, risk={"max_position": "0.2"})
    assert [c["status"] for c in children] == ["filled", "rejected"]
    assert children[1]["reason"] == "max_position"
    assert parent["status"] == "cancelled" and parent["reason"] == "max_position"
    assert Decimal(parent["filled_qty"]) == Decimal("0.125")


def test_vwap_curve_from_a_dataset(tmp_path):
    """History: yesterday's same two minutes in a DuckDB store. The curve is yesterday's traded
    volume per 15 s bucket of [T0 - 1 day, T0 - 1 day + 60 s); the slices follow it."""
    from engine.execution import volume_curve
    from engine.types import EventKind, load_instruments
    from engine.types.instrument import default_instruments_path
    from replay.stores import open_store
    from replay.synthetic import write_store

    inst = load_instruments(default_instruments_path())["binance:BTC/USDT"]
    spec = f"duckdb:{tmp_path / 'history.duckdb'}"
    write_store(spec, [inst], 8, T0 - 86_400 * S, 120 * S)
    ts, qty = [], []
    with open_store(spec) as store:
        for chunk in store.stream(inst.id, None, None, 1 << 16):
            trades = chunk[chunk["kind"] == EventKind.TRADE]
            ts += [int(t) for t in trades["exch_ts"]]
            qty += [inst.lots_to_qty(int(q)) for q in trades["qty"]]
    curve = volume_curve(ts, qty, T0, 60 * S, 4)
    assert len(set(curve)) == 4 and all(c > 0 for c in curve)
    total = sum(curve)
    cum, expected = 0.0, []
    for c in curve[:3]:
        cum += c
        expected.append(Decimal(str(0.5 * cum / total)))
    config = resolve({"run": {
        "strategy": "examples/algo_execution.py:AlgoExecution", "data": "synthetic:3:120s",
        "params": {"algo": "vwap", "quantity": "0.5", "curve_data": spec, "curve_buckets": 4,
                   "options": {"horizon_s": 60}}},
        "venues": {"binance": {"balances": {"USDT": "1000000"}}}}, {})
    out = run_backtest(config, tmp_path / "vwap-hist", write_html=False)
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    (plan,) = schedules(audit)
    got = [Decimal(t) for t in plan["target"][:3]]
    # the algorithm rounds each cumulative target down to the 0.00001 lot
    for g, e in zip(got, expected, strict=True):
        assert e - Decimal("0.00001") < g <= e
