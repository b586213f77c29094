"""What a paper/testnet/live session writes as it runs, so a crash loses at most a second.

Files in the run directory (docs/live.md "Recording"):

- `rows.bin`: every market row the session pushed into its book, EVENT_DTYPE records in
  push order (the exact input of the simulated venue; the replay reads it back);
- `market.duckdb`: the same rows as a dataset (`duckdb:RUN/market.duckdb`), one import
  transaction per second, so a backtest of the session's period runs on what it received;
- `session.jsonl`: the driver's journal: the session config line, then one line per step
  (`now`: local ns, `rows`: rows pushed before it, `r`: venue reports applied, `c`: a
  driver action such as the shutdown's cancel-all), and the stop line;
- `latency.csv`: each measured order round trip, `ts_ns,entry_ns,response_ns,command,seq,
  venue,entry_min_ns,entry_max_ns[,held]` (ts = the session's time of the request, the
  decision's; seq = the venue's command number, the send order of requests of one time;
  venue = the session's venue name: a backtest's `[venues.X]` takes X's lines; a venue's
  refusal counts, ours does not, except the refusals a venue's rate-limit hold caused;
  entry_min / entry_max = the bounds of a refused submit's entry, which has no venue time:
  empty on every other line; held = on a request refused because of a venue's 429 / 418
  hold only: `rate_limited` / `ip_banned` when the venue answered it so, `rate_limited-local`
  / `ip_banned-local` when the session refused it itself while the hold lasted, never sent,
  entry 0 and response its time to the refusal: `round_trip`'s `held`; and a `health` line,
  `ts,0,0,health,,venue,,,state`, for each change of a venue's health the session applied,
  at the step it applied it: `venue_health`), the file the `recorded` latency model reads;
- `feed_latency.csv`: the feed latency of each market message, `ts_ns,feed_ns,stream,
  instrument` (ts = the venue's time of the message, feed = local receipt - ts, stream
  `book` or `trade`; one line per depth diff, one per trade; ccxt's opening snapshot has no
  venue time and is left out), the file a backtest's `latency.feed_file` reads
  (venues/sim/latency.py RecordedFeed), so it sees each window when the session did;
- `report_latency.csv` (testnet/live; a paper session writes none): the latency of each venue report the user stream
  delivered, `ts_ns,response_ns,report,venue,stamp_ns` (ts = the venue's time of the
  report: an executionReport's transaction time `T`, else its event time `E`; response =
  local receipt - ts; report = the order status it reports: acknowledged,
  partially_filled, filled, cancelled, ...; stamp = the unit of the venue's times, 1000000
  for whole ms, 1000 for µs: `stamp_ns`), the file a backtest's `latency.report_file` reads: the
  response leg of its order latency (fills and order updates reach the strategy when the
  session's did), apart from the request leg of latency.csv.

All six are appended in memory and flushed (and fsynced) at most a second apart; the
audit log is flushed at the same time.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.types import EVENT_DTYPE, EventKind, Instrument
from venues.sim.latency import LOCAL_SUFFIX

FLUSH_NS = 1_000_000_000
MS = 1_000_000
REPORT_LATENCY_HEADER = "ts_ns,response_ns,report,venue,stamp_ns"
#: venue-timed round trips whose fastest response leg times a refusal (round_trip): a few
#: seconds of a quoting strategy's requests, so the figure follows the load of the path
REFUSAL_WINDOW = 32


#: latency.csv's header (module doc)
LATENCY_HEADER = "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held"


def queued_arrival(wire_ns: int, queue: Sequence[tuple[int, int]]) -> int | None:
    """A refused request's arrival at the venue, from when it was written (`wire_ns`, local
    ns) and the venue's (written, arrival) of the requests around it (`queue`, sorted by
    written; arrivals from their venue times), as a first-in first-out server: it arrived
    no sooner than the fastest wire leg (min arrival - written) after it was written; no
    sooner than the request written just before it, plus the venue's service time (the
    median gap between two arrivals where the second was written before the first had
    arrived: requests that queued); and no later than the request written just after it.
    None without a queue. Why a queue: the venue reads requests one at a time (the
    emulator's event loop, Binance's order entry), so a request written a microsecond after
    another is answered after it; measured on the emulator, the refused order arrived after
    the accepted sibling written just before it, 0.4-1 ms later (bench/README.md "Parity").
    Hand-computed in tests/modes/live/test_recording_refusal.py."""
    if not queue:
        return None
    lo = wire_ns + min(arrival - written for written, arrival in queue)
    gaps = sorted(a2 - a1 for (_, a1), (w2, a2) in zip(queue, queue[1:], strict=False)
                  if w2 < a1 < a2)
    before = [arrival for written, arrival in queue if written <= wire_ns]
    if before:
        lo = max(lo, before[-1] + (gaps[(len(gaps) - 1) // 2] if gaps else 0))
    after = [arrival for written, arrival in queue if written > wire_ns]
    return min(lo, after[0]) if after else lo


class SessionRecorder:
    """Appends a session's inputs to its run directory (see module doc)."""

    def __init__(self, out: Path, instruments: Mapping[str, Instrument], *, store: bool = True,
                 reports: bool = True) -> None:
        """`reports`: write report_latency.csv (testnet/live). A paper session has no user
        stream (its simulated venue's reports reach the strategy after the configured
        response latency, not a measured one), so it passes False and gets no such file: a
        header-only file looked like a recording a backtest could read as
        `latency.report_file` (docs/live.md "Run directory")."""
        self.out = Path(out)
        self.instruments = dict(instruments)
        self._ids = list(self.instruments)
        self._rows = open(self.out / "rows.bin", "ab")
        self._journal = open(self.out / "session.jsonl", "a", encoding="utf-8")
        self._latency = open(self.out / "latency.csv", "a", encoding="utf-8")
        if self._latency.tell() == 0:
            self._latency.write(f"{LATENCY_HEADER}\n")
        self._feed = open(self.out / "feed_latency.csv", "a", encoding="utf-8")
        if self._feed.tell() == 0:
            self._feed.write("ts_ns,feed_ns,stream,instrument\n")
        self._report = open(self.out / "report_latency.csv", "a", encoding="utf-8") if reports else None
        if self._report is not None and self._report.tell() == 0:
            self._report.write(f"{REPORT_LATENCY_HEADER}\n")
        # the response legs of the latest REFUSAL_WINDOW round trips with a venue time;
        # refusals waiting for the next one (round_trip)
        # per venue (each venue's path has its own delays)
        self._responses: dict[str, deque[int]] = {}
        self._refusals: dict[str, list[tuple[int, int, str, int | None, int | None, str | None]]] = {}
        # (written, arrival) of the latest 2 * REFUSAL_WINDOW round trips with a venue time
        # and a wire time (venues/ccxt/wire.py): the venue's queue of requests (queued_arrival)
        self._queue: dict[str, deque[tuple[int, int]]] = {}
        # (venue, client id) -> the venue time of the order's latest fill seen (fill_seen): a
        # cancel the venue refused because the order had filled arrived after that fill;
        # refused cancels wait for the next flush so that the fill's report can come in
        self._filled: dict[tuple[str, str], int] = {}
        self._cancel_refusals: list[tuple[str, tuple[int, int, str, int | None, int | None, str | None], str]] = []
        self._pending_rows: list[np.ndarray] = []
        self._store_rows: list[np.ndarray] = []
        self._store = None
        if store:
            from replay.schema import StoredInstrument
            from replay.stores import open_store

            self._store = open_store(f"duckdb:{self.out / 'market.duckdb'}", create=True)
            self._stored = {i: StoredInstrument.of(inst) for i, inst in self.instruments.items()}
        self._last_flush: int | None = None
        # per venue: the unit of its venue times in ns (venues/ccxt/timeunit.py: 1 ms unless
        # the session asked for µs; 1 for paper mode's simulated venue, exact to the ns)
        self.stamp_ns: dict[str, int] = {}
        self.audit: Any = None  # the session's AuditLog, flushed with the rest

    def rows(self, rows: np.ndarray) -> None:
        self._pending_rows.append(rows)
        self._store_rows.append(rows)
        self._feed_latency(rows)

    def _feed_latency(self, rows: np.ndarray) -> None:
        """feed_latency.csv lines of one batch (module doc): a book batch is one depth
        message (one venue time), a trade batch one line per trade."""
        kind = rows["kind"]
        if (kind == EventKind.SNAPSHOT_BEGIN).any():
            return  # ccxt's REST snapshot: stamped with our clock, no venue time
        trade = kind == EventKind.TRADE
        book = (kind == EventKind.BOOK_DELTA) | (kind == EventKind.CLEAR)
        for stream, sel in (("book", book), ("trade", trade)):
            if not sel.any():
                continue
            part = rows[sel]
            keys = np.unique(part[["instrument", "exch_ts", "local_ts"]])
            for inst, exch, local in keys.tolist():
                self._feed.write(f"{exch},{local - exch},{stream},{self._ids[inst]}\n")

    def journal(self, record: dict[str, Any]) -> None:
        self._journal.write(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")

    def round_trip(self, send_ns: int, exch_ns: int | None, reply_ns: int, command: str,
                   seq: int | None = None, venue: str = "", *, wire_ns: int | None = None,
                   client_id: str | None = None, held: str | None = None) -> None:
        """One order round trip: entry = the request's arrival at the venue - send;
        response = the rest. The arrival is the venue's time when it falls inside the round
        trip; a venue time in whole units of the venue's clock (Binance's transactTime: ms,
        or µs when asked for: `stamp_ns[venue]`, 1 ms when not set) stands for its unit: the
        arrival lies in [T, T + unit) and in [send, reply], and is taken at the middle of
        both (a floored ms stamp put every arrival 0.5 ms early on average, and one within
        the send's own millisecond before the send). A stamp that is not a whole unit is
        exact (a caller's own ns).

        A reply with no venue time (a venue's refusal: Binance's error body has none) waits
        for the next venue-timed reply (at most until the next flush) and is placed by when
        its request was written (`wire_ns`, the session's clock: venues/ccxt/wire.py), in
        the venue's queue of requests: queued_arrival over the (written, arrival) of the
        latest 2 x REFUSAL_WINDOW venue-timed round trips with a wire time. That estimate
        is kept within the path: no sooner than the send, no later than the reply less the
        shortest response leg of the REFUSAL_WINDOW venue-timed replies before it and the
        next one (the latest arrival the path allows, which alone is the rule without a
        wire time: paper mode, a client that is not aiohttp's; half the round trip without
        any reply). Why the write time: the reply's time holds every delay of the session's
        own (an event loop that read the reply late, a stall before the request left), so
        the latest-allowed arrival was 1.8 ms late at the median and up to 117 ms late;
        measured against the emulator's journal (bench_parity's at-touch maker, 4 sessions,
        102 refusals): median error -0.5 ms (old +1.7 ms), 58% within 1 ms (old 33%), 40
        more than 1 ms early (old 0), worst 23 ms early (old 21 ms late) (docs/live.md "A
        refused order's arrival"). A refused cancel (`client_id` given) waits for the next
        flush instead and arrives no sooner than the order's latest fill the session saw
        by then (`fill_seen`) when that fill's venue time lies within the round trip: the
        venue refused the cancel because the order had filled, so it arrived after the fill
        (placed before it, the backtest's venue cancelled the order and missed the fill:
        bench/README.md "Parity", session 9). `seq`: the command's number at its venue (empty when
        unknown: paper mode's simulated round trips). `venue`: the venue's name in the
        session's config; refusals take the replies of their own venue.

        `held`: a request refused because of the venue's rate-limit hold (module doc;
        venues/sim/latency.py HELD_REASONS): the venue's 429 / 418 answer (placed as any
        refusal, with no entry window: a backtest refuses it wherever it would arrive), or,
        with LOCAL_SUFFIX, the session's own refusal while a hold lasted: never sent,
        written at once with entry 0 and the time to the refusal as its response
        (`reply_ns`: when the session got it). A backtest under the `recorded` model
        refuses the same request with the same reason at the same time
        (venues/sim/latency.py held_requests)."""
        send_ns, reply_ns = int(send_ns), int(reply_ns)
        rtt = max(reply_ns - send_ns, 0)
        if held is not None and held.endswith(LOCAL_SUFFIX):
            self._write_round_trip(send_ns, 0, rtt, command, seq, venue, held=held)
            return
        lo = hi = None if exch_ns is None else int(exch_ns)
        unit = self.stamp_ns.get(venue, MS)
        if lo is not None and unit > 1 and lo % unit == 0:  # a whole-unit stamp: its unit
            lo, hi = max(lo, send_ns), min(lo + unit - 1, reply_ns)
        if not (lo is not None and send_ns <= lo <= hi <= reply_ns):
            if command == "cancel" and client_id is not None:
                self._cancel_refusals.append((venue, (send_ns, reply_ns, command, seq, wire_ns, held), client_id))
            else:
                self._refusals.setdefault(venue, []).append((send_ns, reply_ns, command, seq, wire_ns, held))
            return
        arrival = (lo + hi) // 2
        entry = arrival - send_ns
        self._write_round_trip(send_ns, entry, rtt - entry, command, seq, venue)
        response = rtt - entry
        responses = self._responses.setdefault(venue, deque(maxlen=REFUSAL_WINDOW))
        fastest = min([*responses, response])
        queue = self._queue.setdefault(venue, deque(maxlen=2 * REFUSAL_WINDOW))
        if wire_ns is not None:
            queue.append((int(wire_ns), arrival))
        for refusal in self._refusals.pop(venue, ()):
            self._write_refusal(*refusal, fastest, queue, venue)
        responses.append(response)

    def _write_refusal(self, send_ns: int, reply_ns: int, command: str, seq: int | None, wire_ns: int | None,
                       held: str | None, response: int | None, queue: Iterable[tuple[int, int]], venue: str,
                       after_ns: int | None = None) -> None:
        """A refusal's line (round_trip): the entry estimate, and for a submit the bounds of
        its entry, from when its request was written (the send when unknown) to the latest
        arrival the path allows (the reply less the fastest response leg; the reply itself
        without one). The bounds are what a backtest's venue uses (venues/sim/latency.py
        refusal_windows: the first moment of the window at which the venue refuses the
        order); the estimate is for everything else that reads an entry. A refusal the
        venue's rate-limit hold caused (`held`) has no window: a backtest refuses it as the
        venue did, wherever it arrives."""
        rtt = max(reply_ns - send_ns, 0)
        latest = rtt if response is None else max(rtt - response, 0)
        entry = rtt // 2 if response is None else latest
        earliest = 0
        if wire_ns is not None:
            earliest = min(max(int(wire_ns) - send_ns, 0), latest)
            arrival = queued_arrival(int(wire_ns), sorted(queue))
            if arrival is not None:
                entry = min(max(arrival - send_ns, 0), entry)
        if after_ns is not None and send_ns <= after_ns <= reply_ns:  # it arrived after this venue time
            entry = max(entry, after_ns - send_ns)
        window = (earliest, latest) if command == "submit" and held is None else None
        self._write_round_trip(send_ns, entry, rtt - entry, command, seq, venue, window, held)

    def venue_health(self, now: int, changes: Iterable[Sequence[str]]) -> None:
        """latency.csv `health` lines (module doc): the venue health changes `[[venue, state,
        reason], ...]` the session applied at its step `now` (the step record's `"vh"`).
        Why in latency.csv: while a venue's 429 or 418 held the session's requests its
        health was "rate_limited" / "down" until the Retry-After, and a strategy that stops
        quoting on it (the example market maker) sent nothing there; a backtest's venue is
        "up" throughout and quoted on. The `recorded` latency model's venue applies the same
        changes at the same times (venues/sim/latency.py recorded_health). The state only:
        the reason (free text) is in the audit log."""
        for venue, state, _reason in changes:
            self._latency.write(f"{int(now)},0,0,health,,{venue},,,{state}\n")

    def fill_seen(self, venue: str, report: Any) -> None:
        """Note the venue time of a fill of ours (a `VenueFill`, or a `VenueOrderState` that
        says FILLED: its venue time is the last fill's) for the refused cancels of that
        order (round_trip). The time noted is the end of the fill's stamp (a venue time in
        whole units stands for its unit: the fill happened before stamp + unit)."""
        from engine.types import OrderStatus
        from engine.types.venue_reports import VenueFill, VenueOrderState

        if isinstance(report, VenueOrderState) and report.status != OrderStatus.FILLED:
            return
        if not isinstance(report, VenueFill | VenueOrderState) or not report.exch_ts > 0:
            return
        unit = self.stamp_ns.get(venue, MS)
        at = int(report.exch_ts) + (unit if unit > 1 and int(report.exch_ts) % unit == 0 else 0)
        key = (venue, report.client_id)
        if at > self._filled.get(key, 0):
            if len(self._filled) >= 4 * REFUSAL_WINDOW * REFUSAL_WINDOW:  # bounded: forget the oldest
                self._filled.pop(next(iter(self._filled)))
            self._filled[key] = at

    def _write_round_trip(self, send_ns: int, entry: int, response: int, command: str, seq: int | None,
                          venue: str, window: tuple[int, int] | None = None, held: str | None = None) -> None:
        bounds = "," if window is None else f"{window[0]},{window[1]}"
        tail = "" if held is None else f",{held}"  # a line without a hold: the 8 fields as before
        self._latency.write(f"{send_ns},{entry},{response},{command},{'' if seq is None else int(seq)},{venue},"
                            f"{bounds}{tail}\n")

    def report_latency(self, venue: str, report: Any) -> None:
        """One report_latency.csv line for a venue report the user stream delivered (module
        doc): an order state with the venue's time. Only order states: a trade's
        executionReport also reaches us as a fill record (ccxt's watch_my_trades) from the
        same message, which would count it twice; REST replies are round trips
        (latency.csv), not reports."""
        from engine.types.venue_reports import VenueOrderState

        if (self._report is not None and isinstance(report, VenueOrderState) and report.source == "stream"
                and report.exch_ts > 0 and report.local_ts > 0):
            self._report.write(f"{int(report.exch_ts)},{int(report.local_ts) - int(report.exch_ts)},"
                               f"{report.status.name.lower()},{venue},{self.stamp_ns.get(venue, MS)}\n")

    def maybe_flush(self, now: int) -> None:
        if self._last_flush is None:
            self._last_flush = now
        if now - self._last_flush >= FLUSH_NS:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        for venue, refusals in self._refusals.items():  # no later venue-timed reply yet
            for refusal in refusals:
                self._write_refusal(*refusal, min(self._responses.get(venue, ()), default=None),
                                    self._queue.get(venue, ()), venue)
        self._refusals = {}
        for venue, refusal, client_id in self._cancel_refusals:  # the fills seen by now
            self._write_refusal(*refusal, min(self._responses.get(venue, ()), default=None),
                                self._queue.get(venue, ()), venue, after_ns=self._filled.get((venue, client_id)))
        self._cancel_refusals = []
        if self._pending_rows:
            rows = np.concatenate(self._pending_rows)
            self._rows.write(rows.tobytes())
            self._pending_rows = []
        for f in (self._rows, self._journal, self._latency, self._feed, self._report):
            if f is None:  # no report_latency.csv (paper)
                continue
            f.flush()
            os.fsync(f.fileno())
        if self.audit is not None and not self.audit._file.closed:
            self.audit._file.flush()  # already flushed record by record (flush_each); fsync it
            os.fsync(self.audit._file.fileno())
        if self._store is not None and self._store_rows:
            rows = np.concatenate(self._store_rows)
            self._store_rows = []
            with self._store.begin_import(self._stored) as tx:
                for i, inst_id in enumerate(self._ids):
                    mine = rows[rows["instrument"] == i]
                    if len(mine):
                        tx.append(inst_id, mine)

    def close(self) -> None:
        self.flush()
        for f in (self._rows, self._journal, self._latency, self._feed, self._report):
            if f is not None:
                f.close()
        if self._store is not None:
            self._store.close()
            self._store = None


def read_rows(run_dir: Path) -> np.ndarray:
    """rows.bin of a recorded session (EVENT_DTYPE, push order)."""
    data = (Path(run_dir) / "rows.bin").read_bytes()
    usable = len(data) - len(data) % EVENT_DTYPE.itemsize  # a crash may cut the last record
    return np.frombuffer(data[:usable], dtype=EVENT_DTYPE).copy()


def read_journal(run_dir: Path) -> list[dict[str, Any]]:
    """session.jsonl of a recorded session; a line cut by a crash ends it."""
    out = []
    with open(Path(run_dir) / "session.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


def session_received(run_dir: str | Path) -> tuple[int, int] | None:
    """(first, last) local_ts of the market rows a recorded session received (rows.bin),
    or None without any. Why: a backtest of the session's window checks its data covers
    these, not the whole window (replay.source.check_window `received`)."""
    path = Path(run_dir) / "rows.bin"
    if not path.is_file() or path.stat().st_size < EVENT_DTYPE.itemsize:
        return None
    rows = read_rows(Path(run_dir))
    return int(rows["local_ts"].min()), int(rows["local_ts"].max())


def session_window(run_dir: str | Path) -> tuple[int, int]:
    """(start, end) in ns on a recorded session's clock: its start step (where `on_start`
    ran, timers and latency.csv count from) and its last step. From summary.json
    `run.start_ts` / `run.end_ts`, else (a crash left no summary) from session.jsonl: the
    `now` of the step with `"start": 1` and of the last step. What `tickparity backtest
    --session-window RUN` passes as --from / --to: integers read by Python's json stay
    exact (jq 1.6 reads them as doubles and moved the start by tens of ns).
    ConfigError (one line) when `run_dir` holds no session."""
    from engine.errors import ConfigError, require_run_directory

    run = require_run_directory(run_dir, "--session-window")
    summary = run / "summary.json"
    if summary.is_file():
        window = json.loads(summary.read_text(encoding="utf-8")).get("run", {})
        if isinstance(window.get("start_ts"), int) and isinstance(window.get("end_ts"), int):
            return window["start_ts"], window["end_ts"]
    if not (run / "session.jsonl").is_file():
        raise ConfigError(f"--session-window {run}: not a paper, testnet or live session's run directory "
                          "(no session.jsonl)")
    steps = read_journal(run)
    start = next((s["now"] for s in steps if s.get("start") == 1 and "now" in s), None)
    ends = [s["now"] for s in steps if "now" in s]
    if start is None or not ends:
        raise ConfigError(f"--session-window {run}: session.jsonl has no start step (the session never started)")
    return int(start), int(ends[-1])


def session_files_unused(run_dir: str | Path, data: str, venues: dict[str, dict]) -> list[str]:
    """What a backtest of a session's period (`--session-window`) leaves out of what the
    session recorded, per venue of the config: `latency.file` (latency.csv: the requests'
    entries, held and health lines), `latency.report_file` (report_latency.csv: when fills
    and order updates reached the strategy), `latency.feed_file` (feed_latency.csv; only
    when the data is not the session's own market.duckdb, whose rows already carry their
    receipt) and `request_budget` (the session's local refusals of its order-count limiter,
    which no file holds). Why: each combination reproduces a different part of the session
    (docs/live.md "Which latency files reproduce what"); a trial's backtest without
    report_file and request_budget made 761 requests where the session made 217, and
    nothing said so. Empty when nothing is left out."""
    run = Path(run_dir)
    from replay.source import is_session_recording

    received = is_session_recording(data)
    refused_by_budget = False
    orders = run / "orders.parquet"
    if orders.is_file():
        import pyarrow.parquet as pq

        if "reason" in pq.read_schema(orders).names:
            refused_by_budget = "request_budget" in pq.read_table(orders, columns=["reason"]).column("reason").to_pylist()
    missing: list[str] = []
    for name, table in venues.items():
        latency = table.get("latency") or {}
        wanted = [("file", "latency.csv"), ("report_file", "report_latency.csv")]
        if not received:
            wanted.append(("feed_file", "feed_latency.csv"))
        for key, file in wanted:
            if name in _venues_in(run / file, key) and not latency.get(key):
                missing.append(f"[venues.{name}] latency.{key} ({file})")
        if refused_by_budget and not table.get("request_budget"):
            missing.append(f"[venues.{name}] request_budget = true (the session's own request_budget refusals)")
    return missing


def _venues_in(path: Path, key: str) -> set[str]:
    """The venues a session's latency file has lines of (latency.csv from before its venue
    column: every venue, as a backtest reads it whole); empty when there is no such file."""
    if not path.is_file():
        return set()
    found: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split(",")
        if key == "file":
            found.add(fields[5].strip() if len(fields) > 5 else "*")
        elif len(fields) > 3:
            found.add(fields[3].split(":", 1)[0].strip())
    if "*" in found:
        return _AnyVenue()
    return found


class _AnyVenue(set):
    """Every venue name is in it (a latency.csv without the venue column)."""

    def __contains__(self, item: object) -> bool:
        return True

