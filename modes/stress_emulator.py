"""`tickparity stress --via emulator`: a scenario cell run through the live code path.

The same scenario file as the backtest, run as a **testnet session** (modes.live.run_live,
mode "testnet": real ccxt over 127.0.0.1 sockets) against the local exchange emulator
(venues.emulator), started in-process for the cell:

- the emulator replays the scenario's base data (the cell's run config, as in the
  backtest) with the scenario's **feed perturbations** applied to the rows it replays (the
  same `apply_perturbations`, so the emulator's book, trades and matching see the crash);
- the scenario's **venue faults** become the emulator's fault plan (one vocabulary,
  venues/faults.py: `Fault.from_spec`); `after`/`until` count from the emulator's start,
  which is the start of its data, as they count from the first replayed event in a
  backtest. What a fault implies for the feed (a halt's gap) the emulator acts out itself;
- the session trades one account whose balances are the run config's `[venues.binance]`
  balances, for the span of the data (at most `max_seconds`; the emulator runs at speed 1,
  in real time: choose scenarios of seconds or minutes);
- the scenario's invariants are then checked on the session's run directory, which has the
  backtest's tables (docs/run_dir.md).

Refused before anything runs, with one line naming what is missing: a venue-fault kind the
emulator does not implement (`EMULATOR_KINDS`; e.g. `outage`), a `depeg` (a session reports
equity in the quote asset), a run on a venue other than one Binance spot venue (the
emulator is one venue).

What differs from the backtest by design: a session's clock is the wall clock, so order
times and fills vary by milliseconds from run to run (docs/emulator.md, "Parity"); and a
session's venue health (`ctx.venue_health`) is not fed by the venue's status yet, so the
strategy learns of a maintenance from the venue's refusals (-2010 "Market is closed.") and
`no_order_while_down` / `cancel_on_disconnect_within` see no down period (they pass with
"0 down period(s)").
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

VENUE = "binance"
KEY_ENV, SECRET_ENV = "TICKPARITY_STRESS_EMU_KEY", "TICKPARITY_STRESS_EMU_SECRET"
MAX_SECONDS = 600.0  # a cell's session never runs longer (real time)


def refusal(scenario: Any) -> str | None:
    """Why the emulator cannot run `scenario` (one line naming the kind), or None."""
    from scenarios.perturbations import Depeg
    from scenarios.venue import VenueFaultPerturbation
    from venues.faults import EMULATOR_KINDS

    for c in scenario.perturbations:
        p = c.build()
        if isinstance(p, VenueFaultPerturbation):
            if p.fault.spec.kind not in EMULATOR_KINDS:
                return (f"{c.where}: --via emulator: the exchange emulator does not implement the venue fault "
                        f"{p.fault.spec.kind!r} (it implements {sorted(EMULATOR_KINDS)})")
            if p.venue not in ("*", VENUE):
                return f"{c.where}: --via emulator: the emulator is the venue {VENUE!r}, not {p.venue!r}"
        elif isinstance(p, Depeg):
            return (f"{c.where}: --via emulator: 'depeg' needs equity in a reporting currency, which a "
                    "testnet session does not keep")
    return None


def check_scenarios(scenarios: list[Any]) -> None:
    """Raise ConfigError for the first scenario the emulator cannot run."""
    for scenario in scenarios:
        why = refusal(scenario)
        if why:
            raise ConfigError(why)


def check_instruments(instruments: dict[str, Any], where: str = "") -> None:
    """Raise ConfigError unless the run trades one Binance spot venue (what a stress cell's
    emulator serves)."""
    venues = sorted({i.venue for i in instruments.values()})
    if venues != [VENUE] or any(i.type != "spot" for i in instruments.values()):
        raise ConfigError(f"{where}--via emulator: the emulator is one Binance spot venue; this run trades "
                          f"{sorted(instruments)}")


def _rows(config: Any, scenario: Any, instruments: dict[str, Any]) -> list[np.ndarray]:
    """The rows the emulator replays: the base data with the scenario's feed perturbations
    (not the venue faults' feed effects: the emulator acts those out)."""
    from replay import open_source

    source = open_source(config.data, instruments, start_ns=config.start_ns, end_ns=config.end_ns,
                         chunk_rows=1 << 15, seed=config.seed)
    transform = scenario.feed_transform(fault_effects=False)
    chunks = transform(source, instruments) if transform is not None else source
    return [c for c in chunks if len(c)]


def run_via_emulator(scenario: Any, config: Any, out: str | Path, *, max_seconds: float = MAX_SECONDS,
                     write_html: bool = False) -> Path:
    """Run `config` (already on the scenario's base: `scenario.run_config(...)`) as a testnet
    session against an in-process emulator replaying the perturbed data with the scenario's
    venue faults; returns the session's run directory (`out`). Raises ConfigError (see
    `refusal`) before starting anything."""
    from modes.backtest import resolve_run
    from modes.live import run_live
    from scenarios.venue import VenueFaultPerturbation
    from venues.emulator import Account, EmulatorSettings, EmulatorThread, FaultPlan
    from venues.emulator.faults import Fault

    why = refusal(scenario)
    if why:
        raise ConfigError(why)
    resolved = resolve_run(config)
    instruments = resolved.instruments
    check_instruments(instruments)
    rows = _rows(config, scenario, instruments)
    if not rows:
        raise ConfigError(f"scenario {scenario.name}: --via emulator: the base data {config.data!r} has no rows")
    span_s = (int(rows[-1]["local_ts"][-1]) - int(rows[0]["local_ts"][0])) / 1e9
    duration_s = max(1.0, min(span_s, max_seconds))
    venue_cfg = resolved.venue_configs[VENUE]
    key, secret = f"stress-{secrets.token_hex(8)}", secrets.token_hex(16)
    account = Account("stress", key, secret, free={a: Decimal(x) for a, x in venue_cfg.balances})
    faults = [Fault.from_spec(p.fault.spec, f"scenario {scenario.name} [[perturbations]] #{k + 1} ({p.fault_kind})")
              for k, p in enumerate(c.build() for c in scenario.perturbations)
              if isinstance(p, VenueFaultPerturbation)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = EmulatorSettings(instruments=list(instruments.values()), venue_configs={VENUE: venue_cfg},
                                accounts=[account], seed=config.seed, speed=1.0, stepped=False,
                                out_dir=out.parent / f"{out.name}.emulator",
                                faults=FaultPlan(faults, seed=config.seed))
    table = {k: v for k, v in config.venues.get(VENUE, {}).items()
             if k not in ("url", "account", "api_key_env", "secret_env", "secrets_file")}
    with EmulatorThread(settings, iter(rows)) as emu:
        os.environ[KEY_ENV], os.environ[SECRET_ENV] = key, secret
        session = dataclasses.replace(config, venues={**config.venues, VENUE: {
            **table, "url": emu.url, "account": "stress", "api_key_env": KEY_ENV, "secret_env": SECRET_ENV}})
        try:
            return run_live(session, "testnet", out, duration_s=duration_s, health=False, write_html=write_html)
        finally:
            os.environ.pop(KEY_ENV, None)
            os.environ.pop(SECRET_ENV, None)
