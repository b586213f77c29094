"""DuckDB file store (the default): two tables in one embedded database file.

`instruments(iid, id, venue, venue_symbol, tick_size, lot_size)`,
`events(iid, seq, exch_ts, local_ts, kind, side, price, qty, order_id)` and
`sources(sha256, name, bytes, imported_at)`. An import is one DuckDB transaction (rows,
instrument metadata and source digests together): DuckDB's write-ahead log makes its
COMMIT the one atomic point, and a writer killed before it leaves nothing (the log is
replayed at the next open). A writer holds `PATH.lock` (engine.durable.WriterLock).
Reads stream Arrow record batches under a memory limit; DuckDB spills sorts to disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from engine.durable import WriterLock, crash_point
from engine.errors import DataError, StorageError, file_problem
from replay.schema import (
    EVENT_COLUMNS,
    InstrumentStats,
    StoredInstrument,
    events_from_batch,
    seq_from_batch,
)
from replay.stores.base import ImportedSource, ImportTransaction, Store, now_utc

_DDL = """
CREATE TABLE IF NOT EXISTS instruments (
    iid USMALLINT PRIMARY KEY,
    id VARCHAR NOT NULL UNIQUE,
    venue VARCHAR NOT NULL,
    venue_symbol VARCHAR NOT NULL,
    tick_size VARCHAR NOT NULL,
    lot_size VARCHAR NOT NULL,
    -- true while every import appended rows at or after the stored ones, so the
    -- physical (insertion) order is already (local_ts, seq): reads skip the sort
    in_order BOOLEAN NOT NULL DEFAULT true,
    last_local_ts BIGINT
);
CREATE TABLE IF NOT EXISTS events (
    iid USMALLINT NOT NULL,
    seq BIGINT NOT NULL,
    exch_ts BIGINT NOT NULL,
    local_ts BIGINT NOT NULL,
    kind UTINYINT NOT NULL,
    side TINYINT NOT NULL,
    price BIGINT NOT NULL,
    qty BIGINT NOT NULL,
    order_id UBIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    sha256 VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    imported_at VARCHAR NOT NULL
);
"""
_COLS = ", ".join(EVENT_COLUMNS)


class DuckDBStore(Store):
    bytes_per_row = 60  # write-ahead log + table, measured on synthetic rows

    def __init__(
        self, path: Path, *, create: bool = False, memory_limit: str | None = None
    ) -> None:
        self.path = path
        self.spec = f"duckdb:{path}"
        self.lock: WriterLock | None = None
        if not create and (problem := file_problem(path)) is not None:
            raise DataError(f"DuckDB store {problem}: {path}")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.lock = WriterLock(path, self.spec).acquire()
        self.con = self._connect(create)
        try:
            self._setup(create, memory_limit)
        except BaseException:
            self.close()
            raise
        self._iids: dict[str, int] | None = None

    def _connect(self, create: bool) -> duckdb.DuckDBPyConnection:
        """DuckDB lets one process write a file, or several read it: a reader waits for
        an import to finish, a writer for readers to close, both for the bounded time of
        the writer lock, then a StorageError names the process in the way."""
        deadline = time.monotonic() + WriterLock(self.path, self.spec).timeout_s
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=not create)
            except duckdb.Error as exc:
                text = str(exc).splitlines()[0]
                if "lock" not in text.lower():
                    self._release()
                    raise DataError(f"{self.spec}: cannot open: {text}") from None
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self._release()
                who = "a reader" if create else WriterLock(self.path, self.spec).holder()
                raise StorageError(
                    f"{self.spec}: in use by {who}; retry when it has finished "
                    f"(DuckDB: {text[:160]})"
                ) from None

    def _release(self) -> None:
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.release()

    def location(self) -> Path:
        return self.path

    def _setup(self, create: bool, memory_limit: str | None) -> None:
        # replay reads in insertion order and needs little; DuckDB's buffer cache would
        # otherwise fill the whole limit (measured: 512MB -> 850 MB peak RSS on 42M rows)
        limit = memory_limit or ("512MB" if create else "128MB")
        self.con.execute(f"SET memory_limit = '{limit}'")
        self.con.execute("SET preserve_insertion_order = true")
        if create:
            self.con.execute(_DDL)
        elif not self._has_tables():
            raise DataError(f"{self.spec}: not a tickparity store (no events/instruments tables)")

    def _has_tables(self) -> bool:
        names = {
            row[0]
            for row in self.con.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
        return {"events", "instruments"} <= names

    # -- read --------------------------------------------------------------------------
    def _instrument_rows(self) -> list[tuple]:
        return self.con.execute(
            "SELECT iid, id, venue, venue_symbol, tick_size, lot_size FROM instruments ORDER BY iid"
        ).fetchall()

    def iids(self) -> dict[str, int]:
        if self._iids is None:
            self._iids = {row[1]: int(row[0]) for row in self._instrument_rows()}
        return self._iids

    def instruments(self) -> dict[str, StoredInstrument]:
        return {
            row[1]: StoredInstrument(row[1], row[2], row[3], Decimal(row[4]), Decimal(row[5]))
            for row in self._instrument_rows()
        }

    def stats(self) -> list[InstrumentStats]:
        rows = self.con.execute(
            """
            SELECT i.id, count(e.iid), min(e.local_ts), max(e.local_ts), i.tick_size, i.lot_size
            FROM instruments i LEFT JOIN events e ON e.iid = i.iid
            GROUP BY i.id, i.tick_size, i.lot_size ORDER BY i.id
            """
        ).fetchall()
        return [
            InstrumentStats(r[0], int(r[1]), r[2], r[3], Decimal(r[4]), Decimal(r[5])) for r in rows
        ]

    @staticmethod
    def _where(start_ns: int | None, end_ns: int | None) -> tuple[str, list[int]]:
        sql, params = "", []
        if start_ns is not None:
            sql += " AND local_ts >= ?"
            params.append(int(start_ns))
        if end_ns is not None:
            sql += " AND local_ts < ?"
            params.append(int(end_ns))
        return sql, params

    def count(self, inst_id: str, start_ns: int | None, end_ns: int | None) -> int:
        iid = self.iids().get(inst_id)
        if iid is None:
            return 0
        where, params = self._where(start_ns, end_ns)
        row = self.con.execute(
            f"SELECT count(*) FROM events WHERE iid = ?{where}", [iid, *params]
        ).fetchone()
        return int(row[0])

    def last_snapshot_before(self, inst_id: str, ts: int) -> int | None:
        iid = self.iids().get(inst_id)
        if iid is None:
            return None
        row = self.con.execute(
            "SELECT max(local_ts) FROM events WHERE iid = ? AND kind = 2 AND local_ts < ?",
            [iid, int(ts)],
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def max_seq(self, inst_id: str) -> int:
        iid = self.iids().get(inst_id)
        if iid is None:
            return -1
        row = self.con.execute("SELECT max(seq) FROM events WHERE iid = ?", [iid]).fetchone()
        return -1 if row[0] is None else int(row[0])

    def stream(self, inst_id, start_ns, end_ns, chunk_rows, with_seq=False):
        iid = self.iids().get(inst_id)
        if iid is None:
            return iter(())
        return self._stream(iid, start_ns, end_ns, chunk_rows, with_seq)

    def _stream(self, iid, start_ns, end_ns, chunk_rows, with_seq) -> Iterator:
        where, params = self._where(start_ns, end_ns)
        cur = self.con.cursor()  # own connection: several instruments stream at once
        try:
            in_order = self.con.execute(
                "SELECT in_order FROM instruments WHERE iid = ?", [iid]
            ).fetchone()[0]
            # insertion order is preserved by scans (preserve_insertion_order = true)
            order = "" if in_order else " ORDER BY local_ts, seq"
            rel = cur.sql(
                f"SELECT seq, {_COLS} FROM events WHERE iid = ?{where}{order}",
                params=[iid, *params],
            )
            reader = rel.to_arrow_reader(chunk_rows)
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                events = events_from_batch(batch)
                yield (events, seq_from_batch(batch)) if with_seq else events
        finally:
            cur.close()

    def imported_sources(self, sha256s: Sequence[str]) -> dict[str, ImportedSource]:
        if not sha256s or not self._has_sources():
            return {}
        rows = self.con.execute(
            "SELECT sha256, name, min(imported_at) FROM sources WHERE sha256 IN "
            f"({', '.join('?' for _ in sha256s)}) GROUP BY sha256, name",
            list(sha256s),
        ).fetchall()
        return {r[0]: ImportedSource(r[1], r[0], r[2]) for r in rows}

    def _has_sources(self) -> bool:
        names = {
            r[0]
            for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        return "sources" in names  # stores written before digests were recorded lack it

    # -- write -------------------------------------------------------------------------
    def writable(self) -> bool:
        return self.lock is not None

    def repair(self) -> list[str]:
        """DuckDB recovers by itself: opening replays a committed write-ahead log and drops
        an uncommitted one. Repair checkpoints so the file alone holds every import."""
        wal = Path(f"{self.path}.wal")
        had_wal = wal.exists() and wal.stat().st_size > 0
        self.con.execute("CHECKPOINT")
        return ["checkpointed the write-ahead log into the file"] if had_wal else []

    def close(self) -> None:
        con = getattr(self, "con", None)
        try:
            if con is not None:
                con.close()
        except duckdb.Error:
            pass  # an invalidated database (e.g. after a full disk) must not mask the cause
        finally:
            self._release()


class _DuckDBImport(ImportTransaction):
    def __init__(self, store: DuckDBStore, instruments, sources, force, expected_rows) -> None:
        super().__init__(store, instruments, sources, force, expected_rows)
        self.db = store
        self.con = store.con
        self.con.execute("BEGIN TRANSACTION")
        try:
            iids = dict(store.iids())
            next_iid = max(iids.values(), default=-1) + 1
            for inst_id in sorted(self.instruments):
                if inst_id in iids:
                    continue
                spec = self.instruments[inst_id]
                self.con.execute(
                    "INSERT INTO instruments (iid, id, venue, venue_symbol, tick_size, lot_size) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        next_iid,
                        spec.id,
                        spec.venue,
                        spec.venue_symbol,
                        format(spec.tick_size, "f"),
                        format(spec.lot_size, "f"),
                    ],
                )
                iids[inst_id] = next_iid
                next_iid += 1
            self.iids = iids
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def _write(self, inst_id: str, events: np.ndarray, seq: np.ndarray) -> None:
        n = len(events)
        iid = self.iids[inst_id]
        ts = events["local_ts"]
        last = self.con.execute(
            "SELECT last_local_ts FROM instruments WHERE iid = ?", [iid]
        ).fetchone()[0]
        ordered = bool((last is None or ts[0] >= last) and (n < 2 or (ts[1:] >= ts[:-1]).all()))
        self.con.execute(
            "UPDATE instruments SET in_order = in_order AND ?, last_local_ts = greatest(coalesce(last_local_ts, ?), ?) WHERE iid = ?",
            [ordered, int(ts.max()), int(ts.max()), iid],
        )
        table = pa.table(
            {
                "iid": pa.array(np.full(n, self.iids[inst_id], dtype=np.uint16)),
                "seq": pa.array(seq),
                **{name: pa.array(np.ascontiguousarray(events[name])) for name in EVENT_COLUMNS},
            }
        )
        self.con.register("_tp_import_rows", table)
        try:
            self.con.execute(f"INSERT INTO events SELECT iid, seq, {_COLS} FROM _tp_import_rows")
        finally:
            try:
                self.con.unregister("_tp_import_rows")
            except duckdb.Error:
                pass  # an aborted transaction: the INSERT's error is the one to report

    def commit(self) -> None:
        stamp = now_utc()
        for src in self.sources:
            self.con.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?)", [src.sha256, src.name, src.bytes, stamp]
            )
        crash_point("duckdb.before_commit")
        self.con.execute("COMMIT")
        crash_point("duckdb.committed")
        self.db._iids = None

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")
        self.db._iids = None


DuckDBStore.transaction_type = _DuckDBImport
