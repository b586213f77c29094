"""The backtest composition root: replayed data + numba venue + the trading session.

Why here: a mode runner is the only place that knows which clock, venues and data source
a run uses, so it lives in `modes/`, above every layer it wires (replay sources,
`venues.sim`, reports). Everything it drives — strategy, OMS, risk, ledger, audit — is
the mode-independent `engine` that paper and live modes drive too.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.compiled import CompiledAdapter, CompiledStrategy
from engine.config import (
    FREE_TABLE,
    RunConfig,
    Schema,
    check_run,
    did_you_mean,
    jsonable,
    run_identity,
    with_config_paths,
)
from engine.contingent.table import write_contingent_table
from engine.errors import ConfigError, DataError, InstrumentError, StrategyError, strategy_stop_text
from engine.feed import apply_feed_latency
from engine.ledger import Ledger
from engine.loader import effective_params, instantiate, load_class
from engine.output import RunWriter, build_info, write_run_dir
from engine.progress import progress
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import check_strategy_class
from engine.types import Instrument, OrderEventKind, load_instruments
from engine.types.instrument import decimal_str, default_instruments_path
from engine.venue_profiles import (
    LATENCY_KEYS,
    VENUE_TABLE_KEYS,
    default_profiles_path,
    resolve_venue_table,
)
from modes.backtest_compiled import check_compiled_risk, drive_compiled, uses_fast_path
from modes.console import warn

DEFAULT_SYNTHETIC_INSTRUMENT = "binance:BTC/USDT"
INT64_MAX = np.iinfo(np.int64).max
_FILL = int(OrderEventKind.FILL)  # an order event row's kind (SimCore.order_kind), a plain int


def select_instruments(config: RunConfig) -> dict[str, Instrument]:
    """The run's instruments in config order (default: every instrument of the data).

    A store-backed run without an instruments file takes the tick and lot sizes from the
    store (what its integers were written with; `StoredInstrument.to_instrument`), and
    the rest of each spec from the shipped file; with `--instruments FILE` (or
    `instruments_file`) the file's specs are used and `open_source` refuses a file that
    disagrees with the store on tick/lot."""
    file = None if config.instruments_file is None else _instruments_path(config)
    synthetic = config.data.startswith("synthetic:")
    stored = None if synthetic else _dataset_instruments(config.data)
    ids = list(config.instruments) or ([DEFAULT_SYNTHETIC_INSTRUMENT] if stored is None else sorted(stored))
    if stored is not None and file is None:
        return _store_specs(config.data, stored, ids)
    catalog = load_instruments(file)
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        from engine.config import did_you_mean

        raise InstrumentError(  # a contract id without its :SETTLE is the usual slip
            f"unknown instrument(s) {unknown}; add them to an instruments file (--instruments FILE)"
            + did_you_mean(unknown[0], catalog)
        )
    return {i: catalog[i] for i in ids}


def _dataset_instruments(spec: str) -> dict[str, Any]:
    """The instrument table a store recorded (id -> StoredInstrument)."""
    from replay.stores import open_store

    with open_store(spec) as store:
        stored = store.instruments()
    if not stored:
        raise DataError(f"{spec} holds no instruments; import data first (tickparity data import)")
    return stored


def _store_specs(spec: str, stored: dict[str, Any], ids: list[str]) -> dict[str, Instrument]:
    from replay.source import stored_instrument

    shipped = load_instruments(None)
    out: dict[str, Instrument] = {}
    for inst_id in ids:
        have = stored_instrument(spec, stored, inst_id)
        template = shipped.get(inst_id)
        out[inst_id] = have.to_instrument(template)
        if template is not None and (template.tick_size, template.lot_size) != (have.tick_size, have.lot_size):
            warn(f"{inst_id}: tick_size {have.tick_size:f} / lot_size {have.lot_size:f} from {spec} (the shipped "
                  f"instruments file says {template.tick_size:f} / {template.lot_size:f}; --instruments FILE overrides)")
    return out


def _venue_tables(config: RunConfig, instruments: dict[str, Instrument]) -> tuple[dict, dict, list[str]]:
    """Each traded venue's [venues.X] table, filled from its profile (engine/venue_profiles.toml):
    (sim-venue configs, ledger balances, one warning line per default the run falls back on)."""
    from venues.sim import SimVenueConfig

    configs: dict[str, Any] = {}
    balances: dict[str, dict[str, Decimal]] = {}
    warnings: list[str] = []
    for venue in dict.fromkeys(i.venue for i in instruments.values()):
        # a contract's wallet is its settle asset (docs/derivatives.md)
        quotes = [i.settle or i.quote for i in instruments.values() if i.venue == venue]
        # latency files relative to the config file, as every path it names (engine.config.config_path)
        written = with_config_paths(venue, config.venues.get(venue, {}), config.base_dir)
        table, notes = resolve_venue_table(venue, written, quotes)
        warnings += notes
        if any(i.contract for i in instruments.values() if i.venue == venue) and table.get("enforce_balances"):
            table["enforce_balances"] = False  # spot locking does not apply: the margin check does
            warnings.append(f"[venues.{venue}] trades contracts: spot balance checks are off on it, the "
                            "margin check (engine/margin.py) refuses orders instead")
        cfg = SimVenueConfig.from_table(venue, table)
        configs[venue] = cfg
        balances[venue] = dict(cfg.balances)
    return configs, balances, warnings


@dataclass(frozen=True)
class _Prepared:
    """Everything validated before the first byte of output is written."""

    config: RunConfig
    instruments: dict[str, Instrument]
    strategy: Any
    venue_configs: dict[str, Any]
    balances: dict[str, dict[str, Decimal]]
    defaults: list[str]
    risk: RiskEngine
    feed: Any
    start_ts: int
    end_ts: int
    total_events: int | None
    resolved: ResolvedRun | None = None  # None: a run assembled by hand (tests of the driver)
    contract_feed: Any = None  # venues.sim.derivatives.ContractFeed when the run trades contracts
    venue_faults: tuple = ()  # venues.sim.faults.VenueFault of a stress scenario
    quote_marks: Any = None  # engine.ledger.QuoteMarks: equity in a reporting currency


class _Peekable:
    """Lets the runner see the first chunk (the run's start time) without losing it."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self._it = iter(chunks)
        self._first: np.ndarray | None = None
        for chunk in self._it:
            if len(chunk):
                self._first = chunk
                break

    @property
    def first_ts(self) -> int | None:
        return None if self._first is None else int(self._first["local_ts"][0])

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            yield self._first
        yield from self._it


def venue_table_schema(venue: str, assets: Iterable[str] | None = None) -> Schema:
    """Valid keys of a `[venues.<venue>]` table (passed to `engine.config.check_run`).

    One list: `engine.venue_profiles` (what the simulated venue and the profiles take),
    with `latency` checked key by key and `balances` a table of the assets the run's
    instruments on that venue trade (`assets`; any asset name when None), so a typo such as
    `USDTT` is an error instead of a silent zero balance of USDT.
    """
    schema: Schema = dict.fromkeys(VENUE_TABLE_KEYS)
    schema["latency"] = dict.fromkeys(LATENCY_KEYS)
    schema["balances"] = FREE_TABLE if assets is None else dict.fromkeys(sorted(assets))
    return schema


def check_tables(config: RunConfig, instruments: dict[str, Instrument], other_venues: bool = False) -> None:
    """The key check of a config's `[venues.X]` and `[risk]` tables against the run's
    instruments (engine.config.check_run with `venue_table_schema`): ConfigError naming the
    file and key. Shared by the backtest and the emulator (`tickparity emulator --config`),
    which passes `other_venues=True`: `--instrument` may pick one venue of a multi-venue
    config, whose other tables are then checked for their keys only."""
    assets: dict[str, set[str] | None] = {}
    for inst in instruments.values():
        assets.setdefault(inst.venue, set()).update((inst.base, inst.quote))  # type: ignore[union-attr]
    _check_balance_assets(config, instruments, assets)
    venues = [i.venue for i in instruments.values()]
    if other_venues:
        venues += [v for v in config.venues if v not in assets]
    check_run(config, venues=venues,
              venue_schema=lambda venue: venue_table_schema(venue, assets.get(venue)),
              risk_keys=[f.name for f in fields(RiskConfig)])


def _check_balance_assets(config: RunConfig, instruments: dict[str, Instrument],
                          assets: dict[str, set[str] | None]) -> None:
    """ConfigError for a `[venues.X] balances` asset no instrument of the run trades on X,
    naming the instruments and their assets: the generic "unknown key (valid keys: ...)"
    pointed at the balances when the cause was often `--instrument` picking another pair
    (a BTC balance in a run of `--instrument binance:ETH/USDT`)."""
    for name, table in config.venues.items():
        traded = assets.get(name)
        balances = table.get("balances") if isinstance(table, Mapping) else None
        if not traded or not isinstance(balances, Mapping):
            continue
        for asset in balances:
            if asset not in traded:
                insts = ", ".join(i for i, inst in instruments.items() if inst.venue == name)
                where = config.where(f"venues.{name}")[:-1] + ".balances]"
                raise ConfigError(f"{where} {asset}: no instrument of this run trades it"
                                  f"{did_you_mean(asset, traded)} (the run trades {insts}: "
                                  f"{', '.join(sorted(traded))}; the instruments come from [run] instruments "
                                  "or --instrument)")


@dataclass(frozen=True)
class ResolvedRun:
    """A run config checked against the run and resolved (defaults filled), with its id.

    `effective` is what config.json holds: the config with the strategy's effective
    parameters, the risk limits and the venue models' hashes; `files` the sha256 of every
    file the run reads its setup from (strategy source, instruments file, latency files).
    """

    config: RunConfig
    instruments: dict[str, Instrument]
    strategy_cls: type
    params: dict[str, Any]
    venue_configs: dict[str, Any]
    balances: dict[str, dict[str, Decimal]]
    risk: RiskConfig
    defaults: list[str]  # one warning line per venue default the run falls back on
    effective: dict[str, Any]
    files: dict[str, Any]
    run_id: str

    def config_json(self) -> dict[str, Any]:
        """config.json: the effective configuration, the run id and the file digests."""
        return self.effective | {"run_id": self.run_id, "config_hash": self.run_id, "files": self.files}


def resolve_run(config: RunConfig) -> ResolvedRun:
    """Check every table and key of `config` against the run and compute the run id.

    Raises ConfigError/StrategyError/InstrumentError naming the key before anything is
    written: a `[venues.X]` table for a venue no instrument trades on, an unknown key, a
    strategy parameter the constructor does not take or a value that does not convert.
    """

    instruments = select_instruments(config)
    strategy_cls = load_class(config.strategy, config.base_dir)
    check_strategy_class(strategy_cls, config.strategy)
    check_tables(config, instruments)
    params = effective_params(strategy_cls, config.params, config.param_where)
    with config.naming_file():  # a value error names the table and key; add the file it came from
        venue_configs, balances, defaults = _venue_tables(config, instruments)
        risk = RiskConfig.from_table(config.risk)
        # leverage / margin_mode / open_positions: refused here, before any data is read,
        # a session connects or a run directory is written (paper/testnet/live resolve too)
        defaults += check_margin_tables(config, instruments, venue_configs)
    effective = config.to_json() | {
        "instruments": list(instruments),
        "params": jsonable(params),
        "risk": jsonable(asdict(risk)),
        "venue_models": {name: venue_model_hash(cfg, config.venues.get(name, {}), instruments)
                         for name, cfg in venue_configs.items()},
    }
    files: dict[str, Path] = {"strategy": Path(inspect.getfile(strategy_cls)),
                              "instruments": _instruments_path(config),
                              "venue_profiles": default_profiles_path()}
    for name, cfg in venue_configs.items():
        if cfg.latency_file:
            files[f"venues.{name}.latency.file"] = Path(cfg.latency_file)
        if cfg.feed_file:  # a recorded feed latency (latency.feed_file)
            files[f"venues.{name}.latency.feed_file"] = Path(cfg.feed_file)
        if cfg.report_file:  # a recorded response leg (latency.report_file)
            files[f"venues.{name}.latency.report_file"] = Path(cfg.report_file)
    # `out` is where the run goes, not what it computes: not part of its identity
    run_id, digests = run_identity({k: v for k, v in effective.items() if k != "out"}, files)
    return ResolvedRun(config, instruments, strategy_cls, params, venue_configs, balances, risk,
                       defaults, effective, digests, run_id)


#: `[venues.X]` keys that change a backtest's fills but are not the simulated venue's
#: (SimVenueConfig): the contract margin settings (engine/margin.py), on a venue that
#: trades contracts in the run (a spot venue ignores them, with a warning)
MARGIN_MODEL_KEYS = ("leverage", "margin_mode")


def venue_model_hash(cfg: Any, table: dict[str, Any], instruments: dict[str, Instrument]) -> str:
    """config.json's `venue_models` entry of one venue: what changes its fills. The simulated
    venue's `config_hash` (its models, fees, balances, latency files' content), with the
    margin keys when the venue trades contracts; the live-only keys (exchange, url,
    credentials, open_positions) change nothing a backtest computes and are left out."""
    margin = {k: table[k] for k in MARGIN_MODEL_KEYS if k in table}
    if not margin or not any(i.contract for i in instruments.values() if i.venue == cfg.venue):
        return cfg.config_hash
    body = json.dumps({"venue": cfg.config_hash, **margin}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def check_margin_tables(config: RunConfig, instruments: dict[str, Instrument], venues: Iterable[str]) -> list[str]:
    """Check each venue table's contract keys (`leverage`, `margin_mode`, `open_positions`;
    docs/derivatives.md "Venues") against the run: values (MarginSettings.from_table, in
    every run, spot-only included), a
    leverage above a contract's brackets, a `leverage = { SYMBOL = N }` key naming no
    contract of the venue (ConfigError). Returns one warning line per venue that sets
    `leverage` / `margin_mode` but trades no contract in the run (they are ignored)."""
    from engine.margin import MarginSettings

    warnings: list[str] = []
    catalog = None  # the instruments file's contracts: a leverage key may name any of them
    for name in venues:
        table = config.venues.get(name, {})
        contracts = [i for i in instruments.values() if i.contract and i.venue == name]
        # the values are checked whatever the run trades: `margin_mode = 5` or
        # `open_positions = ""` passed a spot run and failed the same config's contract run
        margin = MarginSettings.from_table(name, table)
        if not contracts:
            keys = [k for k in ("leverage", "margin_mode") if k in table]
            if keys:  # on a spot-only venue they would read as margin trading
                warnings.append(f"[venues.{name}] {', '.join(keys)}: apply to perpetuals and futures only; "
                                f"the run trades no contract on {name}: ignored (spot is not traded on margin)")
            if not any(i.contract for i in instruments.values()):
                continue
        margin.check_max_leverage(name, contracts)
        if margin.by_symbol and contracts:
            catalog = catalog or load_instruments(_instruments_path(config))
            margin.check_symbols(name, {i.symbol for i in [*catalog.values(), *contracts]
                                        if i.venue == name and i.contract})
    return warnings


def data_span(config: RunConfig, instruments: dict[str, Instrument]) -> dict[str, tuple[int | None, int | None]]:
    """First and last local timestamp (ns) of each instrument's data in `config.data`,
    regardless of the run's --from/--to (what `backtest --dry-run` prints)."""
    from replay.source import parse_synthetic_spec, split_spec
    from replay.stores import open_store
    from replay.synthetic import DEFAULT_START_NS

    kind, rest = split_spec(config.data)
    if kind == "synthetic":
        _, duration = parse_synthetic_spec(rest)
        begin = DEFAULT_START_NS if config.start_ns is None else config.start_ns
        return {i: (begin, begin + duration) for i in instruments}
    with open_store(config.data) as store:
        stats = {s.id: (s.first_local_ts, s.last_local_ts) for s in store.stats()}
    return {i: stats.get(i, (None, None)) for i in instruments}


FeedTransform = Callable[[Iterable[np.ndarray], dict[str, Instrument]], Iterable[np.ndarray]]


def run_backtest(config: RunConfig, out_dir: str | Path | None = None, *, write_html: bool = True,
                 feed_transform: FeedTransform | None = None, venue_faults: list | None = None,
                 quote_marks: Any = None, warn_defaults: bool = True,
                 received: tuple[int, int] | None = None) -> Path:
    """Run one backtest and write its run directory; returns the directory.

    `feed_transform(chunks, instruments)` (optional) rewrites the replayed market data
    before feed latency is applied: EVENT_DTYPE chunks in, chunks in (local_ts, run order)
    order out, in bounded memory. `tickparity stress` passes a scenario's perturbations here
    (scenarios.Scenario.feed_transform). `venue_faults` (venues.sim.faults.VenueFault list,
    `Scenario.venue_faults()`) injects venue faults in the simulated venue; times count from
    the first replayed event. `quote_marks` (engine.ledger.QuoteMarks,
    `Scenario.quote_marks()`) reports equity in a reporting currency with a mark for each
    quote asset (a stablecoin depeg). `warn_defaults=False`: the venue defaults the run
    falls back on are not printed (a stress matrix prints them once, not once per cell).
    """
    from replay import open_source

    wall_start = time.perf_counter()
    resolved = resolve_run(config)
    instruments, venue_configs = resolved.instruments, resolved.venue_configs
    strategy = instantiate(resolved.strategy_cls, resolved.params, config.param_where)
    if isinstance(strategy, CompiledStrategy):  # compiled strategy: see modes.backtest_compiled
        strategy = CompiledAdapter(strategy)
    if uses_fast_path(strategy):
        check_compiled_risk(resolved.risk)  # before anything is written
    risk = RiskEngine(resolved.risk)
    if uses_fast_path(strategy) and any(c.depth_conflation_ns for c in venue_configs.values()):
        raise ConfigError("depth_conflation_ms needs a Python strategy: the compiled loop reads the book "
                          "unconflated (docs/simulated-venue.md \"Depth conflation\")")

    source = open_source(config.data, instruments, start_ns=published_start(config, instruments, venue_configs),
                         end_ns=config.end_ns, seed=config.seed, received=received)
    for warning in source.warnings:
        warn(warning)
    # constant feed latency, or a session's recorded one (latency.feed_file)
    from replay.source import is_session_recording
    from venues.sim.latency import recorded_feed_shift

    feed_ns, feed_shift = recorded_feed_shift(list(instruments.values()), venue_configs,
                                              received=is_session_recording(config.data))
    from replay.validate import refuse_negative_feed_latency

    # venue time after receipt beyond a clock skew: refused (a recording at emulator --speed > 1)
    checked = refuse_negative_feed_latency(source, config.data, list(instruments))
    chunks = checked if feed_transform is None else feed_transform(checked, instruments)
    from venues.sim.derivatives import ContractFeed

    # MARK_PRICE / FUNDING_RATE rows never reach the matching core (venues/sim/derivatives.py)
    contract_feed = ContractFeed(apply_feed_latency(chunks, feed_ns, feed_shift), list(instruments.values()))
    if any(i.contract for i in instruments.values()) and uses_fast_path(strategy):
        raise ConfigError("compiled strategies do not support contracts (perpetuals, futures) yet: "
                          "run the strategy as a plain Python Strategy (docs/derivatives.md)")
    feed = _Peekable(contract_feed)
    if feed.first_ts is None:
        raise DataError(f"no market data for {list(instruments)} in {config.data} in the requested time range")
    start_ts = config.start_ns if config.start_ns is not None else feed.first_ts
    end_ts = config.end_ns if config.end_ns is not None else INT64_MAX

    prepared = _Prepared(config, instruments, strategy, venue_configs, resolved.balances, resolved.defaults,
                         risk, feed, start_ts, end_ts, source.estimated_events, resolved, contract_feed,
                         tuple(venue_faults or ()), quote_marks)
    out = Path(out_dir or config.out or f"runs/{resolved.run_id}")
    for line in resolved.defaults if warn_defaults else ():  # once the run is valid: a user error stays one line
        warn(line)
    # published atomically; leftovers of an interrupted earlier run are recovered first
    ended: list[StrategyError | None] = []
    published = write_run_dir(
        out, lambda staging: ended.append(_run_into(staging, prepared, wall_start, write_html, out.name))
    )
    if ended and ended[0] is not None:  # the strategy raised at the end: the run directory is complete
        ended[0].run_dir = published  # type: ignore[attr-defined]  # the CLI says where it is
        raise ended[0]
    return published


def published_start(config: RunConfig, instruments: dict[str, Instrument], venue_configs: dict[str, Any]) -> int | None:
    """Where the replay of stored data opens: the window's start, or earlier with depth conflation.

    A venue that publishes its depth every `depth_conflation_ms` (G) shows a client that was
    connected before the start the book of the last window end B = floor((start - feed_ns) / G)
    * G, not the book at the start. So the data is opened at B: its opening snapshot (the book
    at B) is published at B and reaches the strategy by the start, and the rows between B and
    the start are published with the next window, after the start, as a live session sees
    them. Synthetic data is left alone (its series starts at the window's start).
    """
    from replay.source import split_spec

    start = config.start_ns
    if start is None or split_spec(config.data)[0] == "synthetic":
        return start
    opens = [start]
    for inst in instruments.values():
        cfg = venue_configs[inst.venue]
        if cfg.depth_conflation_ns and cfg.feed_file:  # the window the recorded feed had delivered
            from venues.sim.latency import RecordedFeed

            opens.append(RecordedFeed(cfg.feed_samples, cfg.depth_conflation_ns).first_window_seen(start))
        elif cfg.depth_conflation_ns:
            opens.append((start - cfg.feed_ns) // cfg.depth_conflation_ns * cfg.depth_conflation_ns)
    return min(opens)


def venue_settings_json(venue_configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each venue's resolved settings (profile defaults filled in), as summary.json's
    `run.venues` and `backtest --dry-run` show them."""
    return {name: {"profile": cfg.profile, "maker_fee_bps": str(cfg.maker_fee_bps),
                   "taker_fee_bps": str(cfg.taker_fee_bps), "entry_ns": cfg.entry_ns,
                   "response_ns": cfg.response_ns, "feed_ns": cfg.feed_ns,
                   "enforce_balances": cfg.enforce_balances,
                   "balances": {a: str(x) for a, x in cfg.balances}, "fee_asset": cfg.fee_asset}
            for name, cfg in venue_configs.items()}


def _instruments_path(config: RunConfig) -> Path:
    """The instruments file the run reads (the shipped one unless told otherwise)."""
    file = config.instruments_file
    if file is None:
        return default_instruments_path()
    if not Path(file).is_absolute() and not Path(file).exists():
        return Path(config.base_dir) / file
    return Path(file)


def _run_into(staging: Path, run: _Prepared, wall_start: float, write_html: bool,
              run_id: str) -> StrategyError | None:
    """Replay, then write every output into `staging`. Returns the StrategyError the
    strategy raised at the end (TradingSession.stop: on_stop, or an on_order it caused),
    after the run directory is written with its `stopped_by`: the run itself was complete,
    so it is kept, and the caller raises the error once the directory is published."""
    from venues.sim import SimCore, WakeKind, warmup
    from venues.simulated import SimulatedVenue

    config, instruments, start_ts = run.config, run.instruments, run.start_ts
    needs = [f"[venues.{name}] request_budget" for name, cfg in run.venue_configs.items()
             if cfg.request_budget is not None] + (["the scenario's venue faults"] if run.venue_faults else []) \
        + [f"[venues.{name}] latency.file's held requests (a session's rate-limit holds)"
           for name, cfg in run.venue_configs.items() if len(cfg.held_requests)]
    # (its `health` lines need nothing of a compiled strategy: it never reads ctx.venue_health)
    if needs and uses_fast_path(run.strategy):  # refused before anything runs or is written
        raise ConfigError(f"{', '.join(needs)}: needs a Python strategy (a compiled strategy's orders never "
                          "cross the Python venue adapter; set fast_path = False on the strategy class)")
    writer = RunWriter(staging, instruments)
    audit = AuditLog(staging / "audit.jsonl", batch=True)
    warmup()
    faults = None
    venue_configs = run.venue_configs
    if run.venue_faults or any(cfg.request_budget is not None or len(cfg.held_requests) or len(cfg.recorded_health)
                               for cfg in venue_configs.values()):
        # faults, the session's request budget (venues/sim/budget.py) or the requests its venue's
        # rate-limit hold refused and its venue health (latency.csv `held`, `health`): all cross the adapter
        from venues.sim.faults import SimFaults

        faults = SimFaults(run.venue_faults, config.seed)
        venue_configs = faults.venue_configs(venue_configs, start_ts)  # latency spikes
    core = SimCore(list(instruments.values()), venue_configs, run.feed, config.seed)
    venues = {name: SimulatedVenue(name, core, cfg, faults) for name, cfg in venue_configs.items()}
    clock = SimClock(start_ts)
    ledger = Ledger(instruments, run.balances)
    session = TradingSession(strategy=run.strategy, instruments=instruments, venues=venues, clock=clock,
                             ledger=ledger, risk=run.risk, audit=audit, recorder=writer, seed=config.seed)
    contracts = None
    if run.contract_feed is not None and any(i.contract for i in instruments.values()):
        # perpetuals / futures: marks, funding, liquidations
        from engine.margin import MarginSettings
        from venues.sim.derivatives import ContractVenue

        ledger.derivatives.settings = {name: MarginSettings.from_table(name, config.venues.get(name, {}))
                                       for name in run.venue_configs}
        contracts = ContractVenue(list(instruments.values()), core, ledger.derivatives, run.contract_feed, start_ts)
    if run.quote_marks is not None:
        run.quote_marks.bind(start_ts)
        session.quote_marks = run.quote_marks
    if faults is not None:
        faults.bind(session, start_ts, venues)
    loop_start = time.perf_counter()
    end_error: StrategyError | None = None
    try:
        session.start()
        if uses_fast_path(run.strategy):  # compiled strategy: the numba loop, then the session replay
            events = drive_compiled(session, core, clock, writer, start_ts, run.end_ts, config.sample_ns,
                                    run.total_events)
        else:
            events = _drive(session, core, clock, writer, WakeKind, start_ts, run.end_ts, config.sample_ns,
                            run.total_events, contracts, faults)
        try:
            session.stop()
        except StrategyError as exc:
            end_error = exc
        session.sample_equity()
        writer.add_bbo(core.drain_bbo())
        writer.add_trades(core.drain_trades())
    finally:
        audit.close()
    loop_seconds = time.perf_counter() - loop_start

    marks = session.marks()
    summary = {"run": {
        "id": run_id, "config_hash": run_id if run.resolved is None else run.resolved.run_id, "strategy": config.strategy, "data": config.data,
        "seed": config.seed, "instruments": list(instruments), "start_ts": start_ts,
        "end_ts": clock.now(), "events": events, "wall_seconds": round(time.perf_counter() - wall_start, 3),
        "events_per_second": round(events / loop_seconds, 1) if loop_seconds > 0 else None,
        "orders": len(session.oms.by_no), "fills": session.fill_count,
        "pnl": {"realized": decimal_str(ledger.realized_pnl()),
                "unrealized": decimal_str(ledger.unrealized_pnl(marks)),
                "fees": decimal_str(ledger.fees()), "turnover": decimal_str(ledger.turnover()),
                # totals in quote units (a coin-settled contract's amounts at its mark); each asset's own:
                "by_asset": {a: {k: decimal_str(v) for k, v in row.items()}
                             for a, row in sorted(ledger.pnl_by_asset(marks).items())},
                "equity_start": writer.first_equity, "equity_end": decimal_str(ledger.equity(
                    marks, None if run.quote_marks is None else run.quote_marks.at(clock.now())))},
        "positions": {i: decimal_str(ledger.position(i)) for i in instruments},
        # equity is in this currency when quote assets are marked (a depeg scenario); else the quote's
        **({"reporting_currency": run.quote_marks.currency} if run.quote_marks is not None else {}),
        "balances": {f"{v}:{a}": decimal_str(amount) for (v, a), amount in sorted(ledger.balances.items())},
        "audit": audit.sealed,  # {records, final_hash}: `audit verify` detects a cut or extended log
        "venues": venue_settings_json(run.venue_configs),
        "defaults": list(run.defaults),
        "risk": session.guard.summary(),  # state, refusals by reason, kill-switch timing (docs/risk.md)
        # the simulated venue's own books of our money: free + locked = the ledger's balance
        # once every response has arrived (a run that ends at a --to bound may differ by
        # what was still in flight)
        "venue_balances": {f"{name}:{asset}": {"free": decimal_str(free), "locked": decimal_str(locked)}
                           for name in run.venue_configs
                           for asset, (free, locked) in sorted(core.balances(name).items())},
    }}
    if end_error is not None:  # why the run ended in an error, as a session says it (docs/run_dir.md)
        summary["run"]["stopped_by"] = strategy_stop_text(end_error)
    if uses_fast_path(run.strategy):  # how the compiled loop's log was booked (engine/bulk.py)
        summary["run"]["compiled_bookkeeping"] = getattr(run.strategy, "bookkeeping", None)
    if contracts is not None:
        contracts.write(staging)
        summary["run"]["derivatives"] = contracts.summary()
        for line in contracts.warnings():
            warn(line)
    writer.finish(list(session.oms.by_no.values()), list(session.oms.parents.values()), summary,
                  config.to_json() if run.resolved is None else run.resolved.config_json(),
                  build_info() | {"run_id": run_id if run.resolved is None else run.resolved.run_id})
    write_contingent_table(staging / "contingent.parquet", session.contingent)
    if write_html:
        from reports import write_report

        write_report(staging)
    return end_error


@contextmanager
def _setup_frozen() -> Iterator[None]:
    """While the replay loop runs, the objects that exist before it (the run's setup, the
    loaded modules, numba's compiled code) are left out of the garbage collector's full
    collections (`gc.freeze`); back in them afterwards (`gc.unfreeze`), so nothing they
    hold is kept past the run. Why: a full collection walks every tracked object, and the
    loop allocates enough to trigger a few; in the bench's 1M-event market maker two of
    them cost ~280 ms of a 1.3 s run (bench/PROFILE.md 1g). Collections still run (cycles
    made during the run are freed); nothing is frozen if a caller froze objects already
    (live modes' `--gc quiet`): its freeze is not undone here.

    Generation 0's threshold is raised to `_LOOP_GC_YOUNG` for the loop (a caller's higher
    one is kept) and put back after: at CPython's 700 the bench's market maker ran ~140
    young and ~12 middle collections, ~40 ms of a ~0.9 s run, each one walking the young
    objects while the caches are cold after a kernel call; at 50,000 it runs one or two
    (~8 ms), and the run's CPU fell by more than the collections' own time (bench/PROFILE.md
    1j). What it costs: cyclic garbage made in the loop waits for up to 50,000 new tracked
    objects (a few MB) instead of 700 before it is freed; nothing a run outputs depends on
    when the collector runs."""
    if gc.get_freeze_count():
        yield
        return
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], _LOOP_GC_YOUNG), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


_LOOP_GC_YOUNG = 50_000  # generation 0's threshold in the replay loop (`_setup_frozen`)


def _drive(session: TradingSession, core, clock: SimClock, writer: RunWriter, WakeKind, start_ts: int,
           end_ts: int, sample_ns: int, total: int | None, contracts: Any = None, faults=None) -> int:
    """The event loop: run the numba core to the next wake-up, hand it to the session.

    `contracts` (venues.sim.derivatives.ContractVenue) adds the contract events — marks,
    funding, liquidations — as wake-ups of their own. `faults` (venues.sim.faults.SimFaults):
    answers owed by venue faults are delivered at their local time, and the core's replies
    pass through it (a lost reply is taken)."""
    next_sample = start_ts  # first sample once the events at the start time are in the book
    reported = 0
    # bound once: the loop runs once per wake-up (~26k times in the bench's 1M-event market
    # maker), and the session's arrays and entry points stay the same objects for the run
    run_until, next_timer_ts = core.run_until, session.next_timer_ts
    on_order_event, sample_equity = session.on_order_event, session.sample_equity
    wake_book, wake_trade, triggers = session.wake_book, session.wake_trade, session.triggers
    ORDER, BOOK, TRADE, END = WakeKind.ORDER, WakeKind.BOOK, WakeKind.TRADE, WakeKind.END
    # timers fire while market data remains (docs/backtest.md "When a backtest ends"): after
    # the last row a strategy whose round trip exceeds its timer period always has a request
    # in flight, so the core would never report END
    timers = True
    with progress("replaying", total=total, unit="events") as bar, _setup_frozen():
        while True:
            t_timer = next_timer_ts() if timers else None
            bound = next_sample if next_sample < end_ts else end_ts
            if t_timer is not None and t_timer < bound:
                bound = t_timer
            if contracts is not None:
                bound = contracts.bound(bound)
            t_fault = faults.next_ts() if faults is not None else None
            if t_fault is not None:
                bound = min(bound, max(t_fault, clock.now()))
            wake = run_until(bound, wake_book, wake_trade, triggers)
            kind = wake.kind
            if kind == END:
                break
            ts = int(wake.ts)
            if ts > clock.now():  # the clock never goes back: an earlier wake leaves it where it is
                clock.advance_to(ts)
            if kind == ORDER:
                rec = wake.record
                if faults is not None and not faults.on_core_event(
                        core.instruments[int(wake.instrument)].venue, rec, clock.now()):
                    continue
                on_order_event(rec)
                if core.order_kind == _FILL:  # a fill moves equity: sample it (the row's kind)
                    sample_equity()
            elif kind == BOOK:
                session.on_book(int(wake.instrument))
            elif kind == TRADE:
                rec = wake.record
                session.on_trade(int(wake.instrument), int(rec["side"]), int(rec["price"]),
                                 int(rec["qty"]), int(rec["exch_ts"]))
            else:  # BOUND
                now = clock.now()
                if contracts is not None:
                    contracts.advance(now, session)
                if faults is not None:
                    faults.deliver(now)
                if now >= end_ts:
                    break
                if now >= next_sample:
                    if contracts is not None:
                        contracts.sample(now)
                    # a contract wallet (COIN-M: the coin) has no value before its first mark
                    if contracts is None or contracts.valued():
                        sample_equity()
                    next_sample += sample_ns
                    writer.add_bbo(core.drain_bbo())
                    writer.add_trades(core.drain_trades())
                    processed = core.events_processed
                    bar.advance(processed - reported)
                    reported = processed
                if timers and core.data_exhausted:
                    timers = False  # the compiled loop stops at the same bound (compiled_nb)
                if timers:
                    session.fire_timers(now)
        bar.advance(core.events_processed - reported)
    return int(core.events_processed)
