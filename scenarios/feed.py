"""Feed perturbations: deterministic rewrites of the replayed event stream.

Two kinds of perturbation act on the feed (`tickparity stress`, docs/scenarios.md):

- A **book perturbation** (`BookPerturbation`) says, for any time, how the book of an
  instrument is *mapped*: a price shift per side (ticks), a depth multiplier per side and a
  trade-volume multiplier (`BookMap`). Maps of several perturbations compose (shifts add,
  multipliers multiply). A map is piecewise constant: it changes only at the perturbation's
  `change_times()` (its step grid), so one pass (`BookMapper`) can rewrite every row with
  integer numpy operations and, at each change, emit a fresh snapshot of the mapped book.
  Why snapshots: the feed is L2 "set level P to q" deltas; once the shift changes, levels set
  under the old shift would stay behind as ghosts. The mapper therefore tracks the original
  book (replay.book.BookScanner) until the last change and re-publishes it, mapped, at every
  change: the output book is always exactly `map(original book)`.
- A **stream perturbation** (`StreamPerturbation`) moves or removes rows in time (stale feed,
  data gap); it sees the chunk iterator itself.

Guarantees (tests/scenarios/test_scenarios_feed.py checks them with hypothesis): output rows
are sorted by local_ts; quantities are >= 0 and prices > 0 (a level or trade mapped to a price
<= 0 is dropped); the book is never crossed by a perturbation (a bid shift above the ask shift
is refused) unless the scenario sets `allow_invalid_feed = true`; memory is bounded by the
chunk size plus, for stream perturbations, the rows of their own window.
Same input + same scenario => the same output, whatever the chunk sizes of the source.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from engine.errors import ConfigError, DataError
from engine.types import EVENT_DTYPE, EventKind, Instrument
from replay.book import IN_SNAP, N_ASK, N_BID, BookScanner

PPM = 1_000_000  # multipliers are exact integers in parts per million
_DELTA = int(EventKind.BOOK_DELTA)
_TRADE = int(EventKind.TRADE)
_SB = int(EventKind.SNAPSHOT_BEGIN)
_SE = int(EventKind.SNAPSHOT_END)
_L3_FIRST = int(EventKind.L3_ADD)
_L3_LAST = int(EventKind.L3_FILL)


@dataclass(frozen=True, slots=True)
class BookMap:
    """How an instrument's book is shown: shifts in ticks, multipliers in ppm (1e6 = x1).

    Deltas of the bid side move by `bid_shift` and their quantity is scaled by
    `bid_depth_ppm`; asks likewise; a trade moves with the side it hit (a buy aggressor
    lifts the ask, so it takes `ask_shift`) and its quantity is scaled by `trade_qty_ppm`.
    Scaled quantities round down but a level that exists keeps at least one lot.
    """

    bid_shift: int = 0
    ask_shift: int = 0
    bid_depth_ppm: int = PPM
    ask_depth_ppm: int = PPM
    trade_qty_ppm: int = PPM

    def compose(self, other: BookMap) -> BookMap:
        return BookMap(
            self.bid_shift + other.bid_shift,
            self.ask_shift + other.ask_shift,
            self.bid_depth_ppm * other.bid_depth_ppm // PPM,
            self.ask_depth_ppm * other.ask_depth_ppm // PPM,
            self.trade_qty_ppm * other.trade_qty_ppm // PPM,
        )

    @property
    def is_identity(self) -> bool:
        return self == IDENTITY

    def same_book(self, other: BookMap) -> bool:
        """True when both maps show the same book (they may differ in trade volume)."""
        return (self.bid_shift, self.ask_shift, self.bid_depth_ppm, self.ask_depth_ppm) == (
            other.bid_shift, other.ask_shift, other.bid_depth_ppm, other.ask_depth_ppm)


IDENTITY = BookMap()


def to_ppm(value: Fraction) -> int:
    """A multiplier as integer ppm, rounded half up (Fractions keep the arithmetic exact)."""
    return int(Fraction(value) * PPM + Fraction(1, 2)) // 1


def round_ticks(value: Fraction) -> int:
    """Nearest integer tick count (half away from zero), for shifts computed from a mid."""
    value = Fraction(value)
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


class Path:
    """A piecewise-linear level through (time ns, value) points, held flat outside them.

    Two points at the same time make a step. Values are Fractions, so a path evaluated at a
    time gives the same exact value on every machine. `change_times(step)` lists the times
    at which a piecewise-constant approximation with that resolution changes: every `step`
    ns along sloped segments, plus each point.
    """

    def __init__(self, points: Sequence[tuple[int, Fraction]]) -> None:
        if not points:
            raise ConfigError("a perturbation path needs at least one point")
        times = [int(t) for t, _ in points]
        if any(b < a for a, b in zip(times, times[1:], strict=False)):
            raise ConfigError(f"perturbation path times go backwards: {times}")
        self.times = times
        self.values = [Fraction(v) for _, v in points]

    def at(self, t: int) -> Fraction:
        idx = bisect_right(self.times, t) - 1
        if idx < 0:
            return self.values[0]
        if idx >= len(self.times) - 1:
            return self.values[-1]
        t0, t1 = self.times[idx], self.times[idx + 1]
        v0, v1 = self.values[idx], self.values[idx + 1]
        return v0 + (v1 - v0) * Fraction(t - t0, t1 - t0)

    def change_times(self, step: int) -> list[int]:
        out: list[int] = []
        for i, (t, v) in enumerate(zip(self.times, self.values, strict=True)):
            out.append(t)
            if i + 1 < len(self.times) and self.values[i + 1] != v:
                out.extend(range(t + step, self.times[i + 1], step))
        return out

    def shifted(self, offset: int) -> Path:
        return Path([(t + offset, v) for t, v in zip(self.times, self.values, strict=True)])


class FeedPerturbation:
    """Base of every feed perturbation. `instrument` is a run instrument id or "*" (all).

    `bind(t0, instruments)` is called once with the first replayed local time (offsets in
    the scenario file count from it) and the run's instruments in run order; it must make
    the perturbation's times absolute. Subclasses are plain classes whose keyword arguments
    are the keys of their `[[perturbations]]` table.
    """

    kind = "feed"
    instrument: str = "*"

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        ids = [i.id for i in instruments]
        if self.instrument != "*" and self.instrument not in ids:
            raise ConfigError(f"{type(self).__name__}: instrument {self.instrument!r} is not a run "
                              f"instrument (run instruments: {ids})")
        self.indices = [k for k, i in enumerate(ids) if self.instrument in ("*", i)]

    def applies_to(self, index: int) -> bool:
        return index in self.indices


class BookPerturbation(FeedPerturbation):
    """A perturbation that maps the book (see BookMap); subclasses implement the two methods.

    `start_ts` is the absolute time the perturbation takes its reference mid (the original
    book's mid then, in ticks); it must be one of `change_times()`.
    """

    start_ts: int

    def change_times(self) -> list[int]:
        raise NotImplementedError

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        raise NotImplementedError


class StreamPerturbation(FeedPerturbation):
    """A perturbation that moves or removes rows in time; `apply` wraps the chunk iterator."""

    def apply(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        raise NotImplementedError


# -- the book mapper -----------------------------------------------------------------------


def _scale(qty: np.ndarray, ppm: int) -> np.ndarray:
    if ppm == PPM:
        return qty
    scaled = qty * np.int64(ppm) // np.int64(PPM)
    return np.where(qty > 0, np.maximum(scaled, 1), 0)


def mid_ticks(scanner: BookScanner) -> int | None:
    """Mid of a scanner's book in ticks (rounded down); one side alone gives that side."""
    nb, na = int(scanner.state[N_BID]), int(scanner.state[N_ASK])
    bid = int(scanner.bid_px[nb - 1]) if nb else None
    ask = int(scanner.ask_px[0]) if na else None
    if bid is not None and ask is not None:
        return (bid + ask) // 2
    return bid if bid is not None else ask


def scan_rows(scanners: list[BookScanner], rows: np.ndarray, only: Iterable[int] | None = None) -> None:
    """Apply the book rows of `rows` to each instrument's scanner (tops are not recorded)."""
    if not len(rows):
        return
    book = rows[rows["kind"] != _TRADE]
    if not len(book):
        return
    targets = range(len(scanners)) if only is None else only
    for i in targets:
        part = book if len(scanners) == 1 else book[book["instrument"] == i]
        if len(part):
            scanners[i].scan(part, np.zeros(len(part), dtype=np.bool_))


def snapshot_rows(scanner: BookScanner, index: int, ts: int, book_map: BookMap = IDENTITY) -> np.ndarray:
    """SNAPSHOT_BEGIN, the mapped levels (best first), SNAPSHOT_END, all stamped ts."""
    bids, bq, asks, aq = scanner.levels()
    bids = bids[::-1] + book_map.bid_shift
    bq = _scale(bq[::-1], book_map.bid_depth_ppm)
    asks = asks + book_map.ask_shift
    aq = _scale(aq, book_map.ask_depth_ppm)
    keep_b = (bids > 0) & (bq > 0)
    keep_a = (asks > 0) & (aq > 0)
    bids, bq, asks, aq = bids[keep_b], bq[keep_b], asks[keep_a], aq[keep_a]
    n = len(bids) + len(asks)
    out = np.zeros(n + 2, dtype=EVENT_DTYPE)
    out["exch_ts"] = ts
    out["local_ts"] = ts
    out["instrument"] = index
    out["kind"] = _DELTA
    out[0]["kind"] = _SB
    out[-1]["kind"] = _SE
    body = out[1:-1]
    body["side"][: len(bids)] = 1
    body["price"][: len(bids)] = bids
    body["qty"][: len(bids)] = bq
    body["side"][len(bids):] = -1
    body["price"][len(bids):] = asks
    body["qty"][len(bids):] = aq
    return out


def map_rows(rows: np.ndarray, maps: Sequence[BookMap]) -> np.ndarray:
    """Rows rewritten by each instrument's map; rows mapped to a price <= 0 are dropped."""
    if not len(rows) or all(m.is_identity for m in maps):
        return rows
    out = rows.copy()
    price, qty, kind, side = out["price"], out["qty"], out["kind"], out["side"]
    drop = np.zeros(len(out), dtype=np.bool_)
    for i, m in enumerate(maps):
        if m.is_identity:
            continue
        mine = np.ones(len(out), np.bool_) if len(maps) == 1 else out["instrument"] == i
        if np.any(mine & (kind >= _L3_FIRST) & (kind <= _L3_LAST)):
            raise DataError("feed perturbations map L2 books; this feed carries L3 rows "
                            f"(instrument index {i}) inside a perturbed window")
        delta = mine & (kind == _DELTA)
        trade = mine & (kind == _TRADE)
        for mask, shift, ppm in ((delta & (side > 0), m.bid_shift, m.bid_depth_ppm),
                                 (delta & (side < 0), m.ask_shift, m.ask_depth_ppm),
                                 (trade & (side > 0), m.ask_shift, m.trade_qty_ppm),
                                 (trade & (side <= 0), m.bid_shift, m.trade_qty_ppm)):
            if not mask.any():
                continue
            price[mask] += shift
            qty[mask] = _scale(qty[mask], ppm)
        # a contract's mark moves with the book it is derived from (docs/derivatives.md)
        mark = mine & (kind == EventKind.MARK_PRICE.value)
        if mark.any():
            price[mark] += (m.bid_shift + m.ask_shift) // 2
        drop |= (delta | trade | mark) & (price <= 0)
    return out[~drop] if drop.any() else out


class BookMapper:
    """Applies composed book perturbations to a chunk stream (see the module docstring)."""

    def __init__(self, perturbations: Sequence[BookPerturbation], n_instruments: int,
                 allow_invalid: bool = False, label: str = "scenario") -> None:
        self.perturbations = list(perturbations)
        self.n = n_instruments
        self.allow_invalid = allow_invalid
        self.label = label

    def apply(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        times = sorted({t for p in self.perturbations for t in p.change_times()})
        scanners = [BookScanner() for _ in range(self.n)]
        maps = [IDENTITY] * self.n
        refs: dict[tuple[int, int], int] = {}
        k = 0
        for chunk in chunks:
            if not len(chunk):
                continue
            if k >= len(times):
                yield map_rows(chunk, maps)
                continue
            local = chunk["local_ts"]
            parts: list[np.ndarray] = []
            pos = 0
            while k < len(times):
                change = times[k]
                cut = int(np.searchsorted(local, change, side="left"))
                if cut >= len(chunk):
                    break
                segment = chunk[pos:cut]
                scan_rows(scanners, segment)
                parts.append(map_rows(segment, maps))
                pos = cut
                new_maps = self._maps_at(change, scanners, refs, maps)
                for i in range(self.n):
                    if not new_maps[i].same_book(maps[i]):
                        parts.append(snapshot_rows(scanners[i], i, change, new_maps[i]))
                maps = new_maps
                k += 1
            rest = chunk[pos:]
            if k < len(times):
                scan_rows(scanners, rest)
            parts.append(map_rows(rest, maps))
            out = np.concatenate(parts) if len(parts) > 1 else parts[0]
            if len(out):
                yield out

    def _maps_at(self, t: int, scanners: list[BookScanner], refs: dict[tuple[int, int], int],
                 old: list[BookMap]) -> list[BookMap]:
        out = []
        for i in range(self.n):
            if scanners[i].state[IN_SNAP]:
                # the original feed is mid-snapshot: keep the old map until the next change
                out.append(old[i])
                continue
            m = IDENTITY
            for pi, p in enumerate(self.perturbations):
                if not p.applies_to(i) or t < p.start_ts:
                    continue
                ref = refs.get((pi, i))
                if ref is None:
                    ref = mid_ticks(scanners[i])
                    if ref is None:
                        raise DataError(f"{self.label}: {type(p).__name__} starts at {t} ns but instrument "
                                        f"index {i} has no book yet; start it later (`at`)")
                    refs[(pi, i)] = ref
                m = m.compose(p.book_map(t, i, ref))
            if m.bid_shift > m.ask_shift and not self.allow_invalid:
                raise ConfigError(f"{self.label}: the perturbations would cross the book of instrument "
                                  f"index {i} at {t} ns (bid shift {m.bid_shift} > ask shift {m.ask_shift}"
                                  " ticks); set allow_invalid_feed = true in [scenario] to allow it")
            out.append(m)
        return out


# -- stream perturbations' shared machinery -------------------------------------------------


class Holding:
    """Rows held back to be released at local time `release_ts`, in source order.

    The release goes before the first later row stamped at or after release_ts, so the
    stream stays sorted; rows with equal stamps keep their source order (held rows came
    first in the source).
    """

    def __init__(self, release_ts: int) -> None:
        self.release_ts = release_ts
        self.parts: list[np.ndarray] = []
        self.released = False

    def hold(self, rows: np.ndarray) -> None:
        if len(rows):
            self.parts.append(rows)

    def take(self) -> np.ndarray:
        self.released = True
        out = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=EVENT_DTYPE)
        self.parts = []
        return out


def window_mask(chunk: np.ndarray, indices: Sequence[int], start: int, end: int, n: int) -> np.ndarray:
    local = chunk["local_ts"]
    mask = (local >= start) & (local < end)
    if len(indices) < n:
        mask &= np.isin(chunk["instrument"], np.asarray(indices, dtype=np.int64))
    return mask


def release(chunk: np.ndarray, holding: Holding, make_release) -> np.ndarray:
    """Insert `make_release()` rows before the first row at/after holding.release_ts."""
    cut = int(np.searchsorted(chunk["local_ts"], holding.release_ts, side="left"))
    if cut >= len(chunk):
        return chunk
    return np.concatenate([chunk[:cut], make_release(), chunk[cut:]])


def check_feed(chunks: Iterable[np.ndarray], label: str) -> Iterator[np.ndarray]:
    """Pass chunks through, refusing what a perturbation must never produce: local_ts going
    backwards, a negative quantity, a price <= 0 on a book delta or trade."""
    last = None
    for chunk in chunks:
        if not len(chunk):
            continue
        local = chunk["local_ts"]
        bad = np.flatnonzero(np.diff(local) < 0)
        if (last is not None and int(local[0]) < last) or len(bad):
            row = 0 if not len(bad) else int(bad[0]) + 1
            raise DataError(f"{label}: perturbed feed goes back in time at row {row} "
                            f"(local_ts {int(local[row])})")
        kinds = chunk["kind"]
        priced = (kinds == _DELTA) | (kinds == _TRADE)
        neg = np.flatnonzero((chunk["qty"] < 0) | (priced & (chunk["price"] <= 0)))
        if len(neg):
            r = chunk[int(neg[0])]
            raise DataError(f"{label}: perturbed feed has price {int(r['price'])} qty {int(r['qty'])} "
                            f"at local_ts {int(r['local_ts'])}")
        last = int(local[-1])
        yield chunk
