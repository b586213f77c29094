"""Pieces every importer shares: opening files, mapping venue symbols, building rows."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from engine.errors import ConfigError, DataError, file_problem
from engine.types import EVENT_DTYPE, Instrument
from engine.types.instrument import beyond_range_message
from replay.numparse import NAN, NEGATIVE, OFF_GRID, OVERFLOW, parse_units
from replay.validate import Mode, Report, Rows

# Venues whose feeds are derivatives (the instrument's ccxt symbol has ':SETTLE').
TARDIS_VENUES = {
    "binance": ("binance", False),
    "binance-us": ("binanceus", False),
    "binance-futures": ("binance", True),
    "binance-delivery": ("binance", True),
    "okex": ("okx", False),
    "okex-swap": ("okx", True),
    "okex-futures": ("okx", True),
    "bybit-spot": ("bybit", False),
    "bybit": ("bybit", True),
    "coinbase": ("coinbase", False),
    "kraken": ("kraken", False),
    "bitmex": ("bitmex", True),
    "deribit": ("deribit", True),
}


# what reading a cut-short or corrupt compressed file raises (gzip, zip/deflate)
CORRUPT_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open a file, decompressing gzip or a single-member zip (Binance dumps are .zip);
    a missing file is a DataError naming it. A cut-short or corrupt archive raises one of
    `CORRUPT_ERRORS` (here or while reading): `corrupt_input` turns it into a report."""
    if (problem := file_problem(path)) is not None:
        raise DataError(f"input file {problem}: {path}")
    with open(path, "rb") as raw:
        magic = raw.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"PK\x03\x04":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DataError(f"{path}: zip archive must hold exactly one file, found {len(members)}")
        return archive.open(members[0])
    return open(path, "rb")


def corrupt_input(path: Path, last_line: int, exc: BaseException, report: Report, mode: Mode) -> None:
    """A file that ends early or is corrupt: a one-line DataError naming the file and its
    last complete line, or under --skip/--repair a `truncated_file` warning (the lines
    before it are imported). Why: a cut-short capture must never be an internal error,
    and silently importing part of a file would be a silent wrong result."""
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
    if mode is Mode.STRICT:
        raise DataError(
            f"{path}: the file ends early or is corrupt after line {last_line:,} (the last complete "
            f"line; {reason}); nothing was written (--skip imports lines 1-{last_line:,})"
        )
    report.add(
        "truncated_file",
        f"{path}:{last_line}",
        f"the file ends early or is corrupt after this line ({reason}); the lines before it are imported",
        severity="warning",
    )


def readable_prefix(path: Path) -> tuple[bytes, BaseException | None]:
    """The decompressed bytes of `path` up to the first corrupt or missing part, cut after
    the last complete line, and the error that stopped the reading (None: whole file)."""
    chunks: list[bytes] = []
    error: BaseException | None = None
    try:
        with open_binary(path) as fh:
            chunks.extend(fh)  # by line: a block read would lose the lines before the error
    except zipfile.BadZipFile as exc:  # no central directory: read the first member raw
        error = exc
        chunks = [_zip_first_member(path)]
    except CORRUPT_ERRORS as exc:
        error = exc
    data = b"".join(chunks)
    if error is not None:
        data = data[: data.rfind(b"\n") + 1]
    return data, error


def _zip_first_member(path: Path) -> bytes:
    """What can be inflated of a zip's first member from its local header (a cut-short zip
    has no central directory, so zipfile cannot open it)."""
    data = path.read_bytes()
    if data[:4] != b"PK\x03\x04" or len(data) < 30:
        return b""
    method = int.from_bytes(data[8:10], "little")
    start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    body = data[start:]
    if method == 0:
        return body
    if method != 8:
        return b""
    inflate = zlib.decompressobj(-15)
    out: list[bytes] = []
    try:
        for lo in range(0, len(body), 1 << 16):
            out.append(inflate.decompress(body[lo : lo + (1 << 16)]))
    except zlib.error:
        pass
    return b"".join(out)


def numbered_lines(path: Path, report: Report, mode: Mode) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line bytes); a file cut short or corrupt ends the lines
    through `corrupt_input` (DataError, or a warning and the lines read so far)."""
    lineno = 0
    try:
        with open_binary(path) as fh:
            for raw in fh:
                lineno += 1
                yield lineno, raw
    except CORRUPT_ERRORS as exc:
        if isinstance(exc, zipfile.BadZipFile):
            data, _err = readable_prefix(path)
            lines = data.splitlines(keepends=True)
            corrupt_input(path, len(lines), exc, report, mode)
            yield from enumerate(lines, start=1)
            return
        corrupt_input(path, lineno, exc, report, mode)


def read_csv_table(
    path: Path,
    read_options: pacsv.ReadOptions,
    convert_options: pacsv.ConvertOptions,
    report: Report,
    mode: Mode,
    what: str,
) -> tuple[pa.Table, np.ndarray]:
    """Read a CSV (plain, gzip or zip) into a table and the 1-based line number of each
    row. A row with the wrong number of fields (e.g. a last line cut short) is a
    `malformed_line` error naming file:line; a file that ends early or is corrupt goes
    through `corrupt_input` (DataError, or under --skip the complete lines read)."""
    bad: list[tuple[int | None, str]] = []

    def invalid(row) -> str:
        bad.append((row.number, row.text))
        return "skip"

    parse = pacsv.ParseOptions(invalid_row_handler=invalid)
    try:
        with open_binary(path) as fh:
            table = pacsv.read_csv(fh, read_options=read_options, parse_options=parse,
                                   convert_options=convert_options)
    except CORRUPT_ERRORS as exc:
        data, _err = readable_prefix(path)
        corrupt_input(path, data.count(b"\n"), exc, report, mode)
        bad.clear()
        table = _parse_csv(pa.BufferReader(data), read_options, parse, convert_options, path, what)
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: not a readable {what}: {str(exc).splitlines()[0]}") from None
    if bad and any(number is None for number, _text in bad):
        # parallel parsing does not know line numbers: read again on one thread
        bad.clear()
        one = pacsv.ReadOptions(use_threads=False, block_size=read_options.block_size,
                                skip_rows=read_options.skip_rows, column_names=read_options.column_names)
        data, _err = readable_prefix(path)
        table = _parse_csv(pa.BufferReader(data), one, parse, convert_options, path, what)
    first = 1 + read_options.skip_rows + (0 if read_options.column_names else 1)
    numbers = sorted(int(n) for n, _t in bad if n is not None)
    lines = np.arange(first, first + table.num_rows + len(numbers), dtype=np.int64)
    if numbers:
        lines = lines[~np.isin(lines, numbers)]
        report.add_many(
            "malformed_line",
            [f"{path}:{n}" for n, _t in bad[: report.show]],
            [f"{len(t.split(','))} fields, a {what} row has {table.num_columns}: {t[:60]!r}"
             for _n, t in bad[: report.show]],
            len(bad),
        )
    return table, lines


def _parse_csv(source, read_options, parse, convert_options, path: Path, what: str) -> pa.Table:
    try:
        return pacsv.read_csv(source, read_options=read_options, parse_options=parse,
                              convert_options=convert_options)
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: not a readable {what}: {str(exc).splitlines()[0]}") from None


class Resolver:
    """Venue symbol -> Instrument, through `venue_symbol` or a forced `--instrument`."""

    def __init__(self, instruments: Mapping[str, Instrument], forced: str | None = None) -> None:
        self.instruments = instruments
        self.forced: Instrument | None = None
        if forced is not None:
            if forced not in instruments:
                raise ConfigError(f"--instrument {forced!r} is not in the instruments file")
            self.forced = instruments[forced]
        self._cache: dict[tuple[str, str, bool | None], Instrument | None] = {}

    def resolve(
        self, venue: str, venue_symbol: str, derivative: bool | None = None
    ) -> Instrument | None:
        if self.forced is not None:
            return self.forced
        key = (venue, venue_symbol.upper(), derivative)
        if key in self._cache:
            return self._cache[key]
        hits = [
            inst
            for inst in self.instruments.values()
            if inst.venue == venue and inst.venue_symbol.upper() == venue_symbol.upper()
        ]
        if derivative is not None and len(hits) > 1:
            hits = [i for i in hits if (":" in i.symbol) == derivative]
        if len(hits) > 1:
            raise ConfigError(
                f"venue symbol {venue}:{venue_symbol} matches {', '.join(i.id for i in hits)}; "
                "pass --instrument ID"
            )
        found = hits[0] if hits else None
        if found is None and derivative is not None:
            alt = [
                i
                for i in self.instruments.values()
                if i.venue == venue and i.venue_symbol.upper() == venue_symbol.upper()
            ]
            found = alt[0] if len(alt) == 1 else None
        self._cache[key] = found
        return found


class RowBuilder:
    """Accumulates one instrument's rows with decimal strings, parsed in bulk at the end."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.exch: list[int] = []
        self.local: list[int] = []
        self.kind: list[int] = []
        self.side: list[int] = []
        self.price: list[str] = []
        self.qty: list[str] = []
        self.oid: list[int] = []
        self.file: list[int] = []
        self.line: list[int] = []

    def add(
        self,
        exch: int,
        local: int,
        kind: int,
        side: int,
        price: str,
        qty: str,
        oid: int,
        file: int,
        line: int,
    ) -> None:
        self.exch.append(exch)
        self.local.append(local)
        self.kind.append(kind)
        self.side.append(side)
        self.price.append(price)
        self.qty.append(qty)
        self.oid.append(oid)
        self.file.append(file)
        self.line.append(line)

    def __len__(self) -> int:
        return len(self.kind)

    def build(self, files: list[str], report: Report) -> tuple[Rows, np.ndarray]:
        """Rows with valid values and the index map (row in builder -> kept row or -1)."""
        n = len(self.kind)
        ev = np.zeros(n, dtype=EVENT_DTYPE)
        ev["exch_ts"] = np.asarray(self.exch, dtype=np.int64)
        ev["local_ts"] = np.asarray(self.local, dtype=np.int64)
        ev["kind"] = np.asarray(self.kind, dtype=np.uint8)
        ev["side"] = np.asarray(self.side, dtype=np.int8)
        ev["order_id"] = np.asarray(self.oid, dtype=np.uint64)
        return build_rows(
            self.inst,
            ev,
            np.asarray(self.file, dtype=np.uint16),
            np.asarray(self.line, dtype=np.int64),
            files,
            pa.array(self.price, pa.string()),
            pa.array(self.qty, pa.string()),
            report,
        )


def build_rows(
    inst: Instrument,
    ev: np.ndarray,
    file: np.ndarray,
    line: np.ndarray,
    files: list[str],
    price_text: pa.Array,
    qty_text: pa.Array,
    report: Report,
) -> tuple[Rows, np.ndarray]:
    """Parse decimal text into ev's price/qty exactly; report and drop bad/off-grid rows.

    Rows without a price (snapshot markers, CLEAR) must carry "0". Returns the kept rows
    and the map from input row to kept row (-1 when dropped).
    """
    n = len(ev)
    price, pst = parse_units(price_text, inst.tick_size)
    qty, qst = parse_units(qty_text, inst.lot_size)
    ev["price"] = price
    ev["qty"] = qty
    rows = Rows(inst, ev, file, line, files)
    bad = np.zeros(n, dtype=np.bool_)
    for values, status, step, what, step_name in (
        (price_text, pst, inst.tick_size, "price", "tick_size"),
        (qty_text, qst, inst.lot_size, "qty", "lot_size"),
    ):
        for check, codes in (("bad_value", (NAN, NEGATIVE, OVERFLOW)), ("off_grid", (OFF_GRID,))):
            idx = np.flatnonzero(np.isin(status, codes))
            if len(idx) == 0:
                continue
            bad[idx] = True
            first = idx[: report.show]
            details = []
            for i in first:
                v = values[int(i)].as_py()
                if check == "off_grid":
                    details.append(f"{inst.id} {what} {v!r} is not a multiple of {step:f}")
                elif int(status[i]) == OVERFLOW:
                    details.append(beyond_range_message(inst.id, what, v, step, step_name))
                else:
                    details.append(f"{inst.id} {what} {v!r} is {_status_text(int(status[i]))}")
            report.add_many(check, [rows.where(int(i)) for i in first], details, len(idx))
    keep_map = np.full(n, -1, dtype=np.int64)
    keep = ~bad
    keep_map[keep] = np.arange(int(keep.sum()))
    return (rows.take(keep) if bad.any() else rows), keep_map


def _status_text(code: int) -> str:
    from replay.numparse import STATUS_NAMES

    return STATUS_NAMES.get(code, "invalid")


def report_bad_values(report: Report, path: Path | str, lines: np.ndarray, bad: np.ndarray,
                      detail: Callable[[int], str]) -> None:
    """Count the rows flagged in `bad` as bad_value, showing the first ones as file:line."""
    idx = np.flatnonzero(bad)
    if len(idx) == 0:
        return
    first = [int(i) for i in idx[: report.show]]
    report.add_many("bad_value", [f"{path}:{int(lines[i])}" for i in first],
                    [detail(i) for i in first], len(idx))
