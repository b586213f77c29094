"""Build and run an emulator: in the foreground (the CLI) or on a background thread (tests,
benchmarks, notebooks), plus the ccxt configuration that points unmodified ccxt at it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from aiohttp import web

from engine.errors import ConfigError
from engine.output import instruments_json
from engine.types import Instrument
from venues.emulator.accounts import Account
from venues.emulator.binance import BinanceServer, rest_routes
from venues.emulator.clock import MarketClock
from venues.emulator.exchange import KEEP_CLOSED_ORDERS, KEEP_TRADES, MAX_NUM_ORDERS, Exchange
from venues.emulator.faults import FaultPlan
from venues.emulator.futures import FuturesExchange, serves_futures
from venues.emulator.journal import Journal
from venues.emulator.ratelimit import RateLimiter
from venues.sim import SimVenueConfig

# ccxt options that keep unmodified ccxt on the endpoints the emulator serves (measured
# against ccxt 4.5.90; see docs/emulator.md)
CCXT_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "fetchOpenOrders": {"warnWithoutSymbol": False},
}


def _localize(value: Any, base_url: str) -> Any:
    """Every URL of ccxt's api table moved to the emulator's host, path kept."""
    if isinstance(value, dict):
        return {k: _localize(v, base_url) for k, v in value.items()}
    if isinstance(value, str) and "://" in value:
        local = urlsplit(base_url)
        parts = urlsplit(value)
        scheme = "ws" if parts.scheme in ("ws", "wss") else "http"
        return urlunsplit((scheme, local.netloc, parts.path, parts.query, parts.fragment))
    return value


# the same for ccxt's `binanceusdm` (USDⓈ-M futures: markets of type linear only) and
# `binancecoinm` (COIN-M: inverse)
CCXT_FUTURES_OPTIONS: dict[str, Any] = {**CCXT_OPTIONS, "fetchMarkets": {"types": ["linear"]}}
CCXT_COINM_OPTIONS: dict[str, Any] = {**CCXT_OPTIONS, "fetchMarkets": {"types": ["inverse"]}}


def ccxt_config(base_url: str, api_key: str | None = None, secret: str | None = None,
                exchange: str = "binance", **extra: Any) -> dict[str, Any]:
    """The config dict for `ccxt.binance(...)` / `ccxt.async_support.binance(...)` /
    `ccxt.pro.binance(...)` that points every URL at the emulator (nothing can leak to the
    real venue) with the options above; `extra` keys are merged (e.g. timeout).
    `exchange="binanceusdm"`: the same for `ccxt.binanceusdm` against a futures emulator."""
    import ccxt.pro

    options = {"binance": CCXT_OPTIONS, "binanceusdm": CCXT_FUTURES_OPTIONS, "binancecoinm": CCXT_COINM_OPTIONS}
    if exchange not in options:
        raise ConfigError(f"exchange {exchange!r}: the emulator speaks 'binance' (spot), 'binanceusdm' "
                          "and 'binancecoinm'")
    # ccxt.pro's table is the sync/async one plus the websocket URLs
    config: dict[str, Any] = {
        "urls": {"api": _localize(getattr(ccxt.pro, exchange)().urls["api"], base_url)},
        "options": dict(options[exchange]),
    }
    if api_key is not None:
        config["apiKey"] = api_key
        config["secret"] = secret
    for k, v in extra.items():
        if k == "options":
            config["options"].update(v)
        else:
            config[k] = v
    return config


@dataclass
class EmulatorSettings:
    """Everything an emulator needs besides the market data (validated by the caller)."""

    instruments: Sequence[Instrument]
    venue_configs: Mapping[str, SimVenueConfig]
    accounts: Sequence[Account]
    seed: int = 0
    speed: float = 1.0
    stepped: bool = False
    loop: bool = False
    out_dir: str | Path | None = None
    faults: FaultPlan | None = None
    # None: the limits of the API the instruments speak (RateLimiter.for_venue: spot, USDⓈ-M, COIN-M)
    limiter: RateLimiter | None = None
    ping_interval: float = 20.0
    max_connection_s: float = 86400.0
    max_incoming_per_s: int = 5
    reply_timeout_s: float = 10.0
    max_num_orders: int = MAX_NUM_ORDERS  # Binance's MAX_NUM_ORDERS filter (open per symbol)
    keep_closed_orders: int = KEEP_CLOSED_ORDERS  # closed orders GET order still finds
    keep_trades: int = KEEP_TRADES  # trades per account myTrades still finds
    # futures: each venue's [venues.X] leverage / margin_mode (engine.margin.MarginSettings)
    margin: Mapping[str, Any] = field(default_factory=dict)


def _write_run_files(settings: EmulatorSettings, data: str | None) -> None:
    """config.json and instruments.json of the emulator's run directory (docs/run_dir.md
    shapes where they apply; no secrets)."""
    out = Path(settings.out_dir)  # type: ignore[arg-type]
    limiter = settings.limiter or api_limiter(settings.instruments)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "mode": "emulator", "data": data, "seed": settings.seed, "speed": settings.speed,
        "stepped": settings.stepped, "loop": settings.loop,
        "instruments": [i.id for i in settings.instruments],
        "venues": {name: {"config_hash": cfg.config_hash, "queue_model": cfg.queue_model,
                          "stp": cfg.stp, "partial_fills": cfg.partial_fills,
                          "latency_ns": {"entry": cfg.entry_ns, "response": cfg.response_ns,
                                         "feed": cfg.feed_ns},
                          "maker_fee_bps": str(cfg.maker_fee_bps),
                          "taker_fee_bps": str(cfg.taker_fee_bps)}
                   for name, cfg in settings.venue_configs.items()},
        "accounts": [a.name for a in settings.accounts],
        "faults": [f.to_json() for f in settings.faults.faults] if settings.faults else [],
        "limits": {"weight_per_minute": limiter.weight_per_minute,
                   "orders_per_10s": limiter.orders_per_10s,
                   "orders_per_minute": limiter.orders_per_minute,
                   "orders_per_day": limiter.orders_per_day,
                   "max_num_orders": settings.max_num_orders},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "instruments.json").write_text(
        json.dumps(instruments_json(settings.instruments), indent=2, sort_keys=True) + "\n")


def rest_endpoints(instruments: Iterable[Instrument]) -> frozenset[str]:
    """Every REST route ("METHOD /path") the emulator of `instruments` serves: Binance
    spot's `/api/v3` calls, or the `/fapi` (USDⓈ-M) or `/dapi` (COIN-M) ones. These are the
    values a fault's `endpoint` may name (FaultPlan.check_endpoints). Read from the server
    class's own route table, so it cannot drift from what is served."""
    instruments = list(instruments)
    server_cls: type[BinanceServer] = BinanceServer
    if serves_futures(instruments):
        from venues.emulator.futures_server import FuturesServer

        server_cls = FuturesServer
    bare = server_cls.__new__(server_cls)  # routes only: no exchange, no sockets, no tasks
    bare.exchange = SimpleNamespace(instruments=instruments)  # type: ignore[assignment]
    router = web.Application().router
    bare._venue_routes(router)
    return rest_routes(router)
def api_limiter(instruments: Iterable[Any]) -> RateLimiter:
    """The rate limits of the Binance API the instruments are served in (spot, or the
    futures venue of the contracts: RateLimiter.for_venue)."""
    venues = {i.venue for i in instruments if i.contract}
    return RateLimiter.for_venue(venues.pop() if len(venues) == 1 else "binance")


def freeze_startup_objects() -> None:
    """Keep everything made so far (numba's compiled code, the dataset reader, the server)
    out of the cyclic collector's full passes, for a process that runs an emulator and
    nothing else (the CLI, `EmulatorProcess`'s child; not `EmulatorThread`, which shares its
    process). Why: a full (generation-2) collection walks every tracked object; measured in
    the parity bench's emulator child, one took 188 ms, and every client's request waited
    for it (bench/README.md "Parity", session 10). Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


def build_server(settings: EmulatorSettings, source: Iterable[np.ndarray]) -> BinanceServer:
    """An unstarted BinanceServer over a fresh Exchange (call inside the event loop).
    With `out_dir`, writes config.json and instruments.json there now, journal.jsonl as it
    runs and final_state.json (books, accounts) when it stops."""
    if settings.faults is not None:  # before anything is written: a fault that can never fire
        settings.faults.check_endpoints(rest_endpoints(settings.instruments))
    journal = Journal(settings.out_dir)
    if settings.out_dir is not None:
        _write_run_files(settings, getattr(source, "spec", None))

    def clock_factory(first_ts: int) -> MarketClock:
        return MarketClock(first_ts, speed=settings.speed, stepped=settings.stepped)

    common = dict(seed=settings.seed, journal=journal, loop=settings.loop,
                  max_num_orders=settings.max_num_orders,
                  keep_closed_orders=settings.keep_closed_orders, keep_trades=settings.keep_trades)
    server_cls: type[BinanceServer] = BinanceServer
    if serves_futures(settings.instruments):  # USDⓈ-M contracts: the /fapi dialect
        from venues.emulator.futures_server import FuturesServer

        exchange: Exchange = FuturesExchange(settings.instruments, settings.venue_configs, source,
                                             settings.accounts, clock_factory, margin=settings.margin, **common)
        server_cls = FuturesServer
    else:
        exchange = Exchange(settings.instruments, settings.venue_configs, source, settings.accounts,
                            clock_factory, **common)
    return server_cls(exchange, faults=settings.faults, limiter=settings.limiter or api_limiter(settings.instruments),
                         ping_interval=settings.ping_interval,
                         max_connection_s=settings.max_connection_s,
                         max_incoming_per_s=settings.max_incoming_per_s,
                         reply_timeout_s=settings.reply_timeout_s)


class EmulatorHandle:
    """What a started emulator offers its clients, wherever it runs (EmulatorThread here,
    EmulatorProcess in venues/emulator/process.py): `url`, `ws_url`, the ccxt config of an
    account, and `with` (start, then stop)."""

    settings: EmulatorSettings
    url: str

    def start(self) -> EmulatorHandle:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    @property
    def ccxt_exchange(self) -> str:
        """The ccxt id this emulator speaks: "binance" (spot), "binanceusdm" or "binancecoinm"."""
        if serves_futures(self.settings.instruments):
            return self.settings.instruments[0].venue  # binanceusdm or binancecoinm
        return "binance"

    def ccxt_config(self, account: int | str = 0, **extra: Any) -> dict[str, Any]:
        acct = self.account(account)
        return ccxt_config(self.url, acct.api_key, acct.secret, exchange=self.ccxt_exchange, **extra)

    def account(self, which: int | str = 0) -> Account:
        accounts = list(self.settings.accounts)
        if isinstance(which, int):
            return accounts[which]
        for a in accounts:
            if a.name == which:
                return a
        raise ConfigError(f"no account named {which!r}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorThread(EmulatorHandle):
    """An emulator on its own event loop in a daemon thread (tests, benchmarks, notebooks).

    `with EmulatorThread(settings, source) as emu: ccxt.binance(emu.ccxt_config())`; leaving
    the block stops it. `call(fn)` runs fn(server) on the emulator's loop and returns its
    result (the exchange is single-threaded: inspect it only this way).
    """

    def __init__(self, settings: EmulatorSettings, source: Iterable[np.ndarray], *,
                 port: int = 0) -> None:
        self.settings = settings
        self._source = source
        self._port = port
        self.loop = asyncio.new_event_loop()
        self.server: BinanceServer | None = None
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="tickparity-emulator", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = build_server(self.settings, self._source)
            self.url = self.loop.run_until_complete(self.server.start(port=self._port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.stop())
        self.loop.close()

    def start(self, timeout: float = 60.0) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConfigError(f"emulator did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    def call(self, fn, timeout: float = 10.0):
        """Run fn(server) on the emulator's loop (fn may be a coroutine function)."""
        async def run():
            out = fn(self.server)
            if asyncio.iscoroutine(out):
                out = await out
            return out
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)
