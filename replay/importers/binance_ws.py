"""Raw Binance websocket captures: `<receive ns> <json>` per line (gzip or plain).

Streams understood: `depthUpdate` diffs (spot `U`/`u`; futures also `pu`), `trade`, `markPriceUpdate`
(MARK_PRICE rows, and FUNDING_RATE settlements derived from it: replay/importers/contracts.py),
`aggTrade`, `bookTicker`, and the REST depth snapshot line (`lastUpdateId`, `bids`,
`asks`). The book is rebuilt the way Binance documents it:

- spot: drop diffs with `u <= lastUpdateId`; the first diff applied must satisfy
  `U <= lastUpdateId + 1 <= u`; after that every diff's `U` must be the previous `u + 1`;
- futures (USD-M / COIN-M): drop diffs with `u < lastUpdateId`; the first applied has
  `U <= lastUpdateId <= u`; after that every diff's `pu` must be the previous `u`.

Diffs received before the snapshot line are buffered and replayed right after it (at the
snapshot's receive time: a consumer could not have applied them earlier). A broken chain
is an `update_id_gap`: when a later snapshot line of the same symbol exists the book is
cleared (CLEAR row) and rebuilt from it (a warning); otherwise it is an error, and
`--skip` clears the book and drops diffs until the end, `--repair` keeps applying diffs
and removes the stale levels that cross.

Rows: the snapshot as SNAPSHOT_BEGIN / BOOK_DELTA... / SNAPSHOT_END, each diff level as
a BOOK_DELTA, each trade as a TRADE (side = aggressor: `m` true means the buyer was the
maker, so the seller was the aggressor; `order_id` = trade id). `exch_ts` is the
transaction time `T` when the message has one, else the event time `E`; `local_ts` is
the receive stamp. bookTicker messages are not stored: they serve as the correctness
oracle (`bbo_mismatch`), compared with the rebuilt top of book at equal update ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.types import EventKind
from replay.book import BookScanner
from replay.importers.common import Resolver, RowBuilder, numbered_lines
from replay.importers.contracts import FundingFromMarks, add_funding, add_mark
from replay.numparse import OK, parse_units
from replay.validate import Mode, Report, Rows

try:  # orjson is optional: ~3x faster on large captures
    import orjson as _json

    _loads = _json.loads
except ImportError:  # pragma: no cover - depends on the environment
    import json as _json

    _loads = _json.loads

_MS = 1_000_000
_DELTA = EventKind.BOOK_DELTA.value
_TRADE = EventKind.TRADE.value


@dataclass
class _Diff:
    line: int
    local: int
    exch: int
    first: int
    last: int
    prev: int | None
    bids: list
    asks: list


@dataclass
class _Snapshot:
    line: int
    local: int
    exch: int | None
    last_id: int
    bids: list
    asks: list
    symbol: str | None


@dataclass
class _Symbol:
    diffs: list = field(default_factory=list)
    trades: list = field(default_factory=list)
    tickers: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    marks: list = field(default_factory=list)  # markPriceUpdate: (line, local, E ns, p, r, T ns)
    futures: bool = False


@dataclass
class OracleResult:
    """Top of book rebuilt from snapshot + diffs vs bookTicker at equal update ids."""

    compared: int = 0
    mismatches: int = 0
    tickers: int = 0
    examples: list[str] = field(default_factory=list)


def _read_file(path: Path, file_index: int, report: Report, mode: Mode) -> dict[str, _Symbol]:
    symbols: dict[str, _Symbol] = {}
    snapshots: list[_Snapshot] = []
    name = str(path)
    for lineno, raw in numbered_lines(path, report, mode):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            report.add("malformed_line", f"{name}:{lineno}", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
            continue
        if not text:
            continue
        stamp, _sp, payload = text.partition(" ")
        try:
            local = int(stamp)
            obj = _loads(payload)
        except ValueError as exc:
            report.add("malformed_line", f"{name}:{lineno}", f"not '<ns> <json>': {str(exc)[:80]}")
            continue
        if not isinstance(obj, dict):
            report.add("malformed_line", f"{name}:{lineno}", "JSON is not an object")
            continue
        if "lastUpdateId" in obj:
            exch = obj.get("T") or obj.get("E")
            snapshots.append(
                _Snapshot(
                    lineno,
                    local,
                    None if exch is None else int(exch) * _MS,
                    int(obj["lastUpdateId"]),
                    obj.get("bids", []),
                    obj.get("asks", []),
                    obj.get("symbol"),
                )
            )
            continue
        data = obj.get("data", obj)
        if not isinstance(data, dict):
            report.add("malformed_line", f"{name}:{lineno}", "no data object")
            continue
        event = data.get("e")
        sym = data.get("s")
        if sym is None:
            report.add("malformed_line", f"{name}:{lineno}", "message without a symbol ('s')")
            continue
        entry = symbols.setdefault(sym, _Symbol())
        try:
            if event == "depthUpdate":
                exch = data.get("T") or data["E"]
                prev = data.get("pu")
                if prev is not None:
                    entry.futures = True
                entry.diffs.append(
                    _Diff(
                        lineno,
                        local,
                        int(exch) * _MS,
                        int(data["U"]),
                        int(data["u"]),
                        None if prev is None else int(prev),
                        data["b"],
                        data["a"],
                    )
                )
            elif event in ("trade", "aggTrade"):
                kind = data.get("X", "MARKET")
                trade_id = int(data["t"] if event == "trade" else data["a"])
                entry.trades.append(
                    (
                        lineno,
                        local,
                        int(data.get("T") or data["E"]) * _MS,
                        trade_id,
                        data["p"],
                        data["q"],
                        bool(data["m"]),
                        kind,
                    )
                )
            elif event == "markPriceUpdate":
                entry.futures = True
                entry.marks.append((lineno, local, int(data["E"]) * _MS, str(data["p"]),
                                    None if data.get("r") in (None, "") else str(data["r"]),
                                    int(data["T"]) * _MS if data.get("T") else None))
            elif event == "bookTicker" or (
                event is None and "u" in data and "b" in data and "a" in data
            ):
                entry.tickers.append(
                    (lineno, int(data["u"]), data["b"], data["B"], data["a"], data["A"])
                )
            else:
                report.add(
                    "unknown_message",
                    f"{name}:{lineno}",
                    f"event type {event!r} ignored",
                    severity="warning",
                )
        except (KeyError, TypeError, ValueError) as exc:
            report.add(
                "malformed_line", f"{name}:{lineno}", f"{event} message missing or bad field {exc}"
            )
    # attach snapshots: futures name their symbol; spot snapshots go to the symbol whose
    # diff ids bracket lastUpdateId (or the only depth symbol of the file)
    depth_syms = [s for s, e in symbols.items() if e.diffs]
    for snap in snapshots:
        target = snap.symbol if snap.symbol in symbols else None
        if target is None:
            if len(depth_syms) == 1:
                target = depth_syms[0]
            else:
                best = None
                for s in depth_syms:
                    for d in symbols[s].diffs:
                        if d.first <= snap.last_id + 1 and snap.last_id <= d.last + 1:
                            best = s
                            break
                    if best:
                        break
                target = best
        if target is None:
            report.add(
                "malformed_line",
                f"{name}:{snap.line}",
                "depth snapshot matches no depth stream of the file",
            )
            continue
        symbols[target].snapshots.append(snap)
    return symbols


def _emit_levels(
    b: RowBuilder, levels, side: int, exch: int, local: int, fi: int, line: int
) -> None:
    for price, qty in levels:
        b.add(exch, local, _DELTA, side, price, qty, 0, fi, line)


def _build_symbol(
    sym: str, entry: _Symbol, builder: RowBuilder, fi: int, name: str, report: Report, mode: Mode
) -> list[tuple[int, int]]:
    """Append rows of one symbol of one file; returns (builder row index of the diff's
    last row, diff's last update id) for the oracle."""
    marks: list[tuple[int, int]] = []
    futures = entry.futures
    snaps = sorted(entry.snapshots, key=lambda s: s.line)
    items: list[tuple[int, int, object]] = []
    items += [(d.line, 1, d) for d in entry.diffs]
    items += [(t[0], 2, t) for t in entry.trades]
    items += [(s.line, 0, s) for s in snaps]
    items += [(m[0], 3, m) for m in entry.marks]
    items.sort(key=lambda x: (x[0], x[1]))
    synced = False
    need_first = False
    last_id = 0
    snap_local = 0
    buffered: list[_Diff] = []
    dropped_old = 0
    dead = False  # gap without a later snapshot under --skip
    dropped_dead = 0  # diffs after that gap: dropped (counted in the report's actions)
    non_market = 0
    snaps_left = len(snaps)
    funding = FundingFromMarks()  # the last markPriceUpdate before its next funding time
    bad_marks = 0

    def apply(d: _Diff, local: int) -> None:
        nonlocal last_id, need_first, synced, dead
        if need_first:
            stale = d.last <= last_id if not futures else d.last < last_id
            if stale:
                nonlocal dropped_old
                dropped_old += 1
                return
            ok = (
                (d.first <= last_id + 1 <= d.last)
                if not futures
                else (d.first <= last_id <= d.last)
            )
            if not ok:
                report.add(
                    "update_id_gap",
                    f"{name}:{d.line}",
                    f"{sym}: first diff after the snapshot (lastUpdateId {last_id}) has U={d.first} u={d.last}",
                    severity="warning" if snaps_left > 0 else "error",
                )
                if not _on_gap(d, local):
                    return
            need_first = False
        else:
            ok = (d.prev == last_id) if futures else (d.first == last_id + 1)
            if not ok:
                expected = f"pu={last_id}" if futures else f"U={last_id + 1}"
                got = f"pu={d.prev}" if futures else f"U={d.first}"
                report.add(
                    "update_id_gap",
                    f"{name}:{d.line}",
                    f"{sym}: diff u={d.last} has {got}, expected {expected}"
                    + (" (book cleared, resync at the next snapshot)" if snaps_left > 0 else ""),
                    severity="warning" if snaps_left > 0 else "error",
                )
                if not _on_gap(d, local):
                    return
        _emit_levels(builder, d.bids, 1, d.exch, local, fi, d.line)
        _emit_levels(builder, d.asks, -1, d.exch, local, fi, d.line)
        last_id = d.last
        marks.append((len(builder) - 1, d.last))

    def _on_gap(d: _Diff, local: int) -> bool:
        """Handle a broken chain; True when the diff should still be applied."""
        nonlocal synced, dead
        if snaps_left > 0 or mode is Mode.SKIP:
            builder.add(d.exch, local, EventKind.CLEAR.value, 0, "0", "0", 0, fi, d.line)
            synced = False
            dead = snaps_left == 0
            return False
        return True  # strict (refused later anyway) or repair: keep applying

    for _line, kind, obj in items:
        if kind == 0:
            snap: _Snapshot = obj  # type: ignore[assignment]
            snaps_left -= 1
            # the snapshot reflects the book before the first diff it is aligned with
            following = [
                d
                for d in buffered
                if (d.last > snap.last_id if not futures else d.last >= snap.last_id)
            ]
            later = next((d for d in entry.diffs if d.line > snap.line), None)
            exch = snap.exch
            if exch is None:
                ref = following[0] if following else later
                exch = ref.exch if ref is not None else snap.local
            builder.add(
                exch, snap.local, EventKind.SNAPSHOT_BEGIN.value, 0, "0", "0", 0, fi, snap.line
            )
            _emit_levels(builder, snap.bids, 1, exch, snap.local, fi, snap.line)
            _emit_levels(builder, snap.asks, -1, exch, snap.local, fi, snap.line)
            builder.add(
                exch, snap.local, EventKind.SNAPSHOT_END.value, 0, "0", "0", 0, fi, snap.line
            )
            marks.append((len(builder) - 1, snap.last_id))
            synced, need_first, last_id, snap_local, dead = (
                True,
                True,
                snap.last_id,
                snap.local,
                False,
            )
            pending, buffered = buffered, []
            for d in pending:
                if synced:
                    apply(d, max(d.local, snap_local))
        elif kind == 1:
            d: _Diff = obj  # type: ignore[assignment]
            if synced:
                apply(d, max(d.local, snap_local))
            elif not dead:
                buffered.append(d)
            else:
                dropped_dead += 1
        elif kind == 3:
            # markPriceUpdate: the mark, and a funding settlement once its funding time T
            # has passed, at the rate and mark of the last update before T (docs/derivatives.md)
            line, local, exch, mark, rate, next_funding = obj  # type: ignore[misc]
            settled = funding.update(exch, mark, rate, next_funding)
            if settled is not None:
                add_funding(builder, settled[0], local, settled[1], settled[2], fi, line)
            if not add_mark(builder, exch, local, mark, fi, line):
                bad_marks += 1
        else:
            line, local, exch, trade_id, price, qty, maker, tkind = obj  # type: ignore[misc]
            if tkind != "MARKET":
                non_market += 1
                continue
            builder.add(exch, local, _TRADE, -1 if maker else 1, price, qty, trade_id, fi, line)
    if dropped_old:
        report.note(
            f"{sym} {name}: {dropped_old} diffs older than the snapshot dropped (Binance procedure)"
        )
    if buffered:
        report.add(
            "before_snapshot",
            f"{name}:{buffered[0].line}",
            f"{sym}: {len(buffered)} depth diffs after the last gap or before any snapshot "
            "dropped (no snapshot to apply them to)",
            len(buffered),
            severity="warning",
        )
    if dropped_dead:
        report.actions.append(
            f"{sym} {name}: dropped {dropped_dead} depth diffs after an update id gap with no later snapshot"
        )
    if not snaps and entry.diffs:
        report.add(
            "update_id_gap",
            f"{name}:{entry.diffs[0].line}",
            f"{sym}: depth diffs but no snapshot line: book cannot be rebuilt",
        )
    if bad_marks:
        report.add("bad_value", f"{name}", f"{sym}: {bad_marks} markPriceUpdate messages without a positive mark price", bad_marks)
    if non_market:
        report.note(
            f"{sym} {name}: {non_market} non-MARKET trades (insurance fund / ADL) not imported"
        )
    return marks


def parse(
    paths: list[Path],
    resolver: Resolver,
    report: Report,
    mode: Mode = Mode.STRICT,
    oracle: dict | None = None,
) -> list[Rows]:
    """Parse captures into one Rows per instrument (file order kept)."""
    files = [str(p) for p in paths]
    builders: dict[str, RowBuilder] = {}
    marks_by: dict[str, list[tuple[int, int]]] = {}
    tickers_by: dict[str, list] = {}
    for fi, path in enumerate(paths):
        symbols = _read_file(path, fi, report, mode)
        for sym in sorted(symbols):
            entry = symbols[sym]
            inst = _resolve(resolver, sym, entry.futures if (entry.futures or entry.diffs) else None)
            if inst is None:
                first = min(
                    [d.line for d in entry.diffs]
                    + [t[0] for t in entry.trades]
                    + [t[0] for t in entry.tickers]
                    or [0]
                )
                count = len(entry.diffs) + len(entry.trades) + len(entry.tickers)
                report.add(
                    "unknown_symbol",
                    f"{files[fi]}:{first}",
                    f"binance symbol {sym} has no instrument (venue_symbol) in the instruments file; {count} messages",
                    count,
                )
                continue
            b = builders.setdefault(inst.id, RowBuilder(inst))
            marks = _build_symbol(sym, entry, b, fi, files[fi], report, mode)
            marks_by.setdefault(inst.id, []).extend(marks)
            tickers_by.setdefault(inst.id, []).extend((fi, t) for t in entry.tickers)
    out = []
    for inst_id, b in builders.items():
        rows, keep_map = b.build(files, report)
        result = _oracle(
            rows, keep_map, marks_by.get(inst_id, []), tickers_by.get(inst_id, []), files, report
        )
        if oracle is not None:
            oracle[inst_id] = result
        out.append(rows)
    return out


def _resolve(resolver: Resolver, sym: str, futures: bool | None):
    """A futures stream's symbol is looked up on the derivatives venues first (ccxt ids
    binanceusdm, binancecoinm), then on `binance` (files that list futures there)."""
    venues = ("binanceusdm", "binancecoinm", "binance") if futures else ("binance",)
    for venue in venues:
        inst = resolver.resolve(venue, sym, futures)
        if inst is not None:
            return inst
    return None


def _oracle(
    rows: Rows, keep_map: np.ndarray, marks, tickers, files, report: Report
) -> OracleResult:
    res = OracleResult(tickers=len(tickers))
    inst = rows.inst
    if not tickers or not marks:
        return res
    ev = rows.events
    ends = np.zeros(len(ev), dtype=np.bool_)
    id_at: dict[int, int] = {}
    for builder_row, update_id in marks:
        r = int(keep_map[builder_row]) if builder_row >= 0 else -1
        if r >= 0:
            ends[r] = True
            id_at[r] = update_id
    _e, top, _crossed = BookScanner().scan(ev, ends)
    tops = {uid: top[r] for r, uid in id_at.items()}
    bp, bps = parse_units([t[1][2] for t in tickers], inst.tick_size)
    bq, bqs = parse_units([t[1][3] for t in tickers], inst.lot_size)
    ap, aps = parse_units([t[1][4] for t in tickers], inst.tick_size)
    aq, aqs = parse_units([t[1][5] for t in tickers], inst.lot_size)
    for j, (fi, t) in enumerate(tickers):
        got = tops.get(t[1])
        if got is None:
            continue
        if OK != bps[j] or OK != bqs[j] or OK != aps[j] or OK != aqs[j]:
            continue
        res.compared += 1
        want = (bp[j], bq[j], ap[j], aq[j])
        if tuple(int(x) for x in got) != tuple(int(x) for x in want):
            res.mismatches += 1
            if len(res.examples) < report.show:
                res.examples.append(f"{files[fi]}:{t[0]}")
            report.add(
                "bbo_mismatch",
                f"{files[fi]}:{t[0]}",
                f"update id {t[1]}: bookTicker {t[2]}x{t[3]} / {t[4]}x{t[5]}, rebuilt "
                f"{inst.ticks_to_price(int(got[0]))}x{inst.lots_to_qty(int(got[1]))} / "
                f"{inst.ticks_to_price(int(got[2]))}x{inst.lots_to_qty(int(got[3]))}",
                severity="warning",
            )
    report.note(
        f"{inst.id}: bookTicker oracle: {res.compared:,} of {res.tickers:,} tickers at a diff's update id, "
        f"{res.mismatches:,} mismatches"
    )
    return res
