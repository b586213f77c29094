import json

import pytest

from engine.audit import AuditLog, verify
from engine.errors import DataError


def _write(path, n=5):
    log = AuditLog(path)
    for i in range(n):
        log.write(i * 10, "fill", client_id=f"c{i}", price="1.5")
    log.close()


def test_chain_verifies(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path)
    assert verify(path) == 5


def test_edit_is_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path)
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["price"] = "1.6"
    lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=":3: hash mismatch"):
        verify(path)


def test_removal_is_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path)
    lines = path.read_text().splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=":2: chain broken"):
        verify(path)
