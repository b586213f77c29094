"""The stored form of the event schema, shared by every store and importer.

A store keeps, per instrument, the rows of `engine.types.EVENT_DTYPE` plus a `seq` column:
the row's position in its instrument's source order (the order the venue sent it). Rows
are replayed by `(local_ts, seq)` per instrument, and instruments are merged by
`(local_ts, run order, seq)`. Beside the events each store keeps the instrument table
(`StoredInstrument`): the id, venue symbol and the tick/lot sizes the integers were
written with, so a run with a different spec is refused instead of mis-scaled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa

from engine.errors import ConfigError, DataError
from engine.types import EVENT_DTYPE, Instrument

# Arrow columns of a stored event row (the instrument is a string id in Arrow exports and
# a small integer or a partition key inside the stores).
EVENT_COLUMNS = ("exch_ts", "local_ts", "kind", "side", "price", "qty", "order_id")
ARROW_EVENT_FIELDS = [
    pa.field("exch_ts", pa.int64(), nullable=False),
    pa.field("local_ts", pa.int64(), nullable=False),
    pa.field("kind", pa.uint8(), nullable=False),
    pa.field("side", pa.int8(), nullable=False),
    pa.field("price", pa.int64(), nullable=False),
    pa.field("qty", pa.int64(), nullable=False),
    pa.field("order_id", pa.uint64(), nullable=False),
]
SEQ_FIELD = pa.field("seq", pa.int64(), nullable=False)
INSTRUMENT_FIELD = pa.field("instrument", pa.string(), nullable=False)
# Export / single-file Parquet schema: self-describing rows (instrument id per row).
EXPORT_SCHEMA = pa.schema([INSTRUMENT_FIELD, SEQ_FIELD, *ARROW_EVENT_FIELDS])
# Schema inside one instrument's stream (what a store reader yields).
STREAM_SCHEMA = pa.schema([SEQ_FIELD, *ARROW_EVENT_FIELDS])

NS_PER_DAY = 86_400 * 1_000_000_000
_NUMPY_TYPES = {name: EVENT_DTYPE.fields[name][0] for name in EVENT_COLUMNS}


@dataclass(frozen=True, slots=True)
class StoredInstrument:
    """What a store records about an instrument: enough to check a run's spec."""

    id: str
    venue: str
    venue_symbol: str
    tick_size: Decimal
    lot_size: Decimal

    @classmethod
    def of(cls, inst: Instrument) -> StoredInstrument:
        return cls(inst.id, inst.venue, inst.venue_symbol, inst.tick_size, inst.lot_size)

    def to_instrument(self, template: Instrument | None = None) -> Instrument:
        """The run's Instrument for this stored one: tick and lot from the store (what
        the integers were written with), everything the store does not record (base,
        quote, min_qty, min_notional, fee overrides) from `template` (the shipped spec
        of the same id) when given; otherwise base/quote from the id, min_qty = one lot
        and min_notional 0. A template min_qty off the store's lot grid becomes one lot."""
        from dataclasses import replace

        if template is not None:
            min_qty = template.min_qty
            if min_qty % self.lot_size != 0:
                min_qty = self.lot_size
            return replace(
                template,
                venue_symbol=self.venue_symbol,
                tick_size=self.tick_size,
                lot_size=self.lot_size,
                min_qty=min_qty,
            )
        symbol = self.id.partition(":")[2]
        base, _slash, rest = symbol.partition("/")
        return Instrument(
            id=self.id,
            venue=self.venue,
            symbol=symbol,
            venue_symbol=self.venue_symbol,
            base=base,
            quote=rest.partition(":")[0],
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            min_qty=self.lot_size,
            min_notional=Decimal(0),
        )

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "venue": self.venue,
            "venue_symbol": self.venue_symbol,
            "tick_size": format(self.tick_size, "f"),
            "lot_size": format(self.lot_size, "f"),
        }

    @classmethod
    def from_json(cls, raw: dict[str, str]) -> StoredInstrument:
        return cls(
            raw["id"],
            raw["venue"],
            raw["venue_symbol"],
            Decimal(raw["tick_size"]),
            Decimal(raw["lot_size"]),
        )


@dataclass(frozen=True, slots=True)
class InstrumentStats:
    """One line of `data ls`: an instrument's event count and local-time range."""

    id: str
    events: int
    first_local_ts: int | None
    last_local_ts: int | None
    tick_size: Decimal
    lot_size: Decimal


def check_spec(stored: StoredInstrument, run: Instrument, where: str) -> None:
    """Refuse to replay integers written with another tick/lot size."""
    for field in ("tick_size", "lot_size"):
        have = getattr(stored, field)
        want = getattr(run, field)
        if have != want:
            raise DataError(
                f"{where}: instrument {run.id} was stored with {field} {have:f} but the run's "
                f"instrument spec says {want:f}; re-import the data or fix the instruments file"
            )


# -- numpy <-> arrow ---------------------------------------------------------------------


def events_from_columns(columns: dict[str, np.ndarray], n: int, instrument: int = 0) -> np.ndarray:
    """Build an EVENT_DTYPE array from named numpy columns (a store reader's batch)."""
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name in EVENT_COLUMNS:
        out[name] = columns[name]
    out["instrument"] = instrument
    return out


def events_from_batch(batch: pa.RecordBatch | pa.Table, instrument: int = 0) -> np.ndarray:
    n = batch.num_rows
    cols = {}
    for name in EVENT_COLUMNS:
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        cols[name] = col.to_numpy(zero_copy_only=False)
    return events_from_columns(cols, n, instrument)


def seq_from_batch(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    col = batch.column("seq")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.to_numpy(zero_copy_only=False)


def arrow_from_events(events: np.ndarray, seq: np.ndarray | None = None) -> pa.RecordBatch:
    """Events (one instrument) + seq -> Arrow batch in STREAM_SCHEMA."""
    if seq is None:
        seq = np.arange(len(events), dtype=np.int64)
    arrays = [pa.array(np.ascontiguousarray(seq, dtype=np.int64))]
    for name in EVENT_COLUMNS:
        arrays.append(pa.array(np.ascontiguousarray(events[name], dtype=_NUMPY_TYPES[name])))
    return pa.RecordBatch.from_arrays(arrays, schema=STREAM_SCHEMA)


# -- parsing helpers -----------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)$")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}


def parse_duration(text: str) -> int:
    """'30s', '10m', '1h', '1d', '250ms' -> nanoseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(
            f"duration {text!r}: expected a number and a unit (ns, us, ms, s, m, h, d), e.g. '10m'"
        )
    value = Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
    if value <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return int(value)


_DURATION_PART = re.compile(r"\d+(?:\.\d+)?(?:ns|us|ms|s|m|h|d)")


def parse_compound_duration(text: str) -> int:
    """'5m30s', '1h2m', '250ms' (replay units, compounds allowed) -> nanoseconds (> 0)."""
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not parts or "".join(parts) != stripped:
        raise ConfigError(f"duration {text!r}: expected a duration such as '250ms', '30s', '5m30s', '1h'")
    return sum(parse_duration(p) for p in parts)


def format_ns(ts: int | None) -> str:
    """ns since epoch -> ISO 8601 UTC with microseconds, or with all 9 digits when the time
    has ns below its microsecond (for listings and messages): what is printed parses back
    (`parse_time`, `--from`) to the same ns."""
    if ts is None:
        return "-"
    seconds, ns = divmod(int(ts), 1_000_000_000)
    from datetime import UTC, datetime

    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns // 1000:06d}Z" if ns % 1000 == 0 else f"{base}.{ns:09d}Z"


def parse_time(text: str) -> int:
    """ISO 8601 (naive = UTC) or integer ns -> ns since epoch, exact to the ns: the one
    parser of run configs (`engine.config.parse_time`), so `tickparity data` and
    `backtest --from` read a time alike. Raises ConfigError."""
    from engine.config import parse_time as parse

    ns = parse(text, "time")
    if ns is None:  # pragma: no cover - a str is never None
        raise ConfigError(f"time {text!r}: expected ISO 8601 (2024-08-08T23:55:00Z) or ns")
    return ns
