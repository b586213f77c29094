"""The asyncio driver of paper, testnet and live sessions (`tickparity paper|testnet|live`).

One event loop: per instrument a ccxt.pro book task and a trade task (modes.live.feed) push
rows into the session's book as they arrive; in testnet/live a user-stream task per venue
(venues.ccxt.CcxtVenue) queues the venue's reports. The main loop wakes on new rows, new
reports or the next timer (at least every `TICK_S`), reads the LiveClock once and runs one
deterministic step (modes.live.stepper): reports, then rows, responses and timers in time
order, with synchronous strategy callbacks. Nothing in the loop blocks on the network: the
venue's calls are tasks whose answers come back as reports.

Everything a step depends on is recorded first (modes.live.recording), so
`tickparity replay RUN_DIR` re-runs the session exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.clock import LiveClock
from engine.config import RunConfig
from engine.errors import (
    ConfigError,
    StrategyError,
    TickparityError,
    VenueBannedError,
    strategy_stop_text,
)
from engine.reconcile import CONFIRM_AFTER, DeadManSwitch, check_confirm_after, close_gate
from engine.types import EventKind
from modes.backtest import resolve_run
from modes.console import warn
from modes.live import resume as live_resume
from modes.live.account_lock import AccountLocks, account_key
from modes.live.build import MODES, build_session, config_to_json, finish
from modes.live.feed import watch_books, watch_trades
from modes.live.health import Health
from modes.live.recording import SessionRecorder
from venues.ccxt.confirm import confirm_live as _confirm_live
from venues.ccxt.credentials import Credentials
from venues.ccxt.credentials import load_credentials as _load_credentials
from venues.ccxt.ratelimit import BAN_FLOOR_S
from venues.ccxt.timeunit import ask_microseconds, unit_ns
from venues.ccxt.venue import USER_STREAM_GUARD_S
from venues.ccxt.wire import WireTimes
from venues.sim.latency import LOCAL_SUFFIX

TICK_S = 0.02
RECONCILE_S = 30.0  # periodic reconciliation with the venue (testnet/live)
DEADMAN_S = 60.0  # no market data this long: cancel everything (docs/live.md "Dead-man switch")
RECHECK_S = 1.0  # after a reconnect, or lookups a reconciliation asked for
FIRST_BOOK_TIMEOUT_S = 15.0
# after the first book (ccxt's REST snapshot), wait at most this long for the first
# published depth diff before starting (LiveDriver._first_books)
FIRST_WINDOW_S = 1.0
SHUTDOWN_S = 10.0  # ends at once when nothing rests; a loaded machine may need seconds
RECANCEL_S = 0.5  # an order still open with no cancel in flight is cancelled again after this
NO_DATA = "synthetic:0"  # instrument specs from the instruments file (select_instruments)


def state_dir() -> Path:
    """Where live modes keep state that outlives a run directory (the session stamps,
    engine.oms.next_session_stamp): $TICKPARITY_STATE_DIR, else $XDG_STATE_HOME/tickparity,
    else ~/.local/state/tickparity."""
    import os

    if os.environ.get("TICKPARITY_STATE_DIR"):
        return Path(os.environ["TICKPARITY_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tickparity"


class FeedError(TickparityError):
    """The venue's market data did not arrive (no book within FIRST_BOOK_TIMEOUT_S)."""


def url_problem(url: str) -> str | None:
    """What is wrong with `url = URL` of a venue table, or None.

    The URL is the venue's address only, scheme://host[:port] (docs/emulator.md: the
    emulator's start banner prints it): every REST and websocket path is derived from it
    (venues.emulator.ccxt_config keeps only its host). A path, query or fragment would be
    dropped silently, so it is refused, with the address the user most likely meant; a
    suggestion is offered only when it is itself a valid address (`http//127.0.0.1:8765`
    suggests 'http://127.0.0.1:8765', never 'http://http//...')."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme in ("http", "https") and parts.hostname and port_ok:
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            origin = f"{parts.scheme}://{parts.netloc}"
            return (f"expected the venue's address only (scheme://host:port, e.g. {origin!r}): every API "
                    "path is set from it, so a path, query or fragment is not accepted")
        return None
    hint = _suggested_url(url)
    return ("expected an http:// or https:// URL with a host and, if any, a port number"
            + (f", e.g. {hint!r}" if hint else ", e.g. 'http://127.0.0.1:8765'"))


def _suggested_url(url: str) -> str | None:
    """`url` with a mistyped scheme replaced by http:// ('htp://h:1', 'http//h:1', 'h:1'),
    when that gives a valid address; else None."""
    import re
    from urllib.parse import urlsplit

    rest = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:?/+|^/+", "", url.strip())
    candidate = "http://" + rest.rstrip("/")
    parts = urlsplit(candidate)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    if (not parts.hostname or parts.path or parts.query or parts.fragment or candidate == url
            or any(c.isspace() for c in rest)):
        return None
    return candidate


def venue_settings(config: RunConfig, venue: str) -> dict[str, Any]:
    """The live keys of `[venues.<venue>]`: exchange (ccxt id; default the venue name), url.
    Checked here, before any connection, so a wrong one names the file and the key
    (ConfigError): exchange a ccxt.pro id, url a string and only for Binance's dialects."""
    import ccxt.pro as ccxtpro

    table = config.venues.get(venue, {})
    where = config.where(f"venues.{venue}")
    exchange = table.get("exchange", venue)
    url = table.get("url")
    if not isinstance(exchange, str):
        raise ConfigError(f"{where} exchange = {exchange!r}: expected a ccxt.pro exchange id (a string, "
                          "e.g. 'binance')")
    if getattr(ccxtpro, exchange, None) is None:
        key = "exchange" if "exchange" in table else "exchange (default: the venue's name)"
        raise ConfigError(f"{where} {key} = {exchange!r}: not a ccxt.pro exchange id")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{where} url = {url!r}: expected a string, e.g. 'http://127.0.0.1:8765'")
    # the credential keys' types in every mode (paper reads no keys, but the same config runs
    # testnet next): a wrong one is refused now, not when the keys are first needed
    from venues.ccxt.credentials import check_key_types

    check_key_types(table, where)
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise ConfigError(f"{where} url = {url!r}: {problem}")
    if url and exchange not in ("binance", "binanceusdm", "binancecoinm"):
        raise ConfigError(f"{where} url = {url!r}: a custom URL is supported for exchange 'binance', "
                          "'binanceusdm' and 'binancecoinm' (the emulator's dialects)")
    return {"exchange": exchange, "url": url}


def load_credentials(table: dict[str, Any], venue: str, base_dir: str | Path | None = None) -> Credentials:
    """The venue's API key and secret (venues.ccxt.credentials: environment variables or a
    0600 secrets file, a relative one in `base_dir`, the config file's folder), masked
    whenever printed. Never logged. Raises ConfigError naming the key."""
    return _load_credentials(table, venue, base_dir=base_dir)


def confirm_live(venue: str, settings: dict[str, Any], account: str, confirm: Callable[[str], str] | None) -> None:
    """A live session trades real money: it names the venue and the account, and the user
    types the account's name (or sets TICKPARITY_CONFIRM_LIVE to it for unattended runs);
    venues.ccxt.confirm raises LiveNotConfirmed (exit 2) otherwise."""
    _confirm_live(venue, account, settings["exchange"], settings["url"], ask=confirm)


def make_exchange(mode: str, settings: dict[str, Any], credentials: Credentials | None) -> Any:
    """A ccxt.pro exchange for `settings` (mode testnet: the venue's sandbox URLs; a `url`
    points every REST and websocket URL at that host, e.g. the emulator)."""
    import ccxt.pro as ccxtpro

    exchange_id = settings["exchange"]
    cls = getattr(ccxtpro, exchange_id, None)
    if cls is None:
        raise ConfigError(f"exchange = {exchange_id!r}: not a ccxt.pro exchange id")
    extra: dict[str, Any] = {"timeout": 10_000}
    if settings["url"]:
        if exchange_id not in ("binance", "binanceusdm", "binancecoinm"):
            raise ConfigError(f"url = {settings['url']!r}: a custom URL is supported for exchange 'binance', "
                              "'binanceusdm' and 'binancecoinm' (the emulator's dialects)")
        from venues.emulator import ccxt_config

        keys = (credentials.api_key, credentials.secret) if credentials else (None, None)
        config = ccxt_config(settings["url"], *keys, exchange=exchange_id, **extra)
        config["enableRateLimit"] = False  # loopback: the emulator enforces Binance's limits itself
        exchange = cls(config)
    else:
        config = extra | (credentials.ccxt() if credentials else {})
        exchange = cls(config)
        if mode == "testnet":
            exchange.set_sandbox_mode(True)
    # venue times to the µs where the venue offers them (Binance spot): an order's arrival,
    # its fills and the depth windows placed exactly in a backtest of the session
    # (venues/ccxt/timeunit.py; docs/live.md "Venue times in microseconds")
    ask_microseconds(exchange)
    return exchange


class LiveDriver:
    """One paper/testnet/live session (see module doc); `run()` returns the run directory."""

    def __init__(self, config: RunConfig, mode: str, out: str | Path | None = None, *,
                 duration_s: float | None = None, health: bool | None = None,
                 confirm: Callable[[str], str] | None = None, write_html: bool = True,
                 reconcile_s: float = RECONCILE_S, deadman_s: float = DEADMAN_S,
                 on_strategy_error: str = "cancel", venue_health_poll_s: float | None = None,
                 resume: str | Path | None = None, reconcile_confirm: int = CONFIRM_AFTER,
                 user_stream_guard_s: float = USER_STREAM_GUARD_S) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r}: expected one of {MODES}")
        if on_strategy_error not in ("cancel", "keep"):
            raise ConfigError(f"on_strategy_error = {on_strategy_error!r}: expected 'cancel' or 'keep'")
        self.on_strategy_error = on_strategy_error
        self.user_stream_guard_s = user_stream_guard_s
        # a session's market is the venue's: instruments come from the instruments file (the
        # venue's specs), never from the backtest's dataset, which need not exist here
        # base_dir absolute: the session header records it, and `tickparity replay` (from any
        # working directory) finds the strategy and instruments files through it
        config = dataclasses.replace(config, data=NO_DATA, base_dir=str(Path(config.base_dir).resolve()))
        self.config = config
        self.mode = mode
        if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
            # a session of 0 or -5 s made a run directory with start = end and nothing in it
            raise ConfigError(f"--duration {duration_s:g}: expected seconds > 0 (omit it to run until Ctrl-C)")
        self.duration_s = duration_s
        self.write_html = write_html
        self.resolved = resolve_run(config)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # bookkeeping only: the directory name
        self.out = Path(out or f"runs/{mode}-{self.resolved.run_id[:12]}-{stamp}")
        if self.out.exists() and any(self.out.iterdir()):
            raise ConfigError(f"--out {self.out} exists and is not empty; a session needs a fresh directory")
        with config.naming_file():  # the [venues.X] live keys' errors name the config file too
            self.settings = {v: venue_settings(config, v) for v in dict.fromkeys(i.venue for i in self.resolved.instruments.values())}
            self.credentials: dict[str, Credentials | None] = {}
            for venue in self.settings:
                self.credentials[venue] = None if mode == "paper" else load_credentials(
                    config.venues.get(venue, {}), venue, config.base_dir)
        self.health_on = health
        # contingent orders a previous session of this account left (modes/live/resume.py)
        self.resume_from = None if resume is None else str(resume)
        self.resume_state = None if resume is None else live_resume.load(resume, config_to_json(config), mode)
        # one session per account on this machine (modes/live/account_lock.py), before the
        # confirmation and anything sent; released when run() ends, or by the process's end
        self.account_locks = AccountLocks.take(
            state_dir(), [(f"[venues.{v}]", account_key(mode, self.settings[v]["exchange"], self.settings[v]["url"],
                                                        c.account))
                          for v, c in self.credentials.items() if c is not None], self.out, mode)
        try:
            with config.naming_file():
                for venue, settings in self.settings.items():
                    if mode == "live":
                        confirm_live(venue, settings, self.credentials[venue].account, confirm)  # type: ignore[union-attr]
        except BaseException:
            self.account_locks.release()
            raise
        self.clock = LiveClock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._reports: list[Any] = []
        self._errors: list[str] = []
        # a strategy error stopped the session (`_halt_strategy`); the first StrategyError of its
        # end when it had not (on_stop, or a callback of the shutdown's cancels): stopped_by, exit 2
        self._halted = False
        self._end_error: StrategyError | None = None
        self._windows_seen: set[int] = set()  # instruments with a depth diff after their snapshot
        # reconciliation (start, after a user-stream error, every reconcile_s) and the
        # dead-man switch on the market feed (modes.live.safety, engine.reconcile)
        self.reconcile_s = reconcile_s
        # consecutive checks that count a balance gap even with orders in flight (engine.reconcile)
        self.reconcile_confirm = check_confirm_after(reconcile_confirm, "--reconcile-confirm")
        self.deadman = DeadManSwitch(timeout_s=deadman_s, streams=("market",))
        self._reconcile_at: tuple[float, str] | None = None
        self._told_holds: dict[str, tuple[float, int]] = {}  # venue -> (end of the hold told, its status)
        self._started = False  # the start step ran (a 429 before it is "at startup")
        # venue health for the router (testnet/live; modes.live.venue_health)
        self.venue_health: Any = None
        self.venue_health_poll_s = venue_health_poll_s

    def _id_prefix(self, start: int) -> str:
        """`tp<stamp>` (engine.oms.session_id_prefix): testnet/live take their stamp from the
        durable per-account stamps in state_dir() (two sessions on one account never share
        one, even started in the same millisecond); paper orders never reach a venue, so
        its stamp is its start in ms. ConfigError (one line) when the ids it leads would not
        all fit Binance's 36 characters (engine.oms.check_id_prefix)."""
        from engine.oms import base36, check_id_prefix, session_id_prefix
        from modes.live.safety import ROOT_PREFIX

        accounts = [f"{v}:{c.account}" for v, c in self.credentials.items() if c is not None]
        if not accounts:
            prefix = f"{ROOT_PREFIX}{base36(start // 1_000_000)}"
        else:
            prefix = session_id_prefix(state_dir(), accounts, start // 1_000_000, base=ROOT_PREFIX)
        return check_id_prefix(prefix, "client-id prefix (modes.live.safety.ROOT_PREFIX + the session's stamp)")

    # -- callbacks from tasks ------------------------------------------------------------
    def _now(self) -> int:
        """Local receipt time: the LiveClock, never before a row already pushed (a heartbeat
        included), so the book's rows stay in local-time order even if the wall clock steps
        back."""
        built = getattr(self, "built", None)
        return max(self.clock.now(), self._last_local, built.stepper.last_local if built else 0)

    def _on_rows(self, rows: np.ndarray) -> None:
        rows["local_ts"] = np.maximum(rows["local_ts"], max(self._last_local, self.built.stepper.last_local))
        self._last_local = int(rows["local_ts"][-1])
        if len(self._windows_seen) < len(self.resolved.instruments):
            books = rows[(rows["kind"] == EventKind.BOOK_DELTA) | (rows["kind"] == EventKind.SNAPSHOT_BEGIN)]
            if len(books) and not (books["kind"] == EventKind.SNAPSHOT_BEGIN).any():
                self._windows_seen.update(int(i) for i in np.unique(books["instrument"]))
        self.recorder.rows(rows)
        self.deadman.touch("market", int(rows["local_ts"][-1]))
        self.built.stepper.push(rows)
        self.health.rows(rows)
        if self.venue_health is not None:
            self.venue_health.rows(rows)
        self._wake.set()

    def _on_report(self, report: Any) -> None:
        self._reports.append(report)
        self._wake.set()

    def _on_venue_report(self, venue: str, report: Any) -> None:
        """A testnet/live venue's report: its user-stream latency recorded
        (report_latency.csv), then queued for the next step."""
        self.recorder.report_latency(venue, report)
        self.recorder.fill_seen(venue, report)
        self._on_report(report)

    def _on_error(self, what: str, exc: BaseException) -> None:
        # an exception that is already a sentence for the user (venues.ccxt.venue
        # AmbiguousOutcome: `plain`) is its message; any other keeps its class for context
        text = str(exc)[:200] if getattr(exc, "plain", False) else f"{type(exc).__name__}: {str(exc)[:200]}"
        self._errors.append(f"{what}: {text}")
        self.health.error(what)
        if what.startswith("user stream"):  # events may be lost: reconcile once it is back
            self._reconcile_at = (time.monotonic() + RECHECK_S, "reconnect")

    def _tell_hold(self, venue: str, status: int, wait_s: float, *, startup: bool = False) -> None:
        """Say on the console, once per hold, that a venue refuses requests for now: a 429's
        Retry-After (orders that cannot wait are refused `rate_limited`) or a 418 ban
        (nothing is sent to it; orders refused `ip_banned`). Not a line per request: a
        hold already told is silent until it ends, unless a 429 turns into a ban."""
        now = time.monotonic()
        told = self._told_holds.get(venue)
        if told is not None and now < told[0] and (told[1] == 418 or status == 429):
            return
        self._told_holds[venue] = (now + wait_s, status)
        if status == 418:
            warn(f"[venues.{venue}] the venue banned this IP (HTTP 418) for {wait_s:.0f} s: nothing is sent to it "
                 "until then; its new orders are refused ip_banned")
        elif startup:
            warn(f"[venues.{venue}] rate-limited by the venue (HTTP 429) at startup: waiting {wait_s:.0f} s (its "
                 "Retry-After) before starting; Ctrl-C stops")
        else:
            warn(f"[venues.{venue}] rate-limited by the venue (HTTP 429): no request to it for {wait_s:.0f} s (its "
                 "Retry-After); orders that cannot wait that long are refused rate_limited")

    def _on_rest_attempt(self, venue: str, gateway: Any, method: str, verdict: Any) -> None:
        """Each REST attempt's outcome (Gateway.listeners): a venue's 429 / 418 is told once
        (`_tell_hold`), with the time the gateway's limiter now holds its requests."""
        if verdict is None or "local" in verdict.evidence:
            return
        status = verdict.evidence.get("http_status")
        if status in (418, 429):
            wait = max(gateway.held_s(), verdict.wait_s or 0.0)
            self._tell_hold(venue, status, wait, startup=not self._started)

    def _pace_paper_snapshots(self, exchanges: dict[str, Any]) -> None:
        """Paper mode has no gateway, yet its book watches fetch REST depth snapshots (at the
        start, after every resync) like a testnet session's: each venue's market-data client
        gets a `WeightLimiter` of its own and the gateway's pacing
        (`venues.ccxt.gateway.limit_book_snapshots`), so a snapshot waits out a 429's
        Retry-After, a 418 ban or a spent minute instead of earning a ban; a 429 or 418 is
        told once per hold, as in testnet/live (`book_limiters`: the limiters, by venue)."""
        from venues.ccxt.gateway import limit_book_snapshots
        from venues.ccxt.ratelimit import WeightLimiter

        self.book_limiters: dict[str, WeightLimiter] = {}
        for name, ex in exchanges.items():
            limiter = self.book_limiters[name] = WeightLimiter.for_venue(str(getattr(ex, "id", "binance")))
            tap = limit_book_snapshots(ex, limiter)

            def told(status: int, headers: dict[str, str], name: str = name, limiter: WeightLimiter = limiter) -> None:
                if status in (418, 429):  # observe ran first: the hold is the limiter's
                    self._tell_hold(name, status, limiter.hold()[0], startup=not self._started)

            tap.listeners.append(told)

    def _open_on(self, venue: str) -> bool:
        """The session holds an order open on `venue` (its user stream has something to report)."""
        built = getattr(self, "built", None)
        if built is None:
            return False
        by_no = built.session.oms.by_no
        return any(by_no[no].instrument.venue == venue for no in built.session.oms.open_nos)

    def _resting_on(self, venue: str) -> dict[str, int]:
        """{client id: filled lots, the most the venue reported} of the session's orders
        known to rest on `venue`: acknowledged or partly filled, no lookup outstanding (an
        order not yet acknowledged, or whose fate is being looked up, may not be at the
        venue at all). What the user-stream guard's probe compares the venue's open orders
        with (venues.ccxt.venue CcxtVenue._probe_user_stream)."""
        from engine.types import OrderStatus

        built = getattr(self, "built", None)
        if built is None:
            return {}
        by_no = built.session.oms.by_no
        resting = (OrderStatus.ACKNOWLEDGED, OrderStatus.PARTIALLY_FILLED)
        out: dict[str, int] = {}
        for no in built.session.oms.open_nos:
            order = by_no[no]
            if (order.instrument.venue == venue and order.status in resting and not order.lookup_pending
                    and not order.ambiguous):
                out[order.client_id] = max(order.filled, order.venue_filled)
        return out

    def _on_user_silent(self, venue: str, silent_s: float, first: bool, evidence: str = "") -> None:
        """A venue's user stream was silent while the venue showed a change of our orders it
        never told, and was re-subscribed (venues.ccxt.venue CcxtVenue._user_silent):
        reconcile (what the silence hid, a fill, a cancel, comes back from the venue's REST
        answers) and say so once per silence, with the evidence."""
        if first:
            why = f" while {evidence}" if evidence else ""
            warn(f"[venues.{venue}] user stream silent for {silent_s:.1f} s{why}: re-subscribed; reconciling with "
                 "the venue (said once per silence; docs/live.md \"Reconnects\")")
        due = time.monotonic() + RECHECK_S
        if self._reconcile_at is None or self._reconcile_at[0] > due:  # one already due sooner covers it
            self._reconcile_at = (due, "user-stream")

    def _on_venue_error(self, venue: str, what: str, exc: BaseException) -> None:
        """A venue's stream or command error: its health (streams; REST attempts reach it
        through the gateway), then the session's error list."""
        if self.venue_health is not None and what.startswith(("user stream", "book ", "trades ")):
            self.venue_health.stream_error(venue, what, exc)
        self._on_error(what, exc)

    # -- the run -------------------------------------------------------------------------
    def run(self) -> Path:
        """Run until --duration passes or Ctrl-C / SIGTERM, then stop cleanly; the account
        locks are released however it ends."""
        try:
            return asyncio.run(self._main())
        finally:
            self.account_locks.release()

    async def _main(self) -> Path:
        from venues.ccxt import CcxtVenue
        from venues.simulated import SimulatedVenue

        loop = asyncio.get_running_loop()
        from venues.connection_resets import quiet_resets

        quiet_resets(loop)  # ccxt's pong to a venue that dropped us: one line, not a traceback
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        resolved, mode = self.resolved, self.mode
        self._last_local = self.clock.now()
        exchanges = {v: make_exchange(mode, s, self.credentials[v]) for v, s in self.settings.items()}
        instruments = resolved.instruments
        index = {inst_id: i for i, inst_id in enumerate(instruments)}
        self.recorder: SessionRecorder | None = None  # with the run directory, once the venues answered
        self.health = Health(instruments, enabled=self.health_on)
        # testnet/live: the session's venues, kept for inspection after the run (the guard's counts)
        self.ccxt_venues: dict[str, CcxtVenue] = {}
        ccxt_venues = self.ccxt_venues
        # when each order request left (venues/ccxt/wire.py): a venue's refusal, which has no
        # venue time, is placed from it (recording.py round_trip)
        wires = {} if mode == "paper" else {name: WireTimes(self._now) for name in exchanges}
        if mode == "paper":  # testnet/live: each CcxtVenue's gateway does the same on its client
            self._pace_paper_snapshots(exchanges)

        def make_venues(core):
            if mode == "paper":
                return {name: SimulatedVenue(name, core, cfg) for name, cfg in resolved.venue_configs.items()}
            for name, cfg in resolved.venue_configs.items():
                mine = {index[i]: inst for i, inst in instruments.items() if inst.venue == name}
                ccxt_venues[name] = CcxtVenue(name, exchanges[name], mine, core,
                                              functools.partial(self._on_venue_report, name), self._now,
                                              maker_fee_bps=cfg.maker_fee_bps, taker_fee_bps=cfg.taker_fee_bps,
                                              on_round_trip=self._round_trip,
                                              on_error=functools.partial(self._on_venue_error, name),
                                              wire=wires.get(name), user_stream_guard_s=self.user_stream_guard_s,
                                              on_user_silent=self._on_user_silent,
                                              expects_user_events=functools.partial(self._open_on, name),
                                              expected_open=functools.partial(self._resting_on, name))
                ccxt_venues[name].gateway.listeners.append(
                    functools.partial(self._on_rest_attempt, name, ccxt_venues[name].gateway))
            return dict(ccxt_venues)

        tasks: list[asyncio.Task] = []
        started = None
        stopped = False
        failure: BaseException | None = None
        try:
            for name, wire in wires.items():  # before the exchange's first REST call
                wire.install(exchanges[name])
            await self._preflight(exchanges, signed=mode != "paper", instruments=instruments)
            start = self._now()
            # a per-session client-id prefix: ids stay unique on the account across sessions
            # (checked to leave every id within 36 characters before any run directory exists)
            prefix = self._id_prefix(start)
            # the run directory only now: a venue that does not answer (a wrong url, refused
            # keys) leaves nothing behind, not an empty directory per attempt
            self.out.mkdir(parents=True, exist_ok=True)
            # report_latency.csv measures a venue's user stream: testnet/live only (paper has none)
            self.recorder = SessionRecorder(self.out, instruments, reports=mode != "paper")
            # the unit of each venue's times (the round trips' and reports' stamps): the ccxt
            # client's (µs where asked, venues/ccxt/timeunit.py); paper's simulated venue is exact
            self.recorder.stamp_ns = {v: 1 if mode == "paper" else unit_ns(ex) for v, ex in exchanges.items()}
            self.built = built = build_session(resolved, self.out, start, prefix, make_venues,
                                               on_round_trip=self._round_trip if mode == "paper" else None,
                                               paper=mode == "paper")
            self.recorder.audit = built.audit
            if ccxt_venues:
                from modes.live.venue_health import POLL_S, LiveVenueHealth

                poll = POLL_S if self.venue_health_poll_s is None else self.venue_health_poll_s
                self.venue_health = LiveVenueHealth(ccxt_venues, instruments, self._now, poll_s=poll)
                tasks.extend(asyncio.create_task(c) for c in self.venue_health.tasks())
            self.saver = (live_resume.StateSaver(self.out, mode, config_to_json(self.config), built.session)
                          if mode != "paper" else None)
            built.session.attach_control(self.out)  # the operator's inbox: RUN/control (tickparity kill|approve|resume)
            self.recorder.journal({"session": 1, "mode": mode, "start": start, "id_prefix": prefix,
                                   "config": config_to_json(self.config),
                                   "venues": {v: {"exchange": s["exchange"], "url": s["url"]}
                                              for v, s in self.settings.items()}})
            for inst_id, inst in instruments.items():
                ex = exchanges[inst.venue]
                on_error = functools.partial(self._on_venue_error, inst.venue)
                tasks.append(asyncio.create_task(watch_books(ex, inst, index[inst_id], self._on_rows, self._now,
                                                             on_error)))
                tasks.append(asyncio.create_task(watch_trades(ex, inst, index[inst_id], self._on_rows, self._now,
                                                              on_error)))
            for venue in ccxt_venues.values():
                tasks.append(asyncio.create_task(venue.watch_orders()))
                tasks.append(asyncio.create_task(venue.watch_my_trades()))
            if any(i.contract for i in instruments.values()):  # contracts (modes.live.derivatives)
                tasks += await self._contracts(exchanges, ccxt_venues, index)
            await self._first_books(tasks)
            started = self._now()
            extra = await self._safety_record(ccxt_venues, "start") if ccxt_venues else None
            if getattr(self, "_contract_lines", None):
                extra = {**(extra or {}), "contracts": self._contract_lines}
            if self.resume_state is not None:  # restored in the start step, before its reconciliation
                extra = (extra or {}) | {"contingent": self.resume_state, "resume_from": self.resume_from}
                live_resume.claim(self.resume_from, self.out)  # the previous run is taken over once
            strategy_error: StrategyError | None = None
            self._started = True
            try:
                self._step(started, start=True, extra=extra)
            except StrategyError as exc:  # on_start raised
                strategy_error = exc
                self._halt_strategy(exc, ccxt_venues)
            else:
                self._after_reconcile(ccxt_venues)
            next_periodic = time.monotonic() + self.reconcile_s
            with self.health.live():
                deadline = None if self.duration_s is None else time.monotonic() + self.duration_s
                while strategy_error is None and not self._stop.is_set():
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    await self._wait()
                    now = self._now()
                    expired = [cid for v in ccxt_venues.values() for cid in v.expired(now)]
                    try:
                        self._step(now, action="expire" if expired else None, ids=expired)
                    except StrategyError as exc:
                        strategy_error = exc
                        self._halt_strategy(exc, ccxt_venues)
                        break
                    if ccxt_venues:
                        lost = self.deadman.check(now)
                        if lost:
                            self._step(self._now(), extra={"c": "deadman",
                                                           "why": f"dead-man switch: no market data for > "
                                                                  f"{self.deadman.timeout_ns / 1e9:g} s"})
                        due = self._reconcile_at
                        if due is None and time.monotonic() >= next_periodic:
                            due = (0.0, "periodic")
                        if due is not None and time.monotonic() >= due[0]:
                            self._reconcile_at = None
                            next_periodic = time.monotonic() + self.reconcile_s
                            extra = await self._safety_record(ccxt_venues, due[1])
                            if extra is not None:
                                self._step(self._now(), extra=extra)
                                self._after_reconcile(ccxt_venues)
                    self.poll_control()
                    self.health.update(built, ccxt_venues)
                    failure = _failed_task(tasks)
                    if failure is not None:  # a feed or stream task died: stop cleanly, then say why
                        break
                if strategy_error is None or self.on_strategy_error != "keep":
                    await self._shutdown(ccxt_venues)
                if strategy_error is not None and ccxt_venues:  # leave the session reconciled
                    extra = await self._safety_record(ccxt_venues, "after-halt")
                    if extra is not None:
                        self._guarded_step(self._now(), extra=extra)
                        self._after_reconcile(ccxt_venues)
            if strategy_error is None:
                try:  # the end completes whatever on_stop raised (TradingSession.stop), then says so
                    self.built.session.stop()
                except StrategyError as exc:
                    self._end_error = self._end_error or exc
            else:  # no on_stop after a strategy error: the run is sealed as it stands
                self.built.audit.seal(self.built.clock.now())
            # `halted`: how the session ended, which the replay must end the same way
            self.recorder.journal({"stop": self.built.clock.now(), **({"halted": 1} if strategy_error else {})})
            if self.saver is not None:
                self.saver.sync(force=True)
            stopped = True
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for venue in ccxt_venues.values():
                await venue.close()
            for ex in exchanges.values():
                await ex.close()
            if self.recorder is not None:
                self.recorder.close()
            if started is not None:
                self.built.audit.close()
        assert stopped
        stopped_by = None
        if strategy_error is None and self._end_error is not None:
            # the strategy raised at the end (on_stop, or a callback of the shutdown's cancels):
            # the session ended as it would have, its run directory is complete; the error is
            # still the user's (exit 2)
            strategy_error = self._end_error
        if strategy_error is not None:
            stopped_by = strategy_stop_text(strategy_error)
        elif failure is not None:
            stopped_by = f"{type(failure).__name__}: {failure}"
        summary = finish(self.built, resolved, mode, self.out, self.out.name, started=started,
                         extra={"errors": self._errors[-50:], "stopped_by": stopped_by},
                         write_html=self.write_html)
        self.health.final(summary)
        if strategy_error is not None:  # the run directory is complete; the error is the user's
            strategy_error.run_dir = self.out  # type: ignore[attr-defined]  # the CLI says where it is
            raise strategy_error
        if failure is not None:
            raise failure
        return self.out

    def _halt_strategy(self, exc: StrategyError, ccxt_venues: dict[str, Any]) -> None:
        """The strategy raised: in testnet/live no new submits and its orders cancelled
        (unless on_strategy_error="keep"), as a recorded halt step; paper's simulated venue
        is simply stopped (the shutdown cancels what rests there). The session then ends:
        run directory written, `stopped_by` says why, the error raised."""
        self._halted = True
        if ccxt_venues:
            keep = self.on_strategy_error == "keep"
            self._guarded_step(self._now(), extra={"c": "halt", "why": f"strategy error: {exc}", "cancel": not keep})

    async def _contracts(self, exchanges: dict[str, Any], ccxt_venues: dict[str, Any],
                         index: dict[str, int]) -> list[asyncio.Task]:
        """Contracts: the venue's leverage and margin mode set from the venue tables
        (testnet/live), and a mark-price task per contract (docs/derivatives.md)."""
        from modes.live import derivatives

        if ccxt_venues:
            # recorded with the start step (what the venue was told, for the record)
            self._contract_lines = await derivatives.configure(ccxt_venues, self.built.ledger.derivatives.settings)
        return [asyncio.create_task(derivatives.watch_marks(exchanges[inst.venue], inst, index[inst_id],
                                                            self._on_rows, self._now, self._on_error))
                for inst_id, inst in self.resolved.instruments.items() if inst.contract]

    async def _first_books(self, tasks: list[asyncio.Task]) -> None:
        """Wait until every instrument has a book (the strategy starts on a known market),
        then until each has had a depth diff after it (at most FIRST_WINDOW_S).

        Why the second wait: the first book is ccxt's REST snapshot, the venue's book at the
        moment of the request, mid-way through a depth window; every later book is a
        published window. Starting on the first diff makes the strategy's first decision
        (a TWAP's first slice at on_start) see a published window, the book a backtest of
        the same period with `depth_conflation_ms` opens on, not a snapshot no backtest
        can know the time of (README "Parity"). A market that sends no diff for
        FIRST_WINDOW_S changed nothing since the snapshot: its snapshot is that book."""
        n = len(self.resolved.instruments)
        deadline = time.monotonic() + FIRST_BOOK_TIMEOUT_S
        window_by: float | None = None
        while True:
            seen = set(self.health.books_seen)
            if len(seen) >= n:
                if window_by is None:
                    window_by = time.monotonic() + FIRST_WINDOW_S
                if len(self._windows_seen) >= n or time.monotonic() >= window_by:
                    return
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if time.monotonic() > deadline:
                missing = [i for k, i in enumerate(self.resolved.instruments) if k not in seen]
                raise FeedError(f"no order book for {missing} within {FIRST_BOOK_TIMEOUT_S:.0f} s "
                                 f"({'; '.join(self._errors[-3:]) or 'no error reported'})")
            await asyncio.sleep(0.02)

    async def _wait(self) -> None:
        """Until rows or reports arrive, the next timer is due, or TICK_S passes."""
        timeout = TICK_S
        nxt = self.built.session.next_timer_ts()
        if nxt is not None:
            timeout = min(timeout, max((nxt - self.clock.now()) / 1e9, 0.0))
        if timeout > 0:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        self._wake.clear()

    async def _safety_record(self, ccxt_venues: dict[str, Any], at: str) -> dict[str, Any] | None:
        """The venue's open orders and balances as a reconcile step action (None: the venue
        did not answer; tried again after RECHECK_S). While a venue's 429 or 418 holds, a
        reconciliation after the start is deferred until it ends rather than awaited (the
        loop would stand still meanwhile); the start's waits, said once (`_tell_hold`). A
        reconciliation whose own request met the 429 or 418 (a ban that began while our
        limiter did not know: another process on the IP, or the venue answered the request
        that started it 429) is deferred the same way, not an error: nothing was learnt."""
        from modes.live import safety

        held = max((v.gateway.held_s() for v in ccxt_venues.values()), default=0.0)
        if held > 0 and at != "start":
            self._reconcile_at = (time.monotonic() + held, at)
            return None
        try:
            return await safety.fetch(ccxt_venues, at, self.reconcile_confirm)
        except Exception as exc:
            held = max((v.gateway.held_s() for v in ccxt_venues.values()), default=0.0)
            if held > 0 and at != "start":  # the reply that failed it set the hold (told once: `_tell_hold`)
                self._reconcile_at = (time.monotonic() + held, at)
                return None
            self._on_error(f"reconcile ({at})", exc)
            self._reconcile_at = (time.monotonic() + RECHECK_S, at)
            return None

    def _after_reconcile(self, ccxt_venues: dict[str, Any]) -> None:
        """Print what differs; ask for the lookups a reconciliation wants, then check again."""
        from modes.live import safety

        report = safety.reconciler(self.built.session).last
        if report is None:
            return
        if report.lookups:
            now = self._now()
            for cid in report.lookups:
                order = self.built.session.oms.by_client[cid]
                ccxt_venues[order.instrument.venue].request_order_state(order, now)
            self._reconcile_at = (time.monotonic() + RECHECK_S, report.at)
        elif report.pending and report.ok:  # a balance gap seen once: read the venue again
            self._reconcile_at = (time.monotonic() + RECHECK_S, report.at)
        elif not report.ok or report.foreign or report.adopted:
            # one line when ok; adopted orders are said at the default level: the session
            # now manages orders this run did not place (whose, by their session's stamp)
            warn(report.text())

    def _step(self, now: int, *, start: bool = False, action: str | None = None,
              ids: list[str] | None = None, extra: dict[str, Any] | None = None) -> None:
        """Record, then run, one step (the order matters: a crash mid-step is replayable)."""
        from modes.live.reports import report_json

        reports, self._reports = self._reports, []
        record: dict[str, Any] = {"now": now, "rows": self.built.stepper.rows_pushed}
        if reports:
            record["r"] = [report_json(r) for r in reports]
        if start:
            record["start"] = 1
        if action:
            record["c"] = action
        if ids:
            record["ids"] = ids
        if extra:
            record.update(extra)
        if self.venue_health is not None:
            changes = self.venue_health.changes(now)
            if changes:
                record["vh"] = changes  # venue health changes: applied after the step (run_step)
                self.recorder.venue_health(now, changes)  # and for a backtest of the period
        self.recorder.journal(record)
        run_step(self.built, record, reports)
        if self.saver is not None:  # testnet/live: RUN/contingent.json, for a restart
            if not self.saver.maybe_save(self.built.session):
                self.saver.sync()
        self.recorder.maybe_flush(now)

    def _guarded_step(self, now: int, **kw: Any) -> None:
        """A step after the strategy failed, or of the shutdown: its callbacks may raise
        (again); the venue's answers are merged before any callback, so they are never lost.
        The first error of a shutdown the strategy had not failed before is the session's
        end error (`_end_error`: stopped_by, exit 2); any other goes to `errors`."""
        try:
            self._step(now, **kw)
        except StrategyError as exc:
            if not self._halted and self._end_error is None:
                self._end_error = exc
            else:
                self._on_error("strategy (halted)" if self._halted else "strategy (stopping)", exc)

    def poll_control(self) -> None:
        """Commands from outside (`tickparity kill|approve|refuse|resume RUN`): the control
        inbox (`TradingSession.attach_control`) is read here, once per loop: the one call
        site for it. What it holds is journaled as a step of its own (`"ctl"`: the commands,
        as engine.control.Command fields) and applied by run_step, so `tickparity replay`
        applies the same commands at the same point. An approval whose deadline passed is
        such a step too (with no command): its refusal is replayed at the same time."""
        guard = self.built.session.guard
        commands = guard.control.take() if guard.control is not None else []
        now = self._now()
        due = any(now >= deadline for deadline in guard.pending.values())
        if commands or due:
            self._step(now, extra={"ctl": [dataclasses.asdict(c) for c in commands]})

    def _round_trip(self, send: int, exch: int | None, reply: int, command: str, seq: int | None = None,
                    venue: str = "", wire_ns: int | None = None, client_id: str | None = None,
                    held: str | None = None) -> None:
        self.recorder.round_trip(send, exch, reply, command, seq, venue, wire_ns=wire_ns, client_id=client_id,
                                 held=held)
        if held is None or not held.endswith(LOCAL_SUFFIX):  # a request refused before sending took no trip
            self.health.round_trip(reply - send)

    async def _preflight(self, exchanges: dict[str, Any], *, signed: bool,
                         instruments: dict[str, Any] | None = None) -> None:
        """Each venue's markets, and for testnet/live one signed call (the balance), before
        any stream starts: an unreachable URL, refused credentials or an instrument the
        venue does not list are the user's to fix and get one line naming the venue table
        or the instrument (ConfigError, exit 2), not a traceback from a stream task (ccxt's
        websocket-API auth handler fails on a refused key with a KeyError of its own), nor
        a 15 s wait for a book that cannot come (`no order book ... BadSymbol`)."""
        import ccxt

        from venues.ccxt.http import ResponseTap
        from venues.ccxt.outcomes import retry_after

        for name, ex in exchanges.items():
            table = f"[venues.{name}] (url {self.settings[name].get('url') or 'ccxt default'})"
            # named like every config error: the file, then the table
            prefix = f"{self.config.config_file}: " if self.config.config_file else ""
            where = prefix + table
            ResponseTap.install(ex)  # the status and Retry-After of a refusal (the gateway reuses it)
            while True:
                with ResponseTap.capture() as reply:
                    try:
                        await ex.load_markets()
                        _check_listed(name, table, ex, instruments or {}, self.config.where("instruments"))
                        if signed:
                            await ex.fetch_balance()
                        break
                    except ccxt.AuthenticationError as exc:
                        raise ConfigError(f"{where}: the venue refused the API key or secret: "
                                          f"{str(exc)[:200]}") from None
                    except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                        if reply.status not in (418, 429):
                            raise ConfigError(f"{where}: cannot reach the venue ({type(exc).__name__}): "
                                              f"{str(exc)[:200]}") from None
                        status, headers = reply.status, dict(reply.headers)
                # rate-limited at startup: said once, then wait out its Retry-After and ask again
                wait = retry_after(headers) or (BAN_FLOOR_S if status == 418 else 60.0)
                if status == 418:
                    raise VenueBannedError(f"{where}: the venue has banned this IP (HTTP 418) for {wait:.0f} s; "
                                           "start the session again after that (a banned IP is never "
                                           "sent to: every request would lengthen the ban)")
                self._tell_hold(name, 429, wait, startup=True)
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                except TimeoutError:
                    continue
                raise KeyboardInterrupt  # Ctrl-C while waiting: nothing started, nothing written

    async def _shutdown(self, ccxt_venues: dict[str, Any]) -> None:
        """Stop new orders, cancel the session's open orders and wait (at most SHUTDOWN_S)
        for the answers and for commands in flight, so the run ends with nothing resting
        and nothing unknown; what is still open is reported."""
        session = self.built.session
        if not any(o.is_open for o in session.oms.by_no.values()):
            return
        self._guarded_step(self._now(), action="cancel_all")
        deadline = time.monotonic() + SHUTDOWN_S

        def busy() -> bool:  # open orders, or commands still on their way (never cut one off)
            return (any(o.is_open for o in session.oms.by_no.values())
                    or any(v.tasks for v in ccxt_venues.values()))

        recancel = time.monotonic() + RECANCEL_S
        while time.monotonic() < deadline and busy():
            await self._wait()
            if time.monotonic() >= recancel and any(
                    o.is_open and not session.cancel_in_flight(o) for o in session.oms.by_no.values()):
                # a cancel the venue refused (e.g. it had not seen the order yet): again
                self._guarded_step(self._now(), action="cancel_all")
                recancel = time.monotonic() + RECANCEL_S
            else:
                self._guarded_step(self._now())
        still = sorted(o.client_id for o in session.oms.by_no.values() if o.is_open)
        if still:
            warn(f"{len(still)} order(s) still open at the venue after {SHUTDOWN_S:.0f} s: {', '.join(still[:10])}")


def _check_listed(venue: str, where: str, exchange: Any, instruments: dict[str, Any],
                  key: str = "[run] instruments") -> None:
    """ConfigError naming the instruments of `venue` whose symbol the venue's loaded
    markets (`exchange.markets`) do not list, with a few it does list; `key` is where the
    instruments came from (the config's `[run] instruments` or `--instrument`)."""
    markets = getattr(exchange, "markets", None) or {}
    missing = [inst_id for inst_id, inst in instruments.items() if inst.venue == venue and inst.symbol not in markets]
    if missing:
        listed = sorted(markets)
        raise ConfigError(f"{key}: {', '.join(missing)}: {where} lists no such market "
                          f"(it lists {', '.join(listed[:8])}{', ...' if len(listed) > 8 else ''})")


def _failed_task(tasks: list[asyncio.Task]) -> BaseException | None:
    """The exception of the first feed/stream task that ended with one (e.g. a DataError
    naming an off-grid price from the venue), else None."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            return task.exception()
    return None


#: why the session's gate is closed at a normal stop (`run_step`'s cancel_all)
SHUTDOWN_WHY = "the session is stopping (--duration, Ctrl-C or SIGTERM): its orders are cancelled"


def run_step(built: Any, record: dict[str, Any], reports: list[Any]) -> None:
    """One recorded step (the live driver and the replay both call this)."""
    if record.get("contingent") is not None:  # a warm restart: the previous session's contingent orders
        live_resume.restore(built, record)
    if record.get("c") in ("reconcile", "deadman", "halt"):  # before on_start: adoption comes first
        from modes.live import safety

        safety.apply(built, record)
    if record.get("start"):
        built.clock.advance_to(max(built.clock.now(), int(record["now"])))
        built.current[0] = "on_start"
        built.session.start()
    if record.get("c") == "cancel_all":
        built.current[0] = "shutdown"
        # no new orders from here on: the session's gate closes (rejected locally,
        # `fail_closed`), as a halt's does. Not the kill switch, nor any risk state: a normal
        # stop leaves the risk state as trading left it (summary.json run.risk). The
        # strategy's timers and callbacks still run, so it sees its orders end
        close_gate(built.session, SHUTDOWN_WHY, amends=True)
        for order in sorted(built.session.oms.by_no.values(), key=lambda o: o.order_no):
            if order.is_open and not built.session.cancel_in_flight(order):
                built.session.cancel(order.client_id)
    if record.get("c") == "expire":  # GTD emulated: the venue has none (venues/ccxt/orders.py)
        built.current[0] = "gtd_expiry"
        for cid in record.get("ids", ()):
            built.session.cancel(cid)
    built.stepper.step(int(record["now"]), reports)
    if record.get("vh"):  # venue health from the live symptoms (modes.live.venue_health)
        built.current[0] = "venue_health"
        built.clock.advance_to(max(built.clock.now(), int(record["now"])))
        for venue, state, reason in record["vh"]:
            built.session.set_venue_health(venue, state, reason)
    if "ctl" in record:  # operator commands (LiveDriver.poll_control), after the step's events
        from engine.control import Command

        built.current[0] = "control"
        built.session.apply_control([Command(**body) for body in record["ctl"]])


def run_live(config: RunConfig, mode: str, out: str | Path | None = None, *, duration_s: float | None = None,
             health: bool | None = None, confirm: Callable[[str], str] | None = None,
             write_html: bool = True, reconcile_s: float = RECONCILE_S, deadman_s: float = DEADMAN_S,
             on_strategy_error: str = "cancel", venue_health_poll_s: float | None = None,
             resume: str | Path | None = None, reconcile_confirm: int = CONFIRM_AFTER,
             user_stream_guard_s: float = USER_STREAM_GUARD_S) -> Path:
    """Run a paper/testnet/live session; returns its run directory (docs/live.md).

    A strategy exception in testnet/live stops new submits, cancels the strategy's open
    orders (`on_strategy_error="keep"` leaves them), reconciles, writes the run directory
    and then raises the StrategyError. `venue_health_poll_s`: the venue status poll of the
    router's venue health (default modes.live.venue_health.POLL_S; 0 = none). `resume`: the
    run directory of a previous testnet/live session of the same account whose contingent
    orders this one takes over (modes/live/resume.py). `reconcile_confirm`: consecutive
    reconciliations that count the same balance gap (same amount, same ledger figure) even
    while orders are in flight (engine.reconcile CONFIRM_AFTER; >= 2). `user_stream_guard_s`:
    seconds a user-stream watch may get nothing before the stream is re-subscribed and the
    session reconciles (venues.ccxt.venue USER_STREAM_GUARD_S)."""
    return LiveDriver(config, mode, out, duration_s=duration_s, health=health, confirm=confirm,
                      write_html=write_html, reconcile_s=reconcile_s, deadman_s=deadman_s,
                      on_strategy_error=on_strategy_error, venue_health_poll_s=venue_health_poll_s,
                      resume=resume, reconcile_confirm=reconcile_confirm,
                      user_stream_guard_s=user_stream_guard_s).run()
