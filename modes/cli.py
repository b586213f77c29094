"""The `tickparity` command line.

Why one entry point in `modes/`: the command line is the top floor. It may import every
layer below (engine, replay, venues, scenarios, reports); none of them imports it. Each
group of sub-commands lives in its own module here (`data_cmd`, `report_cmd`), and the CLI
turns every user error into one clear line and a non-zero exit; a traceback appears only
with --debug.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from engine.errors import TickparityError
from modes import data_cmd, emulator_cmd, report_cmd


def _add_backtest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="run one backtest and write a run directory with a report")
    p.add_argument("--config", help="run config TOML (flags below override it)")
    p.add_argument("--strategy", help="FILE.py:Class or package.module:Class")
    p.add_argument("--data", help="duckdb:PATH | parquet:PATH | chdb:PATH | clickhouse://... | synthetic:SEED[:DURATION]")
    p.add_argument("--out", help="run directory to write (default runs/<config hash>)")
    p.add_argument("--instruments", metavar="FILE", help="instrument specs TOML (default: the shipped file)")
    p.add_argument("--instrument", action="append", metavar="ID", help="instrument id to trade (repeatable)")
    p.add_argument("--seed", type=int, help="run seed (synthetic data, empirical latency)")
    p.add_argument("--from", dest="from_", metavar="ISO", help="start time (ISO-8601, UTC)")
    p.add_argument("--to", metavar="ISO", help="end time (ISO-8601, UTC)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter override (repeatable)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=_cmd_backtest)


def _parse_param(text: str) -> tuple[str, object]:
    import tomllib

    from engine.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param {text!r}: expected KEY=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def _cmd_backtest(args: argparse.Namespace) -> int:
    from engine.config import load_config_file, resolve
    from modes.backtest import run_backtest

    file_values = load_config_file(args.config) if args.config else None
    base_dir = str(Path(args.config).parent) if args.config else "."
    overrides = {"strategy": args.strategy, "data": args.data, "out": args.out,
                 "instruments_file": args.instruments, "instruments": args.instrument,
                 "seed": args.seed, "from": args.from_, "to": args.to}
    if args.param:
        params = dict((file_values or {}).get("run", {}).get("params", {}))
        params.update(_parse_param(p) for p in args.param)
        overrides["params"] = params
    config = resolve(file_values, overrides, base_dir=base_dir)
    out = run_backtest(config, args.out, write_html=not args.no_report)
    print(f"run directory: {out}")
    report = out / "report.html"
    if report.exists():
        print(f"report: {report}")
    return 0


def _add_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit log tools")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check an audit.jsonl hash chain")
    verify.add_argument("file")
    verify.set_defaults(func=_cmd_audit_verify)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from engine.audit import verify

    count = verify(Path(args.file))
    print(f"{args.file}: OK, {count} records, chain intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickparity", description="Deterministic trading engine for crypto venues.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_backtest(sub)
    data_cmd.register(sub)
    report_cmd.register(sub)
    emulator_cmd.register(sub)
    _add_audit(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TICKPARITY_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except TickparityError as exc:
        if debug:
            traceback.print_exc()
        print(f"tickparity: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tickparity: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"tickparity: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
