"""Read a run directory (docs/run_dir.md) into plain numpy arrays for the metrics.

Why a separate reader: the metrics are vectorised numpy over a million fills, so the
Parquet tables are turned once into typed arrays (int64 ns times, float64 prices for
statistics, small integer codes for instruments/venues/sides). Exact sums of money
(fees, rebates) are taken here on decimal128 columns, before anything becomes a float.

Required files: ``fills.parquet`` and ``orders.parquet`` (a run without them is not a
run). Everything else is optional; what is absent is recorded in ``RunData.missing`` and
the report says so instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.errors import DataError, file_problem

#: Sentinel for a missing int64 timestamp (nullable columns).
NA_TS = np.iinfo(np.int64).min

# Columns the report reads: the first tuple of each pair must be present, the second may
# be absent (the figures that need it are then left empty). Other columns of the
# run-directory contract are not read.
FILL_COLUMNS = ("ts", "instrument", "client_id", "side", "price", "qty", "fee", "liquidity")
FILL_OPTIONAL = ("venue", "fee_asset")
ORDER_COLUMNS = ("client_id", "instrument", "side", "qty", "filled_qty", "status", "created_ts")
ORDER_OPTIONAL = (
    "parent_id", "venue", "type", "tif", "avg_fill_price", "fees", "trigger_ts", "ack_ts",
    "first_fill_ts", "last_fill_ts", "cancel_req_ts", "done_ts", "arrival_bid", "arrival_ask",
)
BBO_COLUMNS = ("ts", "instrument", "bid", "ask")
TRADE_COLUMNS = ("ts", "instrument", "price", "qty")
EQUITY_COLUMNS = ("ts", "equity", "realized_pnl", "unrealized_pnl", "fees")
INVENTORY_COLUMNS = ("ts", "instrument", "position")

STATUSES = (
    "pending", "submitted", "acknowledged", "partially_filled",
    "filled", "cancelled", "rejected", "expired",
)
STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}

_FEE_TYPE = pa.decimal128(38, 18)


@dataclass
class Fills:
    ts: np.ndarray  # int64 local ns
    exch_ts: np.ndarray
    instrument: np.ndarray  # int32 code into RunData.instruments
    venue: np.ndarray  # int32 code into RunData.venues
    side: np.ndarray  # int8 +1 buy, -1 sell
    price: np.ndarray  # float64
    qty: np.ndarray  # float64
    fee: np.ndarray  # float64, negative = rebate
    maker: np.ndarray  # bool
    order: np.ndarray  # int64 row in orders, -1 if the order is unknown
    fee_assets: tuple[str, ...] = ()  # distinct fee assets seen
    fees_exact: Decimal = Decimal(0)  # sum of positive fees
    rebates_exact: Decimal = Decimal(0)  # minus the sum of negative fees (>= 0)
    fees_by_venue: dict[int, Decimal] = field(default_factory=dict)  # exact net fee per venue code
    fees_by_instrument: dict[int, Decimal] = field(default_factory=dict)  # ... per instrument code

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class Orders:
    client_id: pa.Array  # string
    parent_id: pa.Array  # string, null when the order has no parent
    instrument: np.ndarray
    venue: np.ndarray
    side: np.ndarray
    is_market: np.ndarray  # bool
    is_ioc: np.ndarray  # bool: tif IOC or FOK (never rests in the book)
    status: np.ndarray  # int8 code into STATUSES
    qty: np.ndarray
    filled_qty: np.ndarray
    avg_fill_price: np.ndarray  # NaN when no fill
    fees: np.ndarray
    created_ts: np.ndarray
    trigger_ts: np.ndarray
    ack_ts: np.ndarray  # NA_TS when null
    first_fill_ts: np.ndarray
    last_fill_ts: np.ndarray
    cancel_req_ts: np.ndarray
    done_ts: np.ndarray
    arrival_bid: np.ndarray  # NaN when null
    arrival_ask: np.ndarray

    def __len__(self) -> int:
        return len(self.client_id)


@dataclass
class Quotes:
    """bbo.parquet: one sorted (ts, mid, bid, ask) series per instrument code."""

    ts: dict[int, np.ndarray] = field(default_factory=dict)
    mid: dict[int, np.ndarray] = field(default_factory=dict)
    rows: int = 0


@dataclass
class Trades:
    """trades.parquet: per instrument, sorted ts and cumulative price*qty and qty."""

    ts: dict[int, np.ndarray] = field(default_factory=dict)
    cum_pq: dict[int, np.ndarray] = field(default_factory=dict)  # len n+1, starts at 0
    cum_q: dict[int, np.ndarray] = field(default_factory=dict)
    rows: int = 0


@dataclass
class Equity:
    ts: np.ndarray
    equity: np.ndarray
    realized: np.ndarray
    unrealized: np.ndarray
    fees: np.ndarray
    last: dict[str, str]  # exact decimal strings of the last row
    first_equity: str | None
    quote_asset: str
    # exact unrealized PnL of the first row: the positions the run started with (0 unless a
    # session resumed a previous one's position at its cost basis, modes/live/resume.py)
    first_unrealized: str = "0"


@dataclass
class Inventory:
    ts: dict[int, np.ndarray]
    position: dict[int, np.ndarray]
    rows: int


@dataclass
class RunData:
    run_dir: Path
    instruments: list[str]
    venues: list[str]
    fills: Fills
    orders: Orders
    quotes: Quotes
    trades: Trades
    equity: Equity | None
    inventory: Inventory | None
    config: dict[str, Any] | None
    instrument_specs: dict[str, Any] | None
    summary: dict[str, Any]
    missing: list[str]  # optional files that were absent
    start_ts: int | None
    end_ts: int | None
    # a dated future's deliveries (venue closes at the delivery price): no trade, so kept out
    # of the fills and orders above (TCA, counts, notional) and counted here
    deliveries: int = 0


#: Low-cardinality string columns, read dictionary-encoded (small and fast at a million rows).
_DICT_COLUMNS = frozenset({"instrument", "venue", "side", "liquidity", "status", "type", "tif", "fee_asset", "quote_asset"})


def _read_table(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> pa.Table:
    """Read only the columns the report uses; ``optional`` ones may be absent."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read Parquet file ({exc})") from None
    names = schema.names
    absent = [c for c in columns if c not in names and c not in optional]
    if absent:
        raise DataError(
            f"{path}: missing column(s) {', '.join(absent)} "
            f"(expected per docs/run_dir.md: {', '.join(columns)})"
        )
    wanted = [c for c in dict.fromkeys(columns + optional) if c in names]
    dictionary = [c for c in wanted if c in _DICT_COLUMNS and pa.types.is_string(schema.field(c).type)]
    try:
        return pq.read_table(path, columns=wanted, read_dictionary=dictionary)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read Parquet file ({exc})") from None


def _instrument_column(path: Path | None) -> pa.ChunkedArray | None:
    """Only the instrument column (to build the instrument universe before the big reads)."""
    if path is None:
        return None
    try:
        names = pq.read_schema(path).names
        if "instrument" not in names:
            return None
        return pq.read_table(path, columns=["instrument"], read_dictionary=["instrument"]).column("instrument")
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read Parquet file ({exc})") from None


def _col(table: pa.Table, name: str) -> pa.ChunkedArray:
    return table.column(name)


def _i8(table: pa.Table, name: str, path: Path) -> np.ndarray:
    """int64 column as numpy, nulls -> NA_TS."""
    if name not in table.column_names:
        return np.full(table.num_rows, NA_TS, dtype=np.int64)
    column = _col(table, name)
    try:
        column = pc.cast(column, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(f"{path}: column {name} must be int64 nanoseconds") from None
    return column.fill_null(NA_TS).to_numpy().astype(np.int64, copy=False)


def _f8(table: pa.Table, name: str, path: Path) -> np.ndarray:
    """Decimal string (or numeric) column as float64 for statistics; nulls -> NaN."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = _none_if_empty(_col(table, name))  # "" means "no value" as much as a null does
    try:
        column = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{path}: column {name} is not numeric ({exc})") from None
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A plain string column (dictionary columns are decoded: use for small tables only)."""
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    column = _col(table, name)
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A string column as stored (maybe dictionary-encoded); all nulls when absent."""
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    return _col(table, name)


def _per_value(column: pa.ChunkedArray, fn: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` (string array -> numpy array of the same length) to every row.

    For a dictionary-encoded chunk ``fn`` runs on the distinct values only (plus one null)
    and the result is spread with the indices: a million rows cost a few distinct values."""
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            values = chunk.dictionary
            if not pa.types.is_string(values.type):
                values = values.cast(pa.string())
            mapped = np.asarray(fn(pa.concat_arrays([values, pa.nulls(1, pa.string())])))
            index = chunk.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
            parts.append(mapped[index])
        else:
            if not pa.types.is_string(chunk.type):
                chunk = chunk.cast(pa.string())
            parts.append(np.asarray(fn(chunk)))
    if not parts:
        return np.asarray(fn(pa.array([], pa.string())))
    return np.concatenate(parts)


def _codes(column: pa.ChunkedArray, universe: list[str] | tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``universe``; -1 for a null or unknown value."""
    value_set = pa.array(list(universe), pa.string())
    return _per_value(
        column, lambda a: pc.index_in(a, value_set=value_set).fill_null(-1).to_numpy(zero_copy_only=False)
    ).astype(np.int32, copy=False)


def _is_in(column: pa.ChunkedArray, values: tuple[str, ...]) -> np.ndarray:
    value_set = pa.array(list(values), pa.string())
    return _per_value(
        column, lambda a: pc.is_in(a, value_set=value_set).fill_null(False).to_numpy(zero_copy_only=False)
    ).astype(bool, copy=False)


def _side(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    code = _codes(column, ("buy", "sell"))
    bad = code < 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {row}: side {column[row].as_py()!r} is not 'buy' or 'sell' "
            f"({int(bad.sum())} bad row(s))"
        )
    return np.where(code == 0, 1, -1).astype(np.int8)


def _exact_fee_sums(column: pa.ChunkedArray) -> tuple[Decimal, Decimal]:
    """(sum of positive fees, -sum of negative fees), exactly."""
    try:
        dec = pc.cast(column, _FEE_TYPE)
        pos = pc.sum(pc.if_else(pc.greater(dec, 0), dec, None)).as_py()
        neg = pc.sum(pc.if_else(pc.less(dec, 0), dec, None)).as_py()
        return (pos or Decimal(0)), -(neg or Decimal(0))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pos_sum, neg_sum = Decimal(0), Decimal(0)
        for value in column.to_pylist():
            if value is None or value == "":
                continue
            try:
                dec_value = Decimal(value)
            except InvalidOperation:
                raise DataError(f"fee {value!r} is not a decimal") from None
            if dec_value > 0:
                pos_sum += dec_value
            else:
                neg_sum += dec_value
        return pos_sum, -neg_sum


def _exact_group_sums(column: pa.ChunkedArray, codes: np.ndarray) -> dict[int, Decimal]:
    """Exact sum of a decimal-string column per integer code (nulls and "" count as 0).

    Why: a float sum of fees that cancel (a fee and a rebate) leaves dust such as 1.4e-12,
    which a table would show as a coloured 0.0000; money is summed exactly."""
    if len(codes) == 0:
        return {}
    try:
        values = pc.cast(_none_if_empty(column), _FEE_TYPE).fill_null(Decimal(0))
        grouped = pa.table({"k": pa.array(codes), "v": values}).group_by("k").aggregate([("v", "sum")])
        return {int(k): v for k, v in zip(grouped["k"].to_pylist(), grouped["v_sum"].to_pylist(), strict=True)}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        sums: dict[int, Decimal] = {}
        for k, value in zip(codes.tolist(), column.to_pylist(), strict=True):
            if value is None or value == "":
                continue
            try:
                sums[k] = sums.get(k, Decimal(0)) + Decimal(value)
            except InvalidOperation:
                raise DataError(f"fee {value!r} is not a decimal") from None
        return sums


def _none_if_empty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return column


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _unique(columns: list[pa.ChunkedArray | None]) -> list[str]:
    """Sorted distinct non-empty strings of several columns (dictionary-aware)."""
    values: set[str] = set()
    for column in columns:
        if column is None:
            continue
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                used = pc.unique(chunk.indices.drop_null())
                distinct = chunk.dictionary.take(used)
            else:
                distinct = pc.unique(chunk.drop_null())
            values.update(str(v) for v in distinct.to_pylist() if v)
    return sorted(values)


def _split_sorted(codes: np.ndarray, ts: np.ndarray, *values: np.ndarray) -> dict[int, tuple[np.ndarray, ...]]:
    """Group rows by code, each group sorted by ts (stable)."""
    order = np.lexsort((ts, codes))
    codes_sorted = codes[order]
    out: dict[int, tuple[np.ndarray, ...]] = {}
    if len(order) == 0:
        return out
    bounds = np.flatnonzero(np.diff(codes_sorted)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(order)]))
    for start, end in zip(starts, ends, strict=True):
        code = int(codes_sorted[start])
        if code < 0:
            continue
        rows = order[start:end]
        out[code] = (ts[rows],) + tuple(v[rows] for v in values)
    return out


def _venue_column(path: Path) -> pa.ChunkedArray | None:
    if "venue" not in pq.read_schema(path).names:
        return None
    return pq.read_table(path, columns=["venue"], read_dictionary=["venue"]).column("venue")


def _venue_codes(table: pa.Table, instrument_codes: np.ndarray, instruments: list[str], venues: list[str]) -> np.ndarray:
    """Venue column when present, else the part of the instrument id before ':'."""
    if "venue" in table.column_names:
        return _codes(_col(table, "venue"), venues)
    by_instrument = np.array([venues.index(i.partition(":")[0]) if i.partition(":")[0] in venues else -1
                              for i in instruments] + [-1], dtype=np.int32)
    return by_instrument[instrument_codes]  # code -1 picks the trailing -1


def _delivery_ids(fills_path: Path, orders_path: Path) -> pa.Array:
    """Client ids of a dated future's deliveries: fills with liquidity "delivery", and (run
    directories written before that liquidity existed) orders with reason "delivery". A
    delivery is the venue's settlement of a position, not a trade (docs/derivatives.md)."""
    fills = _read_table(fills_path, ("client_id", "liquidity"))
    ids = [pc.filter(_strings(fills, "client_id"), pc.equal(_strings(fills, "liquidity"), "delivery"))]
    if "reason" in pq.read_schema(orders_path).names:
        orders = _read_table(orders_path, ("client_id", "reason"))
        ids.append(pc.filter(_strings(orders, "client_id"), pc.equal(_strings(orders, "reason"), "delivery")))
    return pc.unique(pa.chunked_array([c for ids_ in ids for c in ids_.chunks], pa.string()).combine_chunks())


def _without(table: pa.Table, excluded: pa.Array | None) -> pa.Table:
    """The rows whose client_id is not in `excluded`."""
    if excluded is None or not len(excluded) or not table.num_rows:
        return table
    return table.filter(pc.invert(pc.is_in(_strings(table, "client_id"), value_set=excluded).fill_null(False)))


def _load_orders(path: Path, instruments: list[str], venues: list[str], excluded: pa.Array | None = None) -> Orders:
    t = _without(_read_table(path, ORDER_COLUMNS, ORDER_OPTIONAL), excluded)
    status_column = _col(t, "status")
    # ccxt spells it "canceled"; the contract says "cancelled": accept both
    status = _codes(status_column, (*STATUSES, "canceled"))
    status[status == len(STATUSES)] = STATUS_CODE["cancelled"]
    if (status < 0).any():
        row = int(np.flatnonzero(status < 0)[0])
        raise DataError(f"{path}: row {row}: unknown status {status_column[row].as_py()!r}")
    instrument = _codes(_col(t, "instrument"), instruments)
    return Orders(
        client_id=_strings(t, "client_id").combine_chunks(),
        parent_id=_strings(t, "parent_id").combine_chunks(),
        instrument=instrument,
        venue=_venue_codes(t, instrument, instruments, venues),
        side=_side(_col(t, "side"), path),
        is_market=_is_in(_column(t, "type"), ("market",)),
        is_ioc=_is_in(_column(t, "tif"), ("IOC", "FOK")),
        status=status.astype(np.int8),
        qty=_f8(t, "qty", path),
        filled_qty=np.nan_to_num(_f8(t, "filled_qty", path)),
        avg_fill_price=_f8(t, "avg_fill_price", path),
        fees=np.nan_to_num(_f8(t, "fees", path)),
        created_ts=_i8(t, "created_ts", path),
        trigger_ts=_i8(t, "trigger_ts", path),
        ack_ts=_i8(t, "ack_ts", path),
        first_fill_ts=_i8(t, "first_fill_ts", path),
        last_fill_ts=_i8(t, "last_fill_ts", path),
        cancel_req_ts=_i8(t, "cancel_req_ts", path),
        done_ts=_i8(t, "done_ts", path),
        arrival_bid=_f8(t, "arrival_bid", path),
        arrival_ask=_f8(t, "arrival_ask", path),
    )


def _load_fills(path: Path, instruments: list[str], venues: list[str], orders: Orders,
                excluded: pa.Array | None = None) -> Fills:
    t = _without(_read_table(path, FILL_COLUMNS, FILL_OPTIONAL), excluded)
    fee_column = _strings(t, "fee")
    fees_exact, rebates_exact = _exact_fee_sums(fee_column) if len(fee_column) else (Decimal(0), Decimal(0))
    if t.num_rows and len(orders):
        order = pc.index_in(_strings(t, "client_id"), value_set=orders.client_id).fill_null(-1).to_numpy()
    else:
        order = np.full(t.num_rows, -1)
    instrument = _codes(_col(t, "instrument"), instruments)
    venue = _venue_codes(t, instrument, instruments, venues)
    return Fills(
        ts=_i8(t, "ts", path),
        exch_ts=_i8(t, "exch_ts", path),
        instrument=instrument,
        venue=venue,
        side=_side(_col(t, "side"), path),
        price=_f8(t, "price", path),
        qty=_f8(t, "qty", path),
        fee=np.nan_to_num(_f8(t, "fee", path)),
        maker=_is_in(_col(t, "liquidity"), ("maker",)),
        order=order.astype(np.int64, copy=False),
        fee_assets=tuple(_unique([_column(t, "fee_asset")])),
        fees_exact=fees_exact,
        rebates_exact=rebates_exact,
        fees_by_venue=_exact_group_sums(fee_column, venue),
        fees_by_instrument=_exact_group_sums(fee_column, instrument),
    )


def _contracts_in_base_units(fills: Fills, orders: Orders, instruments: list[str], specs: dict[str, Any]) -> None:
    """Contract quantities (contracts, docs/derivatives.md) become base units, so that
    price x qty is the quote notional as for spot: linear x contract_size; inverse x
    contract_size / price (the fill's price; an order's average fill price, else its arrival
    mid). Statistics only (floats); the exact figures stay in summary.json."""
    if not any(isinstance(s, dict) and s.get("type", "spot") != "spot" for s in specs.values()):
        return
    # the arrays may be read-only views of Arrow buffers: work on copies
    fills.qty = fills.qty.copy()
    orders.qty, orders.filled_qty = orders.qty.copy(), orders.filled_qty.copy()
    for code, inst_id in enumerate(instruments):
        spec = specs.get(inst_id)
        if not isinstance(spec, dict) or spec.get("type", "spot") == "spot":
            continue
        size = float(spec["contract_size"])
        inverse = spec.get("linear") == "false"
        mine = fills.instrument == code
        fills.qty[mine] *= size / fills.price[mine] if inverse else size
        mine = orders.instrument == code
        if inverse:
            mid = (orders.arrival_bid[mine] + orders.arrival_ask[mine]) / 2
            ref = np.where(np.isfinite(orders.avg_fill_price[mine]), orders.avg_fill_price[mine], mid)
            factor = size / ref
        else:
            factor = np.full(int(mine.sum()), size)
        orders.qty[mine] *= factor
        orders.filled_qty[mine] *= factor


def _load_quotes(path: Path, instruments: list[str]) -> Quotes:
    t = _read_table(path, BBO_COLUMNS)
    quotes = Quotes(rows=t.num_rows)
    if t.num_rows:
        mid = (_f8(t, "bid", path) + _f8(t, "ask", path)) / 2.0
        groups = _split_sorted(_codes(_col(t, "instrument"), instruments), _i8(t, "ts", path), mid)
        for code, (ts_g, mid_g) in groups.items():
            quotes.ts[code] = ts_g
            quotes.mid[code] = mid_g
    return quotes


def _load_trades(path: Path, instruments: list[str]) -> Trades:
    t = _read_table(path, TRADE_COLUMNS)
    trades = Trades(rows=t.num_rows)
    if t.num_rows:
        price, qty = _f8(t, "price", path), _f8(t, "qty", path)
        groups = _split_sorted(_codes(_col(t, "instrument"), instruments), _i8(t, "ts", path), price * qty, qty)
        for code, (ts_g, pq_g, q_g) in groups.items():
            trades.ts[code] = ts_g
            trades.cum_pq[code] = np.concatenate(([0.0], np.cumsum(pq_g)))
            trades.cum_q[code] = np.concatenate(([0.0], np.cumsum(q_g)))
    return trades


def _load_equity(path: Path) -> Equity | None:
    t = _read_table(path, EQUITY_COLUMNS, optional=("quote_asset",))
    if not t.num_rows:
        return None
    ts = _i8(t, "ts", path)
    order = np.argsort(ts, kind="stable")
    last_row, first_row = int(order[-1]), int(order[0])
    last = {name: str(_col(t, name)[last_row].as_py()) for name in ("equity", "realized_pnl", "unrealized_pnl", "fees")}
    quote_asset = ""
    if "quote_asset" in t.column_names:
        quote_asset = str(_col(t, "quote_asset")[last_row].as_py() or "")
    return Equity(
        ts=ts[order],
        equity=_f8(t, "equity", path)[order],
        realized=_f8(t, "realized_pnl", path)[order],
        unrealized=_f8(t, "unrealized_pnl", path)[order],
        fees=_f8(t, "fees", path)[order],
        last=last,
        first_equity=str(_col(t, "equity")[first_row].as_py()),
        quote_asset=quote_asset,
        first_unrealized=str(_col(t, "unrealized_pnl")[first_row].as_py()),
    )


def _load_inventory(path: Path, instruments: list[str]) -> Inventory | None:
    t = _read_table(path, INVENTORY_COLUMNS)
    if not t.num_rows:
        return None
    groups = _split_sorted(_codes(_col(t, "instrument"), instruments), _i8(t, "ts", path), _f8(t, "position", path))
    return Inventory(ts={c: g[0] for c, g in groups.items()}, position={c: g[1] for c, g in groups.items()}, rows=t.num_rows)


def load_run(run_dir: Path) -> RunData:
    """Read every file of a run directory; raises DataError naming what is wrong."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory {run_dir} does not exist")
    fills_path = run_dir / "fills.parquet"
    orders_path = run_dir / "orders.parquet"
    for required in (fills_path, orders_path):
        if (problem := file_problem(required)) is not None:
            raise DataError(f"{required}: file {problem} (a run directory needs it, see docs/run_dir.md)")
    missing: list[str] = []

    def optional(name: str) -> Path | None:
        path = run_dir / name
        if path.is_file():
            return path
        missing.append(name)
        return None

    bbo_path = optional("bbo.parquet")
    trades_path = optional("trades.parquet")
    equity_path = optional("equity.parquet")
    inventory_path = optional("inventory.parquet")
    config_path = optional("config.json")
    config = _load_json(config_path) if config_path else None
    specs_path = optional("instruments.json")
    specs = _load_json(specs_path) if specs_path else None
    summary_path = run_dir / "summary.json"
    summary = _load_json(summary_path) if summary_path.is_file() else {}
    if not isinstance(summary, dict):
        raise DataError(f"{summary_path}: expected a JSON object")

    # Universes first (instrument columns only), then one table at a time, each freed
    # once it has become numpy arrays, so a million-row run stays small in memory.
    instruments = _unique([_instrument_column(p) for p in (fills_path, orders_path, bbo_path, trades_path, inventory_path)])
    if not instruments and isinstance(summary.get("run"), dict):
        instruments = sorted(str(i) for i in summary["run"].get("instruments", []) or [])
    venue_names = _unique([_venue_column(p) for p in (fills_path, orders_path)])
    venues = sorted(set(venue_names) | {i.partition(":")[0] for i in instruments if ":" in i})

    deliveries = _delivery_ids(fills_path, orders_path)
    orders = _load_orders(orders_path, instruments, venues, deliveries)
    fills = _load_fills(fills_path, instruments, venues, orders, deliveries)
    if isinstance(specs, dict):
        _contracts_in_base_units(fills, orders, instruments, specs)
    quotes = _load_quotes(bbo_path, instruments) if bbo_path else Quotes()
    trades = _load_trades(trades_path, instruments) if trades_path else Trades()
    equity = _load_equity(equity_path) if equity_path else None
    inventory = _load_inventory(inventory_path, instruments) if inventory_path else None

    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    start_ts = run.get("start_ts") or None
    end_ts = run.get("end_ts") or None
    if start_ts is None or end_ts is None:
        candidates_lo, candidates_hi = [], []
        for arr in [fills.ts, orders.created_ts, *quotes.ts.values(), *trades.ts.values()]:
            valid = arr[arr != NA_TS]
            if len(valid):
                candidates_lo.append(int(valid.min()))
                candidates_hi.append(int(valid.max()))
        if equity is not None:
            candidates_lo.append(int(equity.ts[0]))
            candidates_hi.append(int(equity.ts[-1]))
        start_ts = start_ts or (min(candidates_lo) if candidates_lo else None)
        end_ts = end_ts or (max(candidates_hi) if candidates_hi else None)

    return RunData(
        run_dir=run_dir,
        instruments=instruments,
        venues=venues,
        fills=fills,
        orders=orders,
        quotes=quotes,
        trades=trades,
        equity=equity,
        inventory=inventory,
        config=config if isinstance(config, dict) else None,
        instrument_specs=specs if isinstance(specs, dict) else None,
        summary=summary,
        missing=missing,
        start_ts=int(start_ts) if start_ts is not None else None,
        end_ts=int(end_ts) if end_ts is not None else None,
        deliveries=len(deliveries),
    )
