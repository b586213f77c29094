"""Append-only, hash-chained JSON-lines audit log and its verifier.

Why a chain: an auditor must be able to tell that no decision, request, response or fill
was removed or edited after the fact. Each record carries the SHA-256 of the previous
record's hash plus its own canonical JSON, so any edit breaks every later link.

Why a closing record: a chain only proves that what is there was not edited; a log cut
after any record, or extended with well-formed records, is still a valid chain. So a
finished run ends its log with one `end` record (`records` = how many came before it) and
states the count and the final hash elsewhere too (summary.json `run.audit`). `verify`
refuses a log without its closing record (cut short, or a run still in progress or
killed), one with records after it (extended), and one that disagrees with summary.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.errors import DataError, InternalError

GENESIS = "0" * 64
END = "end"  # type of the closing record


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
        self.sealed: dict[str, Any] | None = None

    def write(self, ts: int, type_: str, **fields: Any) -> None:
        if self.sealed is not None:
            raise InternalError(f"{self.path}: a {type_!r} record after the closing record")
        record = {"seq": self._seq, "ts": ts, "type": type_, **fields, "prev": self._prev}
        body = _canonical(record)
        digest = _link(self._prev, body)
        # encode once: the hash goes last; the verifier re-canonicalises without it
        self._file.write(f'{body[:-1]},"hash":"{digest}"}}\n')
        self._prev = digest
        self._seq += 1

    def seal(self, ts: int) -> dict[str, Any]:
        """Write the closing record and return {records, final_hash} for the run's summary.

        `records` counts every line including the closing one; `final_hash` is the closing
        record's hash (the head of the chain).
        """
        if self.sealed is None:
            self.write(ts, END, records=self._seq)
            self._file.flush()
            self.sealed = {"records": self._seq, "final_hash": self._prev}
        return self.sealed

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def verify(path: Path, expected: dict[str, Any] | None = None) -> int:
    """Check a log's chain and its closing record; returns the record count.

    `expected` is the run's own statement {records, final_hash} (summary.json
    `run.audit`); when given, the log must match it. Raises DataError naming the first
    broken, missing or extra record.
    """
    prev = GENESIS
    count = 0
    end_line = 0
    end_claim = None
    file = Path(path)
    if not file.is_file():
        raise DataError(f"audit log not found: {file}")
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if end_line:
                raise DataError(f"{file}:{line_no}: extended: a record after the closing record of line "
                                f"{end_line} (the run ended with {end_line} records)")
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
            if record.get("type") == END:
                end_line, end_claim = line_no, record.get("records")
    if expected is not None:
        want = int(expected.get("records", -1))
        if count < want:
            raise DataError(f"{file}: cut short: {count} records but the run wrote {want}; the first missing "
                            f"record is seq {count} (line {count + 1})")
        if count > want:
            raise DataError(f"{file}: extended: {count} records but the run wrote {want}; the first extra "
                            f"record is seq {want} (line {want + 1})")
        if expected.get("final_hash") != prev:
            raise DataError(f"{file}: final hash {prev[:16]}... differs from the run's {str(expected.get('final_hash'))[:16]}..."
                            " (the log was rewritten)")
    if not end_line:
        raise DataError(f"{file}: no closing record after {count} records (chain intact up to line {count}): the log "
                        f"was cut short after seq {count - 1}, or the run is still in progress or was killed")
    if end_claim != count - 1:
        raise DataError(f"{file}:{end_line}: the closing record counts {end_claim} records before it, "
                        f"the log holds {count - 1}")
    return count


def run_statement(log: Path) -> dict[str, Any] | None:
    """The run's own {records, final_hash} for a log, from summary.json beside it, if any."""
    summary = Path(log).parent / "summary.json"
    if not summary.is_file():
        return None
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError) as exc:
        raise DataError(f"{summary}: cannot read ({exc})") from None
    stated = data.get("run", {}).get("audit") if isinstance(data, dict) else None
    return stated if isinstance(stated, dict) else None
