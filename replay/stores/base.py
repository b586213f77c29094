"""The store interface every backend implements (DuckDB, Parquet, ClickHouse).

Read side: `instruments()` (what was stored with which tick/lot sizes), `stats()` for
`data ls`, `count()` for progress bars, and `stream()` — one instrument's rows in
`(local_ts, seq)` order as bounded EVENT_DTYPE chunks.

Write side: `begin_import(instruments, sources=...)` returns an `ImportTransaction`;
`append()` adds rows of one instrument in source order (the transaction numbers them with
`seq`), and leaving the `with` block commits, or rolls everything back if an exception
escaped. Crash safety (README "Crash safety"): a store opened for writing holds the
store's writer lock until `close()`; every import commits at one atomic point together
with its metadata and the sha256 of each source file, and a file already recorded is
refused unless `force`. A full disk becomes a `StorageError` after the rollback, never
masked by it.
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from engine.clock import wall_time_text
from engine.durable import crash_point, disk_full_error, free_bytes, is_disk_full
from engine.errors import DataError, StorageError
from replay.schema import InstrumentStats, StoredInstrument


@dataclass(frozen=True)
class SourceFile:
    """One imported input file: its name (as given), sha256 and size in bytes of its content
    (decompressed; see `source_files`)."""

    name: str
    sha256: str
    bytes: int


def source_files(paths: Iterable[str | Path]) -> list[SourceFile]:
    """sha256 digests of input files' content: the decompressed bytes of a .gz file and the
    members of a .zip (in name order), so the same rows recompressed or unpacked are the
    same source (a re-import is refused either way). A file that does not decompress
    (cut short, corrupt) is digested as stored; the importer then reports it with its line."""
    out = []
    for p in paths:
        try:
            try:
                digest, size = _content_digest(Path(p))
            except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
                if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                    raise
                digest, size = _digest_blocks(open(p, "rb"))
        except OSError as exc:
            raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
        out.append(SourceFile(str(p), digest, size))
    return out


def _content_digest(path: Path) -> tuple[str, int]:
    if path.suffix == ".gz":
        return _digest_blocks(gzip.open(path, "rb"))
    if path.suffix == ".zip":
        digest, size = hashlib.sha256(), 0
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                with archive.open(name) as member:
                    while block := member.read(1 << 20):
                        digest.update(block)
                        size += len(block)
        return digest.hexdigest(), size
    return _digest_blocks(open(path, "rb"))


def _digest_blocks(handle: IO[bytes]) -> tuple[str, int]:
    """(sha256 hex, byte count) of a binary stream read in 1 MiB blocks; closes it."""
    digest, size = hashlib.sha256(), 0
    with handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def refuse_reimports_early(spec: str, sources: Sequence[SourceFile]) -> None:
    """The re-import refusal before any parsing (the store's begin_import checks again
    under its writer lock); a store that does not exist yet holds nothing."""
    from replay.stores import open_store

    if not sources:
        return
    try:
        store = open_store(spec)
    except StorageError:
        return  # busy: begin_import decides once it holds the lock
    except DataError:
        return  # a new store
    with store:
        refuse_reimports(spec, sources, store.imported_sources([s.sha256 for s in sources]))


@dataclass(frozen=True)
class ImportedSource:
    """What a store recorded about a source file it imported."""

    name: str
    sha256: str
    imported_at: str  # ISO-8601 UTC


def now_utc() -> str:
    """Import timestamp (wall clock: bookkeeping only, never on the replay path)."""
    return wall_time_text()


def refuse_reimports(
    spec: str, sources: Sequence[SourceFile], known: Mapping[str, ImportedSource]
) -> None:
    """DataError naming the first source file the store already holds (same sha256)."""
    for src in sources:
        old = known.get(src.sha256)
        if old is not None:
            same = "" if Path(old.name).name == Path(src.name).name else f" as {old.name}"
            raise DataError(
                f"{src.name}: already imported into {spec} on {old.imported_at}{same} "
                f"(sha256 {src.sha256[:12]}); importing it again would duplicate its rows "
                "(book rows included); use --force to import it anyway"
            )


class ImportTransaction(ABC):
    """All-or-nothing import: rows become visible only when the block exits cleanly."""

    def __init__(
        self,
        store: Store,
        instruments: Mapping[str, StoredInstrument],
        sources: Sequence[SourceFile] = (),
        force: bool = False,
        expected_rows: int | None = None,
    ) -> None:
        self.store = store
        self.instruments = dict(instruments)
        self.sources = list(sources)
        self.expected_rows = expected_rows
        if self.sources and not force:
            refuse_reimports(
                store.spec, self.sources, store.imported_sources([s.sha256 for s in self.sources])
            )
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
        self._pending = 0
        # free space before writing: a store file that grew into the disk (DuckDB keeps
        # its blocks for the next import) would otherwise make the message say 0 B
        self._free_at_start = free_bytes(store.location())

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
        self._pending = len(events)  # sizes the full-disk message if this write fails
        self._write(inst_id, events, seq)
        self._pending = 0
        self.rows += len(events)
        crash_point("import.appended")

    @abstractmethod
    def _write(self, inst_id: str, events: np.ndarray, seq: np.ndarray) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Make the import visible at one atomic point (rows, metadata, source digests)."""

    @abstractmethod
    def rollback(self) -> None:
        """Undo what this transaction wrote (best effort: it is invisible anyway)."""

    def _disk_full(self) -> StorageError:
        rows = max(self.expected_rows or 0, self.rows + self._pending)
        return disk_full_error(
            self.store.spec,
            self.store.location(),
            rows * self.store.bytes_per_row,
            free=self._free_at_start,
        )

    def _safe_rollback(self) -> None:
        try:
            self.rollback()
        except Exception:  # noqa: BLE001 - never mask the error that made us roll back
            pass

    def __enter__(self) -> ImportTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                self.commit()
            except BaseException as err:
                self._safe_rollback()
                if is_disk_full(err):
                    raise self._disk_full() from None
                raise
            return
        self._safe_rollback()
        if is_disk_full(exc):
            raise self._disk_full() from None


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

    #: the ImportTransaction subclass of the store (None: the store is read-only)
    transaction_type: type[ImportTransaction] | None = None

    def writable(self) -> bool:
        """True when opened for writing (create=True), i.e. holding the writer lock."""
        return False

    def begin_import(
        self,
        instruments: Mapping[str, StoredInstrument],
        sources: Sequence[SourceFile] = (),
        force: bool = False,
        expected_rows: int | None = None,
    ) -> ImportTransaction:
        """Start an import (the store must be opened with create=True: it holds the lock).

        `sources`: the input files (digests recorded; one already recorded raises
        DataError unless `force`); `expected_rows` sizes the full-disk message."""
        if self.transaction_type is None or not self.writable():
            raise DataError(f"{self.spec}: opened read-only; open it with create=True to import")
        return self.transaction_type(self, instruments, sources, force, expected_rows)

    def imported_sources(self, sha256s: Sequence[str]) -> dict[str, ImportedSource]:
        """Of these digests, the ones already imported (sha256 -> record)."""
        return {}

    def repair(self) -> list[str]:
        """Remove what interrupted imports left; returns what was done (empty: nothing)."""
        return []

    #: rough bytes one stored row takes on disk (for the full-disk message only)
    bytes_per_row = 40

    def location(self) -> Path:
        """A path on the file system that holds the store (free space is measured there)."""
        return Path(".")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections/files (and the writer lock)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
