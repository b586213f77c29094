"""Writes a run directory in the format of docs/run_dir.md.

Why streaming for market tables: the local top of book and trades of a month-long replay
do not fit in memory, so they go to Parquet in row groups as the run proceeds; fills,
orders and equity samples are small enough to collect and write once at the end.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.durable import (
    crash_point,
    disk_full_error,
    exchange_paths,
    fsync_dir,
    fsync_tree,
    is_disk_full,
)
from engine.oms import Order, ParentOrder
from engine.types import Instrument, OrderType
from engine.types.instrument import decimal_str as _s
from engine.views import Status

_STR = pa.string()
_SIDES = pa.array(["sell", "buy"], _STR)  # by (side > 0)

FILLS_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", _STR), ("venue", _STR),
    ("client_id", _STR), ("parent_id", _STR), ("side", _STR), ("price", _STR), ("qty", _STR),
    ("fee", _STR), ("fee_asset", _STR), ("liquidity", _STR),
    ("fee_charged", _STR), ("fee_charged_asset", _STR), ("trade_id", _STR),
])
ORDERS_SCHEMA = pa.schema([
    ("client_id", _STR), ("parent_id", _STR), ("instrument", _STR), ("venue", _STR),
    ("side", _STR), ("type", _STR), ("tif", _STR), ("post_only", pa.bool_()),
    ("reduce_only", pa.bool_()), ("price", _STR), ("qty", _STR), ("filled_qty", _STR),
    ("avg_fill_price", _STR), ("fees", _STR), ("status", _STR), ("reason", _STR),
    ("created_ts", pa.int64()), ("trigger_ts", pa.int64()), ("ack_ts", pa.int64()),
    ("first_fill_ts", pa.int64()), ("last_fill_ts", pa.int64()), ("cancel_req_ts", pa.int64()),
    ("done_ts", pa.int64()), ("arrival_bid", _STR), ("arrival_ask", _STR),
])
BBO_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", _STR), ("bid", pa.float64()),
    ("bid_qty", pa.float64()), ("ask", pa.float64()), ("ask_qty", pa.float64()),
])
TRADES_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("exch_ts", pa.int64()), ("instrument", _STR), ("side", _STR),
    ("price", pa.float64()), ("qty", pa.float64()),
])
EQUITY_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("equity", _STR), ("realized_pnl", _STR), ("unrealized_pnl", _STR),
    ("fees", _STR), ("quote_asset", _STR),
])
INVENTORY_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("instrument", _STR), ("position", _STR), ("mid", pa.float64()),
])

_FLUSH_ROWS = 500_000
# Parquet dictionary encoding only for the tape columns whose values repeat (the instrument,
# the touch prices, a trade's side and price). Why: by default pyarrow tries a dictionary
# for every column, and for near-unique ones (timestamps, sizes) it builds one, overflows
# and falls back to plain: 40% of writing the top-of-book tape for nothing (0.113 -> 0.066 s
# per 600k rows, and the file 6% smaller; bench/PROFILE.md section 2d). Readers see the
# same values either way.
_DICTIONARY = {"bbo": ["instrument", "bid", "ask"], "trades": ["instrument", "side", "price"]}


def _scales(steps: list[Decimal]) -> tuple[np.ndarray, np.ndarray]:
    """(divisor, multiplier) per instrument: divide by 1/step when it is whole, else multiply."""
    divisors, multipliers = [], []
    for step in steps:
        inverse = 1 / step
        whole = inverse == inverse.to_integral_value()
        divisors.append(float(inverse) if whole else 1.0)
        multipliers.append(1.0 if whole else float(step))
    return np.array(divisors), np.array(multipliers)


def _to_float(units: np.ndarray, scale: tuple[np.ndarray, np.ndarray], idx: np.ndarray) -> np.ndarray:
    divisors, multipliers = scale
    return units.astype(np.float64) * multipliers[idx] / divisors[idx]


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else _s(value)


class RunWriter:
    """Collects a run's outputs and writes them into `out_dir`."""

    def __init__(self, out_dir: Path, instruments: dict[str, Instrument]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.instruments = instruments
        # instrument and side columns are taken from these by index (Arrow's take, in C): a
        # string array built from an object array of one reference per row cost ~0.6 us a
        # row, the largest part of writing the top-of-book tape
        self._ids = pa.array(list(instruments), _STR)
        # divide by 1/step when that is a whole number: 6000002 / 100 is 60000.02 exactly
        # as a float, where 6000002 * 0.01 is 60000.020000000004
        self._tick = _scales([i.tick_size for i in instruments.values()])
        self._lot = _scales([i.lot_size for i in instruments.values()])
        self._quote_asset = next(iter(instruments.values())).quote if instruments else ""
        self._fills: list[tuple] = []
        self._equity: list[tuple] = []
        self._inventory: list[tuple] = []
        self._market: dict[str, tuple[pa.Schema, list[np.ndarray], pq.ParquetWriter | None]] = {
            "bbo": (BBO_SCHEMA, [], None), "trades": (TRADES_SCHEMA, [], None)}
        # rows waiting in each market table's pending list: kept as a count, not re-summed
        # over the list on every add (that was quadratic in the adds between two flushes)
        self._pending_rows = {"bbo": 0, "trades": 0}

    # -- Recorder protocol ---------------------------------------------------------------
    def fill(self, order: Order, ts: int, exch_ts: int, price: Decimal, qty: Decimal,
             fee: Decimal, liquidity: str, fee_charged: Decimal | None = None,
             fee_charged_asset: str | None = None, trade_id: str | None = None) -> None:
        inst = order.instrument
        if fee_charged is None:  # charged in the quote: the fee as it is
            fee_charged, fee_charged_asset = fee, inst.quote
        self._fills.append((ts, exch_ts, inst.id, inst.venue, order.client_id, order.parent_id,
                            order.side_name, _s(price), _s(qty), _s(fee), inst.quote, liquidity,
                            _s(fee_charged), fee_charged_asset, trade_id))

    def equity(self, ts: int, equity: Decimal, realized: Decimal, unrealized: Decimal,
               fees: Decimal, positions: list[tuple[str, Decimal, float]]) -> None:
        self._equity.append((ts, _s(equity), _s(realized), _s(unrealized), _s(fees), self._quote_asset))
        for inst_id, position, mid in positions:
            self._inventory.append((ts, inst_id, _s(position), mid))

    def fill_texts(self, order: Order, ts: int, exch_ts: int, price: str, qty: str, fee: str, liquidity: str,
                   fee_charged: str, fee_charged_asset: str, trade_id: str) -> None:
        """`fill` with its amounts already as `decimal_str` text (engine/bulk.py caches them
        per price, quantity and fee)."""
        inst = order.instrument
        self._fills.append((ts, exch_ts, inst.id, inst.venue, order.client_id, order.parent_id,
                            order.side_name, price, qty, fee, inst.quote, liquidity,
                            fee_charged, fee_charged_asset, trade_id))

    def equity_texts(self, ts: int, equity: str, realized: str, unrealized: str, fees: str,
                     positions: list[tuple[str, str, float]]) -> None:
        """`equity` with its amounts already as `decimal_str` text (engine/bulk.py keeps the
        text of what changes only with a fill)."""
        self._equity.append((ts, equity, realized, unrealized, fees, self._quote_asset))
        for inst_id, position, mid in positions:
            self._inventory.append((ts, inst_id, position, mid))

    # -- market tables (numpy records from the venue) -----------------------------------
    def add_bbo(self, rows: np.ndarray) -> None:
        self._add_market("bbo", rows)

    def add_trades(self, rows: np.ndarray) -> None:
        self._add_market("trades", rows)

    def _add_market(self, name: str, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        schema, pending, writer = self._market[name]
        pending.append(rows)
        self._pending_rows[name] += len(rows)
        if self._pending_rows[name] >= _FLUSH_ROWS:
            self._flush_market(name)

    def _flush_market(self, name: str) -> None:
        schema, pending, writer = self._market[name]
        if writer is None:
            writer = pq.ParquetWriter(self.out_dir / f"{name}.parquet", schema, use_dictionary=_DICTIONARY[name])
        if pending:
            rows = np.concatenate(pending)
            table = self._bbo_table(rows) if name == "bbo" else self._trades_table(rows)
            writer.write_table(table)
        self._market[name] = (schema, [], writer)
        self._pending_rows[name] = 0

    def _bbo_table(self, rows: np.ndarray) -> pa.Table:
        idx = rows["instrument"].astype(np.intp)
        bid_ok, ask_ok = rows["bid_qty"] > 0, rows["ask_qty"] > 0
        return pa.table({
            "ts": rows["ts"].astype(np.int64), "exch_ts": rows["exch_ts"].astype(np.int64),
            "instrument": self._ids.take(pa.array(idx)),
            "bid": np.where(bid_ok, _to_float(rows["bid"], self._tick, idx), np.nan),
            "bid_qty": np.where(bid_ok, _to_float(rows["bid_qty"], self._lot, idx), np.nan),
            "ask": np.where(ask_ok, _to_float(rows["ask"], self._tick, idx), np.nan),
            "ask_qty": np.where(ask_ok, _to_float(rows["ask_qty"], self._lot, idx), np.nan),
        }, schema=BBO_SCHEMA)

    def _trades_table(self, rows: np.ndarray) -> pa.Table:
        idx = rows["instrument"].astype(np.intp)
        return pa.table({
            "ts": rows["ts"].astype(np.int64), "exch_ts": rows["exch_ts"].astype(np.int64),
            "instrument": self._ids.take(pa.array(idx)),
            "side": _SIDES.take(pa.array((rows["side"] > 0).astype(np.int8))),
            "price": _to_float(rows["price"], self._tick, idx),
            "qty": _to_float(rows["qty"], self._lot, idx),
        }, schema=TRADES_SCHEMA)

    # -- finish --------------------------------------------------------------------------
    def finish(self, orders: list[Order], parents: list[ParentOrder], summary: dict[str, Any], config: dict[str, Any],
               run_info: dict[str, Any] | None = None) -> None:
        """Write the collected tables, config.json, instruments.json, summary.json and (when
        given) run.json: what produced the run (see `build_info`)."""
        for name in self._market:
            self._flush_market(name)
            writer = self._market[name][2]
            if writer is not None:
                writer.close()
        with _no_collection():
            # each table is built column by column (no dict per row: with ~100k orders the
            # row dicts of Table.from_pylist were the run's peak memory, issue 16)
            pq.write_table(rows_table(FILLS_SCHEMA, self._fills), self.out_dir / "fills.parquet")
            values = operator.itemgetter(*ORDERS_SCHEMA.names)
            text = _UnitText()
            order_rows = (_order_tuple(o, text) for o in orders)
            parent_rows = (values(_parent_row(p)) for p in parents)
            pq.write_table(rows_table(ORDERS_SCHEMA, itertools.chain(order_rows, parent_rows)),
                           self.out_dir / "orders.parquet")
            pq.write_table(rows_table(EQUITY_SCHEMA, self._equity), self.out_dir / "equity.parquet")
            pq.write_table(rows_table(INVENTORY_SCHEMA, self._inventory), self.out_dir / "inventory.parquet")
        _write_json(self.out_dir / "config.json", config)
        if run_info is not None:
            _write_json(self.out_dir / "run.json", run_info)
        _write_json(self.out_dir / "instruments.json", instruments_json(self.instruments.values()))
        _write_json(self.out_dir / "summary.json", summary)

    @property
    def first_equity(self) -> str | None:
        """Equity at the first sample (the book is needed to mark base-asset holdings)."""
        return self._equity[0][1] if self._equity else None


def build_info() -> dict[str, Any]:
    """What produced a run: tickparity's version, its git commit (None outside a git
    checkout; `git_dirty` when the checkout has uncommitted changes) and the versions of
    Python, numpy, numba and pyarrow. Written to run.json; not part of the run id, which
    covers the configuration and the files it names (docs/run_dir.md)."""
    import importlib.metadata
    import platform
    import subprocess

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    root = Path(__file__).resolve().parent.parent
    commit, dirty = None, None
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip() or None
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout
            dirty = bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            commit, dirty = None, None
    return {"tickparity": version("tickparity"), "git_commit": commit, "git_dirty": dirty,
            "python": platform.python_version(), "numpy": version("numpy"), "numba": version("numba"),
            "pyarrow": version("pyarrow")}


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Python's cyclic collector paused for a block that makes many objects and no cycles.
    Why: turning a run's rows into columns makes a tuple per row and column, which counts
    toward a full collection, and a full collection walks every object of the process
    (the run's orders, numba's and pyarrow's state): ~0.08 s, once per 1M-event compiled
    run, inside `finish` (bench/PROFILE.md section 2d). Tuples, strings and Arrow arrays
    make no reference cycles, so nothing waits for the collector meanwhile; it resumes
    (if it was on) at the end."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def rows_table(schema: pa.Schema, rows: Iterable[tuple]) -> pa.Table:
    """A table of `schema` from row tuples in the schema's column order, built one column
    at a time: the same table `Table.from_pylist` makes from one dict per row, without the
    dicts (transposed by `zip`, in C). An empty `rows` gives an empty table of the schema.
    ValueError when a row's width is not the schema's."""
    rows = rows if isinstance(rows, list) else list(rows)
    width = len(schema.names)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]
    if len(columns) != width:
        raise ValueError(f"rows of {len(columns)} values for the {width} columns {schema.names}")
    arrays = []
    for k, field in enumerate(schema):
        arrays.append(pa.array(columns[k], type=field.type))
        columns[k] = ()  # the Python values go as soon as their column is an Arrow array
    return pa.Table.from_arrays(arrays, schema=schema)


def _order_row(order: Order) -> dict[str, Any]:
    inst = order.instrument
    avg = order.avg_fill_price
    return {
        "client_id": order.client_id, "parent_id": order.parent_id, "instrument": inst.id,
        "venue": inst.venue, "side": order.side_name, "type": order.type.name.lower(),
        "tif": order.tif.name, "post_only": order.post_only, "reduce_only": order.reduce_only,
        "price": _s(inst.ticks_to_price(order.price)) if order.type == OrderType.LIMIT else None,
        "qty": _s(inst.lots_to_qty(order.qty)), "filled_qty": _s(inst.lots_to_qty(order.filled)),
        "avg_fill_price": _dec(avg), "fees": _s(order.fees),
        "status": Status.of(order.status).value, "reason": order.reason or None,  # null, not "", when none
        "created_ts": order.created_ts, "trigger_ts": order.trigger_ts, "ack_ts": order.ack_ts,
        "first_fill_ts": order.first_fill_ts, "last_fill_ts": order.last_fill_ts,
        "cancel_req_ts": order.cancel_req_ts, "done_ts": order.done_ts,
        "arrival_bid": _dec(order.arrival_bid), "arrival_ask": _dec(order.arrival_ask),
    }


class _UnitText:
    """`decimal_str` text of whole ticks and lots per instrument, computed once per value:
    an order's price, quantity and filled quantity repeat across a run's orders."""

    def __init__(self) -> None:
        self.prices: dict[tuple[str, int], str] = {}
        self.qtys: dict[tuple[str, int], tuple[Decimal, str]] = {}

    def price(self, inst: Instrument, ticks: int) -> str:
        key = (inst.id, ticks)
        found = self.prices.get(key)
        if found is None:
            found = self.prices[key] = _s(inst.ticks_to_price(ticks))
        return found

    def qty(self, inst: Instrument, lots: int) -> tuple[Decimal, str]:
        key = (inst.id, lots)
        found = self.qtys.get(key)
        if found is None:
            qty = inst.lots_to_qty(lots)
            found = self.qtys[key] = (qty, _s(qty))
        return found


_TYPE_TEXT = {t: t.name.lower() for t in OrderType}


def _order_tuple(order: Order, text: _UnitText) -> tuple:
    """`_order_row(order)`'s values in ORDERS_SCHEMA order, without the dict, with the text
    of ticks and lots from `text` (tests/engine/test_engine_output.py pins the two equal)."""
    inst = order.instrument
    filled_qty, filled_text = text.qty(inst, order.filled)
    bid, ask = order.arrival_bid, order.arrival_ask
    return (order.client_id, order.parent_id, inst.id, inst.venue, order.side_name, _TYPE_TEXT[order.type],
            order.tif.name, order.post_only, order.reduce_only,
            text.price(inst, order.price) if order.type == OrderType.LIMIT else None,
            text.qty(inst, order.qty)[1], filled_text,
            _s(order.notional_filled / filled_qty) if order.filled else None,  # Order.avg_fill_price
            _s(order.fees), Status.of(order.status).value, order.reason or None, order.created_ts,
            order.trigger_ts, order.ack_ts, order.first_fill_ts, order.last_fill_ts, order.cancel_req_ts,
            order.done_ts, None if bid is None else _s(bid), None if ask is None else _s(ask))


def _parent_row(parent: ParentOrder) -> dict[str, Any]:
    inst = parent.instrument
    avg = parent.notional_filled / parent.filled if parent.filled else None
    return {
        "client_id": parent.parent_id, "parent_id": None, "instrument": inst.id, "venue": inst.venue,
        "side": parent.side_name, "type": "parent", "tif": None, "post_only": False, "reduce_only": False,
        "price": None, "qty": _s(parent.qty), "filled_qty": _s(parent.filled),
        "avg_fill_price": _dec(avg), "fees": _s(parent.fees), "status": Status.of(parent.status).value,
        "reason": parent.reason or None, "created_ts": parent.created_ts, "trigger_ts": parent.trigger_ts,
        "ack_ts": parent.created_ts, "first_fill_ts": parent.first_fill_ts,
        "last_fill_ts": parent.last_fill_ts, "cancel_req_ts": None, "done_ts": parent.done_ts,
        "arrival_bid": _dec(parent.arrival_bid), "arrival_ask": _dec(parent.arrival_ask),
    }


def instruments_json(instruments: Iterable[Instrument]) -> dict[str, dict[str, str]]:
    """instruments.json of a run directory (docs/run_dir.md): specs as decimal strings."""
    out = {i.id: {"venue": i.venue, "symbol": i.symbol, "venue_symbol": i.venue_symbol,
                  "base": i.base, "quote": i.quote, "tick_size": _s(i.tick_size),
                  "lot_size": _s(i.lot_size), "min_qty": _s(i.min_qty),
                  "min_notional": _s(i.min_notional)} for i in instruments}
    for i in instruments:  # contracts (docs/derivatives.md)
        if i.contract:
            out[i.id] |= {"type": i.type, "settle": i.settle or "", "linear": "true" if i.linear else "false",
                          "contract_size": _s(i.contract_size)}
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# -- publishing a run directory (protocol: docs/run_dir.md, "Publishing") ---------------------


def _siblings(out: Path) -> tuple[Path, Path, list[Path]]:
    """(.X.partial, .X.old, [.X.ready-<inode>, ...]) of run directory X."""
    parent, name = out.parent, out.name
    ready = sorted(parent.glob(f".{name}.ready-*")) if parent.is_dir() else []
    return parent / f".{name}.partial", parent / f".{name}.old", ready


def recover_run_dir(out: Path) -> list[str]:
    """Finish or undo an interrupted publish of run directory `out`; returns what was done.

    Leftovers and their meaning (docs/run_dir.md): `.X.partial` is an unfinished run
    (deleted); `.X.ready-<inode>` is a finished, fsynced run: when `X` already has that
    inode the swap happened and it holds the previous run (deleted), otherwise it is
    published now; `.X.old` is the previous run retired by the two-rename fallback
    (deleted once `X` exists, renamed back to `X` when `X` is missing)."""
    import shutil

    done: list[str] = []
    partial, old, readies = _siblings(out)
    for ready in readies:
        ino = ready.name.rpartition("-")[2]
        if out.exists() and str(out.stat().st_ino) == ino:
            shutil.rmtree(ready)
            done.append(f"deleted the previous run left in {ready.name}")
        else:
            _swap_in(ready, out)
            done.append(f"published the finished run from {ready.name}")
    if old.exists():
        if out.exists():
            shutil.rmtree(old)
            done.append(f"deleted the previous run left in {old.name}")
        else:
            os.rename(old, out)
            fsync_dir(out.parent)
            done.append(f"restored the previous run from {old.name}")
    if partial.exists():
        shutil.rmtree(partial)
        done.append(f"deleted the unfinished run {partial.name}")
    return done


def _swap_in(ready: Path, out: Path) -> None:
    """Make the finished run `ready` the published `out`; the previous run is deleted."""
    import shutil

    if not out.exists():
        os.rename(ready, out)
        fsync_dir(out.parent)
        crash_point("publish.renamed")
        return
    if exchange_paths(ready, out):  # one atomic step: no instant without `out`
        fsync_dir(out.parent)
        crash_point("publish.exchanged")
        shutil.rmtree(ready)  # now the previous run (recovery knows it by the inode)
        return
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    os.rename(out, old)
    crash_point("publish.retired")
    os.rename(ready, out)
    fsync_dir(out.parent)
    crash_point("publish.renamed")
    shutil.rmtree(old)


def write_run_dir(out: Path, write: Callable[[Path], None]) -> Path:
    """Write a run directory with `write(staging_dir)` and publish it atomically.

    Every mode writes its run directory through here: leftovers of an interrupted
    publish are recovered first, `write` fills a fresh sibling `.X.partial`, which is
    fsynced, renamed `.X.ready-<inode>` (complete from then on) and swapped with `X` in
    one `renameat2(RENAME_EXCHANGE)` (two renames plus recovery where the file system
    cannot). A run killed at any instant leaves the previous `X` intact or the new one
    complete. Raises ConfigError when `out` is not a run directory, StorageError
    when the disk fills (the previous run is kept)."""
    import shutil

    from engine.errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_run_dir(out)
    if out.is_dir() and any(out.iterdir()) and not (out / "summary.json").exists():
        raise ConfigError(
            f"--out {out} is a non-empty directory that is not a tickparity run; choose another"
        )
    staging, _old, _ready = _siblings(out)
    staging.mkdir()
    try:
        write(staging)
        crash_point("publish.written")
        fsync_tree(staging)
        crash_point("publish.synced")
        ready = out.parent / f".{out.name}.ready-{staging.stat().st_ino}"
        os.rename(staging, ready)
        fsync_dir(out.parent)
        crash_point("publish.ready")
    except BaseException as exc:
        written = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
        shutil.rmtree(staging, ignore_errors=True)
        if is_disk_full(exc):
            raise disk_full_error(f"run directory {out}", out.parent, written, "run", at_least=True) from None
        raise
    _swap_in(ready, out)
    return out
