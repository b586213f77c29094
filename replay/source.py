"""`open_source`: the one entry point the backtest runner uses to read market data.

A source yields EVENT_DTYPE chunks of bounded size for exactly the run's instruments,
with `instrument` = the index of the instrument in the run order. Rows come in
`(local_ts, run order, seq)` order: per instrument each store streams its rows by
`(local_ts, seq)` and `merge_streams` interleaves instruments, breaking local-time ties
by the instrument's position in the run order and keeping each instrument's own order.
Memory is bounded by a few chunks per instrument, whatever the length of the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from engine.errors import ConfigError, DataError
from engine.types import EVENT_DTYPE, Instrument
from replay.schema import StoredInstrument, check_spec, format_ns, parse_duration
from replay.stores import open_store, split_spec

# Rows per chunk handed to the venue. Why 1 << 18 and not more: the chunk is held up to
# three times at once (the merge's block here, the feed-latency copy, SimCore's feed store
# of 2 x the chunk), so 1M-row chunks cost ~200 MB before the first order, a fifth of the
# 10M-event run's 1 GB budget (issue 16); per-chunk Python overhead is ~0.1 ms, nothing
# next to the ~30 ms the venue spends on 262,144 rows. The rows and their order do not
# depend on it (tests/replay/test_replay_source.py).
DEFAULT_CHUNK_ROWS = 1 << 18
_INT64_MAX = np.iinfo(np.int64).max


def merge_streams(streams: Sequence[Iterator[np.ndarray]], chunk_rows: int) -> Iterator[np.ndarray]:
    """k-way merge of per-instrument chunk streams sorted by local_ts.

    Stream i's rows get `instrument = i`. Output order: (local_ts, i, position in stream i).
    Rows are released up to the smallest "last buffered local_ts" among the live streams,
    which no future row can undercut, so output is final and memory stays bounded.
    """
    chunk_rows = max(1, int(chunk_rows))
    k = len(streams)
    if k == 0:
        return
    if k == 1:
        yield from _rechunk(_tagged(streams[0], 0), chunk_rows)
        return
    iters = [iter(s) for s in streams]
    buffers: list[np.ndarray | None] = [None] * k
    live = [True] * k

    def refill(i: int) -> None:
        while live[i]:
            try:
                nxt = next(iters[i])
            except StopIteration:
                live[i] = False
                return
            if len(nxt) == 0:
                continue
            nxt = nxt.copy() if not nxt.flags.writeable else nxt
            nxt["instrument"] = i
            buf = buffers[i]
            buffers[i] = nxt if buf is None or len(buf) == 0 else np.concatenate([buf, nxt])
            return

    for i in range(k):
        refill(i)
    pending: list[np.ndarray] = []
    pending_rows = 0
    while True:
        bound = _INT64_MAX
        for i in range(k):
            if live[i]:
                buf = buffers[i]
                last = int(buf["local_ts"][-1]) if buf is not None and len(buf) else None
                if last is None:
                    continue
                bound = min(bound, last)
        any_live = any(live)
        parts = []
        for i in range(k):
            buf = buffers[i]
            if buf is None or len(buf) == 0:
                continue
            if not any_live:
                cut = len(buf)
            else:
                cut = int(np.searchsorted(buf["local_ts"], bound, side="left"))
            if cut:
                parts.append(buf[:cut])
                buffers[i] = buf[cut:]
        if parts:
            merged = np.concatenate(parts) if len(parts) > 1 else parts[0]
            if len(parts) > 1:
                # stable sort by local_ts: parts are in stream order, ties keep it
                merged = merged[np.argsort(merged["local_ts"], kind="stable")]
            pending.append(merged)
            pending_rows += len(merged)
            while pending_rows >= chunk_rows:
                block = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield block[:chunk_rows]
                rest = block[chunk_rows:]
                pending = [rest] if len(rest) else []
                pending_rows = len(rest)
        if not any_live:
            break
        # advance every live stream whose whole buffer is at or past the bound
        for i in range(k):
            buf = buffers[i]
            if live[i] and (buf is None or len(buf) == 0 or int(buf["local_ts"][-1]) <= bound):
                refill(i)
    if pending_rows:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def _tagged(stream: Iterator[np.ndarray], index: int) -> Iterator[np.ndarray]:
    for chunk in stream:
        if len(chunk):
            if not chunk.flags.writeable:
                chunk = chunk.copy()
            chunk["instrument"] = index
            yield chunk


def _rechunk(stream: Iterator[np.ndarray], chunk_rows: int) -> Iterator[np.ndarray]:
    """Re-cut a stream into chunks of at most chunk_rows (exactly, except the last)."""
    pending: list[np.ndarray] = []
    rows = 0
    for chunk in stream:
        if rows == 0 and len(chunk) == chunk_rows:
            yield chunk
            continue
        pending.append(chunk)
        rows += len(chunk)
        while rows >= chunk_rows:
            block = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield block[:chunk_rows]
            rest = block[chunk_rows:]
            pending = [rest] if len(rest) else []
            rows = len(rest)
    if rows:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


class EventSource:
    """Iterable of event chunks for one run (see `open_source`)."""

    def __init__(
        self,
        spec: str,
        instrument_ids: list[str],
        make_streams,
        estimated_events: int | None,
        chunk_rows: int,
        on_close=None,
        warnings: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.instrument_ids = instrument_ids
        self.estimated_events = estimated_events
        # one line per instrument whose data covers only part of the requested window
        self.warnings = list(warnings or [])
        self.chunk_rows = chunk_rows
        self._make_streams = make_streams
        self._on_close = on_close

    def __iter__(self) -> Iterator[np.ndarray]:
        streams, release = self._make_streams()
        try:
            yield from merge_streams(streams, self.chunk_rows)
        finally:
            for stream in streams:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            if release is not None:
                release()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventSource({self.spec!r}, instruments={self.instrument_ids})"


def open_source(
    spec: str,
    instruments: Mapping[str, Instrument],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    seed: int | None = None,
    received: tuple[int, int] | None = None,
) -> EventSource:
    """Open market data for a run.

    `instruments` is ordered: its order is the run order, and `event.instrument` in the
    yielded chunks indexes `source.instrument_ids`. Rows with `start_ns <= local_ts <
    end_ns` are replayed; a window that starts mid-stream begins with a snapshot of the
    book at `start_ns` (`window_stream`, the one window implementation). Raises DataError
    when the data lacks an instrument or stored it with another tick/lot size, the store
    does not exist, or the window holds no row of an instrument (`check_window`); a window
    the data covers only in part is reported in `source.warnings`. `seed` is accepted for
    the runner's convenience and unused: `synthetic:SEED[:DURATION]` carries its own seed.
    `received`: a recorded session's rows' span, for its window (`check_window`).
    """
    if chunk_rows <= 0:
        raise ConfigError(f"chunk_rows={chunk_rows}: must be > 0")
    if not instruments:
        raise ConfigError("open_source: no instruments given for the run")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ConfigError(f"time window: end {end_ns} is not after start {start_ns}")
    ids = list(instruments)
    kind, rest = split_spec(spec)
    if kind == "synthetic":
        return _synthetic_source(spec, rest, instruments, start_ns, end_ns, chunk_rows)
    warnings: list[str] = []
    with open_store(spec) as store:
        stored = store.instruments()
        for inst_id in ids:
            check_spec(stored_instrument(spec, stored, inst_id), instruments[inst_id], spec)
        if start_ns is not None or end_ns is not None:
            warnings = check_window(spec, store_spans(store, ids), start_ns, end_ns, received)
        estimated = sum(store.count(i, start_ns, end_ns) for i in ids)
    per_stream = max(1024, min(chunk_rows, 1 << 18))

    def make_streams():
        # each iteration opens the store and closes it when the streams end (chDB allows
        # one engine per process, so no handle is kept between iterations)
        return _store_streams(spec, ids, start_ns, end_ns, per_stream)

    return EventSource(spec, ids, make_streams, estimated, chunk_rows, warnings=warnings)


def stored_instrument(spec: str, stored: Mapping[str, StoredInstrument], inst_id: str) -> StoredInstrument:
    """The store's record of inst_id; DataError naming what the data has otherwise."""
    have = stored.get(inst_id)
    if have is None:
        known = ", ".join(sorted(stored)) or "none"
        raise DataError(f"{spec}: instrument {inst_id} is not in the data (it has: {known})")
    return have


def _store_streams(spec, ids, start_ns, end_ns, per_stream):
    store = open_store(spec)
    return [window_stream(store, i, start_ns, end_ns, per_stream) for i in ids], store.close


# -- the time window: one implementation for every reader and writer ----------------------


def store_spans(store, ids: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
    """(first, last) local_ts of each instrument in `ids` (None, None when it has no rows)."""
    stats = {s.id: (s.first_local_ts, s.last_local_ts) for s in store.stats()}
    return {i: stats.get(i, (None, None)) for i in ids}


def _window_text(start_ns: int | None, end_ns: int | None) -> str:
    lo = "the start of the data" if start_ns is None else format_ns(start_ns)
    hi = "the end of the data" if end_ns is None else format_ns(end_ns)
    return f"{lo} .. {hi}"


def check_window(
    spec: str,
    spans: Mapping[str, tuple[int | None, int | None]],
    start_ns: int | None,
    end_ns: int | None,
    received: tuple[int, int] | None = None,
) -> list[str]:
    """Compare a replay/export window `[start_ns, end_ns)` with each instrument's data.

    `received`: (first, last) local_ts of the rows a recorded session received, for a
    session's window (`backtest --session-window RUN`): the data must cover what the
    session had within the window, not the whole window, since the session's rows
    legitimately end before its last step (its shutdown) and may begin after its start
    step; without this every session window warned `covers only ...` when used as documented.

    `spans` maps instrument id -> (first, last) local_ts in ns. Why: without this check a
    window after the data replays the last known book restamped at the window start and
    exits 0 (issue 9). Raises DataError (one line, the data's time span per instrument)
    when an instrument has no row in the window; returns one warning per instrument whose
    data covers only part of it (starts after `start_ns` or ends before `end_ns`)."""
    empty, partial = [], []
    for inst_id, (first, last) in spans.items():
        if first is None or last is None:
            empty.append(f"{inst_id} has no rows")
            continue
        if (end_ns is not None and first >= end_ns) or (start_ns is not None and last < start_ns):
            empty.append(f"{inst_id} spans {format_ns(first)} .. {format_ns(last)}")
            continue
        lo, hi = start_ns, None if end_ns is None else end_ns - 1
        if received is not None:
            lo = received[0] if lo is None else max(lo, received[0])
            hi = received[1] if hi is None else min(hi, received[1])
        if (lo is not None and first > lo) or (hi is not None and last < hi):
            partial.append(
                f"{spec}: {inst_id} covers only {format_ns(max(first, start_ns or first))} .. "
                f"{format_ns(last if end_ns is None else min(last, end_ns - 1))} of the window "
                f"{_window_text(start_ns, end_ns)}"
            )
    if empty:
        raise DataError(
            f"{spec}: no data in the window {_window_text(start_ns, end_ns)}: "
            + "; ".join(empty)
            + " (choose --from/--to inside the data; 'tickparity data ls' lists the spans)"
        )
    return partial


def window_stream(
    store,
    inst_id: str,
    start_ns: int | None,
    end_ns: int | None,
    chunk_rows: int,
    with_seq: bool = False,
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
    """One instrument's rows in [start, end); when the window starts mid-stream, first a
    snapshot of the book as it stood at start (`book_at`: rebuilt from the last snapshot
    before it), stamped local_ts = start_ns and exch_ts = the last venue time seen before
    it, so nothing reading a window starts on a half-known book.

    Used by the replay (`open_source`) and by `data export`, so an exported window replays
    exactly like the same window read from the store. With `with_seq`, yields (events,
    seq) pairs; the snapshot rows get the seq numbers just below the window's first row
    (the rows they stand for are not part of the window)."""
    warm = None
    if start_ns is not None:
        warm = book_at(store, inst_id, int(start_ns), chunk_rows)
    rows = store.stream(inst_id, start_ns, end_ns, chunk_rows, with_seq=with_seq)
    if warm is None:
        yield from rows
        return
    if not with_seq:
        yield warm
        yield from rows
        return
    first = next(rows, None)
    below = int(first[1][0]) if first is not None else store.max_seq(inst_id) + 1
    yield warm, np.arange(below - len(warm), below, dtype=np.int64)
    if first is not None:
        yield first
        yield from rows


def book_at(store, inst_id: str, ts: int, chunk_rows: int = 1 << 18) -> np.ndarray | None:
    """SNAPSHOT rows of the book at local time ts (None when no book rows come before ts)."""
    from engine.types import EventKind
    from replay.book import BookScanner

    begin = store.last_snapshot_before(inst_id, ts)
    scanner = BookScanner()
    last_exch = None
    for chunk in store.stream(inst_id, begin, ts, chunk_rows):
        book = chunk[chunk["kind"] != EventKind.TRADE]
        if len(book):
            scanner.scan(book, np.zeros(len(book), dtype=np.bool_))
            last_exch = int(book["exch_ts"][-1])
    if last_exch is None:
        return None
    bids, bq, asks, aq = scanner.levels()
    n = len(bids) + len(asks)
    out = np.zeros(n + 2, dtype=EVENT_DTYPE)
    out["exch_ts"] = last_exch
    out["local_ts"] = ts
    out["kind"] = EventKind.BOOK_DELTA
    out[0]["kind"] = EventKind.SNAPSHOT_BEGIN
    out[-1]["kind"] = EventKind.SNAPSHOT_END
    body = out[1:-1]
    body["side"][: len(bids)] = 1
    body["price"][: len(bids)] = bids[::-1]  # best first
    body["qty"][: len(bids)] = bq[::-1]
    body["side"][len(bids) :] = -1
    body["price"][len(bids) :] = asks
    body["qty"][len(bids) :] = aq
    return out


def parse_synthetic_spec(rest: str) -> tuple[int, int]:
    """'SEED[:DURATION]' -> (seed, duration_ns)."""
    from replay.synthetic import DEFAULT_DURATION_NS

    seed_text, _, duration_text = rest.partition(":")
    try:
        seed = int(seed_text)
    except ValueError:
        raise ConfigError(
            f"synthetic:{rest}: SEED must be an integer (synthetic:SEED[:DURATION])"
        ) from None
    if seed < 0:
        raise ConfigError(f"synthetic:{rest}: SEED must be >= 0")
    duration = parse_duration(duration_text) if duration_text else DEFAULT_DURATION_NS
    return seed, duration


def _synthetic_source(spec, rest, instruments, start_ns, end_ns, chunk_rows) -> EventSource:
    from replay.synthetic import DEFAULT_START_NS, make_generators

    seed, duration = parse_synthetic_spec(rest)
    # the synthetic market starts at the window start (default 2024-01-01) and lasts
    # DURATION: a window beyond it is checked like a store's (check_window)
    begin = DEFAULT_START_NS if start_ns is None else int(start_ns)
    ids = list(instruments)
    warnings = check_window(spec, dict.fromkeys(ids, (begin, begin + duration - 1)), start_ns, end_ns)
    finish = begin + duration if end_ns is None else min(int(end_ns), begin + duration)
    # ~1,300 events/s per instrument (measured on BTC/USDT): an estimate for progress bars
    estimated = int((finish - begin) / 1e9 * 1300) * len(ids)
    per_stream = max(4096, min(chunk_rows, 1 << 16))

    def make_streams():
        gens = make_generators([instruments[i] for i in ids], seed, begin, finish)
        return [_until(gen.chunks(per_stream), finish) for gen in gens], None

    return EventSource(spec, ids, make_streams, estimated, chunk_rows, warnings=warnings)


def _until(stream: Iterator[np.ndarray], end_ns: int) -> Iterator[np.ndarray]:
    """Drop rows whose local_ts (exch_ts + latency) lands at or after end_ns."""
    for chunk in stream:
        if len(chunk) and int(chunk["local_ts"][-1]) >= end_ns:
            cut = int(np.searchsorted(chunk["local_ts"], end_ns, side="left"))
            if cut:
                yield chunk[:cut]
            return
        yield chunk


__all__ = [
    "EVENT_DTYPE",
    "EventSource",
    "check_window",
    "merge_streams",
    "open_source",
    "window_stream",
]


def is_session_recording(data: str) -> bool:
    """Whether `data` (a run's `data` spec) is a session's own recording: `duckdb:RUN/
    market.duckdb` beside the session's journal (session.jsonl). Its rows carry the
    session's receipt in local_ts, so a recorded feed latency (`latency.feed_file`) must
    not be added to them again (venues/sim/latency.py recorded_feed_shift). Known by the
    run directory: the store holds no mark of it, and a generated or imported dataset's
    local_ts is later than its exch_ts as well."""
    if not data.startswith("duckdb:"):
        return False
    from pathlib import Path

    store = Path(data[len("duckdb:"):])
    return store.name == "market.duckdb" and (store.parent / "session.jsonl").is_file()
