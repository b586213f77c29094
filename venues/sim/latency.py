"""Feed latency of one simulated venue, recorded (`[venues.X.latency] feed_file`).

The order latency models (`entry`: request -> venue, `response`: venue -> us; constant,
empirical, recorded or a user's model named by path) are numba modules: see
venues/sim/latency_nb.py (the shipped ones and how the venue applies them) and
venues/sim/models.py (LatencyModel), docs/models.md.
"""

from __future__ import annotations

import numpy as np

#: the unit of a recorded venue time when a file does not say (ccxt's and Binance's default)
NS_PER_MS = 1_000_000

# --------------------------------------------------------------------------------------
# Recorded feed latency (`[venues.X.latency] feed_file`): a separate piece from the order
# latency models above (issue 11, parity (b)). It touches the kernel in one place only:
# a conflating venue whose V[v, VF_CONFL_OFF] is FEED_FROM_ROW publishes each held book
# row at the time the row carries in `order_id` (core_nb.pend_put_nb), computed here.
# --------------------------------------------------------------------------------------
FEED_BOOK, FEED_TRADE = 0, 1
FEED_STREAMS = {"book": FEED_BOOK, "trade": FEED_TRADE}
#: V[v, VF_CONFL_OFF] of a conflating venue with a recorded feed latency (a constant feed
#: latency is >= 0): the publication time of a held book row is in the row (see above)
FEED_FROM_ROW = -1


def _csv_lines(path: str, where: str):
    """(file, line number, raw line, its comma-separated fields) of a session's latency
    file, comments, blank lines and a `ts_ns` header skipped; ConfigError when the file is
    missing."""
    from pathlib import Path

    from engine.errors import ConfigError, file_problem

    file = Path(path)
    if (problem := file_problem(file)) is not None:
        raise ConfigError(f"{where} = {str(path)!r}: file {problem}")
    with open(file, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line or (lineno == 1 and line.startswith("ts_ns")):
                continue
            yield file, lineno, raw, [p.strip() for p in line.split(",")]


def load_recorded_feed(path: str, venue: str, where: str = "latency.feed_file") -> np.ndarray:
    """The feed latencies a paper/testnet/live session measured (its `feed_latency.csv`,
    modes/live/recording.py): lines `ts_ns,feed_ns,stream,instrument` (ts = the venue's
    time of a message, feed = local receipt - ts, stream `book` or `trade`), an optional
    header. Only the lines of `venue`'s instruments (`venue:SYMBOL`) are kept. Returns an
    (n, 3) int64 array [ts_ns, feed_ns, stream code] sorted by time (stable).

    Raises ConfigError naming the file and line on a malformed line, or when the file has
    no line for the venue."""
    from engine.errors import ConfigError

    rows: list[tuple[int, int, int]] = []
    for file, lineno, raw, parts in _csv_lines(path, where):
        try:
            ts, feed = int(parts[0]), int(parts[1])
            stream = FEED_STREAMS[parts[2]]
            inst = parts[3]
        except (ValueError, IndexError, KeyError):
            raise ConfigError(f"{where} {file}:{lineno}: {raw.strip()!r}: expected "
                              "ts_ns,feed_ns,book|trade,VENUE:SYMBOL") from None
        if inst.split(":", 1)[0] == venue:
            rows.append((ts, feed, stream))
    if not rows:
        raise ConfigError(f"{where} {path}: no feed latency record of venue {venue!r}")
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    return table[np.argsort(table[:, 0], kind="stable")]


class RecordedFeed:
    """Arrival times of one venue's rows from a recorded feed latency table.

    `latency(ts, stream)`: interpolated linearly in time between the two records around ts
    (hftbacktest's IntpOrderLatency rule, as the `recorded` order latency above), the
    nearest record's value outside them; exactly the recorded value at a record's time.
    Each stream (book, trade) uses its own records when it has any, else the other's.
    Negative latencies (a venue clock ahead of ours) count as 0.

    `shift(rows, state)` sets the local time of each row of this venue to its venue time
    (the data's local_ts: the clock the backtest shifts by `feed_ns`) plus the latency,
    never earlier than the row before it (per instrument, carried across chunks in
    `state`), so the feed keeps the data's order. With depth conflation every book row
    also gets the time its window reaches the strategy: window end W (ceil to the
    interval, as core_nb.publish_ts_nb cuts), `window_arrival(W)`, non-decreasing,
    in `order_id` (unused by L2 rows; read by core_nb.pend_put_nb; `window_arrival`
    says why that is not interpolated); the local time of
    every row is then capped at its window's publication (a trade is seen no later than
    the depth diff of its window, which the one feed order needs).
    """

    def __init__(self, table: np.ndarray, conflation_ns: int = 0) -> None:
        self.conflation_ns = int(conflation_ns)
        self._tables = {}
        for code in FEED_STREAMS.values():
            mine = table[table[:, 2] == code]
            self._tables[code] = mine if len(mine) else table
        self.min_latency = max(int(table[:, 1].min()), 0)

    def latency(self, ts: np.ndarray, stream: int) -> np.ndarray:
        """Feed latency (ns, >= 0) at venue times `ts` (int64 array)."""
        tab = self._tables[stream]
        times = tab[:, 0]
        lat = tab[:, 1]
        ts = np.asarray(ts, dtype=np.int64)
        k = np.searchsorted(times, ts, side="right")  # records at or before ts: k of them
        lo = np.clip(k - 1, 0, len(times) - 1)
        hi = np.clip(k, 0, len(times) - 1)
        t0, t1 = times[lo], times[hi]
        e0, e1 = lat[lo], lat[hi]
        span = t1 - t0
        inner = (k > 0) & (k < len(times)) & (span > 0)
        out = np.where(k == 0, lat[0], e0)
        frac = np.where(inner, (ts - t0), 0)
        # exact integer interpolation (rounded down), as recorded_entry
        out = np.where(inner, e0 + ((e1 - e0) * frac) // np.where(span > 0, span, 1), out)
        return np.maximum(out, 0)

    def window_arrival(self, window: np.ndarray) -> np.ndarray:
        """When the depth diff of the window ending at `window` (venue ns) reached the
        session: the arrival of the first recorded depth message stamped at or after the
        window's end. Not an interpolation: a session that took several windows in one
        read (ccxt merges the messages it has before our await resumes, stamped with the
        last) recorded only the last, and the earlier windows reached the strategy with
        it. After the last record: the window end plus the last record's latency."""
        tab = self._tables[FEED_BOOK]
        times, lat = tab[:, 0], np.maximum(tab[:, 1], 0)
        window = np.asarray(window, dtype=np.int64)
        k = np.searchsorted(times, window, side="left")
        inside = k < len(times)
        kk = np.minimum(k, len(times) - 1)
        return np.where(inside, times[kk] + lat[kk], window + lat[-1])

    def shift(self, rows: np.ndarray, state: dict[int, list[int]]) -> None:
        """Rewrite `rows` (this venue's rows of one chunk, in feed order) in place."""
        from engine.types import EventKind

        t = rows["local_ts"].astype(np.int64)
        trade = rows["kind"] == EventKind.TRADE
        lat = np.where(trade, self.latency(t, FEED_TRADE), self.latency(t, FEED_BOOK))
        arrival = t + lat
        publish = None
        if self.conflation_ns:
            g = self.conflation_ns
            publish = self.window_arrival(-(-t // g) * g)
        insts = rows["instrument"]
        for i in np.unique(insts):
            sel = np.flatnonzero(insts == i)
            last = state.setdefault(int(i), [np.iinfo(np.int64).min, np.iinfo(np.int64).min])
            arr = np.maximum.accumulate(np.maximum(arrival[sel], last[0]))
            last[0] = int(arr[-1])
            if publish is None:
                rows["local_ts"][sel] = arr
                continue
            pub = np.maximum.accumulate(np.maximum(publish[sel], last[1]))
            last[1] = int(pub[-1])
            # the feed keeps the data's order (the exchange side reads it in that order),
            # so one non-decreasing local time for every row; a book row must enter the
            # venue's ring by its publication: min of the two (both non-decreasing). A
            # trade then reaches the strategy no later than the window it fell in.
            rows["local_ts"][sel] = np.minimum(arr, pub)
            book = ~trade[sel]
            rows["order_id"][sel[book]] = pub[book].astype(np.uint64)

    def first_window_seen(self, start: int) -> int:
        """With depth conflation: the end of the last window that reached the strategy by
        local time `start` (what a client connected before the start holds), i.e. the
        latest grid time W with W + latency(W) <= start; W <= start."""
        g = self.conflation_ns
        w = start // g * g
        while w > start - 3_600_000_000_000 and int(self.window_arrival(np.array([w]))[0]) > start:
            w -= g
        return w


def recorded_feed_shift(instruments: list, venue_configs: dict, received: bool = False) -> tuple[np.ndarray, object]:
    """The feed latency of a run: (feed_ns per instrument, shift) for engine.feed.
    apply_feed_latency. Instruments of a venue with a recorded feed latency get feed_ns 0
    and are moved by `shift` (RecordedFeed.shift, state kept across chunks); shift is None
    when no venue records its feed.

    `received`: the data is a session's own recording (its market.duckdb, replay.source.
    is_session_recording), whose rows carry the session's receipt already: a
    recorded feed latency moves nothing then (on a venue without depth conflation). Adding it again put every row a feed latency
    late and the window's opening book after the start, where a TWAP's first slice found
    no book and went out one interval late (issue #11, a new user's trial)."""
    feed_ns = np.array([0 if venue_configs[i.venue].feed_file else int(venue_configs[i.venue].feed_ns)
                        for i in instruments], dtype=np.int64)
    models = {}
    for k, inst in enumerate(instruments):
        cfg = venue_configs[inst.venue]
        # (a conflating venue keeps its shift: its kernel reads each book row's publication
        # from the shift, FEED_FROM_ROW; a session's rows need no conflation, docs/live.md)
        if cfg.feed_file and not (received and not cfg.depth_conflation_ns):
            models.setdefault(inst.venue, (RecordedFeed(cfg.feed_samples, cfg.depth_conflation_ns), []))[1].append(k)
    if not models:
        return feed_ns, None
    state: dict[int, list[int]] = {}
    owner = np.full(len(instruments), -1, dtype=np.int64)
    feeds = list(models.values())
    for n, (_, members) in enumerate(feeds):
        owner[members] = n

    def shift(chunk: np.ndarray) -> None:
        which = owner[chunk["instrument"].astype(np.intp)]
        for n, (model, _) in enumerate(feeds):
            sel = np.flatnonzero(which == n)
            if len(sel):
                part = chunk[sel]
                model.shift(part, state)
                chunk[sel] = part

    return feed_ns, shift


# --------------------------------------------------------------------------------------
# Recorded report latency (`[venues.X.latency] report_file`): the response leg of the order
# latency, apart from the request leg (issue 11, parity (b)). hftbacktest's order latency
# has an entry and a response part; a live session measures them on different paths: a
# request's entry on its REST round trip (latency.csv), while the fills and order updates
# the strategy acts on reach it over the user stream (executionReport), 4-14 ms after the
# venue's time on the emulator's loopback where the REST reply's response part took 16-36
# ms. It touches the kernel in one place: latency_nb.response_time_nb takes the venue's
# report rows (SimCore puts them in LP, V[v, VF_RP_OFF / VF_RP_N]) instead of the model's
# response.
# --------------------------------------------------------------------------------------


def load_report_latency(path: str, venue: str, where: str = "latency.report_file") -> np.ndarray:
    """The user-stream report latencies a testnet/live session measured (its
    `report_latency.csv`, modes/live/recording.py): lines `ts_ns,response_ns,report,venue
    [,stamp_ns]` (ts = the venue's time of a report, response = local receipt - ts, report =
    the order status it reported, venue = the session's venue name, stamp = the unit of the
    venue's time, 1 ms when absent: files written before the column had ccxt's whole ms),
    an optional header. Only the lines of `venue` are kept. Returns an (n, 3) int64 array
    [ts_ns, response_ns, stamp_ns] sorted by ts (stable: reports of one venue time unit stay
    in receipt order).

    A negative response (a venue clock ahead of ours) counts as 0, as in RecordedFeed.
    Raises ConfigError naming the file, line and field on a malformed line, or when the
    file has no line of the venue."""
    from engine.errors import ConfigError

    rows: list[tuple[int, int, int]] = []
    for file, lineno, raw, parts in _csv_lines(path, where):
        if len(parts) not in (4, 5) or not parts[2] or not parts[3]:
            raise ConfigError(f"{where} {file}:{lineno}: {raw.strip()!r}: expected "
                              "ts_ns,response_ns,report,venue[,stamp_ns]")
        stamp = parts[4] if len(parts) == 5 else str(NS_PER_MS)
        for field, text in (("ts_ns", parts[0]), ("response_ns", parts[1]), ("stamp_ns", stamp)):
            try:
                int(text)
            except ValueError:
                raise ConfigError(f"{where} {file}:{lineno}: {field} = {text!r}: expected an integer "
                                  "number of ns") from None
        if int(stamp) <= 0:
            raise ConfigError(f"{where} {file}:{lineno}: stamp_ns = {stamp!r}: expected > 0 (the unit of the "
                              "venue's time, e.g. 1000000 for whole ms)")
        if parts[3] == venue:
            rows.append((int(parts[0]), max(int(parts[1]), 0), int(stamp)))
    if not rows:
        raise ConfigError(f"{where} {path}: no report latency record of venue {venue!r}")
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    return table[np.argsort(table[:, 0], kind="stable")]


def recorded_params(samples: np.ndarray, in_turn: np.ndarray | None = None) -> np.ndarray:
    """The shipped `recorded` latency model's parameter array (latency_nb.py): [n, the n
    rows ts,entry,response of load_recorded_latency, then the in-turn rows ts,kind,entry
    of recorded_requests_in_turn]."""
    rows = np.ascontiguousarray(samples, dtype=np.int64).reshape(-1, 3)
    turn = np.zeros((0, 3), dtype=np.int64) if in_turn is None else np.asarray(in_turn, dtype=np.int64)
    return np.concatenate([np.array([len(rows)], dtype=np.int64), rows.ravel(), turn.ravel()])


# the request kinds latency.csv names (its `command` column), as codes.RQ_*
_COMMAND_KINDS = {"submit": 1, "cancel": 2, "amend": 3}
#: latency.csv's `held` column (modes/live/recording.py): the reason of a refusal a venue's
#: rate-limit hold caused (a 429: `rate_limited`, a 418: `ip_banned`), as the strategy got it;
#: with LOCAL_SUFFIX the session refused the request itself while the hold lasted (never sent)
HELD_REASONS = ("rate_limited", "ip_banned")
LOCAL_SUFFIX = "-local"
_HELD = {reason + local: (k + 1, int(bool(local))) for k, reason in enumerate(HELD_REASONS)
         for local in ("", LOCAL_SUFFIX)}
#: a latency.csv line whose `command` is this is a change of the venue's health the session
#: applied, its state in the `held` field (recorded_health); engine.execution.health's states
HEALTH_COMMAND = "health"
HEALTH_STATES = ("up", "degraded", "rate_limited", "down")


def read_round_trips(path: str, venue: str | None = None, where: str = "latency.file",
                     health_out: list[tuple[int, int, int]] | None = None) -> list[tuple[int, ...]]:
    """The order round trips a paper/testnet/live session measured (its `latency.csv`,
    modes/live/recording.py): lines
    `ts_ns,entry_ns,response_ns[,command[,seq[,venue[,entry_min_ns,entry_max_ns[,held]]]]]`,
    an optional header. Returns [(ts_ns, entry_ns, response_ns, kind, seq, line number,
    entry_min_ns, entry_max_ns, held, local)], in file order: kind a codes.RQ_* value (0
    when the line names no command), seq the command's number at its venue (-1 when
    empty), the two bounds of a refused request's entry (-1 when empty: a round trip with a
    venue time), held the refusal's reason a venue's hold caused as 1 + its index in
    HELD_REASONS (0: none, every line of a file written before the column), local 1 when
    the session refused that request itself (`-local`: never sent), else 0. A `health`
    line (a venue health change, HEALTH_COMMAND) is no round trip: it goes to `health_out`
    when given, as (ts_ns, index in HEALTH_STATES, line number).

    Only the lines of `venue` are kept when the file has a venue column (a session on two
    venues writes both venues' round trips into one file; each venue's backtest takes its
    own); a file written before that column keeps every line. The one reader of the file:
    `config.load_recorded_latency` and `recorded_requests_in_turn` both use it.
    Raises ConfigError naming the file, line and field on a malformed or negative line,
    or when the file has no line of the venue."""
    from engine.errors import ConfigError

    rows: list[tuple[int, ...]] = []
    health: list[tuple[int, int, int]] = []
    for file, lineno, raw, parts in _csv_lines(path, where):
        at = f"{where} {file}:{lineno}:"
        if len(parts) not in (3, 4, 5, 6, 8, 9):
            raise ConfigError(f"{at} {len(parts)} fields: expected ts_ns,entry_ns,response_ns[,command[,seq[,venue"
                              "[,entry_min_ns,entry_max_ns[,held]]]]] (3-6, 8 or 9)")
        try:
            ts, entry, response = (int(p) for p in parts[:3])
        except ValueError:
            raise ConfigError(f"{at} {raw.strip()!r}: expected ts_ns,entry_ns,response_ns") from None
        for name, value in (("entry_ns", entry), ("response_ns", response)):
            if value < 0:
                raise ConfigError(f"{at} {name} {value}: negative latency")
        if venue is not None and len(parts) > 5 and parts[5] and parts[5] != venue:
            continue
        if len(parts) > 3 and parts[3] == HEALTH_COMMAND:  # a venue health change (recorded_health)
            if len(parts) != 9 or parts[8] not in HEALTH_STATES:
                raise ConfigError(f"{at} a health line: expected ts_ns,0,0,health,,venue,,,STATE with STATE one "
                                  f"of {', '.join(HEALTH_STATES)}")
            health.append((ts, HEALTH_STATES.index(parts[8]), lineno))
            continue
        if len(parts) > 3 and parts[3] and parts[3] not in _COMMAND_KINDS:
            raise ConfigError(f"{at} command {parts[3]!r}: expected one of {', '.join(_COMMAND_KINDS)} or empty")
        kind = _COMMAND_KINDS.get(parts[3], 0) if len(parts) > 3 else 0
        if len(parts) > 4 and parts[4] and not parts[4].isdigit():
            raise ConfigError(f"{at} seq {parts[4]!r}: expected a whole number or empty")
        seq = int(parts[4]) if len(parts) > 4 and parts[4] else -1
        held = local = 0
        if len(parts) == 9 and parts[8]:
            if parts[8] not in _HELD:
                raise ConfigError(f"{at} held {parts[8]!r}: expected one of {', '.join(_HELD)} or empty")
            if not kind:
                raise ConfigError(f"{at} held {parts[8]!r} on a line without a command: a refusal is of a "
                                  "submit, cancel or amend")
            held, local = _HELD[parts[8]]
        lo = hi = -1
        if len(parts) >= 8 and (parts[6] or parts[7]):
            bounds = []
            for name, text in (("entry_min_ns", parts[6]), ("entry_max_ns", parts[7])):
                try:
                    bounds.append(int(text))
                except ValueError:
                    raise ConfigError(f"{at} {name} {text!r}: expected an integer (both bounds or neither)") from None
            lo, hi = bounds
            if not 0 <= lo <= hi:
                raise ConfigError(f"{at} entry_min_ns {lo} and entry_max_ns {hi}: expected "
                                  "0 <= entry_min_ns <= entry_max_ns")
            if kind != _COMMAND_KINDS["submit"]:
                raise ConfigError(f"{at} entry_min_ns,entry_max_ns on a {parts[3] or 'line without a'} command: "
                                  "only a refused submit has an entry window")
            if held:
                raise ConfigError(f"{at} entry_min_ns,entry_max_ns with held {parts[8]!r}: a refusal the venue's "
                                  "hold caused has no entry window")
            if hi > entry + response:
                raise ConfigError(f"{at} entry_max_ns {hi} beyond the round trip (entry_ns + response_ns = "
                                  f"{entry + response}): the request arrived before its reply")
        rows.append((ts, entry, response, kind, seq, lineno, lo, hi, held, local))
    if not rows:
        which = "" if venue is None else f" of venue {venue!r}"
        raise ConfigError(f"{where} {path}: no latency records{which}")
    if health_out is not None:
        health_out.extend(health)
    return rows


def recorded_requests_in_turn(path: str | None, venue: str | None = None) -> np.ndarray:
    """The `recorded` order latency's requests of one time, taken in turn: an (m, 3) int64
    array [ts_ns, kind (codes.RQ_SUBMIT / RQ_CANCEL / RQ_AMEND), entry_ns] sorted by
    (ts, kind, send order), the rows latency_nb.recorded_entry_nb hands out in turn.

    Why: a decision often sends several requests at one session time (a market maker's
    cancel and submit on each side), and each had its own entry latency live (7 and 21 ms
    for two submits of one timer on the emulator's loopback: the second waited for the
    first on the event loop). Interpolated at that time they would all get one value, and a
    post-only order that reached the venue after a trade moved the touch (refused live)
    would rest and fill in the backtest. So the n-th request of a kind a backtest sends at
    a time the file records requests of that kind at gets the n-th such record, in send
    order (the file's `seq` column, else its line order); lookups, and requests beyond the
    recorded count, are interpolated. `venue`: only that venue's lines (read_round_trips).
    A request the venue's hold refused (`held`) is left out: the backtest refuses it before
    it reaches the venue's kernel (held_requests), which counts only the others."""
    rows = []
    if path:
        for ts, entry, _response, kind, seq, lineno, _lo, _hi, held, _local in read_round_trips(path, venue):
            if kind and not held:
                rows.append((ts, kind, seq if seq >= 0 else lineno, lineno, entry))
    rows.sort()
    return np.asarray([(ts, kind, entry) for ts, kind, _, _, entry in rows], dtype=np.int64).reshape(-1, 3)


def refusal_windows(path: str, venue: str | None = None) -> np.ndarray:
    """The refused submits of a session's latency.csv as arrival windows: an (m, 5) int64
    array [ts_ns, turn, entry_min_ns, entry_max_ns, round_trip_ns] sorted by (ts, turn),
    `turn` the submit's place among the file's submits of that time in send order (the
    order recorded_requests_in_turn hands entries out in), `round_trip_ns` its reply's
    time less ts.

    Why: a venue's refusal carries no venue time (Binance's -2010 body), so when a post-only
    order arrived is known only to lie in the window its round trip allows
    (modes/live/recording.py writes its bounds). A point inside it is a guess, and on the
    at-touch market maker of bench_parity the guess was early by up to 5 ms for a third of
    the refusals: the order rested and filled in the backtest where the venue had refused it
    (bench/README.md "Parity", session 10). Re-placed with the emulator's true arrivals the
    same sessions matched 100%. So the backtest's venue takes a submit sent at such a time,
    in that turn, at the first moment of its window at which it refuses it
    (latency_nb.time_requests_nb, core_nb), and at the window's end when there is none; its
    reply reaches the strategy when the session's did (ts + round trip: a strategy that
    waits for the answer decides again when it has it; placed at the window's first
    crossing, a reply the session got 300 ms late under load came back at once, and the
    backtest's quoter sent an order the session never sent)."""
    rows = []
    for ts, entry, response, kind, seq, lineno, lo, hi, held, _local in read_round_trips(path, venue):
        if kind == 1 and not held:  # codes.RQ_SUBMIT; a held one never reaches the kernel (held_requests)
            rows.append((ts, seq if seq >= 0 else lineno, lineno, lo, hi, entry + response))
    rows.sort()
    out = []
    turn, last = 0, None
    for ts, _seq, _lineno, lo, hi, rtt in rows:
        turn = turn + 1 if ts == last else 0
        last = ts
        if lo >= 0:
            out.append((ts, turn, lo, hi, rtt))
    return np.asarray(out, dtype=np.int64).reshape(-1, 5)


def held_requests(path: str, venue: str | None = None) -> np.ndarray:
    """The requests of a session's latency.csv that a venue's rate-limit hold refused (its
    `held` column): an (m, 6) int64 array [ts_ns, kind, turn, reason, local, round_trip_ns]
    sorted by (ts, kind, turn); kind a codes.RQ_* value, `turn` the request's place among
    the file's requests of that kind and time in send order (every line counts, held or
    not: the order recorded_requests_in_turn hands entries out in), reason 1 + its index in
    HELD_REASONS, local 1 when the session refused it before sending, round_trip_ns the
    time from the request to its refusal (entry + response).

    Why: while a venue's 429 (Retry-After) or 418 ban held a session's requests, the
    session refused its submits and amends itself (`rate_limited` / `ip_banned`, never
    sent), and the requests already on their way met the 429 / 418. A backtest of the
    period has no such hold: it sent them, with entries interpolated from the held
    requests' multi-second round trips, and diverged (docs/live.md "Backtesting a session's
    period"). So the backtest's venue refuses the request of that kind, time and turn with
    the same reason, reaching the strategy when the session's refusal did
    (venues.sim.faults.SimFaults.intercept), and it never reaches the kernel."""
    rows = []
    for ts, entry, response, kind, seq, lineno, _lo, _hi, held, local in read_round_trips(path, venue):
        if kind:
            rows.append((ts, kind, seq if seq >= 0 else lineno, lineno, held, local, entry + response))
    rows.sort()
    out = []
    turn, last = 0, None
    for ts, kind, _seq, _lineno, held, local, rtt in rows:
        turn = turn + 1 if (ts, kind) == last else 0
        last = (ts, kind)
        if held:
            out.append((ts, kind, turn, held, local, rtt))
    return np.asarray(out, dtype=np.int64).reshape(-1, 6)


def recorded_health(path: str, venue: str | None = None) -> np.ndarray:
    """The venue health changes a session applied (its latency.csv `health` lines,
    modes/live/recording.py venue_health): an (m, 2) int64 array [ts_ns, state (index in
    HEALTH_STATES)] in time order (stable: changes of one step in the order applied).

    Why: while a venue's 429 or 418 held the session's requests, its health was
    "rate_limited" / "down" until the Retry-After, and a strategy that stops quoting then
    (the example market maker) sent nothing there; a backtest's venue, "up" throughout,
    quoted on and filled where the session did not. So the backtest's venue takes the
    session's health at the session's times (venues.sim.faults.SimFaults.bind)."""
    health: list[tuple[int, int, int]] = []
    read_round_trips(path, venue, health_out=health)
    return np.asarray([(ts, state) for ts, state, _ in sorted(health)], dtype=np.int64).reshape(-1, 2)
