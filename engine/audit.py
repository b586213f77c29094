"""Append-only, hash-chained JSON-lines audit log and its verifier.

Why a chain: an auditor must be able to tell that no decision, request, response or fill
was removed or edited after the fact. Each record carries the SHA-256 of the previous
record's hash plus its own canonical JSON, so any edit breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.errors import DataError

GENESIS = "0" * 64


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def _link(prev: str, body: str) -> str:
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditLog:
    """Writes one JSON object per line: {seq, ts, type, ..., prev, hash}."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8")
        self._prev = GENESIS
        self._seq = 0

    def write(self, ts: int, type_: str, **fields: Any) -> None:
        record = {"seq": self._seq, "ts": ts, "type": type_, **fields, "prev": self._prev}
        body = _canonical(record)
        digest = _link(self._prev, body)
        # encode once: the hash goes last; the verifier re-canonicalises without it
        self._file.write(f'{body[:-1]},"hash":"{digest}"}}\n')
        self._prev = digest
        self._seq += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def verify(path: Path) -> int:
    """Check a log's chain; returns the record count or raises DataError at the first break."""
    prev = GENESIS
    count = 0
    file = Path(path)
    if not file.is_file():
        raise DataError(f"audit log not found: {file}")
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{file}:{line_no}: not JSON ({exc.msg})") from None
            claimed = record.pop("hash", None)
            if record.get("prev") != prev:
                raise DataError(f"{file}:{line_no}: chain broken (prev does not match line {line_no - 1})")
            if record.get("seq") != count:
                raise DataError(f"{file}:{line_no}: seq {record.get('seq')} but expected {count}")
            if _link(prev, _canonical(record)) != claimed:
                raise DataError(f"{file}:{line_no}: hash mismatch (record was altered)")
            prev = claimed
            count += 1
    return count
