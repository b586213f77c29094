"""`tickparity emulator`: a local Binance spot exchange for unmodified ccxt over any dataset.

Why in `modes/`: it wires a run config (instruments, `[venues.X]` tables, data spec) to
`venues.emulator`, exactly as the backtest runner wires the same config to `venues.sim`,
so the same TOML configures both (see docs/emulator.md).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from engine.errors import ConfigError
from modes import cli_args
from modes.console import warn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulator", help="run a local Binance spot exchange (REST + websockets) "
                       "over a dataset, for unmodified ccxt")
    p.add_argument("--data", help="duckdb:PATH | parquet:PATH | chdb:PATH | synthetic:SEED[:DURATION]")
    p.add_argument("--config", help="run config TOML: [run] data/instruments, [venues.X] tables")
    p.add_argument("--instruments", metavar="FILE", help="instrument specs TOML (default: the shipped file)")
    p.add_argument("--instrument", action="append", metavar="ID", help="instrument id to list (repeatable)")
    p.add_argument("--port", type=cli_args.integer(0, 65535), default=8765, help="TCP port on 127.0.0.1 (default 8765; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--speed", type=cli_args.number(), default=1.0, help="market time per wall time (1 = real time)")
    p.add_argument("--faults", metavar="FILE", help="fault schedule TOML (see docs/emulator.md)")
    p.add_argument("--accounts", metavar="FILE", help="accounts TOML: API keys, secrets, balances")
    p.add_argument("--loop", action="store_true", help="restart the dataset when it ends")
    p.add_argument("--seed", type=cli_args.integer(), help="seed (empirical latency, synthetic data)")
    p.add_argument("--from", dest="from_", metavar="ISO", help="start of the data window (UTC)")
    p.add_argument("--to", metavar="ISO", help="end of the data window (UTC)")
    p.add_argument("--out", help="directory for the journal (default runs/emulator-<UTC time>)")
    p.set_defaults(func=_cmd_emulator)


def prepare(args: argparse.Namespace):
    """Validate everything before binding: (settings, source, run config)."""
    from engine.config import load_config_file, resolve
    from modes.backtest import _venue_tables, check_margin_tables, check_tables, select_instruments
    from replay import open_source
    from venues.emulator import (
        EmulatorSettings,
        FaultPlan,
        default_account,
        load_accounts,
    )
    from venues.emulator.server import rest_endpoints

    file_values = load_config_file(args.config) if args.config else None
    base_dir = str(Path(args.config).parent) if args.config else "."
    overrides = {"strategy": "(emulator)", "data": args.data, "instruments_file": args.instruments,
                 "instruments": args.instrument, "seed": args.seed, "from": args.from_, "to": args.to}
    config = resolve(file_values, overrides, base_dir=base_dir, config_file=args.config)
    instruments = select_instruments(config)
    check_tables(config, instruments, other_venues=True)  # unknown keys: the backtest's one-line errors, naming the file
    with config.naming_file():  # a value error names the table and key; add the file it came from
        venue_configs, balances, defaults = _venue_tables(config, instruments)
        defaults = [*defaults, *check_margin_tables(config, instruments, venue_configs)]
    venues = {i.venue for i in instruments.values()}
    contract_venues = {i.venue for i in instruments.values() if i.contract}
    if contract_venues and venues not in ({"binanceusdm"}, {"binancecoinm"}):
        raise ConfigError(f"the emulator speaks Binance spot (any venue's spot instruments), USDⓈ-M futures "
                          f"(binanceusdm:*) or COIN-M futures (binancecoinm:*), one of them per emulator; the "
                          f"instruments are on {sorted(venues)} (pick them with --instrument)")
    # another venue's spot instruments are served in Binance's dialect with that venue's
    # specs (tick, lot, minimums, venue symbol): a stand-in for a second venue of a
    # multi-venue session (docs/live.md "Two venues"), not that venue's own API
    non_binance = sorted(venues - {"binance"}) if not contract_venues else []
    if non_binance:
        defaults = [*defaults, f"instruments on {', '.join(non_binance)} are served in Binance's dialect "
                               f"(a session's [venues.X] table needs exchange = \"binance\" and this url)"]
    from engine.margin import MarginSettings

    with config.naming_file():
        margin = {name: MarginSettings.from_table(name, config.venues.get(name, {})) for name in venues}
    accounts = load_accounts(args.accounts) if args.accounts else [
        default_account(instruments.values(), balances)]
    if args.accounts:  # the accounts file's balances stand; the venue table's are not used
        defaults = [line for line in defaults if not re.match(r"\[venues\.[^\]]+\] balances not set: ", line)]
        defaults += [f"{config.where(f'venues.{v}')} balances not used: the accounts of --accounts "
                     f"{args.accounts} start with their own balances" for v in sorted(venues)
                     if "balances" in config.venues.get(v, {})]
    faults = FaultPlan.load(args.faults) if args.faults else FaultPlan()
    faults.check_endpoints(rest_endpoints(instruments.values()))  # before the sim is compiled
    if not args.speed > 0:
        raise ConfigError(f"--speed {args.speed}: must be > 0")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be 0..65535")
    out = Path(args.out or config.out or f"runs/emulator-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    source = open_source(config.data, instruments, start_ns=config.start_ns, end_ns=config.end_ns,
                         chunk_rows=1 << 16)
    settings = EmulatorSettings(instruments=list(instruments.values()), venue_configs=venue_configs,
                                accounts=accounts, seed=config.seed, speed=args.speed,
                                loop=args.loop, out_dir=out, faults=faults, margin=margin)
    for line in defaults:  # once everything is valid, so a user error stays one line
        warn(line)
    return settings, source, config


def banner(url: str, settings, out: Path) -> str:
    """What the user needs to connect: URL, every account's credentials, the ccxt config
    to pass (with the first account's)."""
    from venues.emulator import CCXT_OPTIONS
    from venues.emulator.futures import serves_futures
    from venues.emulator.server import CCXT_COINM_OPTIONS, CCXT_FUTURES_OPTIONS

    acct = settings.accounts[0]
    ws = url.replace("http://", "ws://")
    urls: dict[str, Any] = {"api": {"public": f"{url}/api/v3", "private": f"{url}/api/v3",
                                    "ws": {"spot": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}}}
    if serves_futures(settings.instruments):
        coinm = settings.instruments[0].inverse
        api, kind, ccxt_id = ("dapi", "COIN-M", "binancecoinm") if coinm else ("fapi", "USDⓈ-M", "binanceusdm")
        # every URL of ccxt's table moved here (v1/v2/v3, data, websockets): a partial table
        # would send some signed calls, with the key, to the real venue
        from venues.emulator.server import ccxt_config

        urls = ccxt_config(url, exchange=ccxt_id)["urls"]
        lines = [
            f"tickparity emulator: Binance {kind} futures at {url} (/{api}; websockets "
            + (f"{ws}/ws)" if coinm else f"{ws}/public/ws, {ws}/market/ws, {ws}/private/ws)"),
            f"instruments: {', '.join(i.id for i in settings.instruments)}; speed {settings.speed:g}x"
            + ("; loop" if settings.loop else ""),
            *_account_lines(settings.accounts),
            f"journal: {out / 'journal.jsonl'}; inspect: {url}/emulator/state",
            f"ccxt (async_support or pro): {ccxt_id}({{",
            f"    'apiKey': '{acct.api_key}', 'secret': '{acct.secret}',",
            f"    'urls': {urls!r},",
            f"    'options': {CCXT_COINM_OPTIONS if coinm else CCXT_FUTURES_OPTIONS!r},",
            f"}})  # or: {ccxt_id}(venues.emulator.ccxt_config(URL, KEY, SECRET, exchange='{ccxt_id}'))",
            "Ctrl-C stops it.",
        ]
        return "\n".join(lines)
    lines = [
        f"tickparity emulator: Binance spot at {url} (websockets {ws}/ws, {ws}/ws-api/v3)",
        f"instruments: {', '.join(i.id for i in settings.instruments)}; speed {settings.speed:g}x"
        + ("; loop" if settings.loop else ""),
        *_account_lines(settings.accounts),
        f"journal: {out / 'journal.jsonl'}; inspect: {url}/emulator/state",
        "ccxt (sync, async_support or pro): binance({",
        f"    'apiKey': '{acct.api_key}', 'secret': '{acct.secret}',",
        f"    'urls': {urls!r},",
        f"    'options': {CCXT_OPTIONS!r},",
        "})  # or: binance(venues.emulator.ccxt_config(URL, KEY, SECRET)), which moves every URL",
        "Ctrl-C stops it.",
    ]
    return "\n".join(lines)


def _account_lines(accounts) -> list[str]:
    """Every account's key and secret (an accounts file's second account is used by a
    second session: before, only the first was printed and its keys had to be read back
    from the file); the ccxt lines below use the first account."""
    lines = []
    for acct in accounts:
        head = f"account {acct.name!r}: "
        lines += [f"{head}apiKey {acct.api_key}", f"{' ' * len(head)}secret {acct.secret}"]
    return lines


def read_banner(stdout: IO[str]) -> tuple[str, str, str, str] | None:
    """Read a started emulator's banner from its stdout (scripts, benchmarks, tests):
    (base URL, API key, secret, the banner text), or None when it ended without one.
    readline blocks: callers bound it with the process's own lifetime or a timeout."""
    text = ""
    for line in iter(stdout.readline, ""):
        text += line
        if line.startswith("Ctrl-C stops it."):
            break
    url = re.search(r"Binance (?:spot|USDⓈ-M futures|COIN-M futures) at (http://[\w.]+:\d+)", text)
    key = re.search(r"apiKey (\S+)", text)
    secret = re.search(r"secret (\S+)", text)
    if url is None or key is None or secret is None:
        return None
    return url.group(1), key.group(1), secret.group(1), text


def _cmd_emulator(args: argparse.Namespace) -> int:
    settings, source, _ = prepare(args)
    return asyncio.run(_serve(settings, source, args.host, args.port))


#: what the emulator says while it starts (stderr; engine.progress.stage). Measured with
#: `--config` (synthetic:7:30m) on 2 cores shared with other jobs: a first start after an
#: install or an upgrade took 83 s before the banner, 74 s of it numba compiling the
#: venue's kernels and 7.6 s the synthetic generator's, 1 s the config; numba caches both
#: on disk (`cache=True`), so the next start took 2.8 s. The backtest's second run_nb
#: (with contingent-order triggers), ~29 s of that compile, is no longer compiled here.
COMPILE_STAGE = ("compiling the simulated venue's kernels (numba: about a minute on the first start "
                 "after an install or upgrade, cached on disk for the next ones)")


async def _serve(settings, source: Any, host: str, port: int) -> int:
    from engine.progress import stage
    from venues.emulator import build_server
    from venues.emulator.server import freeze_startup_objects
    from venues.sim import warmup

    with stage("tickparity emulator", COMPILE_STAGE):
        # compile the sim before the first client waits on it; only the kernel the emulator
        # runs (no contingent-order triggers): the backtest's second one cost another ~30 s
        warmup(triggers=False)
    with stage("tickparity emulator", "reading the first data"):
        server = build_server(settings, source)
    try:
        url = await server.start(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    freeze_startup_objects()
    print(banner(url, settings, Path(settings.out_dir)), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform
            pass
    said_end = False
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
            if server.exchange.ended and not said_end:
                said_end = True
                print("tickparity emulator: the dataset ended; trading is halted (use --loop to "
                      "restart it). Ctrl-C stops the emulator.", flush=True)
    finally:
        await server.stop()
        print("tickparity emulator: stopped", file=sys.stderr, flush=True)
    return 0
