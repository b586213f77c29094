"""Parquet stores: a partitioned dataset directory, and single exported files.

Dataset layout (hive style, readable by DuckDB/Spark/pyarrow as well)::

    DIR/_tickparity.json                                   instrument table + next seq
    DIR/venue=binance/instrument=BTC%2FUSDT/day=2024-08-08/part-0.parquet

One file per (instrument, day of local_ts), rows sorted by (local_ts, seq), columns
`seq` + the event columns (the partition path names the instrument). An import writes
every new or merged file into `DIR/.staging-*` first and then swaps them in, keeping the
old files until the swap has finished, so a failed import leaves the dataset unchanged.

A single ``.parquet`` file (what `data export` writes) carries an `instrument` string
column and the instrument table in its key-value metadata (`tickparity.instruments`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.errors import DataError
from replay.schema import (
    NS_PER_DAY,
    STREAM_SCHEMA,
    InstrumentStats,
    StoredInstrument,
    arrow_from_events,
    events_from_batch,
    seq_from_batch,
)
from replay.stores.base import ImportTransaction, Store

META_FILE = "_tickparity.json"
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
    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root
        self.spec = f"parquet:{root}"
        meta = root / META_FILE
        if not meta.is_file():
            if not create:
                if not root.exists():
                    raise DataError(f"Parquet dataset not found: {root}")
                raise DataError(f"{self.spec}: not a tickparity dataset (no {META_FILE})")
            root.mkdir(parents=True, exist_ok=True)
            self._meta = {
                "format": "tickparity-events",
                "version": 1,
                "instruments": {},
                "next_seq": {},
            }
        else:
            try:
                self._meta = json.loads(meta.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"{meta}: unreadable dataset metadata: {exc}") from None

    # -- layout --------------------------------------------------------------------------
    def _inst_dir(self, root: Path, inst: StoredInstrument) -> Path:
        symbol = inst.id.partition(":")[2]
        return root / f"venue={quote(inst.venue, safe='')}" / f"instrument={quote(symbol, safe='')}"

    def _files(self, inst_id: str) -> list[Path]:
        inst = self.instruments().get(inst_id)
        if inst is None:
            return []
        base = self._inst_dir(self.root, inst)
        if not base.is_dir():
            return []
        days = sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("day="))
        return [d / FILE_NAME for d in days if (d / FILE_NAME).is_file()]

    # -- read ----------------------------------------------------------------------------
    def instruments(self) -> dict[str, StoredInstrument]:
        return {
            k: StoredInstrument.from_json(v) for k, v in sorted(self._meta["instruments"].items())
        }

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
    def begin_import(self, instruments: Mapping[str, StoredInstrument]) -> ImportTransaction:
        return _ParquetImport(self, instruments)


class _ParquetImport(ImportTransaction):
    """Stage new rows per (instrument, day) as sorted files, merge with existing, swap."""

    def __init__(self, store: ParquetDatasetStore, instruments) -> None:
        super().__init__(store, instruments)
        self.ds = store
        self.staging = store.root / f".staging-{uuid.uuid4().hex[:12]}"
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
        final: list[tuple[Path, Path]] = []  # (staged file, target)
        try:
            for (inst_id, day), parts in sorted(self._parts.items()):
                target = store._inst_dir(store.root, specs[inst_id]) / f"day={day}" / FILE_NAME
                tables = [pq.read_table(p) for p in parts]
                if target.is_file():
                    tables.insert(0, pq.read_table(target, schema=STREAM_SCHEMA))
                table = pa.concat_tables(tables)
                order = np.lexsort(
                    (table.column("seq").to_numpy(), table.column("local_ts").to_numpy())
                )
                table = table.take(pa.array(order))
                staged = self.staging / "final" / f"{len(final):06d}.parquet"
                staged.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, staged, row_group_size=_ROW_GROUP, compression="zstd")
                final.append((staged, target))
            meta = dict(store._meta)
            meta["instruments"] = {k: v.to_json() for k, v in sorted(specs.items())}
            meta["next_seq"] = {**store._meta["next_seq"], **self._next_seq}
            staged_meta = self.staging / META_FILE
            staged_meta.write_text(json.dumps(meta, indent=1, sort_keys=True))
        except BaseException:
            self.rollback()
            raise
        # swap phase: keep replaced files until every rename has succeeded
        backup = self.staging / "old"
        done: list[tuple[Path, Path, Path | None]] = []
        try:
            for staged, target in final:
                target.parent.mkdir(parents=True, exist_ok=True)
                old = None
                if target.exists():
                    old = backup / f"{len(done):06d}.parquet"
                    old.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, old)
                os.replace(staged, target)
                done.append((staged, target, old))
            os.replace(staged_meta, store.root / META_FILE)
        except BaseException:
            for _staged, target, old in reversed(done):
                if old is not None:
                    os.replace(old, target)
                else:
                    target.unlink(missing_ok=True)
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        store._meta = meta
        shutil.rmtree(self.staging, ignore_errors=True)

    def rollback(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class ParquetFileStore(Store):
    """One self-describing Parquet file (rows of all instruments, `instrument` column)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = f"parquet:{path}"
        if not path.is_file():
            raise DataError(f"Parquet file not found: {path}")
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
