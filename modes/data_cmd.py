"""`tickparity data ...`: import, ls, check, export, generate, repair.

`register(subparsers)` adds the `data` command to the main CLI (engine/cli.py); every
handler returns an exit code and raises `TickparityError` subclasses for user errors,
which the main CLI prints as one line. `main(argv)` runs the `data` command on its own
(for tests and for use before the main CLI exists).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from engine.errors import ConfigError, DataError
from engine.progress import progress
from engine.types import Instrument, load_instruments
from modes import cli_args
from modes.console import warn


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="import, list, check, export or generate market data")
    sub = data.add_subparsers(
        dest="data_command", metavar="{import,ls,check,export,generate,repair}"
    )
    sub.required = True

    imp = sub.add_parser("import", help="import venue files into a store (all or nothing)")
    imp.add_argument("--format", required=True, choices=["binance-ws", "tardis", "binance-public"],
                     help="input file format")
    imp.add_argument("sources", nargs="+", metavar="SRC", help="input files (.gz accepted)")
    imp.add_argument(
        "--to",
        required=True,
        metavar="STORE",
        help="duckdb:PATH | parquet:DIR | chdb:PATH | clickhouse://...",
    )
    imp.add_argument(
        "--instrument", metavar="ID", help="instrument id for a single-instrument import"
    )
    _instruments_option(imp)
    mode = imp.add_mutually_exclusive_group()
    mode.add_argument(
        "--repair",
        action="store_true",
        help="fix what can be fixed (sort, drop duplicates/bad rows, resync gaps) and import",
    )
    mode.add_argument(
        "--skip",
        action="store_true",
        help="drop every problem row (and, for books, until the next resync) and import the rest",
    )
    imp.add_argument(
        "--correct-skew",
        action="store_true",
        help="shift receive stamps so local_ts >= exch_ts (measured clock offset)",
    )
    imp.add_argument(
        "--show",
        type=cli_args.integer(0),
        default=5,
        metavar="N",
        help="first problem rows shown per check (default 5)",
    )
    imp.add_argument(
        "--force",
        action="store_true",
        help="import files the store already holds (same sha256) again: duplicates their rows",
    )
    imp.set_defaults(func=cmd_import)

    rep = sub.add_parser(
        "repair", help="finish or remove what an interrupted import left in a store, and say so"
    )
    rep.add_argument("store", metavar="STORE", help="duckdb:PATH | parquet:DIR | chdb:PATH | clickhouse://...")
    rep.set_defaults(func=cmd_repair)

    ls = sub.add_parser("ls", help="list instruments, time ranges and event counts of a store")
    ls.add_argument("store", metavar="STORE", help="duckdb:PATH | parquet:DIR | chdb:PATH | clickhouse://...")
    _instruments_option(ls)
    ls.set_defaults(func=cmd_ls)

    chk = sub.add_parser(
        "check", help="validate a store or input files; exit 1 when problems are found"
    )
    chk.add_argument("target", nargs="+", metavar="STORE|FILE", help="a store, or input files (with --format)")
    chk.add_argument(
        "--format", choices=["binance-ws", "tardis", "binance-public"], help="format of FILE inputs"
    )
    chk.add_argument("--instrument", metavar="ID", help="instrument id of single-instrument input files")
    _instruments_option(chk)
    chk.add_argument("--show", type=int, default=5, metavar="N", help="first problem rows shown per check (default 5)")
    chk.set_defaults(func=cmd_check)

    exp = sub.add_parser("export", help="write a store's events to one Parquet file")
    exp.add_argument("store", metavar="STORE", help="the store to read")
    exp.add_argument("--out", required=True, metavar="FILE.parquet", help="Parquet file to write")
    exp.add_argument(
        "--instrument", action="append", metavar="ID", help="only these instruments (repeatable)"
    )
    exp.add_argument("--from", dest="start", metavar="ISO|NS", help="start time (ISO-8601 UTC or ns)")
    exp.add_argument("--to", dest="end", metavar="ISO|NS", help="end time, exclusive (ISO-8601 UTC or ns)")
    _instruments_option(exp)
    exp.set_defaults(func=cmd_export)

    gen = sub.add_parser("generate", help="write synthetic market data into a store")
    gen.add_argument("--to", required=True, metavar="STORE", help="store to write (duckdb:PATH, parquet:DIR...)")
    gen.add_argument(
        "--instrument", action="append", required=True, metavar="ID", help="instrument id (repeatable)"
    )
    gen.add_argument("--seed", type=cli_args.integer(), required=True, help="generator seed (same seed, same data)")
    gen.add_argument("--duration", default="1h", help="e.g. 30s, 10m, 1h, 1d (default 1h)")
    gen.add_argument("--start", metavar="ISO|NS", help="start time (default 2024-01-01T00:00:00Z)")
    gen.add_argument(
        "--rate", type=cli_args.number(), default=1000.0, help="target events per second per instrument"
    )
    _instruments_option(gen)
    gen.set_defaults(func=cmd_generate)


def _instruments_option(parser: argparse.ArgumentParser) -> None:
    # the main CLI may pass --instruments globally; SUPPRESS keeps that value
    parser.add_argument(
        "--instruments",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="instrument specs TOML (default: shipped file)",
    )


def _instruments(args: argparse.Namespace) -> dict[str, Instrument]:
    return load_instruments(getattr(args, "instruments", None))


def _pick(instruments: dict[str, Instrument], ids: Sequence[str]) -> list[Instrument]:
    out = []
    for inst_id in ids:
        if inst_id not in instruments:
            from engine.config import did_you_mean

            raise ConfigError(
                f"unknown instrument {inst_id!r}; add it to the instruments file (--instruments FILE)"
                + did_you_mean(inst_id, instruments)
            )
        out.append(instruments[inst_id])
    return out


def _say(text: str) -> None:
    print(text, flush=True)


# -- generate --------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from replay.schema import format_ns, parse_duration, parse_time
    from replay.synthetic import DEFAULT_START_NS, write_store

    insts = _pick(_instruments(args), args.instrument)
    if len(set(args.instrument)) != len(args.instrument):
        raise ConfigError("--instrument: the same instrument is given twice")
    duration = parse_duration(args.duration)
    start = DEFAULT_START_NS if args.start is None else parse_time(args.start)
    began = time.perf_counter()
    estimate = int(duration / 1e9 * 1300 * len(insts) * args.rate / 1000)
    with progress("generating", total=estimate, unit="rows") as bar:
        rows = write_store(
            args.to,
            insts,
            args.seed,
            start,
            duration,
            events_per_second=args.rate,
            on_chunk=bar.advance,
        )
    elapsed = time.perf_counter() - began
    _say(
        f"generated {rows:,} events for {', '.join(i.id for i in insts)} "
        f"({format_ns(start)} + {args.duration}, seed {args.seed}) into {args.to} in {elapsed:.1f}s"
    )
    return 0


# -- ls / export -------------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    from replay.schema import format_ns
    from replay.stores import open_store

    with open_store(args.store) as store:
        stats = store.stats()
    if not stats:
        _say(f"{args.store}: no instruments")
        return 0
    width = max(len(s.id) for s in stats)
    _say(
        f"{'instrument':<{width}}  {'events':>12}  {'first local_ts (UTC)':<27}  {'last local_ts (UTC)':<27}  tick / lot"
    )
    for s in stats:
        _say(
            f"{s.id:<{width}}  {s.events:>12,}  {format_ns(s.first_local_ts):<27}  "
            f"{format_ns(s.last_local_ts):<27}  {s.tick_size:f} / {s.lot_size:f}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a store window to one Parquet file through the replay's own window
    (`replay.source.window_stream`): a window that starts mid-stream begins with the book
    at its start, so `parquet:FILE` replays exactly like the store window."""
    from replay.schema import parse_time
    from replay.source import check_window, store_spans, window_stream
    from replay.stores import open_store
    from replay.stores.parquet_store import write_export_file

    start = None if args.start is None else parse_time(args.start)
    end = None if args.end is None else parse_time(args.end)
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--from {args.start} --to {args.end}: the end is not after the start")
    out = Path(args.out)
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"--out {out}: the export is one Parquet file; name it *.parquet")
    with open_store(args.store) as store:
        stored = store.instruments()
        ids = args.instrument or list(stored)
        for inst_id in ids:
            if inst_id not in stored:
                raise DataError(f"{args.store}: instrument {inst_id} is not in the store")
        if start is not None or end is not None:
            for warning in check_window(args.store, store_spans(store, ids), start, end):
                warn(warning)
        total = sum(store.count(i, start, end) for i in ids)

        def batches():
            with progress("exporting", total=total, unit="rows") as bar:
                for inst_id in ids:
                    for events, seq in window_stream(store, inst_id, start, end, 1 << 18, with_seq=True):
                        bar.advance(len(events))
                        yield inst_id, events, seq

        rows = write_export_file(out, {i: stored[i] for i in ids}, batches())
    _say(f"exported {rows:,} events of {len(ids)} instrument(s) to {out}")
    return 0


# -- repair ------------------------------------------------------------------------------------


def cmd_repair(args: argparse.Namespace) -> int:
    """Take the store's writer lock and recover it (stores also recover at every open for
    writing; this says what was done). Exit 0 whether or not there was anything to do."""
    from replay.stores import open_store, split_spec

    kind, rest = split_spec(args.store)
    if kind in ("duckdb", "parquet", "chdb") and not Path(rest).exists():
        raise DataError(f"{args.store}: store not found")
    if kind == "parquet" and Path(rest).is_file():
        _say(f"{args.store}: nothing to repair (a single file is written by one atomic rename)")
        return 0
    with open_store(args.store, create=True) as store:
        done = store.repair()
    for line in done:
        _say(f"{args.store}: {line}")
    if not done:
        _say(f"{args.store}: nothing to repair (every import is committed or absent, no debris)")
    return 0


# -- import / check ---------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from replay.importers import run_import

    return run_import(args, _instruments(args), _say)


def cmd_check(args: argparse.Namespace) -> int:
    from replay.validate import run_check

    return run_check(args, _instruments(args), _say)


# -- standalone entry point --------------------------------------------------------------------
