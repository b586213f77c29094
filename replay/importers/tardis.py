"""Tardis.dev CSV exports (plain or .gz): `incremental_book_L2` and `trades`.

incremental_book_L2: `exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount`
(times in microseconds). A run of `is_snapshot=true` rows is a snapshot: it becomes
SNAPSHOT_BEGIN, the levels as BOOK_DELTA, SNAPSHOT_END (a run after other rows is a new
snapshot, e.g. after a reconnect, and replaces the book). `amount` 0 removes the level.

trades: `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`; side is the
aggressor (`buy`/`sell`; `unknown` becomes side 0). Numeric ids go to `order_id`;
non-numeric ids are hashed (stable blake2b) so duplicate detection still works.

derivative_ticker: `exchange,symbol,timestamp,local_timestamp,funding_timestamp,
funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price`: each
row with a mark price is a MARK_PRICE row; when `funding_timestamp` moves on, the funding
that settled at the previous one becomes a FUNDING_RATE row (exch_ts = that funding time,
seen at the row's local time) at the `funding_rate` and `mark_price` of the last row
before it (replay/importers/contracts.py; docs/derivatives.md).

The kind of file is told by its header. `exchange` maps to a venue (binance-futures ->
binance derivatives, okex -> okx, ...; see TARDIS_VENUES) and `symbol` to an instrument
through `venue_symbol`, or `--instrument` for a single-instrument import.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from engine.errors import DataError
from engine.types import EVENT_DTYPE, EventKind
from replay.importers.common import (
    TARDIS_VENUES,
    Resolver,
    build_rows,
    read_csv_table,
    report_bad_values,
)
from replay.validate import Mode, Report, Rows

BOOK_COLUMNS = [
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "is_snapshot",
    "side",
    "price",
    "amount",
]
TICKER_COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp",
                  "funding_rate", "mark_price"]
# Tardis exchanges whose contracts have their own ccxt venue ids (tried before TARDIS_VENUES')
CONTRACT_VENUES = {"binance-futures": "binanceusdm", "binance-delivery": "binancecoinm"}
TRADE_COLUMNS = [
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
]


def _read(path: Path, report: Report, mode: Mode) -> tuple[pa.Table, np.ndarray]:
    return read_csv_table(
        path,
        pacsv.ReadOptions(block_size=1 << 24),
        pacsv.ConvertOptions(
            column_types={
                "price": pa.string(),
                "amount": pa.string(),
                "id": pa.string(),
                "is_snapshot": pa.string(),
                "side": pa.string(),
                "timestamp": pa.string(),
                "local_timestamp": pa.string(),
                "funding_timestamp": pa.string(),
                "funding_rate": pa.string(),
                "mark_price": pa.string(),
            },
            strings_can_be_null=False,
        ),
        report,
        mode,
        "Tardis CSV file",
    )


def _micros(
    col: pa.ChunkedArray, what: str, path: Path, report: Report, lines: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Integer microsecond text -> ns, plus a bad-row mask."""
    text = col.combine_chunks()
    ok = pc.match_substring_regex(text, r"^\d+$").to_numpy(zero_copy_only=False)
    safe = pc.if_else(pa.array(ok), text, pa.scalar("0"))
    values = pc.cast(safe, pa.int64()).to_numpy() * 1000
    bad = ~ok
    report_bad_values(report, path, lines, bad,
                      lambda i: f"{what} {text[i].as_py()!r} is not integer microseconds")
    return values, bad


def _trade_ids(col: pa.ChunkedArray) -> np.ndarray:
    text = col.combine_chunks()
    numeric = pc.match_substring_regex(text, r"^\d{1,19}$").to_numpy(zero_copy_only=False)
    out = np.zeros(len(text), dtype=np.uint64)
    if numeric.all():
        return pc.cast(text, pa.uint64()).to_numpy()
    values = text.to_pylist()
    for i, v in enumerate(values):
        if numeric[i] and int(v) < 2**64:
            out[i] = int(v)
        elif v:
            out[i] = int.from_bytes(
                hashlib.blake2b(v.encode(), digest_size=8).digest(), "little"
            ) | (1 << 63)
    return out


def parse(paths: list[Path], resolver: Resolver, report: Report, mode: Mode = Mode.STRICT) -> list[Rows]:
    files = [str(p) for p in paths]
    out: list[Rows] = []
    for fi, path in enumerate(paths):
        table, lines = _read(path, report, mode)
        names = table.column_names
        if set(BOOK_COLUMNS) <= set(names):
            kind = "book"
        elif set(TRADE_COLUMNS) <= set(names):
            kind = "trades"
        elif set(TICKER_COLUMNS) <= set(names):
            kind = "ticker"
        else:
            raise DataError(
                f"{path}: not a Tardis incremental_book_L2, trades or derivative_ticker CSV (header {','.join(names[:8])})"
            )
        n = table.num_rows
        if n == 0:
            continue
        # one instrument per (exchange, symbol) combination in the file
        key = pc.binary_join_element_wise(table.column("exchange"), table.column("symbol"), "\x00")
        uniq = pc.unique(key).to_pylist()
        for combo in sorted(uniq):
            exchange, _z, symbol = combo.partition("\x00")
            mask = pc.equal(key, pa.scalar(combo)).to_numpy(zero_copy_only=False)
            venue, derivative = TARDIS_VENUES.get(exchange, (exchange, None))
            inst = None
            if exchange in CONTRACT_VENUES:
                inst = resolver.resolve(CONTRACT_VENUES[exchange], symbol, True)
            inst = inst or resolver.resolve(venue, symbol, derivative)
            sub = table.filter(pa.array(mask)) if len(uniq) > 1 else table
            sub_lines = lines[mask] if len(uniq) > 1 else lines
            if inst is None:
                report.add(
                    "unknown_symbol",
                    f"{path}:{int(sub_lines[0])}",
                    f"tardis {exchange} {symbol} has no instrument (venue {venue}, venue_symbol {symbol}); {sub.num_rows} rows",
                    sub.num_rows,
                )
                continue
            exch, bad_e = _micros(sub.column("timestamp"), "timestamp", path, report, sub_lines)
            local, bad_l = _micros(
                sub.column("local_timestamp"), "local_timestamp", path, report, sub_lines
            )
            if kind == "ticker":
                out.append(_ticker_rows(inst, sub, exch, local, sub_lines, fi, files, path, report, bad_e | bad_l))
                continue
            side_text = pc.utf8_lower(sub.column("side").combine_chunks())
            if kind == "book":
                rows = _book_rows(
                    inst,
                    sub,
                    exch,
                    local,
                    side_text,
                    sub_lines,
                    fi,
                    files,
                    path,
                    report,
                    bad_e | bad_l,
                )
            else:
                rows = _trade_rows(
                    inst, sub, exch, local, side_text, sub_lines, fi, files, report, bad_e | bad_l
                )
            out.append(rows)
    return out


def _book_rows(inst, sub, exch, local, side_text, lines, fi, files, path, report, bad_ts) -> Rows:
    n = sub.num_rows
    side = np.zeros(n, dtype=np.int8)
    bid = pc.equal(side_text, "bid").to_numpy(zero_copy_only=False)
    ask = pc.equal(side_text, "ask").to_numpy(zero_copy_only=False)
    side[bid] = 1
    side[ask] = -1
    unknown = ~(bid | ask)
    report_bad_values(report, path, lines, unknown,
                      lambda i: f"side {side_text[i].as_py()!r} is neither bid nor ask")
    snap = pc.utf8_lower(sub.column("is_snapshot").combine_chunks())
    is_snap = pc.equal(snap, "true").to_numpy(zero_copy_only=False)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["exch_ts"] = exch
    ev["local_ts"] = local
    ev["kind"] = EventKind.BOOK_DELTA.value
    ev["side"] = side
    rows, _map = build_rows(
        inst,
        ev,
        np.full(n, fi, np.uint16),
        lines,
        files,
        sub.column("price").combine_chunks(),
        sub.column("amount").combine_chunks(),
        report,
    )
    keep = ~(unknown | bad_ts)
    # _map gives kept positions of rows that parsed; also drop unknown side / bad stamps
    valid = _map >= 0
    drop = valid & ~keep
    if drop.any():
        mask = np.ones(len(rows.events), dtype=np.bool_)
        mask[_map[drop]] = False
        rows = rows.take(mask)
        is_snap = is_snap[valid][mask]
    else:
        is_snap = is_snap[valid]
    return _wrap_snapshots(rows, is_snap)


def _wrap_snapshots(rows: Rows, is_snap: np.ndarray) -> Rows:
    """Insert SNAPSHOT_BEGIN before each run of snapshot rows and SNAPSHOT_END after it."""
    if not is_snap.any():
        return rows
    prev = np.r_[False, is_snap[:-1]]
    nxt = np.r_[is_snap[1:], False]
    starts = np.flatnonzero(is_snap & ~prev)
    ends = np.flatnonzero(is_snap & ~nxt)  # last row of each run
    ev = rows.events
    begin = np.zeros(len(starts), dtype=EVENT_DTYPE)
    begin["kind"] = EventKind.SNAPSHOT_BEGIN.value
    begin["exch_ts"] = ev["exch_ts"][starts]
    begin["local_ts"] = ev["local_ts"][starts]
    end = np.zeros(len(ends), dtype=EVENT_DTYPE)
    end["kind"] = EventKind.SNAPSHOT_END.value
    end["exch_ts"] = ev["exch_ts"][ends]
    end["local_ts"] = ev["local_ts"][ends]
    pos = np.r_[starts, ends + 1]
    extra = np.concatenate([begin, end])
    src = np.r_[starts, ends]
    order = np.argsort(pos, kind="stable")
    new_ev = np.insert(ev, pos[order], extra[order])
    new_file = np.insert(rows.file, pos[order], rows.file[src[order]])
    new_line = np.insert(rows.line, pos[order], rows.line[src[order]])
    return Rows(rows.inst, new_ev, new_file, new_line, rows.files)


def _trade_rows(inst, sub, exch, local, side_text, lines, fi, files, report, bad_ts) -> Rows:
    n = sub.num_rows
    side = np.zeros(n, dtype=np.int8)
    side[pc.equal(side_text, "buy").to_numpy(zero_copy_only=False)] = 1
    side[pc.equal(side_text, "sell").to_numpy(zero_copy_only=False)] = -1
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["exch_ts"] = exch
    ev["local_ts"] = local
    ev["kind"] = EventKind.TRADE.value
    ev["side"] = side
    ev["order_id"] = _trade_ids(sub.column("id"))
    rows, _map = build_rows(
        inst,
        ev,
        np.full(n, fi, np.uint16),
        lines,
        files,
        sub.column("price").combine_chunks(),
        sub.column("amount").combine_chunks(),
        report,
    )
    if bad_ts.any():
        valid = _map >= 0
        drop = valid & bad_ts
        mask = np.ones(len(rows.events), dtype=np.bool_)
        mask[_map[drop]] = False
        rows = rows.take(mask)
    return rows


def _ticker_rows(inst, sub, exch, local, lines, fi, files, path, report, bad_ts) -> Rows:
    """derivative_ticker -> MARK_PRICE and FUNDING_RATE rows (module doc)."""
    from replay.importers.common import RowBuilder
    from replay.importers.contracts import add_funding, add_mark

    marks = sub.column("mark_price").to_pylist()
    rates = sub.column("funding_rate").to_pylist()
    times = sub.column("funding_timestamp").to_pylist()
    b = RowBuilder(inst)
    due: tuple[int, str, str | None] | None = None  # (funding time ns, rate, mark)
    for i in range(len(marks)):
        if bad_ts[i]:
            continue
        t_text = times[i]
        funding_at = int(t_text) * 1000 if t_text and t_text.isdigit() else None
        if due is not None and (funding_at is None or funding_at > due[0]) and int(exch[i]) >= due[0]:
            add_funding(b, due[0], int(local[i]), due[1], due[2], fi, int(lines[i]))
            due = None
        if marks[i]:
            add_mark(b, int(exch[i]), int(local[i]), marks[i], fi, int(lines[i]))
        if funding_at is not None and rates[i]:
            due = (funding_at, rates[i], marks[i] or None)
    rows, _kmap = b.build(files, report)
    return rows
