"""Binance public data dumps (data.binance.vision): trades, aggTrades, bookTicker CSVs.

Files may be .csv, .csv.gz or the original single-member .zip, with or without the
header line (spot dumps have none, futures dumps do). Columns:

- trades:     id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
- aggTrades:  agg_trade_id, price, quantity, first_trade_id, last_trade_id,
              transact_time, is_buyer_maker[, is_best_match]
- bookTicker: update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty,
              transaction_time, event_time
- fundingRate (futures, monthly): calc_time, funding_interval_hours, last_funding_rate
              -> FUNDING_RATE rows settled at calc_time (the mark in force is used);
- markPriceKlines (futures, `SYMBOL-1m-DATE.csv` in the dumps' markPriceKlines folder):
              open_time, open, high, low, close, volume, close_time, ... -> one MARK_PRICE
              row per kline, the close, stamped at close_time: a kline's close is not
              known before the kline closes, so no backtest sees a mark early (trade,
              index and premium-index klines have the same file names: refused, by a
              non-zero volume or by their dump folder).

The kind comes from the Binance file name (`BTCUSDT-trades-2024-08-08.csv`), else from
the header, else from the column count (8 = aggTrades). The symbol comes from the file
name prefix (or `--instrument`). Times are milliseconds, or microseconds (spot dumps
since 2025), told apart by magnitude. The dumps have no receive stamps, so
`local_ts = exch_ts`; feed latency is the latency model's job in a backtest.

Trades: side = aggressor (`is_buyer_maker` true -> the seller aggressed -> -1),
`order_id` = (agg) trade id. bookTicker becomes a one-level book: at each update the
old best level is deleted when the price changed, then the new level is set.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from engine.errors import DataError, file_problem
from engine.types import EVENT_DTYPE, EventKind
from replay.importers.common import (
    CORRUPT_ERRORS,
    Resolver,
    build_rows,
    open_binary,
    read_csv_table,
    readable_prefix,
    report_bad_values,
)
from replay.validate import Mode, Report, Rows

LAYOUTS = {
    "trades": ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"],
    "aggTrades": [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ],
    "bookTicker": [
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ],
    "fundingRate": ["calc_time", "funding_interval_hours", "last_funding_rate"],
    "markPriceKlines": ["open_time", "open", "high", "low", "close", "volume", "close_time",
                        "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"],
}
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>trades|aggTrades|bookTicker|fundingRate|\d+[smhdwM])-",
                   re.IGNORECASE)
_KLINE = re.compile(r"^\d+[smhdwM]$")


def _sniff(path: Path) -> tuple[bool, list[str]]:
    try:
        with open_binary(path) as fh:
            first = fh.readline()
    except CORRUPT_ERRORS:  # reported by the read itself (read_csv_table)
        first = readable_prefix(path)[0].partition(b"\n")[0]
    fields = [f.strip() for f in first.decode("utf-8", "replace").strip().split(",")]
    has_header = bool(fields) and not re.match(r"^-?\d", fields[0] or "0")
    return has_header, fields


#: data.binance.vision folders of klines that share markPriceKlines' file names but are not
#: marks: trade klines, the index price, the premium index (a close of ~0.0001)
_NOT_MARK_KLINES = ("klines", "indexPriceKlines", "premiumIndexKlines")


def _kind_of(path: Path, has_header: bool, fields: list[str]) -> str:
    m = _NAME.match(path.name)
    if m:
        if _KLINE.match(m.group("kind")):
            # the nearest kline folder tells (dumps: .../markPriceKlines/BTCUSDT/1m/FILE)
            folder = next((f for f in reversed(path.resolve().parts)
                           if f in (*_NOT_MARK_KLINES, "markPriceKlines")), None)
            if folder in _NOT_MARK_KLINES:
                raise DataError(f"{path}: in a {folder} folder, not markPriceKlines: only mark-price klines are "
                                "imported (as MARK_PRICE rows; docs/derivatives.md)")
            return "markPriceKlines"
        return {"trades": "trades", "aggtrades": "aggTrades", "bookticker": "bookTicker",
                "fundingrate": "fundingRate"}[m.group("kind").lower()]
    if has_header:
        names = set(fields)
        if "agg_trade_id" in names:
            return "aggTrades"
        if "best_bid_price" in names:
            return "bookTicker"
        if "quote_qty" in names:
            return "trades"
        if "last_funding_rate" in names:
            return "fundingRate"
    elif len(fields) == 8:
        return "aggTrades"
    raise DataError(
        f"{path}: cannot tell trades / aggTrades / bookTicker: keep Binance's file name "
        "(SYMBOL-trades-DATE.csv) or the header line"
    )


def _read(path: Path, kind: str, has_header: bool, ncols: int, report: Report,
          mode: Mode) -> tuple[pa.Table, np.ndarray]:
    names = LAYOUTS[kind][:ncols]
    if ncols > len(LAYOUTS[kind]):
        raise DataError(
            f"{path}: {ncols} columns, a Binance {kind} file has at most {len(LAYOUTS[kind])}"
        )
    return read_csv_table(
        path,
        pacsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=1 << 24),
        pacsv.ConvertOptions(column_types={c: pa.string() for c in names}, strings_can_be_null=False),
        report,
        mode,
        f"{kind} CSV",
    )


def _ints(
    text: pa.Array, what: str, path: Path, lines: np.ndarray, report: Report
) -> tuple[np.ndarray, np.ndarray]:
    ok = pc.match_substring_regex(text, r"^\d{1,19}$").to_numpy(zero_copy_only=False)
    safe = pc.if_else(pa.array(ok), text, pa.scalar("0"))
    values = pc.cast(safe, pa.int64()).to_numpy()
    report_bad_values(report, path, lines, ~ok, lambda i: f"{what} {text[i].as_py()!r} is not an integer")
    return values, ~ok


def _to_ns(values: np.ndarray) -> np.ndarray:
    """ms or us since epoch -> ns (us when any value is beyond year 33658 in ms)."""
    if len(values) and values.max() >= 10**15:
        return values * 1_000
    return values * 1_000_000


def _bools(text: pa.Array) -> np.ndarray:
    return pc.equal(pc.utf8_lower(text), "true").to_numpy(zero_copy_only=False)


def parse(paths: list[Path], resolver: Resolver, report: Report, mode: Mode = Mode.STRICT) -> list[Rows]:
    files = [str(p) for p in paths]
    out: list[Rows] = []
    for fi, path in enumerate(paths):
        if (problem := file_problem(path)) is not None:
            raise DataError(f"input file {problem}: {path}")
        has_header, fields = _sniff(path)
        kind = _kind_of(path, has_header, fields)
        m = _NAME.match(path.name)
        symbol = m.group("symbol").upper() if m else None
        inst = (
            _resolve(resolver, symbol or "", kind, path)
            if (symbol or resolver.forced)
            else None
        )
        if inst is None:
            if symbol is None:
                raise DataError(f"{path}: no symbol in the file name; pass --instrument ID")
            report.add(
                "unknown_symbol",
                f"{path}:1",
                f"binance symbol {symbol} has no instrument (venue_symbol) in the instruments file",
            )
            continue
        table, lines = _read(path, kind, has_header, len(fields), report, mode)
        n = table.num_rows
        if n == 0:
            continue
        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        if kind in ("trades", "aggTrades"):
            id_col = "id" if kind == "trades" else "agg_trade_id"
            ts_col = "time" if kind == "trades" else "transact_time"
            qty_col = "qty" if kind == "trades" else "quantity"
            ids, bad_id = _ints(cols[id_col], id_col, path, lines, report)
            ts, bad_ts = _ints(cols[ts_col], ts_col, path, lines, report)
            ev = np.zeros(n, dtype=EVENT_DTYPE)
            ev["exch_ts"] = _to_ns(ts)
            ev["local_ts"] = ev["exch_ts"]
            ev["kind"] = EventKind.TRADE.value
            ev["side"] = np.where(_bools(cols["is_buyer_maker"]), -1, 1)
            ev["order_id"] = ids.astype(np.uint64)
            rows, kmap = build_rows(
                inst,
                ev,
                np.full(n, fi, np.uint16),
                lines,
                files,
                cols["price"],
                cols[qty_col],
                report,
            )
            out.append(_drop(rows, kmap, bad_id | bad_ts))
        elif kind == "bookTicker":
            out.append(_book_ticker(inst, cols, path, lines, fi, files, report))
        else:
            out.append(_contract_rows(inst, kind, cols, path, lines, fi, files, report))
    return out


#: data.binance.vision's folders: data/spot/..., data/futures/um/... (USDⓈ-M), data/futures/cm/... (COIN-M)
_DUMP_VENUES = {("futures", "um"): ("binanceusdm",), ("futures", "cm"): ("binancecoinm",)}


def _resolve(resolver: Resolver, symbol: str, kind: str, path: Path | None = None):
    """The dump's folder names its market when the file sits in data.binance.vision's
    layout (`futures/um` -> binanceusdm, `futures/cm` -> binancecoinm, `spot` -> binance):
    BTCUSDT is both a spot pair and a USDⓈ-M perpetual, so a futures trades dump must not
    become spot rows. Elsewhere, contract files (bookTicker, fundingRate, mark klines) are
    looked up on the derivatives venues before `binance`, trades on `binance` first and
    then on the derivatives venues (BTCUSD_PERP is COIN-M only)."""
    contract = kind in ("bookTicker", "fundingRate", "markPriceKlines")
    parts = path.resolve().parts if path is not None else ()
    pairs = set(zip(parts, parts[1:], strict=False))
    venues = next((v for key, v in _DUMP_VENUES.items() if key in pairs), None)
    if venues is None and "spot" in parts[-6:]:
        venues = ("binance",)
    if venues is None:
        derivatives = ("binanceusdm", "binancecoinm")
        venues = (*derivatives, "binance") if contract else ("binance", *derivatives)
    for venue in venues:
        inst = resolver.resolve(venue, symbol, True if contract or venue != "binance" else None)
        if inst is not None:
            return inst
    return None


def _contract_rows(inst, kind, cols, path, lines, fi, files, report) -> Rows:
    """fundingRate -> FUNDING_RATE rows; markPriceKlines -> MARK_PRICE rows (module doc)."""
    from replay.importers.common import RowBuilder
    from replay.importers.contracts import add_funding, add_mark

    ts_col, value_col = ("calc_time", "last_funding_rate") if kind == "fundingRate" else ("close_time", "close")
    if kind == "markPriceKlines" and "volume" in cols:
        # a mark-price kline has no volume (Binance writes 0); trade klines have the same
        # file names and their close is a last trade price, not a mark
        traded = [i for i, v in enumerate(cols["volume"].to_pylist()) if v is not None and _nonzero(v)]
        if traded:
            i = traded[0]
            raise DataError(f"{path}:{int(lines[i])}: volume {cols['volume'][i].as_py()}: a trade kline, not "
                            "markPriceKlines (whose volume is 0): only mark-price klines are imported")
    ts, bad_ts = _ints(cols[ts_col], ts_col, path, lines, report)
    exch = _to_ns(ts)
    values = cols[value_col].to_pylist()
    b = RowBuilder(inst)
    bad = 0
    for i in range(len(values)):
        if bad_ts[i]:
            continue
        at = int(exch[i])
        ok = (add_funding(b, at, at, values[i], None, fi, int(lines[i])) if kind == "fundingRate"
              else add_mark(b, at, at, values[i], fi, int(lines[i])))
        bad += not ok
    if bad:
        report.add("bad_value", f"{path}", f"{bad} {kind} rows without a valid {value_col}", bad)
    rows, _kmap = b.build(files, report)
    return rows


def _nonzero(text: str) -> bool:
    try:
        return Decimal(text) != 0
    except InvalidOperation:
        return False  # an unreadable volume says nothing: the close is checked on its own


def _drop(rows: Rows, kmap: np.ndarray, bad: np.ndarray) -> Rows:
    drop = (kmap >= 0) & bad
    if not drop.any():
        return rows
    mask = np.ones(len(rows.events), dtype=np.bool_)
    mask[kmap[drop]] = False
    return rows.take(mask)


def _book_ticker(inst, cols, path, lines, fi, files, report) -> Rows:
    n = len(cols["update_id"])
    ts, bad_ts = _ints(cols["transaction_time"], "transaction_time", path, lines, report)
    exch = _to_ns(ts)
    # parse the four value columns first (exact), then derive level changes
    base = np.zeros(n, dtype=EVENT_DTYPE)
    parsed = {}
    bad = bad_ts.copy()
    for p_col, q_col, side in (
        ("best_bid_price", "best_bid_qty", 1),
        ("best_ask_price", "best_ask_qty", -1),
    ):
        rows, kmap = build_rows(
            inst,
            base.copy(),
            np.full(n, fi, np.uint16),
            lines,
            files,
            cols[p_col],
            cols[q_col],
            report,
        )
        px = np.zeros(n, np.int64)
        qt = np.zeros(n, np.int64)
        ok = kmap >= 0
        px[ok] = rows.events["price"]
        qt[ok] = rows.events["qty"]
        bad |= ~ok
        parsed[side] = (px, qt)
    keep = ~bad
    idx = np.flatnonzero(keep)
    bpx, bq = parsed[1][0][idx], parsed[1][1][idx]
    apx, aq = parsed[-1][0][idx], parsed[-1][1][idx]
    ex = exch[idx]
    ln = lines[idx]
    m = len(idx)
    if m == 0:
        return Rows(
            inst, np.zeros(0, EVENT_DTYPE), np.zeros(0, np.uint16), np.zeros(0, np.int64), files
        )
    prev_b = np.r_[-1, bpx[:-1]]
    prev_a = np.r_[-1, apx[:-1]]
    prev_bq = np.r_[-1, bq[:-1]]
    prev_aq = np.r_[-1, aq[:-1]]
    first = np.zeros(m, dtype=np.bool_)
    first[0] = True
    # 4 candidate rows per update: delete old bid, delete old ask, set bid, set ask
    del_b = (bpx != prev_b) & ~first
    del_a = (apx != prev_a) & ~first
    set_b = (bpx != prev_b) | (bq != prev_bq)
    set_a = (apx != prev_a) | (aq != prev_aq)
    cand = np.zeros((m, 4), dtype=EVENT_DTYPE)
    for j in range(4):
        cand[:, j]["exch_ts"] = ex
        cand[:, j]["local_ts"] = ex
        cand[:, j]["kind"] = EventKind.BOOK_DELTA.value
    cand[:, 0]["side"], cand[:, 0]["price"], cand[:, 0]["qty"] = 1, prev_b, 0
    cand[:, 1]["side"], cand[:, 1]["price"], cand[:, 1]["qty"] = -1, prev_a, 0
    cand[:, 2]["side"], cand[:, 2]["price"], cand[:, 2]["qty"] = 1, bpx, bq
    cand[:, 3]["side"], cand[:, 3]["price"], cand[:, 3]["qty"] = -1, apx, aq
    take = np.stack([del_b, del_a, set_b, set_a], axis=1)
    ev = cand[take]
    line = np.repeat(ln[:, None], 4, axis=1)[take]
    # the first update is a snapshot of the one-level book
    head = np.zeros(1, dtype=EVENT_DTYPE)
    head["kind"] = EventKind.SNAPSHOT_BEGIN.value
    head["exch_ts"] = head["local_ts"] = ex[0]
    tail = head.copy()
    tail["kind"] = EventKind.SNAPSHOT_END.value
    n_first = int(take[0].sum())
    ev = np.concatenate([head, ev[:n_first], tail, ev[n_first:]])
    line = np.concatenate([[ln[0]], line[:n_first], [ln[0]], line[n_first:]])
    return Rows(inst, ev, np.full(len(ev), fi, np.uint16), line.astype(np.int64), files)
