"""Random books and random order flow through session + simulator: the books balance.

Issue #3's properties at the level a user sees: the ledger equals the sum of the fills,
no order fills more than it asked for, and no quantity anywhere is negative.
"""

import json
from decimal import Decimal

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import resolve
from modes.backtest import run_backtest

QUEUES = ["risk_averse", "power:2", "log"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data_seed=st.integers(0, 10_000), flow_seed=st.integers(0, 10_000), queue=st.sampled_from(QUEUES),
       partial=st.booleans())
def test_ledger_equals_sum_of_fills(tmp_path_factory, request, data_seed, flow_seed, queue, partial):
    root = request.config.rootpath
    out = tmp_path_factory.mktemp("flow")
    config = resolve({"run": {
        "strategy": str(root / "tests/engine/random_flow.py:RandomFlow"),
        "data": f"synthetic:{data_seed}:40s", "params": {"seed": flow_seed}},
        "venues": {"binance": {"queue_model": queue, "partial_fills": partial,
                               "latency": {"entry_ns": 300_000, "response_ns": 500_000},
                               "maker_fee_bps": -0.5, "taker_fee_bps": 7.0,
                               "balances": {"USDT": "1000000", "BTC": "10"}}}}, {})
    run = run_backtest(config, out / "run", write_html=False)
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    orders = {o["client_id"]: o for o in pq.read_table(run / "orders.parquet").to_pylist()}
    summary = json.loads((run / "summary.json").read_text())["run"]
    signed = {"buy": 1, "sell": -1}
    # fees as charged (Binance spot: in the asset received; fee_charged_asset says which)
    charged = {a: sum(Decimal(f["fee_charged"]) for f in fills if f["fee_charged_asset"] == a) for a in ("BTC", "USDT")}
    position = sum(signed[f["side"]] * Decimal(f["qty"]) for f in fills)
    quote = Decimal("1000000") - sum(signed[f["side"]] * Decimal(f["price"]) * Decimal(f["qty"])
                                     for f in fills) - charged["USDT"]
    assert Decimal(summary["balances"]["binance:BTC"]) == Decimal("10") + position - charged["BTC"]
    assert Decimal(summary["balances"]["binance:USDT"]) == quote
    assert Decimal(summary["positions"]["binance:BTC/USDT"]) == position
    filled: dict[str, Decimal] = {}
    for f in fills:
        assert Decimal(f["qty"]) > 0 and Decimal(f["price"]) > 0
        filled[f["client_id"]] = filled.get(f["client_id"], Decimal(0)) + Decimal(f["qty"])
        rate = Decimal("-0.5") if f["liquidity"] == "maker" else Decimal("7")
        assert Decimal(f["fee"]) == Decimal(f["price"]) * Decimal(f["qty"]) * rate / 10000
    for client_id, order in orders.items():
        assert Decimal(order["filled_qty"]) == filled.get(client_id, Decimal(0))
        assert Decimal(order["filled_qty"]) <= Decimal(order["qty"])
        if order["status"] == "filled":
            assert Decimal(order["filled_qty"]) == Decimal(order["qty"])
        if order["tif"] == "FOK" and order["status"] != "filled":
            assert Decimal(order["filled_qty"]) == 0
    assert len(orders) > 100 and len(fills) > 0
