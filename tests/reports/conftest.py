"""Tiny hand-written run directories (docs/run_dir.md) for the report tests.

`hand_run` is the example every metric test computes by hand: one instrument, a buy
limit order that fills once as maker and is then cancelled, a sell market order that
takes two levels, and a rejected order. `parent_run` adds TWAP-like parents (a buy and a
sell) with their children. Timestamps are T0 + offsets so the numbers stay readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
MS = 1_000_000
US = 1_000
BTC = "binance:BTC/USDT"

FILL_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", pa.string()), ("venue", pa.string()),
    ("client_id", pa.string()), ("parent_id", pa.string()), ("side", pa.string()), ("price", pa.string()),
    ("qty", pa.string()), ("fee", pa.string()), ("fee_asset", pa.string()), ("liquidity", pa.string()),
])
ORDER_SCHEMA = pa.schema([
    ("client_id", pa.string()), ("parent_id", pa.string()), ("instrument", pa.string()), ("venue", pa.string()),
    ("side", pa.string()), ("type", pa.string()), ("tif", pa.string()), ("post_only", pa.bool_()),
    ("reduce_only", pa.bool_()), ("price", pa.string()), ("qty", pa.string()), ("filled_qty", pa.string()),
    ("avg_fill_price", pa.string()), ("fees", pa.string()), ("status", pa.string()), ("reason", pa.string()),
    ("created_ts", pa.int64()), ("trigger_ts", pa.int64()), ("ack_ts", pa.int64()),
    ("first_fill_ts", pa.int64()), ("last_fill_ts", pa.int64()), ("cancel_req_ts", pa.int64()),
    ("done_ts", pa.int64()), ("arrival_bid", pa.string()), ("arrival_ask", pa.string()),
])
BBO_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", pa.string()), ("bid", pa.float64()),
    ("bid_qty", pa.float64()), ("ask", pa.float64()), ("ask_qty", pa.float64()),
])
TRADE_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", pa.string()), ("side", pa.string()),
    ("price", pa.float64()), ("qty", pa.float64()),
])
EQUITY_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("equity", pa.string()), ("realized_pnl", pa.string()), ("unrealized_pnl", pa.string()),
    ("fees", pa.string()), ("quote_asset", pa.string()),
])
INVENTORY_SCHEMA = pa.schema([("ts", pa.int64()), ("instrument", pa.string()), ("position", pa.string()), ("mid", pa.float64())])


def _table(rows: list[dict[str, Any]], schema: pa.Schema, defaults: dict[str, Any] | None = None) -> pa.Table:
    defaults = defaults or {}
    columns = {name: [row.get(name, defaults.get(name)) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def fill(ts: int, side: str, price: str, qty: str, fee: str, liquidity: str, client_id: str, **extra: Any) -> dict[str, Any]:
    row = {"ts": ts, "exch_ts": ts - MS, "instrument": BTC, "venue": "binance", "client_id": client_id,
           "side": side, "price": price, "qty": qty, "fee": fee, "fee_asset": "USDT", "liquidity": liquidity}
    row.update(extra)
    return row


def order(client_id: str, side: str, qty: str, filled: str, status: str, created: int, **extra: Any) -> dict[str, Any]:
    row = {"client_id": client_id, "instrument": BTC, "venue": "binance", "side": side, "type": "limit",
           "tif": "GTC", "post_only": False, "reduce_only": False, "qty": qty, "filled_qty": filled,
           "fees": "0", "status": status, "reason": None, "created_ts": created, "trigger_ts": created}
    row.update(extra)
    return row


def quote(ts: int, bid: float, ask: float, instrument: str = BTC) -> dict[str, Any]:
    return {"ts": ts, "exch_ts": ts, "instrument": instrument, "bid": bid, "bid_qty": 1.0, "ask": ask, "ask_qty": 1.0}


def write_run(
    run_dir: Path,
    fills: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    bbo: list[dict[str, Any]] | None = None,
    trades: list[dict[str, Any]] | None = None,
    equity: list[dict[str, Any]] | None = None,
    inventory: list[dict[str, Any]] | None = None,
    run: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a run directory; None for an optional table means the file is absent."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(_table(fills, FILL_SCHEMA), run_dir / "fills.parquet")
    pq.write_table(_table(orders, ORDER_SCHEMA), run_dir / "orders.parquet")
    if bbo is not None:
        pq.write_table(_table(bbo, BBO_SCHEMA), run_dir / "bbo.parquet")
    if trades is not None:
        pq.write_table(_table(trades, TRADE_SCHEMA, {"instrument": BTC, "side": "buy"}), run_dir / "trades.parquet")
    if equity is not None:
        pq.write_table(_table(equity, EQUITY_SCHEMA, {"quote_asset": "USDT"}), run_dir / "equity.parquet")
    if inventory is not None:
        pq.write_table(_table(inventory, INVENTORY_SCHEMA, {"instrument": BTC, "mid": 0.0}), run_dir / "inventory.parquet")
    if config is not None:
        (run_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if run is not None:
        (run_dir / "summary.json").write_text(json.dumps({"run": run}), encoding="utf-8")
    return run_dir


# Mids: 100 from T0, 101 from T0+1s, 102 from T0+2s, 98 from T0+10s, 104 from T0+100s.
HAND_BBO = [
    quote(T0, 99.0, 101.0),
    quote(T0 + 1 * S, 100.0, 102.0),
    quote(T0 + 2 * S, 101.0, 103.0),
    quote(T0 + 10 * S, 97.0, 99.0),
    quote(T0 + 100 * S, 103.0, 105.0),
]
HAND_TRADES = [
    {"ts": T0 + 1200 * MS, "exch_ts": T0 + 1200 * MS, "price": 100.5, "qty": 1.0},
    {"ts": T0 + 3 * S, "exch_ts": T0 + 3 * S, "price": 102.0, "qty": 3.0},
    {"ts": T0 + 15 * S, "exch_ts": T0 + 15 * S, "price": 98.0, "qty": 2.0},
    {"ts": T0 + 200 * S, "exch_ts": T0 + 200 * S, "price": 104.0, "qty": 1.0},
]
END = T0 + 1000 * S


def hand_run_tables() -> dict[str, Any]:
    fills = [
        # B1: buy 1 @ 101 as maker, rebate 0.0101
        fill(T0 + 2500 * MS, "buy", "101", "1", "-0.0101", "maker", "B1"),
        # S1: market sell 3: 2 @ 97 and 1 @ 96, taker fees
        fill(T0 + 12002 * MS, "sell", "97", "2", "0.194", "taker", "S1"),
        fill(T0 + 12002 * MS, "sell", "96", "1", "0.096", "taker", "S1"),
    ]
    orders = [
        order("B1", "buy", "2", "1", "cancelled", T0 + 500 * MS, price="101", trigger_ts=T0 + 500 * MS - 20 * US,
              ack_ts=T0 + 1500 * MS, first_fill_ts=T0 + 2500 * MS, last_fill_ts=T0 + 2500 * MS,
              cancel_req_ts=T0 + 20 * S, done_ts=T0 + 20 * S + 2 * MS, avg_fill_price="101", fees="-0.0101",
              arrival_bid="99", arrival_ask="101", reason="user_cancel"),
        order("S1", "sell", "3", "3", "filled", T0 + 12 * S, type="market", tif="IOC", trigger_ts=T0 + 12 * S - 50 * US,
              ack_ts=T0 + 12 * S + 1 * MS, first_fill_ts=T0 + 12002 * MS, last_fill_ts=T0 + 12002 * MS,
              done_ts=T0 + 12002 * MS, avg_fill_price="96.66666666666666666666666667", fees="0.29",
              arrival_bid="97", arrival_ask="99"),
        order("R1", "sell", "1", "0", "rejected", T0 + 30 * S, price="120", trigger_ts=T0 + 30 * S - 30 * US,
              ack_ts=T0 + 30 * S + 1 * MS, done_ts=T0 + 30 * S + 1 * MS, arrival_bid="97", arrival_ask="99",
              reason="risk:max_order_notional"),
    ]
    equity = [
        {"ts": T0, "equity": "10000", "realized_pnl": "0", "unrealized_pnl": "0", "fees": "0"},
        {"ts": T0 + 2500 * MS, "equity": "10001.0101", "realized_pnl": "0", "unrealized_pnl": "1", "fees": "-0.0101"},
        {"ts": T0 + 12002 * MS, "equity": "9992.7201", "realized_pnl": "-4", "unrealized_pnl": "-3", "fees": "0.2799"},
        {"ts": T0 + 100 * S, "equity": "9980.7201", "realized_pnl": "-4", "unrealized_pnl": "-15", "fees": "0.2799"},
        {"ts": END, "equity": "9980.7201", "realized_pnl": "-4", "unrealized_pnl": "-15", "fees": "0.2799"},
    ]
    inventory = [
        {"ts": T0, "position": "0"},
        {"ts": T0 + 2500 * MS, "position": "1"},
        {"ts": T0 + 12002 * MS, "position": "-2"},
        {"ts": END, "position": "-2"},
    ]
    run = {"id": "hand-1", "config_hash": "abc123", "strategy": "tests:Hand", "data": "hand", "seed": 1,
           "instruments": [BTC], "start_ts": T0, "end_ts": END, "events": 9, "wall_seconds": 0.01,
           "events_per_second": 900.0, "orders": 3, "fills": 3,
           "pnl": {"realized": "-4", "unrealized": "-15", "fees": "0.2799", "equity_start": "10000", "equity_end": "9980.7201"}}
    config = {"run": {"strategy": "tests:Hand", "data": "hand", "instruments": [BTC], "seed": 1},
              "venues": {"binance": {"maker_fee_bps": -1.0, "taker_fee_bps": 10.0}}, "config_hash": "abc123"}
    return {"fills": fills, "orders": orders, "bbo": HAND_BBO, "trades": HAND_TRADES, "equity": equity,
            "inventory": inventory, "run": run, "config": config}


@pytest.fixture
def hand_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "hand", **hand_run_tables())


def parent_run_tables() -> dict[str, Any]:
    fills = [
        fill(T0 + 1300 * MS, "buy", "102", "2", "0.204", "taker", "C1", parent_id="P1"),
        fill(T0 + 2300 * MS, "buy", "102", "1", "0.102", "taker", "C2", parent_id="P1"),
        fill(T0 + 11100 * MS, "sell", "97", "2", "0.194", "taker", "C3", parent_id="P2"),
    ]
    orders = [
        # parent rows (never sent to a venue)
        order("P1", "buy", "4", "0", "cancelled", T0 + 200 * MS, done_ts=T0 + 5 * S, arrival_bid="99", arrival_ask="101"),
        order("P2", "sell", "2", "0", "filled", T0 + 10500 * MS, done_ts=T0 + 11100 * MS, arrival_bid="97", arrival_ask="99"),
        # children
        order("C1", "buy", "2", "2", "filled", T0 + 1200 * MS, parent_id="P1", price="102", ack_ts=T0 + 1250 * MS,
              first_fill_ts=T0 + 1300 * MS, last_fill_ts=T0 + 1300 * MS, done_ts=T0 + 1300 * MS,
              avg_fill_price="102", fees="0.204", arrival_bid="100", arrival_ask="102"),
        order("C2", "buy", "2", "1", "cancelled", T0 + 2200 * MS, parent_id="P1", price="102", ack_ts=T0 + 2250 * MS,
              first_fill_ts=T0 + 2300 * MS, last_fill_ts=T0 + 2300 * MS, cancel_req_ts=T0 + 4 * S, done_ts=T0 + 5 * S,
              avg_fill_price="102", fees="0.102", arrival_bid="101", arrival_ask="103"),
        order("C3", "sell", "2", "2", "filled", T0 + 11 * S, parent_id="P2", price="97", ack_ts=T0 + 11050 * MS,
              first_fill_ts=T0 + 11100 * MS, last_fill_ts=T0 + 11100 * MS, done_ts=T0 + 11100 * MS,
              avg_fill_price="97", fees="0.194", arrival_bid="97", arrival_ask="99"),
    ]
    run = {"id": "parents-1", "instruments": [BTC], "start_ts": T0, "end_ts": END}
    return {"fills": fills, "orders": orders, "bbo": HAND_BBO, "trades": HAND_TRADES, "run": run}


@pytest.fixture
def parent_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "parents", **parent_run_tables())


@pytest.fixture
def empty_run(tmp_path: Path) -> Path:
    """No fills, no orders, no bbo rows: what a run that never traded leaves behind."""
    return write_run(tmp_path / "empty", fills=[], orders=[], bbo=[], trades=[],
                     run={"id": "empty-1", "instruments": [BTC], "start_ts": T0, "end_ts": END})


class RunKit:
    """The builders above, for tests (pytest's importlib mode cannot import conftest)."""

    T0, S, MS, US, END, BTC = T0, S, MS, US, END, BTC
    write_run = staticmethod(write_run)
    fill = staticmethod(fill)
    order = staticmethod(order)
    quote = staticmethod(quote)
    hand_run_tables = staticmethod(hand_run_tables)
    parent_run_tables = staticmethod(parent_run_tables)


@pytest.fixture
def runkit() -> type[RunKit]:
    return RunKit
