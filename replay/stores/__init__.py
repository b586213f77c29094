"""Event stores: one interface over a DuckDB file, a Parquet dataset and ClickHouse.

Spec strings (the same for `--to STORE`, `data ls STORE` and backtest sources):

- ``duckdb:PATH``       embedded DuckDB file (the default store)
- ``parquet:DIR``       Parquet dataset partitioned venue=/instrument=/day=
                        (``parquet:FILE.parquet``: one exported file, read-only)
- ``chdb:PATH``         ClickHouse embedded in-process (chDB) through clickhouse-connect
- ``clickhouse://[user[:password]@]host[:port]/database``  a ClickHouse server

Every store yields, per instrument, chunks of EVENT_DTYPE rows ordered by
``(local_ts, seq)``; `replay.source` merges instruments. Imports go through
`Store.begin_import()`, a context manager that lands everything or nothing.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError
from replay.stores.base import ImportTransaction, Store

__all__ = ["ImportTransaction", "Store", "open_store", "split_spec"]

STORE_KINDS = ("duckdb", "parquet", "chdb", "clickhouse")


def split_spec(spec: str) -> tuple[str, str]:
    """'duckdb:PATH' -> ('duckdb', 'PATH'); a bare path ending .duckdb/.parquet is accepted."""
    if spec.startswith(("clickhouse://", "clickhouses://")):
        return "clickhouse", spec
    kind, sep, rest = spec.partition(":")
    if sep and kind in (*STORE_KINDS, "synthetic"):
        if not rest:
            raise ConfigError(f"data spec {spec!r}: nothing after '{kind}:'")
        return kind, rest
    lower = spec.lower()
    if lower.endswith((".duckdb", ".db")):
        return "duckdb", spec
    if lower.endswith(".parquet"):
        return "parquet", spec
    raise ConfigError(
        f"data spec {spec!r}: expected duckdb:PATH, parquet:DIR, chdb:PATH, "
        "clickhouse://[user[:password]@]host[:port]/database or synthetic:SEED[:DURATION]"
    )


def open_store(spec: str, *, create: bool = False) -> Store:
    """Open a store for reading, or for importing when `create` is True."""
    kind, rest = split_spec(spec)
    if kind == "duckdb":
        from replay.stores.duckdb_store import DuckDBStore

        return DuckDBStore(Path(rest), create=create)
    if kind == "parquet":
        from replay.stores.parquet_store import open_parquet

        return open_parquet(Path(rest), create=create)
    if kind == "chdb":
        from replay.stores.clickhouse_store import ClickHouseStore

        return ClickHouseStore.chdb(Path(rest), create=create)
    if kind == "clickhouse":
        from replay.stores.clickhouse_store import ClickHouseStore

        return ClickHouseStore.server(rest, create=create)
    raise ConfigError(f"data spec {spec!r}: '{kind}' is a source, not a store")
