"""Ground truth: every order, fill, balance change and fault as the venue saw them.

One JSON object per line in `journal.jsonl` of the emulator's run directory, written as
they happen (line-buffered), so a client's ledger can be reconciled against it while the
emulator runs or after it stopped. Amounts are decimal strings, times are both market ns
(`ts`) and client-facing epoch ms (`time`). The last entries stay in memory for the
inspection endpoint (`GET /emulator/journal`).
"""

from __future__ import annotations

import json
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.types.instrument import decimal_str


def _plain(value: Any) -> Any:
    """Decimals as plain strings ('0.01', never '1E-2'), inside dicts and lists too."""
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Journal:
    """Append-only record of the venue's own view (see module doc)."""

    def __init__(self, directory: str | Path | None, keep: int = 10_000) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._file = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.directory / "journal.jsonl", "a", buffering=1)  # noqa: SIM115
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.count = 0

    def write(self, event: str, ts: int, time_ms: int, **fields: Any) -> None:
        entry = {"seq": self.count, "event": event, "ts": int(ts), "time": int(time_ms),
                 **{k: _plain(v) for k, v in fields.items()}}
        self.count += 1
        self.recent.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """All entries of a journal.jsonl (for reconciliation in tests and tools)."""
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
