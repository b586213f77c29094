"""ClickHouse store through clickhouse-connect: a server, a cluster, or chDB in-process.

Tables (in database `DB`, default `tickparity`):

- `events`: MergeTree PARTITION BY (venue, instrument, day) ORDER BY (instrument,
  local_ts, seq), one row per event plus the `import_id` that wrote it. Reads filter one
  instrument and `ORDER BY local_ts, seq`, which is the sorting key's order, so ClickHouse
  streams them in order (optimize_read_in_order) without a full sort.
- `instruments`: id, venue, venue_symbol, tick_size, lot_size, import_id.
- `imports`: one row per committed import.

- `sources`: sha256, name, bytes, imported_at, import_id of every imported file.

ClickHouse has no multi-statement transactions, so an import is made atomic by
visibility: rows (events, new instruments, source digests) are inserted with a fresh
`import_id`, and readers only see import ids listed in `imports`. The single-row insert
into `imports` is the commit. A failed import is deleted by an asynchronous mutation
(waited for a bounded time: a synchronous one never finishes on a full disk); rows of
an import that never committed are deleted when a chDB store is next opened for
writing, or by `data repair` on a server (run it when no import is running).

chDB runs one engine per store path and per process, so a chDB store is opened by one
process at a time (readers included): `PATH.lock` (engine.durable.WriterLock) makes a
second process fail with a one-line message naming the holder. On a server several
readers share the store; one writer at a time is the operator's rule (no lock).

Specs: `chdb:PATH` (chDB engine files under PATH, reached with
`clickhouse_connect.get_client(dsn="chdb:///PATH")`; chDB allows one engine path per
process), `clickhouse://[user[:password]@]host[:port]/database` (HTTP, default port
8123; `clickhouses://` for TLS on 8443).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa

from engine.durable import WriterLock, crash_point
from engine.errors import ConfigError, DataError, StorageError
from replay.schema import (
    EVENT_COLUMNS,
    NS_PER_DAY,
    InstrumentStats,
    StoredInstrument,
    events_from_batch,
    seq_from_batch,
)
from replay.stores.base import ImportedSource, ImportTransaction, Store, now_utc

DEFAULT_DATABASE = "tickparity"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: seconds a rollback waits for its delete mutation (then the next open finishes it)
ROLLBACK_WAIT_S = 5.0
_UNCOMMITTED_TABLES = ("events", "instruments", "sources")


def ddl(db: str, events_table: str = "events", engine: str = "MergeTree") -> list[str]:
    """CREATE statements of the store (also the template for a cluster's local tables)."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"""CREATE TABLE IF NOT EXISTS {db}.{events_table} (
            venue LowCardinality(String),
            instrument LowCardinality(String),
            day Date,
            seq Int64,
            exch_ts Int64,
            local_ts Int64,
            kind UInt8,
            side Int8,
            price Int64,
            qty Int64,
            order_id UInt64,
            import_id UInt64
        ) ENGINE = {engine}
        PARTITION BY (venue, instrument, day)
        ORDER BY (instrument, local_ts, seq)""",
        f"""CREATE TABLE IF NOT EXISTS {db}.instruments (
            id String, venue String, venue_symbol String, tick_size String, lot_size String,
            import_id UInt64
        ) ENGINE = MergeTree ORDER BY (id, import_id)""",
        f"""CREATE TABLE IF NOT EXISTS {db}.imports (
            import_id UInt64, rows UInt64, committed_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = MergeTree ORDER BY import_id""",
        f"""CREATE TABLE IF NOT EXISTS {db}.sources (
            sha256 String, name String, bytes UInt64, imported_at String, import_id UInt64
        ) ENGINE = MergeTree ORDER BY (sha256, import_id)""",
    ]


def _busy_message(spec: str) -> object:
    def say(holder: str) -> str:
        return (
            f"{spec}: in use by {holder}; chDB runs one engine per store and process, so two "
            "processes cannot open one chDB store: for concurrent runs use DuckDB (read-only "
            "opens share one file), a Parquet dataset (`data export`, or import there), or a "
            "ClickHouse server"
        )

    return say


class ClickHouseStore(Store):
    bytes_per_row = 30

    def __init__(
        self,
        client,
        database: str,
        spec: str,
        *,
        create: bool,
        lock: WriterLock | None = None,
        path: Path | None = None,
    ) -> None:
        self.client = client
        self.db = database
        self.spec = spec
        self.lock = lock
        self.path = path
        self.create = create
        self.recovered: list[str] = []
        if not _IDENT.match(database):
            raise ConfigError(f"{spec}: database name {database!r} must be a plain identifier")
        try:
            if create:
                for stmt in ddl(database):
                    client.command(stmt)
            else:
                have = client.command(f"EXISTS TABLE {database}.events")
                if str(have).strip() not in ("1", "True"):
                    raise DataError(f"{spec}: no tickparity events table in database {database}")
            if lock is not None:  # chDB: this process alone has the store; finish old imports
                for stmt in ddl(database):  # idempotent: adds `sources` to older stores
                    client.command(stmt)
                self.recovered = self._delete_uncommitted()
        except DataError:
            self.close()
            raise
        except Exception as exc:  # clickhouse-connect raises its own hierarchy
            self.close()
            raise DataError(f"{spec}: {_first_line(exc)}") from None

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def chdb(cls, path: Path, *, create: bool = False) -> ClickHouseStore:
        import clickhouse_connect

        spec = f"chdb:{path}"
        if not create and not path.is_dir():
            raise DataError(f"chDB store not found: {path}")
        path.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(path, spec).acquire(busy=_busy_message(spec))
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path.resolve()}")
        except ImportError as exc:
            lock.release()
            raise ConfigError(f"{spec}: {exc}") from None
        except Exception as exc:
            lock.release()
            if "EmbeddedServer" in str(exc):
                raise StorageError(_busy_message(spec)("another chDB engine")) from None
            raise DataError(f"{spec}: cannot open chDB: {_first_line(exc)}") from None
        return cls(client, DEFAULT_DATABASE, spec, create=create, lock=lock, path=path)

    @classmethod
    def server(cls, url: str, *, create: bool = False) -> ClickHouseStore:
        import clickhouse_connect

        parsed = urlparse(url)
        secure = parsed.scheme == "clickhouses"
        database = unquote(parsed.path.lstrip("/")) or DEFAULT_DATABASE
        if parsed.hostname is None:
            raise ConfigError(
                f"{url}: expected clickhouse://[user[:password]@]host[:port]/database"
            )
        shown = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or (8443 if secure else 8123)}/{database}"
        try:
            client = clickhouse_connect.get_client(
                host=parsed.hostname,
                port=parsed.port or (8443 if secure else 8123),
                username=unquote(parsed.username) if parsed.username else "default",
                password=unquote(parsed.password) if parsed.password else "",
                secure=secure,
                # several instruments stream at once: no shared session
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise DataError(f"{shown}: cannot connect: {_first_line(exc)}") from None
        return cls(client, database, shown, create=create)

    # -- read ------------------------------------------------------------------------------
    @property
    def _visible(self) -> str:
        return f"import_id IN (SELECT import_id FROM {self.db}.imports)"

    def instruments(self) -> dict[str, StoredInstrument]:
        rows = self.client.query(
            f"SELECT id, argMin(venue, import_id), argMin(venue_symbol, import_id), "
            f"argMin(tick_size, import_id), argMin(lot_size, import_id) "
            f"FROM {self.db}.instruments WHERE {self._visible} GROUP BY id ORDER BY id"
        ).result_rows
        return {
            r[0]: StoredInstrument(r[0], r[1], r[2], Decimal(r[3]), Decimal(r[4])) for r in rows
        }

    def stats(self) -> list[InstrumentStats]:
        counts = {
            r[0]: r[1:]
            for r in self.client.query(
                f"SELECT instrument, count(), min(local_ts), max(local_ts) FROM {self.db}.events "
                f"WHERE {self._visible} GROUP BY instrument"
            ).result_rows
        }
        out = []
        for inst_id, inst in self.instruments().items():
            n, lo, hi = counts.get(inst_id, (0, None, None))
            out.append(
                InstrumentStats(
                    inst_id,
                    int(n),
                    lo if n else None,
                    hi if n else None,
                    inst.tick_size,
                    inst.lot_size,
                )
            )
        return out

    def _where(self, start_ns, end_ns) -> tuple[str, dict]:
        sql, params = "", {}
        if start_ns is not None:
            sql += " AND local_ts >= {start:Int64}"
            params["start"] = int(start_ns)
        if end_ns is not None:
            sql += " AND local_ts < {end:Int64}"
            params["end"] = int(end_ns)
        return sql, params

    def count(self, inst_id, start_ns, end_ns) -> int:
        where, params = self._where(start_ns, end_ns)
        rows = self.client.query(
            f"SELECT count() FROM {self.db}.events WHERE instrument = {{inst:String}} AND {self._visible}{where}",
            parameters={"inst": inst_id, **params},
        ).result_rows
        return int(rows[0][0])

    def last_snapshot_before(self, inst_id: str, ts: int) -> int | None:
        rows = self.client.query(
            f"SELECT count(), max(local_ts) FROM {self.db}.events WHERE instrument = {{inst:String}} "
            f"AND kind = 2 AND local_ts < {{ts:Int64}} AND {self._visible}",
            parameters={"inst": inst_id, "ts": int(ts)},
        ).result_rows
        return int(rows[0][1]) if rows[0][0] else None

    def max_seq(self, inst_id: str) -> int:
        rows = self.client.query(
            f"SELECT count(), max(seq) FROM {self.db}.events WHERE instrument = {{inst:String}} AND {self._visible}",
            parameters={"inst": inst_id},
        ).result_rows
        return int(rows[0][1]) if rows[0][0] else -1

    def stream(self, inst_id, start_ns, end_ns, chunk_rows, with_seq=False):
        """Keyset pagination over the sorting key: every page is its own bounded query.

        Why not one streaming query: chDB materialises Arrow results whole, and a
        client cannot serve two open streams (several instruments replay at once).
        A page `WHERE (local_ts, seq) > last ORDER BY local_ts, seq LIMIT n` reads in
        key order from the primary index, so memory stays at one page per instrument.
        """
        page = int(max(1024, min(chunk_rows, 1 << 20)))
        where, params = self._where(start_ns, end_ns)
        cols = f"seq, {', '.join(EVENT_COLUMNS)}"
        base = f"SELECT {cols} FROM {self.db}.events WHERE instrument = {{inst:String}} AND {self._visible}{where}"

        def gen() -> Iterator:
            last: tuple[int, int] | None = None
            while True:
                if last is None:
                    sql = f"{base} ORDER BY local_ts, seq LIMIT {page}"
                    extra = {}
                else:
                    sql = (
                        f"{base} AND local_ts >= {{lts:Int64}} AND (local_ts > {{lts:Int64}} OR seq > {{lseq:Int64}}) "
                        f"ORDER BY local_ts, seq LIMIT {page}"
                    )
                    extra = {"lts": last[0], "lseq": last[1]}
                table = self.client.query_arrow(
                    sql, parameters={"inst": inst_id, **params, **extra}
                )
                if table.num_rows == 0:
                    return
                events = events_from_batch(table)
                seq = seq_from_batch(table)
                yield (events, seq) if with_seq else events
                if table.num_rows < page:
                    return
                last = (int(events["local_ts"][-1]), int(seq[-1]))

        return gen()

    def imported_sources(self, sha256s: Sequence[str]) -> dict[str, ImportedSource]:
        have = self.client.command(f"EXISTS TABLE {self.db}.sources")
        if not sha256s or str(have).strip() not in ("1", "True"):
            return {}  # a server store created before digests were recorded
        rows = self.client.query(
            f"SELECT sha256, argMin(name, imported_at), min(imported_at) FROM {self.db}.sources "
            f"WHERE sha256 IN {{shas:Array(String)}} AND {self._visible} GROUP BY sha256",
            parameters={"shas": list(sha256s)},
        ).result_rows
        return {r[0]: ImportedSource(r[1], r[0], r[2]) for r in rows}

    def _uncommitted(self) -> int:
        rows = self.client.query(
            f"SELECT count() FROM {self.db}.events WHERE NOT {self._visible}"
        ).result_rows
        return int(rows[0][0])

    def _delete_uncommitted(self, wait_s: float = ROLLBACK_WAIT_S) -> list[str]:
        """Delete rows of imports that never committed (a killed or failed writer)."""
        n = self._uncommitted()
        stale = self.client.query(
            f"SELECT count() FROM {self.db}.instruments WHERE NOT {self._visible}"
        ).result_rows[0][0]
        if not n and not stale:
            return []
        for table in _UNCOMMITTED_TABLES:
            self.client.command(
                f"ALTER TABLE {self.db}.{table} DELETE WHERE NOT {self._visible}",
                settings={"mutations_sync": 0},
            )
        _wait_mutations(self, wait_s)
        return [f"deleted {n:,} rows of imports that never committed"]

    def repair(self) -> list[str]:
        return list(self.recovered) + self._delete_uncommitted(wait_s=60.0)

    def location(self) -> Path:
        return self.path if self.path is not None else Path(".")

    def writable(self) -> bool:
        return self.create

    def close(self) -> None:
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                pass
        lock, self.lock = getattr(self, "lock", None), None
        if lock is not None:
            lock.release()


def _wait_mutations(store: ClickHouseStore, wait_s: float) -> bool:
    """Wait at most wait_s for the store's mutations; False when some are still running
    (they go on in the background and resume after a restart)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            left = store.client.query(
                "SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done",
                parameters={"db": store.db},
            ).result_rows[0][0]
        except Exception:  # noqa: BLE001 - a failing probe must not hang or mask
            return False
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


class _ClickHouseImport(ImportTransaction):
    def __init__(self, store: ClickHouseStore, instruments, sources, force, expected_rows) -> None:
        super().__init__(store, instruments, sources, force, expected_rows)
        self.ch = store
        self.import_id = uuid.uuid4().int >> 65  # fits Int64 too
        known = store.instruments()
        new = [spec for inst_id, spec in sorted(self.instruments.items()) if inst_id not in known]
        if new:
            table = pa.table(
                {
                    "id": [s.id for s in new],
                    "venue": [s.venue for s in new],
                    "venue_symbol": [s.venue_symbol for s in new],
                    "tick_size": [format(s.tick_size, "f") for s in new],
                    "lot_size": [format(s.lot_size, "f") for s in new],
                    "import_id": pa.array([self.import_id] * len(new), pa.uint64()),
                }
            )
            self._insert("instruments", table)

    def _insert(self, table_name: str, table: pa.Table) -> None:
        try:
            self.ch.client.insert_arrow(f"{self.ch.db}.{table_name}", table)
        except Exception as exc:
            raise DataError(
                f"{self.ch.spec}: insert into {table_name} failed: {_first_line(exc)}"
            ) from None

    def _write(self, inst_id: str, events: np.ndarray, seq: np.ndarray) -> None:
        n = len(events)
        spec = self.instruments[inst_id]
        days = (events["local_ts"] // NS_PER_DAY).astype(np.int32)
        table = pa.table(
            {
                "venue": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n, np.int32)), pa.array([spec.venue])
                ),
                "instrument": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n, np.int32)), pa.array([inst_id])
                ),
                "day": pa.array(days, pa.date32()),
                "seq": pa.array(seq),
                **{name: pa.array(np.ascontiguousarray(events[name])) for name in EVENT_COLUMNS},
                "import_id": pa.array(np.full(n, self.import_id, dtype=np.uint64)),
            }
        )
        self._insert("events", table)

    def commit(self) -> None:
        if self.sources:
            stamp = now_utc()
            self._insert(
                "sources",
                pa.table(
                    {
                        "sha256": [s.sha256 for s in self.sources],
                        "name": [s.name for s in self.sources],
                        "bytes": pa.array([s.bytes for s in self.sources], pa.uint64()),
                        "imported_at": [stamp] * len(self.sources),
                        "import_id": pa.array([self.import_id] * len(self.sources), pa.uint64()),
                    }
                ),
            )
        crash_point("chdb.before_commit")
        self._insert(
            "imports",
            pa.table(
                {
                    "import_id": pa.array([self.import_id], pa.uint64()),
                    "rows": pa.array([self.rows], pa.uint64()),
                }
            ),
        )
        crash_point("chdb.committed")

    def rollback(self) -> None:
        """Delete this import's rows: asynchronous mutations, waited for ROLLBACK_WAIT_S at
        most (a synchronous one hangs forever on a full disk); invisible in any case, and
        the next open for writing deletes what is left."""
        for table in _UNCOMMITTED_TABLES:
            try:
                self.ch.client.command(
                    f"ALTER TABLE {self.ch.db}.{table} DELETE WHERE import_id = {int(self.import_id)}",
                    settings={"mutations_sync": 0},
                )
            except Exception:  # noqa: BLE001 - invisible anyway (not in `imports`)
                pass
        _wait_mutations(self.ch, ROLLBACK_WAIT_S)


ClickHouseStore.transaction_type = _ClickHouseImport


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
