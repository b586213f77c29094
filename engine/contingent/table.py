"""The run directory's `contingent.parquet`: one row per emulated order (docs/run_dir.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from engine.contingent.manager import ContingentManager

_S = pa.string()
_T = pa.int64()
CONTINGENT_SCHEMA = pa.schema([
    ("id", _S), ("group_id", _S), ("contingency", _S), ("role", _S), ("type", _S), ("instrument", _S),
    ("side", _S), ("qty", _S), ("price", _S), ("trigger_price", _S), ("trigger_type", _S),
    ("trailing_amount", _S), ("trailing_bps", _S), ("trailing_trigger_price", _S), ("display_qty", _S), ("state", _S), ("filled_qty", _S),
    ("avg_fill_price", _S), ("fees", _S), ("reason", _S), ("orders", _S), ("created_ts", _T),
    ("armed_ts", _T), ("triggered_ts", _T), ("trigger_reference", _S), ("done_ts", _T),
])


def write_contingent_table(path: Path, manager: ContingentManager) -> None:
    """Write every leg of `manager`, in creation order (Decimals as exact strings)."""
    rows = [manager.row(leg) for leg in manager.legs.values()]
    pq.write_table(pa.Table.from_pylist(rows, schema=CONTINGENT_SCHEMA), path)
