"""Importers: venue files -> validated rows -> one store transaction.

`parse_sources(format, paths, ...)` parses files into one `Rows` per instrument (problems
go to the `Report`); `import_files(...)` validates, applies `--repair`/`--skip`/
`--correct-skew`, and writes everything in one all-or-nothing store transaction.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ConfigError
from engine.progress import progress
from engine.types import EventKind, Instrument
from replay.importers.common import Resolver
from replay.validate import Mode, Report, Rows, check_merged, check_part, decide, merge_parts

if TYPE_CHECKING:
    from replay.stores.base import SourceFile

FORMATS = ("binance-ws", "tardis", "binance-public")


def _split_files(rows: Rows) -> list[Rows]:
    files = np.unique(rows.file)
    if len(files) == 1:
        return [rows]
    return [rows.take(rows.file == f) for f in files]


def check_sources(parts: list[Rows], report: Report, mode: Mode, correct_skew: bool) -> list[Rows]:
    """Per-file checks, merge of each instrument's files by local_ts, merged checks."""
    by_inst: dict[str, list[Rows]] = {}
    for rows in parts:
        for part in _split_files(rows):
            by_inst.setdefault(rows.inst.id, []).append(
                check_part(part, report, mode, correct_skew)
            )
    return [check_merged(merge_parts(by_inst[k]), report, mode) for k in sorted(by_inst)]


def parse_sources(
    fmt: str,
    sources: list[str],
    instruments: Mapping[str, Instrument],
    instrument: str | None,
    report: Report,
    mode: Mode = Mode.STRICT,
    oracle: dict | None = None,
) -> list[Rows]:
    paths = [Path(s) for s in sources]
    resolver = Resolver(instruments, instrument)
    if fmt == "binance-ws":
        from replay.importers import binance_ws

        parts = binance_ws.parse(paths, resolver, report, mode, oracle)
    elif fmt == "tardis":
        from replay.importers import tardis

        parts = tardis.parse(paths, resolver, report, mode)
    elif fmt == "binance-public":
        from replay.importers import binance_public

        parts = binance_public.parse(paths, resolver, report, mode)
    else:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return parts


def import_files(
    fmt: str,
    sources: list[str],
    store_spec: str,
    instruments: Mapping[str, Instrument],
    *,
    instrument: str | None = None,
    mode: Mode = Mode.STRICT,
    correct_skew: bool = False,
    show: int = 5,
    say: Callable[[str], None] = print,
    chunk_rows: int = 1 << 18,
    force: bool = False,
) -> tuple[Report, int]:
    """Parse, validate and store; returns (report, rows written). Raises DataError when refused,
    also when a source file (same sha256) is already in the store, unless `force`."""
    from replay.schema import StoredInstrument
    from replay.stores import open_store
    from replay.stores.base import refuse_reimports_early, source_files

    digests = source_files(sources)
    if not force:
        refuse_reimports_early(store_spec, digests)  # before parsing; begin_import rechecks
    report = Report(show=show)
    parsed = parse_sources(fmt, sources, instruments, instrument, report, mode)
    checked = check_sources(parsed, report, mode, correct_skew)
    checked = check_against_store(checked, store_spec, report, mode, () if force else digests)
    for line in report.lines():
        say(line)
    decide(report, mode, f"import of {len(sources)} file(s)")
    checked = [r for r in checked if len(r.events)]
    if not checked:
        say("nothing to import")
        return report, 0
    specs = {r.inst.id: StoredInstrument.of(r.inst) for r in checked}
    total = sum(len(r.events) for r in checked)
    with open_store(store_spec, create=True) as store:
        with (
            store.begin_import(specs, digests, force, total) as tx,
            progress("importing", total=total, unit="rows") as bar,
        ):
            for rows in checked:
                step = max(1, int(chunk_rows))
                for lo in range(0, len(rows.events), step):
                    part = rows.events[lo : lo + step]
                    tx.append(rows.inst.id, part)
                    bar.advance(len(part))
    return report, total


_MARGIN_NS = 60 * 1_000_000_000


def check_against_store(
    checked: list[Rows], store_spec: str, report: Report, mode: Mode, sources: Sequence[SourceFile] = ()
) -> list[Rows]:
    """Compare an import with what the store already holds: trade ids already stored are
    `duplicate_trade_id` (verbatim: re-importing a file) or `conflicting_trade_id` (other
    content) errors, and any stored rows inside the import's time range are reported as
    an `overlaps_store` warning.

    `sources` already recorded in the store are refused first, by name (DataError): another
    process may have imported the same file while this one was parsing it, and "already
    imported" is the truth where a duplicate-trade-id count would mislead."""
    from engine.errors import DataError
    from replay.stores import open_store
    from replay.stores.base import refuse_reimports

    try:
        store = open_store(store_spec)
    except DataError:
        return checked  # a new store
    out = []
    with store:
        if sources:
            refuse_reimports(store_spec, sources, store.imported_sources([s.sha256 for s in sources]))
        stored = store.instruments()
        for rows in checked:
            inst_id = rows.inst.id
            ev = rows.events
            if inst_id not in stored or len(ev) == 0:
                out.append(rows)
                continue
            lo, hi = int(ev["local_ts"].min()), int(ev["local_ts"].max())
            overlap = store.count(inst_id, lo, hi + 1)
            if overlap:
                report.add(
                    "overlaps_store",
                    rows.where(0),
                    f"{inst_id}: the store already holds {overlap:,} rows between this import's first and last local_ts",
                    severity="warning",
                )
            trades = (ev["kind"] == EventKind.TRADE) & (ev["order_id"] != 0)
            if trades.any():
                t_lo = int(ev["local_ts"][trades].min()) - _MARGIN_NS
                t_hi = int(ev["local_ts"][trades].max()) + _MARGIN_NS
                have = [
                    c[c["kind"] == EventKind.TRADE]
                    for c in store.stream(inst_id, t_lo, t_hi, 1 << 18)
                ]
                if have:
                    rows = _against_stored_trades(rows, np.concatenate(have), report, mode)
            out.append(rows)
    return out


def _against_stored_trades(rows: Rows, stored: np.ndarray, report: Report, mode: Mode) -> Rows:
    """Trade ids of the import already in the store: a verbatim repeat (re-importing a
    file) is `duplicate_trade_id`, the id with other content `conflicting_trade_id`;
    handled as within one import (`replay.validate._check_trade_ids`)."""
    from replay.validate import drop_repeated_trades, trade_keys

    ev = rows.events
    stored = stored[stored["order_id"] != 0]
    trades = np.flatnonzero((ev["kind"] == EventKind.TRADE) & (ev["order_id"] != 0))
    hit = np.isin(ev["order_id"][trades], stored["order_id"])
    idx = trades[hit]
    if len(idx) == 0:
        return rows
    same = np.isin(trade_keys(ev[idx]), trade_keys(stored))
    verbatim, conflicting = idx[same], idx[~same]
    for check, which, what, severity in (
        ("duplicate_trade_id", verbatim, "is already in the store", "error"),
        ("conflicting_trade_id", conflicting, "is in the store with another price/qty/side/venue time",
         "warning" if mode is Mode.REPAIR else "error"),
    ):
        if len(which):
            report.add_many(
                check,
                [rows.where(int(i)) for i in which[: report.show]],
                [f"trade id {int(ev['order_id'][i])} {what}" for i in which[: report.show]],
                len(which),
                severity,
            )
    return drop_repeated_trades(rows, report, mode, verbatim, idx, "trades already in the store")


def run_import(args: argparse.Namespace, instruments: Mapping[str, Instrument], say) -> int:
    mode = Mode.REPAIR if args.repair else Mode.SKIP if args.skip else Mode.STRICT
    began = time.perf_counter()
    _report, rows = import_files(
        args.format,
        args.sources,
        args.to,
        instruments,
        instrument=args.instrument,
        mode=mode,
        correct_skew=args.correct_skew,
        show=args.show,
        say=say,
        force=getattr(args, "force", False),
    )
    elapsed = time.perf_counter() - began
    rate = rows / elapsed if elapsed > 0 else 0.0
    say(
        f"imported {rows:,} rows from {len(args.sources)} file(s) into {args.to} in {elapsed:.1f}s ({rate:,.0f} rows/s)"
    )
    return 0
