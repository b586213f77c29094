"""Pieces every importer shares: opening files, mapping venue symbols, building rows."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from engine.errors import ConfigError, DataError
from engine.types import EVENT_DTYPE, Instrument
from replay.numparse import NAN, NEGATIVE, OFF_GRID, OVERFLOW, parse_units
from replay.validate import Report, Rows

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


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open a file, decompressing gzip or a single-member zip (Binance dumps are .zip);
    a missing file is a DataError naming it."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
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


def open_text(path: Path) -> io.TextIOBase:
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="")


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
    for values, status, step, what in (
        (price_text, pst, inst.tick_size, "price"),
        (qty_text, qst, inst.lot_size, "qty"),
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


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open_text(path) as fh:
        yield from enumerate(fh, start=1)


def report_bad_values(report: Report, path: Path | str, lines: np.ndarray, bad: np.ndarray,
                      detail: Callable[[int], str]) -> None:
    """Count the rows flagged in `bad` as bad_value, showing the first ones as file:line."""
    idx = np.flatnonzero(bad)
    if len(idx) == 0:
        return
    first = [int(i) for i in idx[: report.show]]
    report.add_many("bad_value", [f"{path}:{int(lines[i])}" for i in first],
                    [detail(i) for i in first], len(idx))
