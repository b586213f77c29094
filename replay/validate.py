"""Validation of market data, on every import and by `tickparity data check`.

Checks (the name is what reports and docs use):

- ``bad_value``          NaN, empty or negative price/qty, a trade of size 0
- ``off_grid``           a price/qty that is not a whole number of ticks/lots
- ``unknown_symbol``     a venue symbol no instrument maps to
- ``unsorted_ts``        local_ts going backwards within an instrument (file order)
- ``local_before_exch``  receive time before venue time: the recorder's clock is off;
                         the offset is measured and reported, `--correct-skew` shifts it
- ``crossed_book``       best bid >= best ask after a snapshot or an update message
- ``update_id_gap``      a depth diff whose first update id does not follow the last one
- ``duplicate_trade_id`` a trade id seen before for the same instrument (in the import,
                         or already in the target store)
- ``overlaps_store``     (warning) the store already holds rows in the import's time range
- ``duplicate_rows``     (stores) the rows at one local_ts repeat exactly, the copy with
                         seqs from elsewhere: a file imported twice (see `_repeated_groups`)
- ``before_snapshot``    (warning) book rows before the instrument's first snapshot (or
                         after a CLEAR, before the next snapshot): the book they change is
                         unknown, so an import drops them in every mode
- ``malformed_line``     a line that is not `<ns> <json>` or lacks a field
- ``bbo_mismatch``       (binance-ws) rebuilt top of book differs from bookTicker at the
                         same update id

Each problem is counted and its first rows are kept with `file:line` (or `seq N` for a
store). An import refuses input with any error unless `--repair` or `--skip` says what
to do (see `Mode` and README "Market data"); warnings are reported but never block.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from engine.errors import ConfigError, DataError
from engine.types import EventKind, Instrument
from replay.book import BookScanner, message_ends, unknown_book_rows
from replay.schema import format_ns

_TRADE = EventKind.TRADE.value
_DELTA = EventKind.BOOK_DELTA.value


class Mode(Enum):
    STRICT = "strict"  # refuse any error
    REPAIR = "repair"  # fix: sort, de-duplicate, correct skew, uncross, drop bad rows
    SKIP = "skip"  # drop every problem row


@dataclass
class Problem:
    check: str
    severity: str = "error"
    count: int = 0
    examples: list[str] = field(default_factory=list)
    first: str | None = None  # where the first one was seen (file:line or "ID seq N")


class Report:
    """Problems found, with counts and the first `show` rows of each."""

    def __init__(self, show: int = 5) -> None:
        self.show = show
        self.problems: dict[str, Problem] = {}
        self.notes: list[str] = []
        self.actions: list[str] = []

    def add(
        self, check: str, where: str | None, detail: str, count: int = 1, severity: str = "error"
    ) -> None:
        if count <= 0:
            return
        prob = self.problems.get(check)
        if prob is None:
            prob = self.problems[check] = Problem(check, severity)
        if severity == "error":
            prob.severity = "error"
        prob.count += count
        if prob.first is None and where is not None:
            prob.first = where
        if len(prob.examples) < self.show and where is not None:
            prob.examples.append(f"{where}: {detail}")

    def add_many(
        self, check: str, wheres: list[str], details: list[str], total: int, severity: str = "error"
    ) -> None:
        if total <= 0:
            return
        self.add(check, None, "", total, severity)
        prob = self.problems[check]
        if prob.first is None and wheres:
            prob.first = wheres[0]
        for w, d in zip(wheres, details, strict=False):
            if len(prob.examples) >= self.show:
                break
            prob.examples.append(f"{w}: {d}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def errors(self) -> dict[str, int]:
        return {p.check: p.count for p in self.problems.values() if p.severity == "error"}

    def count(self, check: str) -> int:
        prob = self.problems.get(check)
        return 0 if prob is None else prob.count

    def lines(self) -> list[str]:
        out = list(self.notes)
        for prob in sorted(self.problems.values(), key=lambda p: p.check):
            out.append(f"{prob.severity.upper():7} {prob.check}: {prob.count:,}")
            out.extend(f"          {ex}" for ex in prob.examples)
        out.extend(f"fixed: {a}" for a in self.actions)
        return out

    def summary(self) -> str:
        errs = self.errors
        if not errs:
            return "no errors"
        parts = []
        for check, count in sorted(errs.items()):
            first = self.problems[check].first
            parts.append(f"{check} {count:,}" + (f" (first at {first})" if first else ""))
        return ", ".join(parts)


@dataclass
class Rows:
    """One instrument's rows from an import, with where each came from."""

    inst: Instrument
    events: np.ndarray  # EVENT_DTYPE, source order
    file: np.ndarray  # uint16 index into `files`
    line: np.ndarray  # int64 1-based line (or row) number
    files: list[str]

    def where(self, i: int) -> str:
        return f"{self.files[int(self.file[i])]}:{int(self.line[i])}"

    def take(self, keep: np.ndarray) -> Rows:
        return Rows(self.inst, self.events[keep], self.file[keep], self.line[keep], self.files)


def _fmt_row(inst: Instrument, row) -> str:
    kind = EventKind(int(row["kind"])).name
    text = f"{kind} side={int(row['side'])} local_ts={int(row['local_ts'])} exch_ts={int(row['exch_ts'])}"
    if int(row["kind"]) in (_TRADE, _DELTA):
        text += f" price={inst.ticks_to_price(int(row['price']))} qty={inst.lots_to_qty(int(row['qty']))}"
    return text


def _report_rows(
    report: Report,
    check: str,
    rows: Rows,
    idx: np.ndarray,
    why: Callable[[int], str],
    severity="error",
) -> None:
    if len(idx) == 0:
        return
    # first rows at distinct locations (one line can expand into many rows)
    first, seen = [], set()
    for i in idx:
        w = rows.where(int(i))
        if w not in seen:
            seen.add(w)
            first.append(int(i))
            if len(first) >= report.show:
                break
    report.add_many(
        check, [rows.where(i) for i in first], [why(int(i)) for i in first], len(idx), severity
    )


#: how far venue time may run ahead of local receipt time in data a run replays: a clock
#: skew between the venue and the recording machine (NTP keeps it within milliseconds);
#: beyond it the feed latency is negative and the recording is not a market's
MAX_CLOCK_SKEW_NS = 1_000_000_000


def refuse_negative_feed_latency(chunks: Iterable[np.ndarray], spec: str, instrument_ids: Sequence[str],
                                 tolerance_ns: int = MAX_CLOCK_SKEW_NS) -> Iterator[np.ndarray]:
    """Pass replay chunks (EVENT_DTYPE) through unchanged, raising DataError at the first
    row whose venue time is more than `tolerance_ns` after its local receipt time.

    Why: a backtest's simulated venue takes `exch_ts` as the exchange's time and `local_ts`
    as our receipt: a row received before the venue stamped it (beyond a clock skew) lets
    the strategy act on the market before the venue has it, and the run is silently wrong.
    Such data comes from a paper/testnet session recorded against the exchange emulator run
    at `--speed` above 1 (venue time runs that many times faster than the wall clock), or a
    recorder whose clock is far behind. Imports refuse it already (`local_before_exch`);
    a session's own `market.duckdb` is written by the recorder and never imported, so the
    backtest checks every row it replays. Not corrected: a gap that grows with time (a
    speed) has no single offset to remove, and a store cannot be re-imported; source files
    with a constant offset are imported with `tickparity data import --correct-skew`. The message names the data, the row (its
    position in the replay, counted from 1) and both times."""
    row = 0
    for chunk in chunks:
        if len(chunk):
            ahead = chunk["exch_ts"] - chunk["local_ts"]
            bad = np.flatnonzero(ahead > tolerance_ns)
            if len(bad):
                i = int(bad[0])
                r = chunk[i]
                raise DataError(
                    f"{spec}: row {row + i + 1} ({instrument_ids[int(r['instrument'])]}): venue time "
                    f"{format_ns(int(r['exch_ts']))} is {int(ahead[i]) / 1e9:.3f} s after its local receipt "
                    f"{format_ns(int(r['local_ts']))} (a negative feed latency beyond the "
                    f"{tolerance_ns / 1e9:g} s a clock skew explains): a session recorded against "
                    "`tickparity emulator --speed` above 1? Record it at --speed 1; source files with a constant "
                    "clock offset: `tickparity data import --correct-skew` (docs/market-data.md)")
            row += len(chunk)
        yield chunk


def skew_stats(local_ts: np.ndarray, exch_ts: np.ndarray) -> dict[str, float]:
    d = (local_ts - exch_ts).astype(np.float64) / 1e6
    return {
        "min_ms": float(d.min()),
        "median_ms": float(np.median(d)),
        "p99_ms": float(np.percentile(d, 99)),
        "max_ms": float(d.max()),
    }


def _early_text(delta_ns: int) -> str:
    """A row received before the venue stamped it (`delta_ns` = local - exch < 0), as a
    positive amount: it read "local_ts -1259315535 ns before exch_ts", a negative 'before'."""
    return f"local_ts {-delta_ns:,} ns ({-delta_ns / 1e6:.3f} ms) before exch_ts"


def check_rows(rows: Rows, report: Report, mode: Mode, correct_skew: bool) -> Rows:
    """All generic checks over one instrument's rows from one source."""
    return check_merged(check_part(rows, report, mode, correct_skew), report, mode)


def merge_parts(parts: list[Rows]) -> Rows:
    """One instrument's rows from several files -> one stream by (local_ts, file order, line)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    ev = np.concatenate([p.events for p in parts])
    order = np.argsort(ev["local_ts"], kind="stable")
    return Rows(
        first.inst,
        ev[order],
        np.concatenate([p.file for p in parts])[order],
        np.concatenate([p.line for p in parts])[order],
        first.files,
    )


def check_part(rows: Rows, report: Report, mode: Mode, correct_skew: bool) -> Rows:
    """Checks within one file's rows of one instrument (file order = receive order):
    bad values, clock skew, unsorted receive times."""
    inst = rows.inst
    ev = rows.events
    if len(ev) == 0:
        return rows
    # bad values that survived parsing (negative ints, zero-size trades)
    is_trade = ev["kind"] == _TRADE
    bad = (ev["price"] < 0) | (ev["qty"] < 0) | (is_trade & (ev["qty"] == 0))
    if bad.any():
        _report_rows(
            report, "bad_value", rows, np.flatnonzero(bad), lambda i: _fmt_row(inst, ev[i])
        )
        if mode is not Mode.STRICT:
            rows = rows.take(~bad)
            ev = rows.events
            report.actions.append(f"{inst.id}: dropped {int(bad.sum())} rows with bad values")

    # clock skew, per source file (one recording machine, one clock)
    delta = ev["local_ts"] - ev["exch_ts"]
    early = np.flatnonzero(delta < 0)
    if len(ev):
        for f in np.unique(rows.file):
            sel = rows.file == f
            st = skew_stats(ev["local_ts"][sel], ev["exch_ts"][sel])
            report.note(
                f"{inst.id} {rows.files[int(f)]}: receive - venue time (ms) min {st['min_ms']:.3f} "
                f"median {st['median_ms']:.3f} p99 {st['p99_ms']:.3f} max {st['max_ms']:.3f}"
            )
    if len(early):
        shifted = False
        if correct_skew or mode is Mode.REPAIR:
            ev = ev.copy()
            for f in np.unique(rows.file[early]):
                sel = rows.file == f
                shift = -int(delta[sel].min())
                ev["local_ts"][sel] += shift
                report.actions.append(
                    f"{inst.id} {rows.files[int(f)]}: receive stamps shifted by +{shift / 1e6:.3f} ms "
                    "(recorder clock behind the venue); minimal latency is now 0"
                )
            rows = Rows(inst, ev, rows.file, rows.line, rows.files)
            shifted = True
        sev = "warning" if shifted else "error"
        _report_rows(
            report,
            "local_before_exch",
            rows,
            early,
            lambda i: _early_text(int(delta[i])),
            severity=sev,
        )
        if mode is Mode.SKIP and not shifted:
            keep = np.ones(len(ev), dtype=np.bool_)
            keep[early] = False
            rows = rows.take(keep)
            ev = rows.events
            report.actions.append(
                f"{inst.id}: dropped {len(early)} rows received before venue time"
            )

    # unsorted receive times
    lt = ev["local_ts"]
    run_max = np.maximum.accumulate(lt)
    back = np.flatnonzero(lt < run_max)
    if len(back):
        _report_rows(
            report,
            "unsorted_ts",
            rows,
            back,
            lambda i: (
                f"local_ts {int(lt[i])} is {int(run_max[i] - lt[i])} ns before an earlier row"
            ),
        )
        if mode is Mode.REPAIR:
            order = np.argsort(lt, kind="stable")
            rows = rows.take(order)
            report.actions.append(
                f"{inst.id}: sorted {len(back)} out-of-order rows by local_ts (stable)"
            )
        elif mode is Mode.SKIP:
            keep = lt >= run_max
            rows = rows.take(keep)
            report.actions.append(f"{inst.id}: dropped {len(back)} out-of-order rows")
        ev = rows.events
    return rows


def check_merged(rows: Rows, report: Report, mode: Mode) -> Rows:
    """Checks over an instrument's merged stream: duplicate trade ids, crossed book."""
    inst = rows.inst
    ev = rows.events
    if len(ev) == 0:
        return rows
    # book rows no snapshot precedes describe a book nobody knows: dropped in every mode
    unknown, _known = unknown_book_rows(ev["kind"])
    if unknown.any():
        _report_rows(
            report,
            "before_snapshot",
            rows,
            np.flatnonzero(unknown),
            lambda i: f"{_fmt_row(inst, ev[i])} before the first snapshot (or after a CLEAR)",
            severity="warning",
        )
        rows = rows.take(~unknown)
        ev = rows.events
        report.actions.append(
            f"{inst.id}: dropped {int(unknown.sum())} book rows that no snapshot precedes"
        )
    # repeated trade ids: a verbatim repeat (same venue content) vs a conflicting one
    rows = _check_trade_ids(rows, report, mode)

    # crossed book after snapshots / update messages
    rows = _check_crossed(rows, report, mode)
    return rows


TRADE_CONTENT = ("exch_ts", "side", "price", "qty")


def trade_keys(ev: np.ndarray) -> np.ndarray:
    """One comparable key per row: trade id + venue content (`TRADE_CONTENT`), as bytes."""
    dt = np.dtype([("order_id", "<u8")] + [(name, ev.dtype[name].newbyteorder("<")) for name in TRADE_CONTENT])
    packed = np.empty(len(ev), dtype=dt)
    for name in dt.names:
        packed[name] = ev[name]
    return packed.view(np.dtype((np.void, dt.itemsize)))


def trade_repeats(ev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose trade id (order_id of a TRADE row, 0 = unknown) appeared earlier.

    Returns (repeat row indexes in row order, the index of the id's first occurrence,
    whether the repeat is verbatim: the same id and venue content `TRADE_CONTENT` as an
    earlier row; local_ts may differ, as when two recorders captured one message)."""
    tidx = np.flatnonzero((ev["kind"] == _TRADE) & (ev["order_id"] != 0))
    empty = np.zeros(0, dtype=np.int64)
    if len(tidx) < 2:
        return empty, empty, np.zeros(0, dtype=np.bool_)
    ids = ev["order_id"][tidx]
    _u, first_id, inv = np.unique(ids, return_index=True, return_inverse=True)
    _k, first_key = np.unique(trade_keys(ev[tidx]), return_index=True)
    repeat = np.ones(len(tidx), dtype=np.bool_)
    repeat[first_id] = False
    new_key = np.zeros(len(tidx), dtype=np.bool_)
    new_key[first_key] = True
    return tidx[repeat], tidx[first_id[inv[repeat]]], ~new_key[repeat]


def drop_repeated_trades(
    rows: Rows, report: Report, mode: Mode, verbatim: np.ndarray, every: np.ndarray, what: str
) -> Rows:
    """The one policy for repeated trade ids: `--repair` drops the verbatim repeats (rows
    `verbatim`), `--skip` drops every repeat (rows `every`), the default drops nothing
    (the import is refused)."""
    drop = verbatim if mode is Mode.REPAIR else every if mode is Mode.SKIP else every[:0]
    if len(drop) == 0:
        return rows
    keep = np.ones(len(rows.events), dtype=np.bool_)
    keep[drop] = False
    report.actions.append(f"{rows.inst.id}: dropped {len(drop)} {what}")
    return rows.take(keep)


def _check_trade_ids(rows: Rows, report: Report, mode: Mode) -> Rows:
    """`duplicate_trade_id` (a verbatim repeat) and `conflicting_trade_id` (the id again
    with another price/qty/side/venue time). Default: both refuse the import. `--repair`
    drops verbatim repeats and keeps conflicting trades with a warning (each is real
    volume: the venue printed both); `--skip` drops every repeat."""
    inst = rows.inst
    ev = rows.events
    rep, first, same = trade_repeats(ev)
    if len(rep) == 0:
        return rows

    def content(i: int) -> str:
        return (
            f"{inst.ticks_to_price(int(ev['price'][i]))} x {inst.lots_to_qty(int(ev['qty'][i]))} "
            f"side {int(ev['side'][i])} exch_ts {int(ev['exch_ts'][i])}"
        )

    at_first = dict(zip(rep.tolist(), first.tolist(), strict=True))
    verbatim, conflicting = rep[same], rep[~same]
    _report_rows(
        report,
        "duplicate_trade_id",
        rows,
        verbatim,
        lambda i: f"trade id {int(ev['order_id'][i])} repeats {rows.where(at_first[i])} verbatim",
    )
    _report_rows(
        report,
        "conflicting_trade_id",
        rows,
        conflicting,
        lambda i: (
            f"trade id {int(ev['order_id'][i])}: {content(i)} differs from "
            f"{rows.where(at_first[i])}: {content(at_first[i])}"
        ),
        severity="warning" if mode is Mode.REPAIR else "error",
    )
    rows = drop_repeated_trades(rows, report, mode, verbatim, rep, "repeated trades")
    if mode is Mode.REPAIR and len(conflicting):
        report.actions.append(
            f"{inst.id}: kept {len(conflicting)} trades whose id repeats with other content "
            "(both are real volume)"
        )
    return rows


def _check_crossed(rows: Rows, report: Report, mode: Mode) -> Rows:
    ev = rows.events
    if not (ev["kind"] != _TRADE).any():
        return rows
    scanner = BookScanner()
    _ends, top, crossed = scanner.scan(ev)
    idx = np.flatnonzero(crossed)
    if scanner.overflowed:
        report.add(
            "crossed_book",
            rows.where(len(ev) - 1),
            "book grew beyond the checker's capacity; crossing not checked past it",
            1,
            "warning",
        )
    if len(idx) == 0:
        return rows
    inst = rows.inst

    def why(i: int) -> str:
        return (
            f"best bid {inst.ticks_to_price(int(top[i, 0]))} >= best ask {inst.ticks_to_price(int(top[i, 2]))} "
            f"after {EventKind(int(ev['kind'][i])).name}"
        )

    _report_rows(report, "crossed_book", rows, idx, why)
    if mode is Mode.REPAIR:
        rows = uncross(rows)
        report.actions.append(
            f"{inst.id}: removed stale levels of {len(idx)} crossed books (the side the message did not update)"
        )
    return rows


def uncross(rows: Rows) -> Rows:
    """Insert deltas that delete the stale side's crossed levels after each crossed message.

    The side the message updated is taken as fresh; levels of the other side at or
    through its best price are removed (qty 0 rows stamped like the message).
    """
    ev = rows.events
    scanner = BookScanner()
    ends = message_ends(ev)
    out_parts, file_parts, line_parts = [], [], []
    pos = 0
    n = len(ev)
    while pos < n:
        scanner.scan(ev[pos:], ends[pos:], stop_on_cross=True)
        stop = pos + scanner.applied
        out_parts.append(ev[pos:stop])
        file_parts.append(rows.file[pos:stop])
        line_parts.append(rows.line[pos:stop])
        if stop >= n and not _crossed_now(scanner):
            break
        if not _crossed_now(scanner):
            pos = stop
            continue
        # the message that ended at stop-1: which side did it update?
        m = stop - 1
        while m > pos and not ends[m - 1]:
            m -= 1
        msg = ev[m:stop]
        book_rows = msg[msg["kind"] == _DELTA]
        fresh_bid = bool((book_rows["side"] > 0).any()) if len(book_rows) else True
        bids, _bq, asks, _aq = scanner.levels()
        if fresh_bid:
            stale_side, stale = -1, asks[asks <= bids[-1]]
        else:
            stale_side, stale = 1, bids[bids >= asks[0]]
        fix = np.zeros(len(stale), dtype=ev.dtype)
        fix["exch_ts"] = msg["exch_ts"][-1]
        fix["local_ts"] = msg["local_ts"][-1]
        fix["kind"] = _DELTA
        fix["side"] = stale_side
        fix["price"] = stale
        scanner.scan(fix, np.zeros(len(fix), np.bool_))
        out_parts.append(fix)
        file_parts.append(np.full(len(fix), rows.file[stop - 1], dtype=rows.file.dtype))
        line_parts.append(np.full(len(fix), rows.line[stop - 1], dtype=rows.line.dtype))
        pos = stop
    return Rows(
        rows.inst,
        np.concatenate(out_parts),
        np.concatenate(file_parts),
        np.concatenate(line_parts),
        rows.files,
    )


def _crossed_now(scanner: BookScanner) -> bool:
    bids, _bq, asks, _aq = scanner.levels()
    return len(bids) > 0 and len(asks) > 0 and bids[-1] >= asks[0]


def decide(report: Report, mode: Mode, what: str) -> None:
    """Refuse (DataError) when errors remain and no --repair/--skip was given."""
    errors = report.errors
    if errors and mode is Mode.STRICT:
        raise DataError(
            f"{what} refused: {report.summary()}; nothing was written "
            "(--repair fixes what it can, --skip drops problem rows, --correct-skew shifts receive stamps; see README, Market data)"
        )


# -- data check ---------------------------------------------------------------------------


def _repeated_groups(ev: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Start indices of local_ts groups whose rows are two identical halves in seq order,
    the second half not continuing the first's seqs: how a file imported twice looks in a
    store (each copy keeps its source order; one import numbers its rows consecutively,
    so a single source never matches). Rows compared on every event field."""
    if len(ev) < 2:
        return np.zeros(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(ev["local_ts"])) + 1]
    sizes = np.diff(np.r_[starts, len(ev)])
    cand = (sizes >= 2) & (sizes % 2 == 0)
    s, k = starts[cand], sizes[cand] // 2
    if not len(s):
        return s
    firsts = np.cumsum(k) - k
    i1 = np.repeat(s, k) + (np.arange(int(k.sum())) - np.repeat(firsts, k))
    i2 = i1 + np.repeat(k, k)
    eq = np.ones(len(i1), np.bool_)
    for name in ("exch_ts", "kind", "side", "price", "qty", "order_id"):
        eq &= ev[name][i1] == ev[name][i2]
    same = np.logical_and.reduceat(eq, firsts)
    apart = seq[s + k] != seq[s + k - 1] + 1
    return s[same & apart]


def check_store_instrument(
    store, inst_id: str, stored, report: Report, chunk_rows: int = 1 << 18
) -> int:
    """Stream one stored instrument through the checks; returns rows seen."""
    from engine.types import Instrument as Inst

    inst = Inst(
        id=inst_id,
        venue=stored.venue,
        symbol=inst_id.partition(":")[2],
        venue_symbol=stored.venue_symbol,
        base="?",
        quote="?",
        tick_size=stored.tick_size,
        lot_size=stored.lot_size,
        min_qty=stored.lot_size,
        min_notional=stored.lot_size * 0,
    )
    scanner = BookScanner()
    seen_trades: set[int] = set()
    seen_keys: set[tuple[int, int]] = set()  # (trade id, hash of its venue content)
    kept_conflicting = 0
    last_local = None
    rows = 0
    min_delta = None
    carry = None
    carry_seq = None
    tail: tuple[np.ndarray, np.ndarray] | None = None  # last local_ts group, for duplicate_rows
    known = False
    for events, seq in store.stream(inst_id, None, None, chunk_rows, with_seq=True):
        rows += len(events)
        ev = events

        def at(i: int, _seq=seq) -> str:
            return f"{inst_id} seq {int(_seq[i])}"

        g_ev, g_seq = (ev, seq) if tail is None else (
            np.concatenate([tail[0], ev]), np.concatenate([tail[1], seq])
        )
        last = int(np.searchsorted(g_ev["local_ts"], g_ev["local_ts"][-1], "left"))
        tail = (g_ev[last:], g_seq[last:])
        reps = _repeated_groups(g_ev[:last], g_seq[:last])
        report.add_many(
            "duplicate_rows",
            [f"{inst_id} seq {int(g_seq[i])}" for i in reps[: report.show]],
            [
                f"the rows at local_ts {int(g_ev['local_ts'][i])} repeat exactly (a file imported twice?)"
                for i in reps[: report.show]
            ],
            len(reps),
        )
        unknown, known = unknown_book_rows(ev["kind"], known)
        if unknown.any():
            idx = np.flatnonzero(unknown)
            report.add_many(
                "before_snapshot",
                [at(i) for i in idx[: report.show]],
                [f"{_fmt_row(inst, ev[i])} before the first snapshot (or after a CLEAR)"
                 for i in idx[: report.show]],
                len(idx),
                severity="warning",
            )

        bad = (ev["price"] < 0) | (ev["qty"] < 0) | ((ev["kind"] == _TRADE) & (ev["qty"] == 0))
        for i in np.flatnonzero(bad)[: report.show]:
            report.add("bad_value", at(i), _fmt_row(inst, ev[i]))
        if bad.sum() > report.show:
            report.add("bad_value", None, "", int(bad.sum()) - min(report.show, int(bad.sum())))
        delta = ev["local_ts"] - ev["exch_ts"]
        dmin = int(delta.min())
        min_delta = dmin if min_delta is None else min(min_delta, dmin)
        early = np.flatnonzero(delta < 0)
        if len(early):
            report.add_many(
                "local_before_exch",
                [at(i) for i in early[: report.show]],
                [_early_text(int(delta[i])) for i in early[: report.show]],
                len(early),
            )
        lt = ev["local_ts"]
        init = int(lt[0]) if last_local is None else last_local
        before = np.maximum(np.r_[init, np.maximum.accumulate(lt)[:-1]], init)
        back = np.flatnonzero(lt < before)
        if len(back):  # a store serves (local_ts, seq) order: this would be a store bug
            report.add_many(
                "unsorted_ts",
                [at(i) for i in back[: report.show]],
                [
                    f"local_ts {int(lt[i])} is {int(before[i] - lt[i])} ns before an earlier row"
                    for i in back[: report.show]
                ],
                len(back),
            )
        last_local = max(init, int(lt.max()))
        # a verbatim repeat of a trade id is an error; the id again with other content
        # can only be in a store because an import with --repair kept both (real volume)
        tpos = np.flatnonzero((ev["kind"] == _TRADE) & (ev["order_id"] != 0))
        content = zip(*(ev[name][tpos].tolist() for name in TRADE_CONTENT), strict=True)
        for j, (t, key) in enumerate(zip(ev["order_id"][tpos].tolist(), content, strict=True)):
            full = (t, hash(key))
            if full in seen_keys:
                report.add("duplicate_trade_id", at(int(tpos[j])), f"trade id {t} seen before, verbatim")
            elif t in seen_trades:
                kept_conflicting += 1
            seen_trades.add(t)
            seen_keys.add(full)
        # crossed book, carrying a message that may continue in the next chunk
        if carry is not None:
            ev = np.concatenate([carry, ev])
            seq = np.concatenate([carry_seq, seq])
        ends = message_ends(ev)
        last_end = np.flatnonzero(ends[:-1])
        cut = int(last_end[-1]) + 1 if len(last_end) else 0
        carry, carry_seq = ev[cut:], seq[cut:]
        body = ev[:cut]
        if len(body):
            _e, top, crossed = scanner.scan(body, ends[:cut])
            for i in np.flatnonzero(crossed)[: report.show]:
                report.add(
                    "crossed_book",
                    f"{inst_id} seq {int(seq[i])}",
                    f"best bid {inst.ticks_to_price(int(top[i, 0]))} >= best ask {inst.ticks_to_price(int(top[i, 2]))}",
                )
            extra = int(crossed.sum()) - min(report.show, int(crossed.sum()))
            if extra > 0:
                report.add("crossed_book", None, "", extra)
    if tail is not None:
        reps = _repeated_groups(*tail)
        if len(reps):
            report.add(
                "duplicate_rows",
                f"{inst_id} seq {int(tail[1][reps[0]])}",
                f"the rows at local_ts {int(tail[0]['local_ts'][reps[0]])} repeat exactly (a file imported twice?)",
            )
    if carry is not None and len(carry):
        _e, top, crossed = scanner.scan(carry)
        for i in np.flatnonzero(crossed)[:1]:
            report.add("crossed_book", f"{inst_id} seq {int(carry_seq[i])}", "best bid >= best ask")
    if min_delta is not None:
        report.note(
            f"{inst_id}: {rows:,} rows; smallest receive - venue time {min_delta / 1e6:.3f} ms"
        )
    if kept_conflicting:
        report.note(
            f"{inst_id}: {kept_conflicting:,} trades repeat an earlier trade id with other content "
            "(kept at import by --repair: both are real volume; not an error)"
        )
    return rows


def run_check(args: argparse.Namespace, instruments: Mapping[str, Instrument], say) -> int:
    """`data check STORE|FILE...`: print the report; exit 1 when errors are found."""
    from replay.stores import split_spec

    targets = list(args.target)
    report = Report(show=args.show)
    if args.format is not None:
        from replay.importers import check_sources, parse_sources

        parsed = parse_sources(args.format, targets, instruments, args.instrument, report)
        for rows in check_sources(parsed, report, Mode.STRICT, correct_skew=False):
            say(f"{rows.inst.id}: {len(rows.events):,} rows parsed")
    else:
        if len(targets) != 1:
            raise ConfigError("data check: give one STORE, or FILE... with --format")
        try:
            split_spec(targets[0])
        except ConfigError:
            raise ConfigError(
                f"data check {targets[0]}: not a store spec; for venue files add --format"
            ) from None
        from replay.stores import open_store

        with open_store(targets[0]) as store:
            stored = store.instruments()
            ids = [args.instrument] if args.instrument else list(stored)
            for inst_id in ids:
                if inst_id not in stored:
                    raise DataError(f"{targets[0]}: instrument {inst_id} is not in the store")
                check_store_instrument(store, inst_id, stored[inst_id], report)
    for line in report.lines():
        say(line)
    errors = report.errors
    say(f"check: {report.summary()}")
    return 1 if errors else 0
