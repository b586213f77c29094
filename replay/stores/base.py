"""The store interface every backend implements (DuckDB, Parquet, ClickHouse).

Read side: `instruments()` (what was stored with which tick/lot sizes), `stats()` for
`data ls`, `count()` for progress bars, and `stream()` — one instrument's rows in
`(local_ts, seq)` order as bounded EVENT_DTYPE chunks.

Write side: `begin_import(instruments)` returns an `ImportTransaction`; `append()` adds
rows of one instrument in source order (the transaction numbers them with `seq`), and
leaving the `with` block commits, or rolls everything back if an exception escaped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from types import TracebackType

import numpy as np

from engine.errors import DataError
from replay.schema import InstrumentStats, StoredInstrument


class ImportTransaction(ABC):
    """All-or-nothing import: rows become visible only when the block exits cleanly."""

    def __init__(self, store: Store, instruments: Mapping[str, StoredInstrument]) -> None:
        self.store = store
        self.instruments = dict(instruments)
        existing = store.instruments()
        for inst_id, spec in self.instruments.items():
            old = existing.get(inst_id)
            if old is not None and (old.tick_size, old.lot_size) != (spec.tick_size, spec.lot_size):
                raise DataError(
                    f"{store.spec}: instrument {inst_id} is stored with tick_size {old.tick_size} "
                    f"lot_size {old.lot_size}, the import says tick_size {spec.tick_size} "
                    f"lot_size {spec.lot_size}; import into another store"
                )
        self._next_seq: dict[str, int] = {}
        self.rows = 0

    def next_seq(self, inst_id: str, n: int) -> np.ndarray:
        """Seq numbers for n more rows of inst_id, continuing after what is stored."""
        if inst_id not in self.instruments:
            raise DataError(
                f"{self.store.spec}: instrument {inst_id} was not declared for this import"
            )
        start = self._next_seq.get(inst_id)
        if start is None:
            start = self.store.max_seq(inst_id) + 1
        self._next_seq[inst_id] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def append(self, inst_id: str, events: np.ndarray) -> None:
        """Add rows of one instrument (EVENT_DTYPE, source order, local_ts non-decreasing)."""
        if len(events) == 0:
            return
        seq = self.next_seq(inst_id, len(events))
        self._write(inst_id, events, seq)
        self.rows += len(events)

    @abstractmethod
    def _write(self, inst_id: str, events: np.ndarray, seq: np.ndarray) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    def __enter__(self) -> ImportTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


class Store(ABC):
    """A place events live. `spec` is the string it was opened with (for messages)."""

    spec: str

    @abstractmethod
    def instruments(self) -> dict[str, StoredInstrument]: ...

    @abstractmethod
    def stats(self) -> list[InstrumentStats]: ...

    @abstractmethod
    def count(self, inst_id: str, start_ns: int | None, end_ns: int | None) -> int: ...

    @abstractmethod
    def stream(
        self,
        inst_id: str,
        start_ns: int | None,
        end_ns: int | None,
        chunk_rows: int,
        with_seq: bool = False,
    ) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
        """One instrument's rows by (local_ts, seq); `instrument` field is 0.

        With `with_seq`, yields (events, seq) pairs (export and checks need the seq).
        """

    def last_snapshot_before(self, inst_id: str, ts: int) -> int | None:
        """local_ts of the instrument's last SNAPSHOT_BEGIN before ts (None: none known).

        Used to rebuild the book at a replay window's start without scanning everything;
        the default scans from the beginning (None)."""
        return None

    @abstractmethod
    def max_seq(self, inst_id: str) -> int:
        """Largest stored seq of the instrument, -1 when it has no rows."""

    @abstractmethod
    def begin_import(self, instruments: Mapping[str, StoredInstrument]) -> ImportTransaction: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections/files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
