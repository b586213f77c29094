"""A seeded synthetic run directory (docs/run_dir.md) of any size, for tests and benchmarks.

It is not a simulation: it writes tables that are consistent enough for the report
(fills belong to orders, prices sit near the quoted mid, equity follows the fills) so
that `bench/bench_report.py` can time a million-fill report without running a backtest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

START_TS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _dec(values: np.ndarray, digits: int) -> pa.Array:
    """Floats rounded to ``digits`` decimals, written as decimal strings."""
    return pc.cast(pa.array(np.round(values, digits)), pa.string())


def _names(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
    """String column from integer codes (built as a dictionary array, then decoded)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(names))).cast(pa.string())


def _ids(prefix: str, n: int, start: int = 0) -> pa.Array:
    numbers = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), numbers, "")


def write_synthetic_run(
    run_dir: Path,
    fills: int = 10_000,
    seed: int = 7,
    duration_s: float = 3_600.0,
    instruments: tuple[str, ...] = ("binance:BTC/USDT", "okx:BTC/USDT"),
    quotes_per_fill: float = 2.0,
    trades_per_fill: float = 1.0,
    parent_share: float = 0.3,
) -> Path:
    """Write a consistent synthetic run with about ``fills`` fills into ``run_dir``."""
    rng = np.random.default_rng(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    n_inst = len(instruments)
    duration = int(duration_s * 1e9)
    end_ts = START_TS + duration

    # ---- quotes: a random walk per instrument on a 0.01 grid
    n_quotes = max(int(fills * quotes_per_fill), 100 * n_inst)
    q_inst = rng.integers(0, n_inst, n_quotes)
    q_ts = np.sort(rng.integers(START_TS, end_ts, n_quotes))
    mids = np.empty(n_quotes)
    for k in range(n_inst):
        rows = np.flatnonzero(q_inst == k)
        steps = rng.normal(0.0, 2e-5, len(rows))
        mids[rows] = 30_000.0 * (1 + 0.001 * k) * np.exp(np.cumsum(steps))
    half = 0.01 * rng.integers(1, 6, n_quotes)
    bid = np.round(mids - half, 2)
    ask = np.round(mids + half, 2)
    pq.write_table(pa.table({
        "ts": q_ts, "exch_ts": q_ts - 500_000,
        "instrument": _names(q_inst, instruments),
        "bid": bid, "bid_qty": rng.exponential(1.0, n_quotes), "ask": ask, "ask_qty": rng.exponential(1.0, n_quotes),
    }), run_dir / "bbo.parquet")

    def quote_at(inst: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = np.full(len(ts), np.nan)
        a = np.full(len(ts), np.nan)
        for k in range(n_inst):
            rows = np.flatnonzero(inst == k)
            qrows = np.flatnonzero(q_inst == k)
            pos = np.searchsorted(q_ts[qrows], ts[rows], side="right") - 1
            pos = np.maximum(pos, 0)
            b[rows] = bid[qrows][pos]
            a[rows] = ask[qrows][pos]
        return b, a

    # ---- market trades
    n_trades = max(int(fills * trades_per_fill), 10)
    t_inst = rng.integers(0, n_inst, n_trades)
    t_ts = np.sort(rng.integers(START_TS, end_ts, n_trades))
    t_side = rng.integers(0, 2, n_trades)
    tb, ta = quote_at(t_inst, t_ts)
    pq.write_table(pa.table({
        "ts": t_ts, "exch_ts": t_ts - 500_000,
        "instrument": _names(t_inst, instruments),
        "side": pa.DictionaryArray.from_arrays(pa.array(t_side.astype(np.int32)), pa.array(["sell", "buy"])).cast(pa.string()),
        "price": np.where(t_side == 1, ta, tb), "qty": np.round(rng.exponential(0.05, n_trades), 5),
    }), run_dir / "trades.parquet")

    # ---- orders
    n_orders = max(fills // 2, 1)
    o_inst = rng.integers(0, n_inst, n_orders)
    o_side = np.where(rng.random(n_orders) < 0.5, 1, -1)
    # parents: consecutive orders of one instrument & side grouped in tens
    parent = np.full(n_orders, None, dtype=object)
    is_child = rng.random(n_orders) < parent_share
    child_rows = np.flatnonzero(is_child)
    parent_of = (child_rows // 10).astype(np.int64)
    parent[child_rows] = np.char.add("p", parent_of.astype(str)).astype(object) if len(child_rows) else []
    # children of a parent share its instrument and side
    first_of_parent = {}
    for row, pid in zip(child_rows.tolist(), parent_of.tolist(), strict=True):
        first_of_parent.setdefault(pid, row)
    for row, pid in zip(child_rows.tolist(), parent_of.tolist(), strict=True):
        head = first_of_parent[pid]
        o_inst[row] = o_inst[head]
        o_side[row] = o_side[head]

    created = np.sort(rng.integers(START_TS + 10**9, end_ts - 120 * 10**9, n_orders))
    trigger = created - rng.integers(2_000, 60_000, n_orders)
    ack = created + (rng.lognormal(np.log(1.2e6), 0.35, n_orders)).astype(np.int64)
    is_market = rng.random(n_orders) < 0.15
    o_bid, o_ask = quote_at(o_inst, created)
    limit = np.where(o_side > 0, o_bid, o_ask)
    # which orders fill: ~60 %; fills spread over them
    fill_order_pool = np.flatnonzero(rng.random(n_orders) < 0.6)
    if len(fill_order_pool) == 0:
        fill_order_pool = np.arange(n_orders)
    f_order = np.sort(rng.choice(fill_order_pool, size=fills, replace=True))
    f_ts = ack[f_order] + rng.exponential(2e8, fills).astype(np.int64) + 1
    f_ts = np.minimum(f_ts, end_ts - 1)
    f_inst = o_inst[f_order]
    f_side = o_side[f_order]
    maker = ~is_market[f_order] & (rng.random(fills) < 0.8)
    fb, fa = quote_at(f_inst, f_ts)
    taker_price = np.where(f_side > 0, fa, fb)
    f_price = np.where(maker, limit[f_order], taker_price)
    f_qty = np.round(rng.exponential(0.01, fills) + 0.00001, 5)
    fee_bps = np.where(maker, -0.5, 5.0)
    f_fee = np.round(f_price * f_qty * fee_bps / 1e4, 8)

    filled_qty = np.bincount(f_order, weights=f_qty, minlength=n_orders)
    filled_notional = np.bincount(f_order, weights=f_price * f_qty, minlength=n_orders)
    order_fees = np.bincount(f_order, weights=f_fee, minlength=n_orders)
    has_fill = filled_qty > 0
    fully = has_fill & (rng.random(n_orders) < 0.7)
    extra = np.where(fully, 0.0, np.round(rng.exponential(0.01, n_orders) + 0.00001, 5))
    o_qty = np.round(filled_qty + extra, 5)
    first_fill = np.full(n_orders, np.iinfo(np.int64).max)
    np.minimum.at(first_fill, f_order, f_ts)
    last_fill = np.zeros(n_orders, dtype=np.int64)
    np.maximum.at(last_fill, f_order, f_ts)
    rejected = ~has_fill & (rng.random(n_orders) < 0.05)
    status = np.where(fully, "filled", np.where(rejected, "rejected", "cancelled"))
    cancel_req = np.where(status == "cancelled",
                          np.maximum(ack, np.where(has_fill, last_fill, ack)) + rng.integers(10**6, 5 * 10**9, n_orders), 0)
    cancel_ack = cancel_req + rng.lognormal(np.log(1.1e6), 0.3, n_orders).astype(np.int64)
    done = np.where(status == "filled", last_fill, np.where(status == "cancelled", cancel_ack, ack))
    done = np.minimum(done, end_ts)
    avg = np.where(has_fill, filled_notional / np.where(has_fill, filled_qty, 1), np.nan)

    def ts_or_null(values: np.ndarray, mask: np.ndarray) -> pa.Array:
        return pa.array(values, pa.int64(), mask=~mask)

    inst_arr = _names(o_inst, instruments)
    venue_names = [i.partition(":")[0] for i in instruments]
    venue_arr = _names(o_inst, venue_names)
    side_arr = pa.array(np.where(o_side > 0, "buy", "sell"))
    orders_table = pa.table({
        "client_id": _ids("o", n_orders),
        "parent_id": pa.array(parent.tolist(), pa.string()),
        "instrument": inst_arr, "venue": venue_arr, "side": side_arr,
        "type": pa.array(np.where(is_market, "market", "limit")),
        "tif": pa.array(np.where(is_market, "IOC", "GTC")),
        "post_only": pa.array(np.zeros(n_orders, dtype=bool)),
        "reduce_only": pa.array(np.zeros(n_orders, dtype=bool)),
        "price": pc.if_else(pa.array(is_market), pa.scalar(None, pa.string()), _dec(limit, 2)),
        "qty": _dec(o_qty, 5),
        "filled_qty": _dec(filled_qty, 5),
        "avg_fill_price": pc.if_else(pa.array(has_fill), _dec(np.nan_to_num(avg), 6), pa.scalar(None, pa.string())),
        "fees": _dec(order_fees, 8),
        "status": pa.array(status),
        # null, not "", when there is no reason (docs/run_dir.md)
        "reason": pa.array(np.where(status == "rejected", "risk:max_order_notional", None).tolist(), pa.string()),
        "created_ts": created, "trigger_ts": trigger, "ack_ts": ack,
        "first_fill_ts": ts_or_null(np.where(has_fill, first_fill, 0), has_fill),
        "last_fill_ts": ts_or_null(last_fill, has_fill),
        "cancel_req_ts": ts_or_null(cancel_req, status == "cancelled"),
        "done_ts": done,
        "arrival_bid": _dec(o_bid, 2), "arrival_ask": _dec(o_ask, 2),
    })
    # parent rows
    parent_ids = np.unique(parent_of)
    if len(parent_ids):
        heads = np.array([first_of_parent[p] for p in parent_ids.tolist()])
        child_qty = np.bincount(np.searchsorted(parent_ids, parent_of), weights=o_qty[child_rows], minlength=len(parent_ids))
        p_created = created[heads] - 1_000_000
        pb, pa_ = quote_at(o_inst[heads], p_created)
        p_rows = pa.table({
            "client_id": pa.array(np.char.add("p", parent_ids.astype(str)).tolist(), pa.string()),
            "parent_id": pa.nulls(len(parent_ids), pa.string()),
            "instrument": _names(o_inst[heads], instruments),
            "venue": _names(o_inst[heads], venue_names),
            "side": pa.array(np.where(o_side[heads] > 0, "buy", "sell")),
            "type": pa.array(["limit"] * len(parent_ids)), "tif": pa.array(["GTC"] * len(parent_ids)),
            "post_only": pa.array(np.zeros(len(parent_ids), dtype=bool)),
            "reduce_only": pa.array(np.zeros(len(parent_ids), dtype=bool)),
            "price": pa.nulls(len(parent_ids), pa.string()),
            "qty": _dec(np.round(child_qty * 1.1, 5), 5),
            "filled_qty": pa.array(["0"] * len(parent_ids)), "avg_fill_price": pa.nulls(len(parent_ids), pa.string()),
            "fees": pa.array(["0"] * len(parent_ids)), "status": pa.array(["cancelled"] * len(parent_ids)),
            "reason": pa.array(["parent_done"] * len(parent_ids)),
            "created_ts": p_created, "trigger_ts": p_created, "ack_ts": pa.nulls(len(parent_ids), pa.int64()),
            "first_fill_ts": pa.nulls(len(parent_ids), pa.int64()), "last_fill_ts": pa.nulls(len(parent_ids), pa.int64()),
            "cancel_req_ts": pa.nulls(len(parent_ids), pa.int64()), "done_ts": pa.nulls(len(parent_ids), pa.int64()),
            "arrival_bid": _dec(pb, 2), "arrival_ask": _dec(pa_, 2),
        })
        orders_table = pa.concat_tables([orders_table, p_rows.cast(orders_table.schema)])
    pq.write_table(orders_table, run_dir / "orders.parquet")

    # ---- fills, sorted by local time
    order_by_ts = np.argsort(f_ts, kind="stable")
    f_order, f_ts, f_inst, f_side = f_order[order_by_ts], f_ts[order_by_ts], o_inst[f_order[order_by_ts]], o_side[f_order[order_by_ts]]
    f_price, f_qty, f_fee, maker = f_price[order_by_ts], f_qty[order_by_ts], f_fee[order_by_ts], maker[order_by_ts]
    pq.write_table(pa.table({
        "ts": f_ts, "exch_ts": f_ts - 1_000_000,
        "instrument": _names(f_inst, instruments),
        "venue": _names(f_inst, venue_names),
        "client_id": pc.take(orders_table.column("client_id"), pa.array(f_order)),
        "parent_id": pc.take(orders_table.column("parent_id"), pa.array(f_order)),
        "side": pa.array(np.where(f_side > 0, "buy", "sell")),
        "price": _dec(f_price, 2), "qty": _dec(f_qty, 5), "fee": _dec(f_fee, 8),
        "fee_asset": _names(np.zeros(fills, dtype=np.int32), ["USDT"]),
        "liquidity": pa.array(np.where(maker, "maker", "taker")),
    }), run_dir / "fills.parquet")

    # ---- equity and inventory: every second and after every fill
    grid = np.arange(START_TS, end_ts + 1, 10**9, dtype=np.int64)
    sample_ts = np.unique(np.concatenate((grid, f_ts)))
    idx = np.searchsorted(f_ts, sample_ts, side="right")  # fills up to and including the sample
    equity_start = 100_000.0
    cash = equity_start - np.concatenate(([0.0], np.cumsum(f_side * f_price * f_qty + f_fee)))[idx]
    fees_cum = np.concatenate(([0.0], np.cumsum(f_fee)))[idx]
    marked = np.zeros(len(sample_ts))
    inventory_parts = []
    cost_basis = np.zeros(len(sample_ts))
    for k, name in enumerate(instruments):
        mine = f_inst == k
        pos = np.concatenate(([0.0], np.cumsum(np.where(mine, f_side * f_qty, 0.0))))[idx]
        basis = np.concatenate(([0.0], np.cumsum(np.where(mine, f_side * f_qty * f_price, 0.0))))[idx]
        qrows = np.flatnonzero(q_inst == k)
        qpos = np.maximum(np.searchsorted(q_ts[qrows], sample_ts, side="right") - 1, 0)
        mid = (bid[qrows][qpos] + ask[qrows][qpos]) / 2
        marked += pos * mid
        cost_basis += basis
        inventory_parts.append(pa.table({
            "ts": sample_ts, "instrument": _names(np.zeros(len(sample_ts), dtype=np.int32), [name]),
            "position": _dec(pos, 5), "mid": mid,
        }))
    equity = cash + marked
    unrealized = marked - cost_basis
    realized = equity - equity_start - unrealized + fees_cum
    pq.write_table(pa.table({
        "ts": sample_ts, "equity": _dec(equity, 6), "realized_pnl": _dec(realized, 6),
        "unrealized_pnl": _dec(unrealized, 6), "fees": _dec(fees_cum, 8),
        "quote_asset": _names(np.zeros(len(sample_ts), dtype=np.int32), ["USDT"]),
    }), run_dir / "equity.parquet")
    pq.write_table(pa.concat_tables(inventory_parts), run_dir / "inventory.parquet")

    config = {
        "run": {"strategy": "examples/market_maker.py:MarketMaker", "data": f"synthetic:{seed}",
                "instruments": list(instruments), "seed": seed, "params": {"half_spread_bps": 4}},
        "venues": {v: {"queue_model": "risk_averse", "maker_fee_bps": -0.5, "taker_fee_bps": 5.0,
                       "latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000, "feed_ns": 0}}
                   for v in sorted(set(venue_names))},
        "config_hash": f"synthetic-{seed}-{fills}",
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    specs = {name: {"venue": name.partition(":")[0], "symbol": name.partition(":")[2], "base": "BTC", "quote": "USDT",
                    "tick_size": "0.01", "lot_size": "0.00001", "min_qty": "0.00001", "min_notional": "5"}
             for name in instruments}
    (run_dir / "instruments.json").write_text(json.dumps(specs, indent=2) + "\n", encoding="utf-8")
    summary = {"run": {
        "id": f"synthetic-{seed}-{fills}", "config_hash": config["config_hash"], "strategy": config["run"]["strategy"],
        "data": config["run"]["data"], "seed": seed, "instruments": list(instruments),
        "start_ts": START_TS, "end_ts": end_ts, "events": int(n_quotes + n_trades), "wall_seconds": 0.0,
        "events_per_second": 0.0, "orders": int(orders_table.num_rows), "fills": int(fills),
        "pnl": {"realized": f"{realized[-1]:.6f}", "unrealized": f"{unrealized[-1]:.6f}", "fees": f"{fees_cum[-1]:.8f}",
                "equity_start": f"{equity_start:.6f}", "equity_end": f"{equity[-1]:.6f}"},
    }}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return run_dir
