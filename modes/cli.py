"""The `tickparity` command line.

Why one entry point in `modes/`: the command line is the top floor. It may import every
layer below (engine, replay, venues, scenarios, reports); none of them imports it. Each
group of sub-commands lives in its own module here (`data_cmd`, `report_cmd`), and the CLI
turns every user error into one clear line and a non-zero exit; a traceback appears only
with --debug.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tomllib
import traceback
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from engine.context import LOG_LEVELS
from engine.errors import ConfigError, StrategyError, TickparityError
from modes import cli_args, control_cmd, data_cmd, emulator_cmd, live_cmd, report_cmd, stress


def _add_backtest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="run one backtest and write a run directory with a report",
                       description="Run one backtest and write a run directory (docs/run_dir.md) with a "
                                   "report; ends with the report's headline figures.")
    p.add_argument("--config", help="run config TOML (flags below override it)")
    p.add_argument("--strategy", help="FILE.py:Class or package.module:Class")
    p.add_argument("--data", help="duckdb:PATH | parquet:PATH | chdb:PATH | clickhouse://... | synthetic:SEED[:DURATION]")
    p.add_argument("--out", help="run directory to write (default runs/<run id>)")
    p.add_argument("--instruments", metavar="FILE",
                   help="instrument specs TOML (default: the store's tick/lot, the rest from the shipped file)")
    p.add_argument("--instrument", action="append", metavar="ID", help="instrument id to trade (repeatable)")
    p.add_argument("--seed", type=cli_args.integer(), help="run seed, 0 to 2**63-1 (synthetic data, empirical latency)")
    p.add_argument("--from", dest="from_", metavar="ISO",
                   help="start time: ISO-8601 (UTC if no zone; up to 9 fractional digits, exact to the ns) "
                        "or integer ns")
    p.add_argument("--to", metavar="ISO", help="end time, as --from")
    p.add_argument("--session-window", metavar="RUN_DIR",
                   help="--from/--to of a recorded paper/testnet/live session: its start step and last step, "
                        "exact to the ns (docs/live.md, Backtesting a session's period)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="strategy parameter override, TOML value syntax; numbers stay exact (repeatable)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--dry-run", action="store_true",
                   help="print the effective configuration, run id and the data's time span; write nothing")
    _log_level_option(p, argparse.SUPPRESS)
    p.set_defaults(func=_cmd_backtest)


def _log_level_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--log-level", choices=list(LOG_LEVELS), default=default,
                        help="console level of ctx.log notes and engine messages (default warning)")


def _parse_param(text: str) -> tuple[str, object]:
    """'KEY=VALUE' -> (key, value): VALUE in TOML syntax, numbers with a fraction as
    Decimal from their text (never a binary float); anything that is not TOML stays text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param {text!r}: expected KEY=VALUE")
    if "\n" in value:
        return key.strip(), value
    try:
        parsed = tomllib.loads(f"v = {value}", parse_float=Decimal)["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def _cmd_backtest(args: argparse.Namespace) -> int:
    from engine.config import load_config_file, resolve
    from modes.backtest import run_backtest

    file_values = load_config_file(args.config) if args.config else None
    base_dir = str(Path(args.config).parent) if args.config else "."
    received = None  # --session-window: the span of the rows the session received
    overrides = {"strategy": args.strategy, "data": args.data, "out": args.out,
                 "instruments_file": args.instruments, "instruments": args.instrument,
                 "seed": args.seed, "from": args.from_, "to": args.to}
    if args.session_window:
        if args.from_ is not None or args.to is not None:
            raise ConfigError("--session-window sets --from and --to: give one or the other")
        from modes.live.recording import session_received, session_window

        overrides["from"], overrides["to"] = session_window(args.session_window)
        received = session_received(args.session_window)
    if args.param:
        overrides["params"] = dict(_parse_param(p) for p in args.param)
    config = resolve(file_values, overrides, base_dir=base_dir, config_file=args.config)
    if args.session_window:  # one line: the parts of the session this backtest cannot reproduce
        from modes.console import warn
        from modes.live.recording import session_files_unused

        unused = session_files_unused(args.session_window, config.data, config.venues)
        if unused:
            warn(f"--session-window {args.session_window}: the config leaves out what the session recorded: "
                 f"{'; '.join(unused)}: its requests and fills can differ from the session's "
                 "(docs/live.md \"Which latency files reproduce what\")")
    if args.dry_run:
        return _dry_run(config, args.out or config.out, received)
    try:
        out = run_backtest(config, args.out, write_html=not args.no_report, received=received)
    except StrategyError as exc:
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is not None:  # the strategy raised at the end: its run directory is complete
            print(f"run directory: {run_dir} (stopped by the strategy error below)", flush=True)
        raise
    print(f"run directory: {out}")
    report = out / "report.html"
    if report.exists():
        print(f"report: {report}")
    # what of the run sits in reference cycles is only freed by the collector: free it
    # before the headline reads the run directory back, or the two add up in the peak RSS
    # (10M events: 1,009 MB without this, 862 MB with it; issue 16's target is < 1 GB)
    gc.collect()
    print(_headline(out))
    return 0


def _headline(run_dir: Path) -> str:
    """The report's headline lines for a finished run (computed when --no-report skipped them),
    then one line for its refused orders when there are any (modes.report_cmd.end_text)."""
    from modes.report_cmd import end_text

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    headline = summary.get("headline")
    if headline is None:
        from reports.metrics import compute
        from reports.rundir import load_run

        headline = compute(load_run(run_dir)).sections["headline"]
    return end_text(run_dir, headline)


def _dry_run(config, out: str | None, received: tuple[int, int] | None = None) -> int:
    """Print what the run would use, write nothing."""
    from modes.backtest import data_span, resolve_run, venue_settings_json
    from modes.console import warn
    from replay.schema import format_ns
    from replay.source import check_window

    resolved = resolve_run(config)
    spans = data_span(config, resolved.instruments)
    # the run's own checks: a window outside the data is the same one-line error
    partial = check_window(config.data, spans, config.start_ns, config.end_ns, received)
    for line in [*resolved.defaults, *partial]:
        warn(line)
    print(json.dumps(resolved.config_json() | {"venues_resolved": venue_settings_json(resolved.venue_configs)},
                     indent=2, sort_keys=True))
    print(f"run id: {resolved.run_id}; run directory: {out or f'runs/{resolved.run_id}'}")
    window = f"{format_ns(config.start_ns) if config.start_ns is not None else 'start'} .. " \
             f"{format_ns(config.end_ns) if config.end_ns is not None else 'end'}"
    for inst_id, (first, last) in spans.items():
        print(f"data {inst_id}: {format_ns(first)} .. {format_ns(last)} (run window: {window})")
    print("dry run: nothing written")
    return 0


def _add_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit log tools")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, metavar="{verify}")
    verify = audit_sub.add_parser("verify", help="check an audit.jsonl hash chain")
    verify.add_argument("file", help="the run's audit.jsonl")
    verify.set_defaults(func=_cmd_audit_verify)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from engine.audit import run_statement, verify

    log = Path(args.file)
    stated = run_statement(log)
    count = verify(log, stated)
    against = " and matches summary.json" if stated is not None else ""
    print(f"{args.file}: OK, {count} records, chain intact, closed by its end record{against}")
    return 0


#: One example per command (shown under "Example:" at the end of its --help).
EXAMPLES = {
    "tickparity": "tickparity backtest --config examples/market_maker.toml",
    "backtest": "tickparity backtest --strategy examples/twap.py:TWAP --data synthetic:42:10m "
                "--param quantity=0.5 --out runs/twap",
    "data": "tickparity data ls duckdb:data/demo.duckdb",
    "data import": "tickparity data import --format binance-ws capture.jsonl.gz --to duckdb:data/btc.duckdb",
    "data ls": "tickparity data ls duckdb:data/demo.duckdb",
    "data check": "tickparity data check duckdb:data/demo.duckdb",
    "data export": "tickparity data export duckdb:data/demo.duckdb --out btc.parquet "
                   "--from 2024-01-01T00:10:00Z --to 2024-01-01T00:20:00Z",
    "data generate": "tickparity data generate --to duckdb:data/demo.duckdb --instrument binance:BTC/USDT "
                     "--seed 7 --duration 1h",
    "report": "tickparity report runs/demo   |   tickparity report compare runs/a runs/b",
    "data repair": "tickparity data repair parquet:data/btc",
    "stress": "tickparity stress --strategies examples/market_maker.toml examples/twap.toml "
              "--scenarios 'scenarios/library/*.toml' --jobs 2",
    "sweep": "tickparity sweep --strategy examples/market_maker.toml --grid half_spread_bps=2,4,8 "
             "--scenarios scenarios/library/gdax-eth-flash-crash-2017.toml",
    "emulator": "tickparity emulator --data synthetic:7:1h --port 8765 --speed 1",
    "audit": "tickparity audit verify runs/demo/audit.jsonl",
    "audit verify": "tickparity audit verify runs/demo/audit.jsonl",
    "kill": "tickparity kill runs/live-btc --flatten --max-slippage-bps 30 --why stale-feed",
    "approve": "tickparity approve runs/live-btc tp-42 --why desk-checked",
    "refuse": "tickparity refuse runs/live-btc tp-42 --why too-large",
    "resume": "tickparity resume runs/live-btc --why venue-back-positions-reconciled",
    **live_cmd.EXAMPLES,  # paper, testnet, live, replay
}


def sub_parsers(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command path, parser) for `parser` and every sub-command below it ('data import')."""
    yield path or parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from sub_parsers(child, f"{path} {name}".strip())


def _add_examples(parser: argparse.ArgumentParser) -> None:
    for path, command in sub_parsers(parser):
        if command.epilog and "Example:" in command.epilog:
            continue  # the command's own module wrote its example
        example = EXAMPLES.get(path)
        if example is None:
            raise RuntimeError(f"modes.cli.EXAMPLES has no example for {path!r}")  # our bug
        command.epilog = f"{command.epilog}\n\n" if command.epilog else ""
        command.epilog += f"Example:\n  {example}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter


def _version() -> str:
    from engine.output import build_info

    info = build_info()
    commit = f", git {info['git_commit'][:12]}{' (modified)' if info['git_dirty'] else ''}" if info["git_commit"] else ""
    return f"tickparity {info['tickparity']}{commit} (Python {info['python']}, numba {info['numba']}, numpy {info['numpy']})"


class _VersionAction(argparse.Action):
    """--version computed only when asked (it reads the git commit)."""

    def __init__(self, option_strings, dest, help=None):  # noqa: A002 - argparse's keyword
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (the house rule for every error), pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tickparity", description="Deterministic trading engine for crypto venues.")
    parser.add_argument("--version", action=_VersionAction, help="print the version, git commit and library versions")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    _log_level_option(parser, "warning")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_backtest(sub)
    data_cmd.register(sub)
    report_cmd.register(sub)
    stress.register(sub)  # the strategy x scenario matrix (stress, sweep)
    emulator_cmd.register(sub)
    live_cmd.register(sub)  # paper, testnet, live, replay
    _add_audit(sub)
    control_cmd.register(sub)  # kill | approve | refuse | resume RUN
    _add_examples(parser)
    _log_level_everywhere(sub)
    return parser


def _log_level_everywhere(sub: Any) -> None:
    """`--log-level` accepted after every subcommand too (`tickparity emulator --log-level
    error ...`, as docs/emulator.md writes it), not only before it: a user puts options after
    the command. SUPPRESS as default, so the top-level value stands when it is not given."""
    for parser in sub.choices.values():
        if "--log-level" not in parser._option_string_actions:
            _log_level_option(parser, argparse.SUPPRESS)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _log_level_everywhere(action)


def _console_logging(level: str) -> None:
    """Engine messages and ctx.log notes to stderr as 'tickparity: LEVEL: message'."""
    logger = logging.getLogger("tickparity")
    for handler in [h for h in logger.handlers if getattr(h, "_tickparity_console", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._tickparity_console = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("tickparity: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(LOG_LEVELS[level])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TICKPARITY_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        _console_logging(args.log_level)
        return int(args.func(args) or 0)
    except TickparityError as exc:  # the user's to fix: data, config, an order, their strategy
        if debug:
            traceback.print_exc()
        print(f"tickparity: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tickparity: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error (engine.errors.InternalError and the rest)
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (rerun with --debug for the traceback)"
        print(f"tickparity: internal error: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
