"""Market data: stores, importers, validation, synthetic generator and chunked replay.

The backtest runner needs one call::

    from replay import open_source
    src = open_source("duckdb:data/demo.duckdb", instruments, start_ns=..., end_ns=...)
    for chunk in src:  # EVENT_DTYPE arrays, (local_ts, run order, seq) order
        ...

See README "Market data" for formats, stores and commands.
"""

from replay.source import EventSource, merge_streams, open_source

__all__ = ["EventSource", "merge_streams", "open_source"]
