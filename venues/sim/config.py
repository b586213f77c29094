"""`[venues.<name>]` configuration of the simulated venue: validated early, frozen, hashable.

Unknown keys and bad values raise `ConfigError` naming the key, the value and what was
expected (STYLE: constructors validate early; configs reject unknown fields).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import parse_decimal
from engine.errors import ConfigError, file_problem
from engine.venue_profiles import check_venue_keys, parse_balances, parse_fee_asset
from venues.sim.codes import STP_NAMES
from venues.sim.latency_nb import SHIPPED as LATENCY_SHIPPED
from venues.sim.models import load_latency_model, load_queue_model, probe_latency_params
from venues.sim.queue_nb import SHIPPED

_RESOLVED = ("maker_fee_bps", "taker_fee_bps", "latency", "balances", "enforce_balances")
_MAX_LATENCY_NS = 3_600_000_000_000  # one hour: anything above is a unit mistake


@dataclass(frozen=True, slots=True, kw_only=True)
class SimVenueConfig:
    """How one simulated venue matches, queues and delays our orders."""

    venue: str
    queue_model: str = "risk_averse"
    # the QueueModel's import path ("package.module:name"; shipped names resolved) and
    # its float parameter (power:<n> -> n)
    queue_path: str = SHIPPED["risk_averse"]
    queue_param: float = 0.0
    entry_ns: int = 0
    response_ns: int = 0
    feed_ns: int = 0
    cancel_entry_ns: int = 0
    amend_entry_ns: int = 0
    # `latency.model` as given ("constant", "empirical", "recorded" or "package.module:name"),
    # the LatencyModel's import path (shipped names resolved, venues.sim.latency_nb) and its
    # int64 parameter array (latency_nb module doc: the shipped models' layouts; a model
    # named by path gets `latency.params`)
    latency_model: str = "constant"
    latency_path: str = LATENCY_SHIPPED["constant"]
    latency_params: np.ndarray = field(
        default_factory=lambda: np.zeros(4, dtype=np.int64), compare=False, repr=False
    )
    latency_file: str | None = None
    # empirical samples: column 0 entry, column 1 response (ns); empty for "constant"
    latency_samples: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 2), dtype=np.int64), compare=False, repr=False
    )
    # latency spikes: rows (start_ns, end_ns, extra_ns), applied by send / exchange time
    spikes: tuple[tuple[int, int, int], ...] = ()
    # partial-fill droughts: rows (start_ns, end_ns, fraction_ppm) by exchange time, at most
    # one per venue (venues.sim.faults `partial_fill_drought`; matching_nb.drought_nb)
    droughts: tuple[tuple[int, int, int], ...] = ()
    maker_fee_bps: Decimal = Decimal("0")
    taker_fee_bps: Decimal = Decimal("0")
    partial_fills: bool = True
    stp: str = "cancel-new"
    # starting balances (asset, amount), exact; checked and locked when enforce_balances
    balances: tuple[tuple[str, Decimal], ...] = ()
    enforce_balances: bool = False
    profile: str | None = None  # the profile the table was resolved from (a record only)
    # the asset a fill's fee is charged in: "quote" (both sides) or "received" (the asset
    # the fill credits: Binance spot); engine/fees.py fill_fee, matching_nb settle_fill_nb
    fee_asset: str = "quote"
    # the venue publishes its depth as one diff per window of this many ns (0: every row as
    # it comes): the local book sees book rows only at the window ends (`depth_conflation_ms`,
    # core_nb "Depth conflation"); matching is unaffected
    depth_conflation_ns: int = 0
    # a recorded, time-indexed feed latency (`latency.feed_file`, a session's
    # feed_latency.csv) instead of the constant feed_ns: rows [ts_ns, feed_ns, stream]
    # (venues/sim/latency.py RecordedFeed); None / empty for the constant model
    feed_file: str | None = None
    feed_samples: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 3), dtype=np.int64), compare=False, repr=False
    )
    # the response leg of the order latency recorded on the user stream (`latency.report_file`,
    # a session's report_latency.csv): rows [ts_ns, response_ns, stamp_ns] (venues/sim/latency_nb.py
    # response_time_nb); None / empty: the order latency model's response
    report_file: str | None = None
    report_samples: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 3), dtype=np.int64), compare=False, repr=False
    )
    # the `recorded` latency's refused submits as arrival windows (latency.refusal_windows:
    # venues/sim/latency.py refusal_windows): rows [ts_ns, turn, entry_min_ns, entry_max_ns, round_trip_ns]
    arrival_windows: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 5), dtype=np.int64), compare=False, repr=False
    )
    refusal_windows: bool = True  # latency.refusal_windows as given (the recorded model's switch)
    # the `recorded` latency's requests a venue's rate-limit hold refused in the session
    # (latency.csv `held`: venues/sim/latency.py held_requests): rows [ts_ns, kind, turn,
    # reason, local, round_trip_ns], refused again by venues.sim.faults.SimFaults
    held_requests: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 6), dtype=np.int64), compare=False, repr=False
    )
    # ... and the venue health changes the session applied (latency.csv `health` lines:
    # venues/sim/latency.py recorded_health): rows [ts_ns, state], applied by SimFaults
    recorded_health: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 2), dtype=np.int64), compare=False, repr=False
    )
    # the sha256 of each latency file's bytes as read, by key ("file", "feed_file",
    # "report_file"): what the run's fills depend on is the content, not the path
    file_digests: tuple[tuple[str, str], ...] = ()

    # the live session's order-count limiter on the backtest's requests (`request_budget`,
    # venues/sim/budget.py): (((orders, window_ns), ...), max_wait_ns, phase_ns); None: off
    request_budget: tuple | None = None

    def __post_init__(self) -> None:
        # the constant model's parameters are these fields (latency_nb: submit, cancel,
        # amend entry, response), so a config built or replaced field by field stays whole
        if self.latency_model == "constant":
            params = np.array([self.entry_ns, self.cancel_entry_ns, self.amend_entry_ns, self.response_ns],
                              dtype=np.int64)
            object.__setattr__(self, "latency_params", params)

    @property
    def queue_code(self) -> int:
        """The shipped model's kernel index (codes.QM_*), -1 for a user's model."""
        paths = list(SHIPPED.values())
        return paths.index(self.queue_path) if self.queue_path in paths else -1

    @property
    def stp_code(self) -> int:
        return STP_NAMES[self.stp]

    @property
    def config_hash(self) -> str:
        """A stable hash of everything that changes results (run identity)."""
        body = {
            "venue": self.venue,
            "queue_model": self.queue_model,
            "latency": [
                self.entry_ns,
                self.response_ns,
                self.feed_ns,
                self.cancel_entry_ns,
                self.amend_entry_ns,
                self.latency_model,
                hashlib.sha256(np.ascontiguousarray(self.latency_samples).tobytes()).hexdigest(),
                [list(s) for s in self.spikes],
            ],
            "fees": [str(self.maker_fee_bps), str(self.taker_fee_bps)],
            "partial_fills": self.partial_fills,
            "stp": self.stp,
            "balances": [[a, str(x)] for a, x in self.balances],
            "enforce_balances": self.enforce_balances,
        }
        if self.fee_asset != "quote":  # absent for "quote": run ids from before it stay valid
            body["fee_asset"] = self.fee_asset
        if self.droughts:  # absent when none, for the same reason
            body["droughts"] = [list(d) for d in self.droughts]
        if self.depth_conflation_ns:  # absent when off, as fee_asset
            body["depth_conflation_ns"] = self.depth_conflation_ns
        if self.request_budget is not None:  # absent when off, as fee_asset
            limits, max_wait, phase = self.request_budget
            body["request_budget"] = [[list(x) for x in limits], max_wait, phase]
        if self.feed_file is not None:  # absent for the constant feed latency, as fee_asset
            body["feed"] = hashlib.sha256(np.ascontiguousarray(self.feed_samples).tobytes()).hexdigest()
        if self.report_file is not None:  # absent without one, as fee_asset
            body["report"] = hashlib.sha256(np.ascontiguousarray(self.report_samples).tobytes()).hexdigest()
        if self.queue_code < 0:  # a user's model: its source changes results (absent for shipped ones)
            body["queue_model_sha256"] = load_queue_model(self.queue_path)[1]
        if self.latency_model == "recorded":
            # what the file gives beyond the samples (the in-turn rows of one send time), the
            # switch and the windows it yields; a latency file's content, not its path
            body["latency_params"] = _digest(self.latency_params)
            body["refusal_windows"] = self.refusal_windows
            body["arrival_windows"] = _digest(self.arrival_windows)
            if len(self.held_requests):  # absent when none: run ids of older files stay as they were
                body["held_requests"] = _digest(self.held_requests)
            if len(self.recorded_health):  # the same
                body["recorded_health"] = _digest(self.recorded_health)
        if self.file_digests:  # absent without a latency file, as fee_asset
            body["files"] = dict(self.file_digests)
        if self.latency_model not in LATENCY_SHIPPED:  # the same for a user's latency model and its params
            body["latency_model_sha256"] = load_latency_model(self.latency_path)[1]
            body["latency_params"] = [int(x) for x in self.latency_params]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_table(cls, venue: str, table: Mapping[str, Any]) -> SimVenueConfig:
        """Build from a `[venues.<venue>]` table, taken as given.

        A key the table omits takes the simulator's raw value: 0 fees, 0 latency, no
        balances and no balance checks. Runs first fill the table from the venue's profile
        (`engine.venue_profiles.resolve_venue_table`, engine/venue_profiles.toml), which is also
        what a `profile = "..."` key needs: a table naming a profile but not resolved is
        refused. Unknown keys raise ConfigError listing the valid ones.
        """
        where = f"[venues.{venue}]"
        check_venue_keys(venue, table)
        if "profile" in table and any(k not in table for k in _RESOLVED):
            raise ConfigError(
                f"{where} profile = {table['profile']!r}: resolve it with "
                "engine.venue_profiles.resolve_venue_table before SimVenueConfig.from_table"
            )
        queue_model = table.get("queue_model", "risk_averse")
        queue_path, queue_param = parse_queue_model(queue_model, where)
        lat = table.get("latency", {})
        if not isinstance(lat, Mapping):
            raise ConfigError(f"{where} latency must be a table, got {lat!r}")
        entry = _ns(lat, "entry_ns", 0, where)
        model = lat.get("model", "constant")
        latency_path = parse_latency_model(model, where)
        file = lat.get("file")
        samples = np.zeros((0, 2), dtype=np.int64)
        response = _ns(lat, "response_ns", 0, where)
        if model in ("empirical", "recorded"):
            if not isinstance(file, str) or not file:
                raise ConfigError(f"{where} latency.model = {model!r} needs latency.file = PATH")
            check_session_header(file, "latency.file" if model == "recorded" else "empirical", where)
            samples = (load_latency_file(file, where) if model == "empirical"
                       else load_recorded_latency(file, where, venue))
        elif file is not None:
            raise ConfigError(f"{where} latency.file is only used with latency.model = 'empirical' or 'recorded'")
        _check_constant_keys(lat, model, where)
        if model == "recorded":  # the file gives both directions at every time: no constant part
            entry = response = 0
        params = lat.get("params")
        if params is not None and model in LATENCY_SHIPPED:
            raise ConfigError(f"{where} latency.params is only used with a latency.model named by path "
                              "('package.module:name'); the shipped models take entry_ns, response_ns or file")
        cancel_entry = _ns(lat, "cancel_entry_ns", entry, where)
        amend_entry = _ns(lat, "amend_entry_ns", entry, where)
        if model == "constant":  # the entry and response fields (__post_init__)
            latency_params = np.zeros(4, dtype=np.int64)
        elif model == "recorded":  # [n, n rows ts,entry,response, then the in-turn rows ts,kind,entry]
            from venues.sim.latency import recorded_params, recorded_requests_in_turn

            latency_params = recorded_params(samples, recorded_requests_in_turn(file, venue))
        elif model in LATENCY_SHIPPED:  # empirical: its file's rows, in order
            latency_params = np.ascontiguousarray(samples, dtype=np.int64).ravel()
        else:
            latency_params = _latency_params([] if params is None else params, where)
            probe_latency_params(load_latency_model(latency_path, f"{where} latency.model")[0], latency_params,
                                 f"{where} latency.params")
        windows = np.zeros((0, 5), dtype=np.int64)
        use_windows = lat.get("refusal_windows", True)
        if not isinstance(use_windows, bool):
            raise ConfigError(f"{where} latency.refusal_windows = {use_windows!r}: expected true or false")
        if "refusal_windows" in lat and model != "recorded":
            raise ConfigError(f"{where} latency.refusal_windows is only used with latency.model = 'recorded'")
        if model == "recorded" and use_windows:
            from venues.sim.latency import refusal_windows

            windows = refusal_windows(file, venue)
        held = np.zeros((0, 6), dtype=np.int64)
        health = np.zeros((0, 2), dtype=np.int64)
        if model == "recorded":
            from venues.sim.latency import held_requests, recorded_health

            held = held_requests(file, venue)
            health = recorded_health(file, venue)
        from venues.sim.latency import load_recorded_feed, load_report_latency

        feed_file = lat.get("feed_file")
        feed_samples = np.zeros((0, 3), dtype=np.int64)
        if feed_file is not None:
            _session_file(lat, "feed_file", "feed_latency.csv", "feed_ns", "recorded feed latency", where)
            check_session_header(feed_file, "latency.feed_file", where)
            feed_samples = load_recorded_feed(feed_file, venue, f"{where} latency.feed_file")
        report_file = lat.get("report_file")
        report_samples = np.zeros((0, 3), dtype=np.int64)
        if report_file is not None:  # the response leg recorded on the user stream
            _session_file(lat, "report_file", "report_latency.csv", "response_ns", "recorded response leg", where)
            if model == "empirical":
                raise ConfigError(f"{where} latency.report_file with latency.model = 'empirical': the file is the "
                                  "response leg; use it with model 'constant' (entry_ns) or 'recorded'")
            check_session_header(report_file, "latency.report_file", where)
            report_samples = load_report_latency(report_file, venue, f"{where} latency.report_file")
            response = 0
        return cls(
            venue=venue,
            queue_model=str(queue_model),
            queue_path=queue_path,
            queue_param=queue_param,
            entry_ns=entry,
            response_ns=response,
            feed_ns=_ns(lat, "feed_ns", 0, where),
            cancel_entry_ns=cancel_entry,
            amend_entry_ns=amend_entry,
            latency_model=model,
            latency_path=latency_path,
            latency_params=latency_params,
            latency_file=file,
            latency_samples=samples,
            spikes=_spikes(lat.get("spikes", []), where),
            maker_fee_bps=_bps(table, "maker_fee_bps", where),
            taker_fee_bps=_bps(table, "taker_fee_bps", where),
            partial_fills=_bool(table, "partial_fills", True, where),
            stp=_stp(table.get("stp", "cancel-new"), where),
            balances=tuple(parse_balances(venue, table.get("balances", {})).items()),
            enforce_balances=_bool(table, "enforce_balances", False, where),
            profile=None if table.get("profile") is None else str(table["profile"]),
            fee_asset=parse_fee_asset(table.get("fee_asset", "quote"), f"{where} fee_asset"),
            depth_conflation_ns=_conflation_ns(table.get("depth_conflation_ms", 0), where),
            request_budget=parse_request_budget(table.get("request_budget", False),
                                                str(table.get("exchange", venue)), where),
            feed_file=feed_file,
            feed_samples=feed_samples,
            report_file=report_file,
            report_samples=report_samples,
            arrival_windows=windows,
            refusal_windows=use_windows,
            held_requests=held,
            recorded_health=health,
            file_digests=tuple((key, _file_sha256(path, f"{where} latency.{key}"))
                               for key, path in (("file", file), ("feed_file", feed_file),
                                                 ("report_file", report_file)) if isinstance(path, str)),
        )


def _digest(array: np.ndarray) -> str:
    """sha256 of an int64 array's bytes (a stable part of config_hash)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()


def _file_sha256(path: str, where: str) -> str:
    """sha256 of a latency file's bytes, as read for the run (config_hash): two files with
    the same path and other content are two models. Raises ConfigError naming the key."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"{where} = {path!r}: cannot read it ({exc.strerror or exc})") from exc


def parse_queue_model(value: Any, where: str = "queue_model") -> tuple[str, float]:
    """'risk_averse' | 'power:<n>' | 'log' | 'l3_fifo' | 'package.module:name' ->
    (the QueueModel's import path, its parameter). A path is imported and checked here
    (venues.sim.models.load_queue_model), so a bad one fails before any data is read."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} queue_model = {value!r}: expected a string")
    if value in ("risk_averse", "log", "l3_fifo"):
        return SHIPPED[value], 0.0
    if value.startswith("power:"):
        try:
            n = float(value.split(":", 1)[1])
        except ValueError:
            n = float("nan")
        if not math.isfinite(n) or n <= 0:
            raise ConfigError(
                f"{where} queue_model = {value!r}: power needs a positive exponent, e.g. 'power:2'"
            )
        return SHIPPED["power"], n
    if ":" not in value:
        raise ConfigError(
            f"{where} queue_model = {value!r}: expected 'risk_averse', 'power:<n>', 'log', 'l3_fifo' "
            "or 'package.module:name' (docs/models.md)"
        )
    load_queue_model(value, f"{where} queue_model")
    return value, 0.0


def parse_latency_model(value: Any, where: str = "") -> str:
    """'constant' | 'empirical' | 'recorded' | 'package.module:name' -> the LatencyModel's
    import path. A path is imported and checked here (venues.sim.models.load_latency_model),
    so a bad one fails before any data is read."""
    if isinstance(value, str) and value in LATENCY_SHIPPED:
        return LATENCY_SHIPPED[value]
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where} latency.model = {value!r}: expected 'constant', 'empirical', 'recorded' "
                          "or 'package.module:name' (docs/models.md)")
    load_latency_model(value, f"{where} latency.model")
    return value


def _latency_params(value: Any, where: str) -> np.ndarray:
    """`latency.params` of a model named by path: a list of integers (ns, or whatever
    integer units the model documents), as an int64 array."""
    if not isinstance(value, list | tuple) or any(isinstance(x, bool) or not isinstance(x, int) for x in value):
        raise ConfigError(f"{where} latency.params = {value!r}: expected a list of integers")
    if any(not -(2**63) <= x < 2**63 for x in value):
        raise ConfigError(f"{where} latency.params = {value!r}: each integer must fit in int64")
    return np.array(value, dtype=np.int64)


def load_latency_file(path: str | Path, where: str = "latency.file") -> np.ndarray:
    """Observed latencies in ns: one per line (used for both directions) or two
    comma/space separated columns `entry_ns response_ns`; '#' starts a comment."""
    file = Path(path)
    if (problem := file_problem(file)) is not None:
        raise ConfigError(f"{where} latency.file = {str(path)!r}: file {problem}")
    rows: list[tuple[int, int]] = []
    for lineno, raw in enumerate(file.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split()
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"{where} {file}:{lineno}: {raw.strip()!r} is not an integer number of ns"
            ) from None
        if len(values) not in (1, 2) or min(values) < 0:
            raise ConfigError(
                f"{where} {file}:{lineno}: expected one or two non-negative ns values"
            )
        rows.append((values[0], values[-1]))
    if not rows:
        raise ConfigError(f"{where} {file}: no latency samples")
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def load_recorded_latency(path: str | Path, where: str = "", venue: str | None = None) -> np.ndarray:
    """A time-indexed latency file (what a paper/testnet/live session writes as
    latency.csv): lines `ts_ns,entry_ns,response_ns[,command[,seq[,venue[,entry_min_ns,entry_max_ns[,held]]]]]`, an optional
    header line; only `venue`'s lines when the file names venues (latency.read_round_trips),
    less the requests the session refused itself (`held` ...-local: never sent, no latency).
    Returns an (n, 3) int64 array [ts_ns, entry_ns, response_ns] sorted by ts (stable): a
    session writes each round trip when its reply comes, so requests in flight together
    can end up out of send-time order in its file."""
    from venues.sim.latency import read_round_trips

    rows = read_round_trips(str(path), venue, f"{where} latency.file".strip())
    # a request the session refused itself (`held`, local: never sent) measured no latency
    table = np.asarray([r[:3] for r in rows if not r[9]], dtype=np.int64).reshape(-1, 3)
    if not len(table):
        raise ConfigError(f"{where} latency.file {path}: no measured round trip"
                          + ("" if venue is None else f" of venue {venue!r}")
                          + " (every line is a request the session refused itself, `held` ...-local)")
    return table[np.argsort(table[:, 0], kind="stable")]


def _check_constant_keys(lat: Mapping[str, Any], model: Any, where: str) -> None:
    """Refuse the constant model's keys beside another model, which ignores them:
    `entry_ns`, `cancel_entry_ns`, `amend_entry_ns` (the model gives every entry latency:
    from its file, or its `params`) and, with `recorded`, `response_ns` too (its file gives
    the response leg). Why: `model = "empirical"` with `entry_ns = 2000000` ran with the
    file's latencies while summary.json showed entry_ns = 2 ms. `response_ns` stays valid
    beside `empirical` and a model named by path: it times the answer to a request a
    stress scenario's venue fault refuses before it reaches the venue."""
    if model == "constant":
        return
    ignored = [k for k in ("entry_ns", "cancel_entry_ns", "amend_entry_ns") if k in lat]
    if model == "recorded" and "response_ns" in lat:
        ignored.append("response_ns")
    if ignored:
        source = "latency.file" if model in ("empirical", "recorded") else "latency.params"
        raise ConfigError(f"{where} latency.{ignored[0]} = {lat[ignored[0]]!r} with latency.model = {model!r}: "
                          f"that model takes its latencies from {source} and ignores latency.{ignored[0]} "
                          "(a key of the constant model): remove it")


#: the latency files a paper/testnet/live session writes (modes/live/recording.py): the start
#: of each one's header line -> (its name, what it holds, the key that reads it)
SESSION_LATENCY_FILES = (
    ("ts_ns,entry_ns,response_ns", "latency.csv", "order round trips", "latency.file"),
    ("ts_ns,feed_ns", "feed_latency.csv", "feed latencies", "latency.feed_file"),
    ("ts_ns,response_ns", "report_latency.csv", "user-stream report latencies", "latency.report_file"),
)
_READS = {"latency.file": "latency.model = 'recorded' (latency.file)", "latency.feed_file": "latency.feed_file",
          "latency.report_file": "latency.report_file"}


def check_session_header(path: str, reader: str, where: str) -> None:
    """Refuse a session's latency file given to a key that reads another format, by its
    header line (SESSION_LATENCY_FILES). `reader`: "empirical" (latency.file of the
    empirical model: one or two ns columns, no header), "latency.file" (the recorded
    model), "latency.feed_file" or "latency.report_file".

    Why: the recorded `latency.csv` given to `empirical` failed with "latency.csv:1:
    'ts_ns,entry_ns,...' is not an integer number of ns", and a feed file given as the
    report file failed on its line 2; the user learns neither which file that is nor which
    key reads it. A file that is missing or has no such header is left to its loader.
    Raises ConfigError naming the key, the file and the key that reads it."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return
    for prefix, name, holds, key in SESSION_LATENCY_FILES:
        if first.startswith(prefix) and key != reader:
            given = "latency.file" if reader == "empirical" else reader
            raise ConfigError(f"{where} {given} = {path!r}: this is a session's {name} ({holds}, header "
                              f"{first!r}), read by {_READS[key]}"
                              + ("; latency.model = 'empirical' reads one or two ns columns (entry_ns response_ns)"
                                 if reader == "empirical" else ""))


def _session_file(lat: Mapping[str, Any], key: str, file_name: str, constant_key: str, what: str,
                  where: str) -> None:
    """A latency file a session recorded (`feed_file`, `report_file`): a path, and not
    given with the constant it replaces. Raises ConfigError naming the key."""
    value = lat[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} latency.{key} = {value!r}: expected a path (a session's {file_name})")
    if lat.get(constant_key, 0):
        raise ConfigError(f"{where} latency.{key} and latency.{constant_key}: give one (the file is the "
                          f"{what}, {constant_key} a constant one)")


def _ns(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} latency.{key} = {value!r}: expected an integer number of ns")
    if value < 0 or value > _MAX_LATENCY_NS:
        raise ConfigError(f"{where} latency.{key} = {value}: expected 0 <= ns <= {_MAX_LATENCY_NS}")
    return int(value)


def parse_request_budget(value: Any, exchange: str, where: str) -> tuple | None:
    """`request_budget`: false (default, off), true (the order-count windows of the venue's
    API by its ccxt id `exchange`: venues/sim/budget.py budget_limits, the live limiter's
    table), or a table { orders, window_s, max_wait_ms, phase_ns } whose keys override those
    (orders and window_s together: one window). Returns (((orders, window_ns), ...),
    max_wait_ns, phase_ns) or None. Raises ConfigError naming the key."""
    from venues.sim.budget import MAX_WAIT_NS, NS_PER_S, budget_limits

    key = f"{where} request_budget"
    if value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} = {value!r}: expected true, false or a table "
                          "{ orders, window_s, max_wait_ms, phase_ns }")
    unknown = sorted(set(value) - {"orders", "window_s", "max_wait_ms", "phase_ns"})
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {unknown}; keys: orders, window_s, max_wait_ms, phase_ns")
    for k in value:
        if isinstance(value[k], bool) or not isinstance(value[k], int) or value[k] < (1 if k in ("orders", "window_s") else 0):
            raise ConfigError(f"{key}.{k} = {value[k]!r}: expected an integer >= "
                              f"{1 if k in ('orders', 'window_s') else 0}")
    if ("orders" in value) != ("window_s" in value):
        raise ConfigError(f"{key}: give orders and window_s together (one window), or neither (the venue's)")
    limits = ((value["orders"], value["window_s"] * NS_PER_S),) if "orders" in value else budget_limits(exchange)
    max_wait = value["max_wait_ms"] * 1_000_000 if "max_wait_ms" in value else MAX_WAIT_NS
    return limits, max_wait, int(value.get("phase_ns", 0))


def _conflation_ns(value: Any, where: str) -> int:
    """`depth_conflation_ms`: a whole number of ms, 0 (off) to one hour."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_LATENCY_NS // 1_000_000:
        raise ConfigError(f"{where} depth_conflation_ms = {value!r}: expected a whole number of ms "
                          f"from 0 (off) to {_MAX_LATENCY_NS // 1_000_000} (Binance's @depth@100ms: 100)")
    return int(value) * 1_000_000


def _bps(table: Mapping[str, Any], key: str, where: str) -> Decimal:
    return parse_decimal(table.get(key, "0"), f"{where} {key}", floats=True,
                         unit="number of basis points")


def _bool(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} = {value!r}: expected true or false")
    return value


def _stp(value: Any, where: str) -> str:
    if value not in STP_NAMES:
        raise ConfigError(f"{where} stp = {value!r}: expected one of {sorted(STP_NAMES)}")
    return str(value)


def _spikes(value: Any, where: str) -> tuple[tuple[int, int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} latency.spikes = {value!r}: expected a list of "
                          "[start_ns, end_ns, extra_ns]")
    out = []
    for item in value:
        ok = (
            isinstance(item, (list, tuple))
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            and item[0] <= item[1]
            and item[2] >= 0
        )
        if not ok:
            raise ConfigError(
                f"{where} latency.spikes item {item!r}: expected [start_ns, end_ns, extra_ns] "
                "with start <= end and extra >= 0"
            )
        out.append((int(item[0]), int(item[1]), int(item[2])))
    return tuple(out)
