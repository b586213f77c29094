"""Parquet stores: a partitioned dataset directory, and single exported files.

Dataset layout: immutable versions, the committed one named by a symlink::

    DIR/current -> .versions/000007                        the commit point
    DIR/.versions/000007/_tickparity.json                  instruments, next seq, sources
    DIR/.versions/000007/venue=binance/instrument=BTC%2FUSDT/day=2024-08-08/part-0.parquet
    DIR/.staging/<token>/                                  an import being written
    DIR.lock, DIR.lock.json                                the writer lock and its holder

`DIR/current` is a plain hive dataset (DuckDB `read_parquet('DIR/current/*/*/*/*.parquet',
hive_partitioning = true)`, `pyarrow.dataset.dataset('DIR/current', partitioning='hive')`,
Spark `spark.read.parquet('DIR/current')`). One file per (instrument, day of local_ts),
rows sorted by (local_ts, seq), columns `seq` + the event columns. An import builds the
next version beside the current one (merged files for the days it touches, hard links for
the rest, metadata included) and commits by one atomic rename of a symlink over
`DIR/current`; a killed import leaves debris outside `current` that the next open deletes.
Why not Delta Lake: the replay streams one (local_ts, seq)-sorted file per day, which a
table format's appends would break into many unsorted files; a symlink swap gives the
same single atomic commit with no new native dependency, and every reader sees a
complete version. Datasets in the earlier layout (`DIR/_tickparity.json` beside
`DIR/venue=...`) are read in place and converted by their next import.

A single ``.parquet`` file (what `data export` writes) carries an `instrument` string
column and the instrument table in its key-value metadata (`tickparity.instruments`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.durable import WriterLock, crash_point, fsync_dir, fsync_tree, write_file_durably
from engine.errors import DataError, StorageError, file_problem
from replay.schema import (
    NS_PER_DAY,
    STREAM_SCHEMA,
    InstrumentStats,
    StoredInstrument,
    arrow_from_events,
    events_from_batch,
    seq_from_batch,
)
from replay.stores.base import ImportedSource, ImportTransaction, Store, now_utc

try:
    import fcntl
except ImportError:  # not POSIX: versions are then cleaned without the reader check
    fcntl = None

META_FILE = "_tickparity.json"
CURRENT = "current"
VERSIONS = ".versions"
STAGING = ".staging"
META_KEY = b"tickparity.instruments"
FILE_NAME = "part-0.parquet"
_ROW_GROUP = 256 * 1024


def open_parquet(path: Path, *, create: bool = False) -> Store:
    if path.suffix.lower() == ".parquet" and not path.is_dir():
        if create:
            raise DataError(
                f"parquet:{path}: import into a dataset directory (parquet:DIR); single files are written by 'data export'"
            )
        return ParquetFileStore(path)
    return ParquetDatasetStore(path, create=create)


def _day_of(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")


def _stats_of(path: Path) -> tuple[int, int | None, int | None]:
    meta = pq.ParquetFile(path).metadata
    n = meta.num_rows
    lo = hi = None
    idx = meta.schema.to_arrow_schema().get_field_index("local_ts")
    for rg in range(meta.num_row_groups):
        st = meta.row_group(rg).column(idx).statistics
        if st is None or not st.has_min_max:
            continue
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    return n, lo, hi


def _read_sorted_file(path: Path, start_ns, end_ns, chunk_rows, with_seq) -> Iterator:
    """Stream one (local_ts, seq)-sorted file, one row group at a time.

    Row groups outside the window are skipped by their local_ts statistics. Reading a
    row group at a time (not `iter_batches`, whose pre-buffering keeps every column chunk
    of the iteration alive) keeps memory at one row group whatever the file size."""
    pf = pq.ParquetFile(path, pre_buffer=False)
    meta = pf.metadata
    idx = pf.schema_arrow.get_field_index("local_ts")
    columns = list(STREAM_SCHEMA.names)
    for rg in range(meta.num_row_groups):
        st = meta.row_group(rg).column(idx).statistics
        if st is not None and st.has_min_max:
            if start_ns is not None and st.max < start_ns:
                continue
            if end_ns is not None and st.min >= end_ns:
                continue
        table = pf.read_row_group(rg, columns=columns)
        if start_ns is not None or end_ns is not None:
            ts = table.column("local_ts")
            mask = None
            if start_ns is not None:
                mask = pc.greater_equal(ts, pa.scalar(int(start_ns), pa.int64()))
            if end_ns is not None:
                upper = pc.less(ts, pa.scalar(int(end_ns), pa.int64()))
                mask = upper if mask is None else pc.and_(mask, upper)
            table = table.filter(mask)
        for lo in range(0, table.num_rows, max(1, int(chunk_rows))):
            part = table.slice(lo, chunk_rows)
            events = events_from_batch(part)
            yield (events, seq_from_batch(part)) if with_seq else events


class ParquetDatasetStore(Store):
    """A versioned hive dataset: `DIR/current` names the committed version (module doc)."""

    bytes_per_row = 30  # zstd Parquet, measured on synthetic rows (merged files count twice)

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root
        self.spec = f"parquet:{root}"
        self.lock: WriterLock | None = None
        self._reader_fd: int | None = None
        if create:
            root.mkdir(parents=True, exist_ok=True)
            self.lock = WriterLock(root, self.spec).acquire()
            try:
                self.recovered = self._recover()
            except BaseException:
                self.close()
                raise
        elif not root.is_dir():
            raise DataError(f"Parquet dataset not found: {root}")
        else:
            self.recovered = self._recover_if_free()
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    # -- versions --------------------------------------------------------------------------
    def _current(self) -> tuple[Path | None, int]:
        """(directory of the committed version, its number); legacy layout: (root, 0)."""
        link = self.root / CURRENT
        if link.is_symlink():
            target = os.readlink(link)
            return self.root / target, int(Path(target).name)
        if (self.root / META_FILE).is_file():
            return self.root, 0  # written before versions existed: read in place
        return None, 0

    def _load(self) -> None:
        vdir, number = self._current()
        self.version_dir, self.version = vdir, number
        if vdir is None:
            if self.lock is None:
                raise DataError(
                    f"{self.spec}: not a tickparity dataset (no {CURRENT} or {META_FILE})"
                )
            self._meta = {
                "format": "tickparity-events",
                "version": 2,
                "instruments": {},
                "next_seq": {},
                "sources": [],
            }
            return
        meta = vdir / META_FILE
        try:
            self._meta = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{meta}: unreadable dataset metadata: {exc}") from None
        self._meta.setdefault("sources", [])
        if self.lock is None and fcntl is not None:
            # a shared lock on the version's metadata: a later import's clean-up skips
            # versions a reader still streams from
            fd = os.open(meta, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._reader_fd = fd

    def _debris(self) -> list[Path]:
        """Paths an interrupted import or clean-up left (none of them is ever read)."""
        out: list[Path] = []
        staging = self.root / STAGING
        if staging.is_dir():
            out += sorted(staging.iterdir())
        out += sorted(self.root.glob(f"{CURRENT}.tmp-*"))
        out += sorted(self.root.glob(".staging-*"))  # the layout before versions
        vdir, number = self._current()
        versions = self.root / VERSIONS
        if versions.is_dir():
            for v in sorted(versions.iterdir()):
                n = int(v.name) if v.name.isdigit() else -1
                if n > number or n < number - 1 or not v.name.isdigit():
                    out.append(v)  # never committed / older than the previous version
        if vdir is not None and vdir != self.root:
            # the legacy layout's files, hard-linked into the first version
            out += sorted(self.root.glob("venue=*"))
            if (self.root / META_FILE).is_file():
                out.append(self.root / META_FILE)
        return out

    def _recover(self) -> list[str]:
        """Delete debris (the writer lock must be held); returns what was deleted."""
        done = []
        for path in self._debris():
            if path.parent.name == VERSIONS and _in_use(path):
                continue  # a reader still streams it: the next import removes it
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            done.append(f"deleted {path.relative_to(self.root)}")
        return done

    def _recover_if_free(self) -> list[str]:
        """Readers clean up too when no writer is active (never waiting for one)."""
        if not self._debris():
            return []
        lock = WriterLock(self.root, self.spec, timeout_s=0)
        try:
            lock.acquire()
        except StorageError:
            return []  # a writer is at work; its debris is its own business
        try:
            return self._recover()
        finally:
            lock.release()

    def repair(self) -> list[str]:
        return list(self.recovered) + self._recover()

    def location(self) -> Path:
        return self.root

    def close(self) -> None:
        fd, self._reader_fd = self._reader_fd, None
        if fd is not None:
            os.close(fd)
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.release()

    # -- layout --------------------------------------------------------------------------
    def _inst_dir(self, root: Path, inst: StoredInstrument) -> Path:
        symbol = inst.id.partition(":")[2]
        return root / f"venue={quote(inst.venue, safe='')}" / f"instrument={quote(symbol, safe='')}"

    def _files(self, inst_id: str) -> list[Path]:
        inst = self.instruments().get(inst_id)
        if inst is None or self.version_dir is None:
            return []
        base = self._inst_dir(self.version_dir, inst)
        if not base.is_dir():
            return []
        days = sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("day="))
        return [d / FILE_NAME for d in days if (d / FILE_NAME).is_file()]

    # -- read ----------------------------------------------------------------------------
    def instruments(self) -> dict[str, StoredInstrument]:
        return {
            k: StoredInstrument.from_json(v) for k, v in sorted(self._meta["instruments"].items())
        }

    def imported_sources(self, sha256s: Sequence[str]) -> dict[str, ImportedSource]:
        want = set(sha256s)
        out: dict[str, ImportedSource] = {}
        for rec in self._meta["sources"]:
            if rec["sha256"] in want and rec["sha256"] not in out:
                out[rec["sha256"]] = ImportedSource(rec["name"], rec["sha256"], rec["imported_at"])
        return out

    def stats(self) -> list[InstrumentStats]:
        out = []
        for inst_id, inst in self.instruments().items():
            n, lo, hi = 0, None, None
            for f in self._files(inst_id):
                fn, flo, fhi = _stats_of(f)
                n += fn
                lo = flo if lo is None else (lo if flo is None else min(lo, flo))
                hi = fhi if hi is None else (hi if fhi is None else max(hi, fhi))
            out.append(InstrumentStats(inst_id, n, lo, hi, inst.tick_size, inst.lot_size))
        return out

    def _window_files(self, inst_id, start_ns, end_ns) -> list[Path]:
        files = []
        for f in self._files(inst_id):
            day = f.parent.name.partition("=")[2]
            day_start = (
                int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
                * 1_000_000_000
            )
            if start_ns is not None and day_start + NS_PER_DAY <= start_ns:
                continue
            if end_ns is not None and day_start >= end_ns:
                continue
            files.append(f)
        return files

    def count(self, inst_id, start_ns, end_ns) -> int:
        files = self._window_files(inst_id, start_ns, end_ns)
        if start_ns is None and end_ns is None:
            return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        total = 0
        for f in files:
            ts = pq.read_table(f, columns=["local_ts"]).column("local_ts").to_numpy()
            lo = 0 if start_ns is None else np.searchsorted(ts, start_ns, "left")
            hi = len(ts) if end_ns is None else np.searchsorted(ts, end_ns, "left")
            total += int(hi - lo)
        return total

    def last_snapshot_before(self, inst_id: str, ts: int) -> int | None:
        for f in reversed(self._window_files(inst_id, None, ts)):
            table = pq.read_table(f, columns=["local_ts", "kind"])
            lt = table.column("local_ts").to_numpy()
            kind = table.column("kind").to_numpy()
            hit = np.flatnonzero((kind == 2) & (lt < ts))
            if len(hit):
                return int(lt[hit[-1]])
        return None

    def max_seq(self, inst_id: str) -> int:
        return int(self._meta["next_seq"].get(inst_id, 0)) - 1

    def stream(self, inst_id, start_ns, end_ns, chunk_rows, with_seq=False):
        def gen():
            for f in self._window_files(inst_id, start_ns, end_ns):
                yield from _read_sorted_file(f, start_ns, end_ns, chunk_rows, with_seq)

        return gen()

    # -- write ---------------------------------------------------------------------------
    def writable(self) -> bool:
        return self.lock is not None


def _in_use(version: Path) -> bool:
    """True while a reader holds its shared lock on the version's metadata."""
    meta = version / META_FILE
    if fcntl is None or not meta.is_file():
        return False
    fd = os.open(meta, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link an unchanged file into the new version (copy where links are refused)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class _ParquetImport(ImportTransaction):
    """Stage rows per (instrument, day); at commit build the next version and switch to it.

    Steps (each a `crash_point` for the tests): the new version is built under
    `DIR/.staging/<token>/v` (merged files for the days the import touches, hard links
    for the others, the metadata with next seq, instruments and source digests), fsynced,
    renamed to `DIR/.versions/NNNNNN`, and committed by renaming a fresh symlink over
    `DIR/current` (then the directory is fsynced). Anything before that rename is
    invisible debris; anything after is clean-up of versions nobody reads."""

    def __init__(
        self, store: ParquetDatasetStore, instruments, sources, force, expected_rows
    ) -> None:
        super().__init__(store, instruments, sources, force, expected_rows)
        self.ds = store
        self.token = uuid.uuid4().hex[:12]
        self.staging = store.root / STAGING / self.token
        self.staging.mkdir(parents=True)
        self._parts: dict[tuple[str, str], list[Path]] = {}
        self._counter = 0

    def _write(self, inst_id: str, events: np.ndarray, seq: np.ndarray) -> None:
        days = (events["local_ts"] // NS_PER_DAY).astype(np.int64)
        cuts = np.flatnonzero(np.diff(days)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(events)], strict=True):
            day = _day_of(int(events["local_ts"][lo]))
            self._counter += 1
            path = self.staging / "rows" / f"{self._counter:08d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                pa.Table.from_batches([arrow_from_events(events[lo:hi], seq[lo:hi])]), path
            )
            self._parts.setdefault((inst_id, day), []).append(path)

    def commit(self) -> None:
        store = self.ds
        specs = {**store.instruments(), **self.instruments}
        new = self.staging / "v"
        new.mkdir()
        touched: set[Path] = set()
        for (inst_id, day), parts in sorted(self._parts.items()):
            rel = store._inst_dir(Path(), specs[inst_id]) / f"day={day}" / FILE_NAME
            tables = [pq.read_table(p) for p in parts]
            if store.version_dir is not None and (store.version_dir / rel).is_file():
                tables.insert(0, pq.read_table(store.version_dir / rel, schema=STREAM_SCHEMA))
            table = pa.concat_tables(tables)
            order = np.lexsort(
                (table.column("seq").to_numpy(), table.column("local_ts").to_numpy())
            )
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                table.take(pa.array(order)),
                new / rel,
                row_group_size=_ROW_GROUP,
                compression="zstd",
            )
            touched.add(rel)
        crash_point("parquet.merged")
        if store.version_dir is not None:
            for inst in store.instruments().values():
                base = store._inst_dir(store.version_dir, inst)
                for f in sorted(base.glob(f"day=*/{FILE_NAME}")) if base.is_dir() else []:
                    rel = f.relative_to(store.version_dir)
                    if rel not in touched:
                        _link_or_copy(f, new / rel)
        number = store.version + 1
        stamp = now_utc()
        meta = dict(store._meta)
        meta["version"] = 2
        meta["instruments"] = {k: v.to_json() for k, v in sorted(specs.items())}
        meta["next_seq"] = {**store._meta["next_seq"], **self._next_seq}
        meta["sources"] = [
            *store._meta["sources"],
            *(
                {"sha256": s.sha256, "name": s.name, "bytes": s.bytes, "imported_at": stamp}
                for s in self.sources
            ),
        ]
        write_file_durably(new / META_FILE, json.dumps(meta, indent=1, sort_keys=True).encode())
        fsync_tree(new)
        crash_point("parquet.synced")
        versions = store.root / VERSIONS
        versions.mkdir(exist_ok=True)
        target = versions / f"{number:06d}"
        if target.exists():  # an uncommitted version of an earlier, killed import
            shutil.rmtree(target)
        os.rename(new, target)
        fsync_dir(versions)
        crash_point("parquet.version_renamed")
        link = store.root / f"{CURRENT}.tmp-{self.token}"
        os.symlink(f"{VERSIONS}/{target.name}", link)
        crash_point("parquet.link_created")
        os.replace(link, store.root / CURRENT)  # the commit
        crash_point("parquet.before_dir_fsync")
        fsync_dir(store.root)
        crash_point("parquet.committed")
        store._load()
        try:
            store._recover()  # the previous-but-one version, legacy files, this staging
        except OSError:
            pass  # committed; what is left is removed at the next open
        crash_point("parquet.cleaned")

    def rollback(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


ParquetDatasetStore.transaction_type = _ParquetImport


class ParquetFileStore(Store):
    """One self-describing Parquet file (rows of all instruments, `instrument` column)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = f"parquet:{path}"
        if (problem := file_problem(path)) is not None:
            raise DataError(f"Parquet file {problem}: {path}")
        try:
            self.pf = pq.ParquetFile(path, pre_buffer=False)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
        raw = (self.pf.schema_arrow.metadata or {}).get(META_KEY)
        if raw is None:
            raise DataError(
                f"{path}: no tickparity instrument table in the file metadata (write it with 'data export')"
            )
        self._instruments = {
            k: StoredInstrument.from_json(v)
            for k, v in sorted(json.loads(raw)["instruments"].items())
        }

    def instruments(self) -> dict[str, StoredInstrument]:
        return dict(self._instruments)

    def _groups(self, inst_id: str) -> list[int]:
        meta = self.pf.metadata
        idx = self.pf.schema_arrow.get_field_index("instrument")
        out = []
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(idx).statistics
            if st is not None and st.has_min_max and not (st.min <= inst_id <= st.max):
                continue
            out.append(rg)
        return out

    def _tables(self, inst_id: str, start_ns, end_ns, chunk_rows) -> Iterator[pa.RecordBatch]:
        groups = self._groups(inst_id)
        if not groups:
            return
        for rg in groups:
            batch = self.pf.read_row_group(rg)
            mask = pc.equal(batch.column("instrument"), pa.scalar(inst_id))
            ts = batch.column("local_ts")
            if start_ns is not None:
                mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(int(start_ns), pa.int64())))
            if end_ns is not None:
                mask = pc.and_(mask, pc.less(ts, pa.scalar(int(end_ns), pa.int64())))
            batch = batch.filter(mask)
            for lo in range(0, batch.num_rows, max(1, int(chunk_rows))):
                yield batch.slice(lo, chunk_rows)

    def stats(self) -> list[InstrumentStats]:
        out = []
        for inst_id, inst in self._instruments.items():
            n, lo, hi = 0, None, None
            for b in self._tables(inst_id, None, None, 1 << 20):
                ts = b.column("local_ts").to_numpy()
                n += len(ts)
                lo = int(ts.min()) if lo is None else min(lo, int(ts.min()))
                hi = int(ts.max()) if hi is None else max(hi, int(ts.max()))
            out.append(InstrumentStats(inst_id, n, lo, hi, inst.tick_size, inst.lot_size))
        return out

    def count(self, inst_id, start_ns, end_ns) -> int:
        return sum(b.num_rows for b in self._tables(inst_id, start_ns, end_ns, 1 << 20))

    def max_seq(self, inst_id: str) -> int:
        seqs = [
            int(pc.max(b.column("seq")).as_py()) for b in self._tables(inst_id, None, None, 1 << 20)
        ]
        return max(seqs, default=-1)

    def stream(self, inst_id, start_ns, end_ns, chunk_rows, with_seq=False):
        def gen():
            for batch in self._tables(inst_id, start_ns, end_ns, chunk_rows):
                events = events_from_batch(batch)
                yield (events, seq_from_batch(batch)) if with_seq else events

        return gen()

    def begin_import(self, instruments) -> ImportTransaction:
        raise DataError(f"{self.spec}: a single Parquet file is read-only; import into parquet:DIR")


def write_export_file(
    path: Path,
    instruments: Mapping[str, StoredInstrument],
    batches: Iterator[tuple[str, np.ndarray, np.ndarray]],
) -> int:
    """Write (instrument id, events, seq) batches into one self-describing Parquet file.

    Written to `path.tmp-*` and renamed at the end, so a failed export leaves no file.
    """
    from replay.schema import EXPORT_SCHEMA

    meta = {
        META_KEY: json.dumps(
            {"instruments": {k: v.to_json() for k, v in sorted(instruments.items())}}
        ).encode()
    }
    schema = EXPORT_SCHEMA.with_metadata(meta)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for inst_id, events, seq in batches:
                body = arrow_from_events(events, seq)
                arrays = [pa.array([inst_id] * len(events), pa.string()), *body.columns]
                writer.write_batch(
                    pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=_ROW_GROUP
                )
                rows += len(events)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows
