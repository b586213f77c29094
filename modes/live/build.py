"""Wiring shared by a live session and its replay: the session over a push-mode SimCore.

Why shared: `tickparity replay` must build exactly what the live run built (strategy with
its parameters, instruments, risk, ledger, the simulated venue's book and, in paper mode,
its matching) so the same inputs give the same decisions. Only the venues differ: a live
testnet session talks to ccxt, its replay to a venue that replays the recorded replies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.compiled import CompiledAdapter, CompiledStrategy
from engine.config import RunConfig
from engine.contingent.table import write_contingent_table
from engine.ledger import Ledger
from engine.loader import instantiate
from engine.output import RunWriter, build_info
from engine.risk import RiskEngine
from engine.session import TradingSession
from engine.types.instrument import decimal_str
from modes.backtest import ResolvedRun, venue_settings_json
from modes.live.own_depth import OwnOrdersHidden
from modes.live.reports import apply_report, report_json
from modes.live.stepper import Stepper

MODES = ("paper", "testnet", "live")


def config_to_json(config: RunConfig) -> dict[str, Any]:
    """The RunConfig exactly (Decimals tagged, so a replay gets the same values back)."""
    return _enc(dataclasses.asdict(config) | {"cli_keys": sorted(config.cli_keys)})


def config_from_json(raw: dict[str, Any]) -> RunConfig:
    data = _dec(raw)
    data["instruments"] = tuple(data["instruments"])
    data["cli_keys"] = frozenset(data["cli_keys"])
    return RunConfig(**data)


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {k: _enc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_enc(v) for v in value]
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        return {k: _dec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dec(v) for v in value]
    return value


@dataclasses.dataclass
class Built:
    """A session ready to step (see build_session)."""

    session: TradingSession
    core: Any
    clock: SimClock
    writer: RunWriter
    audit: AuditLog
    stepper: Stepper
    ledger: Ledger
    current: list[str]  # the callback running now (for a divergence report)
    contracts: Any = None  # paper mode with contracts: venues.sim.derivatives.ContractVenue
    own_depth: Any = None  # testnet/live: modes.live.own_depth.OwnOrdersHidden (the strategy's book)


def build_session(resolved: ResolvedRun, out: Path, start_ns: int, id_prefix: str,
                  make_venues: Callable[[Any], dict[str, Any]], audit: AuditLog | None = None,
                  on_round_trip: Callable[[int, int | None, int, str, int | None, str], None] | None = None,
                  paper: bool = False) -> Built:
    """The session, its simulated venue core (push mode) and its stepper.

    `make_venues(core)` returns the session's venues (paper: SimulatedVenue on `core`;
    testnet/live: CcxtVenue; replay: the recorded replies). `paper`: the venues are
    simulated, so contracts also get the simulated venue's contract side (funding at each
    settlement row, liquidation at the marks: venues.sim.derivatives.ContractVenue, as in a
    backtest); in testnet/live the venue does both itself."""
    from venues.sim import SimCore, warmup

    config = resolved.config
    instruments = resolved.instruments
    warmup()
    # the rows of a session are the venue's stream as received, already conflated by the venue:
    # its local book takes each row as it came (depth_conflation_ms is a backtest's model of that)
    configs = {name: dataclasses.replace(cfg, depth_conflation_ns=0) for name, cfg in resolved.venue_configs.items()}
    core = SimCore(list(instruments.values()), configs, None, config.seed)
    clock = SimClock(start_ns)
    # testnet/live (and their replay): the venue's depth holds our resting orders, a
    # backtest's book never does; the strategy sees the book of the others in every mode
    # (modes/live/own_depth.py). Paper mode's venue is the simulated one: nothing to take out.
    own = None if paper else OwnOrdersHidden(core, clock.now)
    venues = make_venues(core if own is None else own)
    writer = RunWriter(out, instruments)
    # live modes: every record reaches the OS as it is written (a killed session loses none);
    # the recording fsyncs it once a second (modes/live/recording.py)
    audit = audit or AuditLog(out / "audit.jsonl", flush_each=True)
    ledger = Ledger(instruments, resolved.balances)
    if any(i.contract for i in instruments.values()):  # the venues' leverage and margin mode
        from modes.live.derivatives import margin_settings

        ledger.derivatives.settings = margin_settings(config, resolved.venue_configs)
    strategy = instantiate(resolved.strategy_cls, resolved.params, config.param_where)
    if isinstance(strategy, CompiledStrategy):  # a compiled strategy runs through its adapter here
        strategy = CompiledAdapter(strategy)
    session = TradingSession(strategy=strategy, instruments=instruments, venues=venues, clock=clock,
                             ledger=ledger, risk=RiskEngine(resolved.risk), audit=audit, recorder=writer,
                             id_prefix=id_prefix, seed=config.seed)
    current = ["on_start"]
    feed_ns = np.array([int(resolved.venue_configs[i.venue].feed_ns) for i in instruments.values()], dtype=np.int64)

    def on_wake(kind: str) -> None:
        current[0] = kind

    def apply(report: Any) -> None:
        audit.write(clock.now(), "venue_reply", report=report_json(report))
        if own is not None:
            own.report(report)
        apply_report(session, report)

    contracts = None
    if paper and any(i.contract for i in instruments.values()):
        from venues.sim.derivatives import ContractVenue, PushedContractRows

        contracts = ContractVenue(list(instruments.values()), core, ledger.derivatives,
                                  PushedContractRows(list(instruments.values())), start_ns)
    stepper = Stepper(session, core, clock, writer, feed_ns, config.sample_ns, apply_report=apply, on_wake=on_wake,
                      on_round_trip=on_round_trip, contracts=contracts, on_rows=None if own is None else own.rows)
    if own is not None:
        own.order = session.oms.by_client.get
    return Built(session, core, clock, writer, audit, stepper, ledger, current, contracts, own)


def finish(built: Built, resolved: ResolvedRun, mode: str, out: Path, run_id: str, *, started: int,
           extra: dict[str, Any] | None = None, write_html: bool = True) -> dict[str, Any]:
    """Write the run's tables, config.json, summary.json and report.html; returns the summary."""
    session, ledger, writer = built.session, built.ledger, built.writer
    built.stepper.drain()
    marks = session.marks()
    open_orders = sorted(o.client_id for o in session.oms.by_no.values() if o.is_open)
    summary = {"run": {
        "id": run_id, "config_hash": resolved.run_id, "mode": mode, "strategy": resolved.config.strategy,
        "data": f"{mode} session", "seed": resolved.config.seed, "instruments": list(resolved.instruments),
        "start_ts": started, "end_ts": built.clock.now(), "events": built.stepper.rows_pushed,
        "orders": len(session.oms.by_no), "fills": session.fill_count, "open_orders": open_orders,
        "pnl": {"realized": decimal_str(ledger.realized_pnl()),
                "unrealized": decimal_str(ledger.unrealized_pnl(marks)),
                "fees": decimal_str(ledger.fees()), "turnover": decimal_str(ledger.turnover()),
                # totals in quote units (a coin-settled contract's amounts at its mark); each asset's own:
                "by_asset": {a: {k: decimal_str(v) for k, v in row.items()}
                             for a, row in sorted(ledger.pnl_by_asset(marks).items())},
                "equity_start": writer.first_equity, "equity_end": decimal_str(ledger.equity(marks))},
        "positions": {i: decimal_str(ledger.position(i)) for i in resolved.instruments},
        "risk": session.guard.summary(),  # as a backtest's (docs/run_dir.md "run.risk"): it was missing here
        "balances": {f"{v}:{a}": decimal_str(amount) for (v, a), amount in sorted(ledger.balances.items())},
        "audit": built.audit.sealed,
        "venues": venue_settings_json(resolved.venue_configs),
        "defaults": list(resolved.defaults),
        **(extra or {}),
    }}
    if built.contracts is not None:  # paper: the simulated venue's contract tables, as a backtest's
        built.contracts.write(out)
        summary["run"]["derivatives"] = built.contracts.summary()
        from modes.console import warn

        for line in built.contracts.warnings():
            warn(line)
    writer.finish(list(session.oms.by_no.values()), list(session.oms.parents.values()), summary,
                  resolved.config_json() | {"mode": mode},
                  build_info() | {"run_id": resolved.run_id, "mode": mode})
    # the emulated orders' table, as a backtest's run directory has it (docs/run_dir.md);
    # contingent.json beside it is the live state a --resume reads
    write_contingent_table(out / "contingent.parquet", session.contingent)
    if write_html:
        from reports import write_report

        write_report(out)
    return summary
