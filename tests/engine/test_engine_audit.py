import json

import pytest

from engine.audit import AuditLog, run_statement, verify
from engine.errors import DataError, InternalError


def _write(path, n=5, seal=True):
    log = AuditLog(path)
    for i in range(n):
        log.write(i * 10, "fill", client_id=f"c{i}", price="1.5")
    stated = log.seal(n * 10) if seal else None
    log.close()
    return stated


def test_chain_verifies_and_the_seal_states_count_and_head(tmp_path):
    path = tmp_path / "audit.jsonl"
    stated = _write(path)
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    # 5 records + the closing one; the closing record counts the 5 before it
    assert stated == {"records": 6, "final_hash": last["hash"]}
    assert last["type"] == "end" and last["records"] == 5 and last["seq"] == 5
    assert verify(path) == 6
    assert verify(path, stated) == 6


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


def test_a_log_cut_short_is_refused_naming_the_first_missing_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    stated = _write(path, n=9)  # 10 lines with the closing record
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4]) + "\n")  # the first 4 lines: a valid chain
    with pytest.raises(DataError, match=r"no closing record after 4 records .*cut short after seq 3"):
        verify(path)
    with pytest.raises(DataError, match=r"cut short: 4 records but the run wrote 10; the first missing record "
                                        r"is seq 4 \(line 5\)"):
        verify(path, stated)


def test_a_log_extended_after_its_closing_record_is_refused(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path, n=3)
    with path.open("a") as handle:
        handle.write('{"seq":4,"type":"fill"}\n')
    with pytest.raises(DataError, match=r":5: extended: a record after the closing record of line 4"):
        verify(path)


def test_a_rewritten_chain_differs_from_the_runs_statement(tmp_path):
    # someone rebuilt a whole valid chain with one fill fewer: only the run's statement tells
    path = tmp_path / "audit.jsonl"
    stated = _write(path, n=5)
    _write(path, n=4)
    with pytest.raises(DataError, match="cut short: 5 records but the run wrote 6"):
        verify(path, stated)
    _write(path, n=5)
    lines = path.read_text().splitlines()
    forged = {**stated, "final_hash": "f" * 64}
    assert verify(path, stated) == 6 and len(lines) == 6
    with pytest.raises(DataError, match="final hash .* differs"):
        verify(path, forged)


def test_a_log_of_a_killed_run_says_so(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path, n=3, seal=False)
    with pytest.raises(DataError, match="run is still in progress or was killed"):
        verify(path)


def test_writing_after_the_seal_is_our_bug(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.seal(0)
    with pytest.raises(InternalError):
        log.write(1, "fill")
    log.close()


def test_run_statement_reads_summary_json_beside_the_log(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"run": {"audit": {"records": 3, "final_hash": "ab"}}}))
    assert run_statement(tmp_path / "audit.jsonl") == {"records": 3, "final_hash": "ab"}
    assert run_statement(tmp_path / "sub" / "audit.jsonl") is None


# -- issue 11: a live account's log resumes its chain after a restart ------------------------
def _session_log(path, n, *, resume, close=True, ts=0):
    log = AuditLog(path, resume=resume, durable=True, ts=ts)
    for k in range(n):
        log.write(ts + k, "decision", k=k)
    stated = log.seal(ts + n) if close else None
    log.close()
    return stated


def test_a_restarted_session_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    _session_log(path, 3, resume=True)  # a first session: 3 records + end
    first = path.read_bytes()
    stated = _session_log(path, 2, resume=True, ts=100)  # restart: resume + 2 + end
    assert path.read_bytes().startswith(first)  # never truncated
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["decision"] * 3 + ["end", "resume"] + ["decision"] * 2 + ["end"]
    assert records[4]["records"] == 4 and records[4]["closed"] is True and records[4]["head"] == records[3]["hash"]
    assert verify(path, stated) == 8 and stated == {"records": 8, "final_hash": records[-1]["hash"]}


def test_a_crashed_session_is_resumed_and_its_torn_record_kept(tmp_path):
    path = tmp_path / "audit.jsonl"
    _session_log(path, 3, resume=True, close=False)  # killed: no end record
    with path.open("a") as handle:
        handle.write('{"seq":3,"ts":9,"type":"fi')  # torn mid-write
    _session_log(path, 1, resume=True, ts=50)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    resume = records[3]
    assert resume["type"] == "resume" and resume["closed"] is False and resume["records"] == 3
    assert resume["torn"]["bytes"] == 26 and (tmp_path / "audit.jsonl.torn").read_text() == '{"seq":3,"ts":9,"type":"fi'
    assert verify(path) == 6


def test_records_after_an_end_are_still_refused_unless_a_resume(tmp_path):
    path = tmp_path / "audit.jsonl"
    _session_log(path, 2, resume=False)
    log = AuditLog(path, resume=True)
    log._file.close()
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "resume"
    with pytest.raises(DataError, match="no closing record"):
        verify(path)  # a resumed session that did not close yet
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    with pytest.raises(DataError, match="chain broken"):
        AuditLog(broken, resume=True)


# -- the template encoder (engine.audit.canonical_record) against json's canonical form ------
from decimal import Decimal  # noqa: E402
from enum import IntEnum, StrEnum  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.audit import _canonical, canonical_record  # noqa: E402


class _Side(IntEnum):
    BUY = 1


class _Kind(StrEnum):
    FILL = "fill"


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True), st.decimals(allow_nan=False, places=8),
    st.sampled_from([_Side.BUY, _Kind.FILL]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                       max_leaves=8)
# any field name: quotes, '%', non-ASCII, and the fixed keys (the submit decision has a `type`)
_names = st.one_of(st.sampled_from(["seq", "ts", "type", "prev", "hash"]), st.text(min_size=1, max_size=10))


@settings(max_examples=400, deadline=None)
@given(seq=st.integers(0, 2**40), ts=st.one_of(st.integers(-(2**63), 2**63), st.text(max_size=4)),
       type_=st.text(max_size=8), fields=st.dictionaries(_names, _values, max_size=6),
       prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_template_encoder_writes_exactly_the_canonical_json(seq, ts, type_, fields, prev):
    """The fast encoder must produce the bytes json.JSONEncoder(sort_keys, compact, default=str)
    produces for the whole record: the chain's hashes and the file depend on them."""
    want = _canonical({"seq": seq, "ts": ts, "type": type_, **fields, "prev": prev})
    assert canonical_record(seq, ts, type_, fields, prev) == want
    assert canonical_record(seq, ts, type_, fields, prev) == want  # the cached template too


def test_template_encoder_hand_checked_fill_record():
    body = canonical_record(3, 1_000, "fill", {"client_id": "tp-1", "price": "100.5", "qty": Decimal("0.010"),
                                               "exch_ts": 990, "trade_id": None, "maker": True}, "ab" * 32)
    assert body == ('{"client_id":"tp-1","exch_ts":990,"maker":true,"prev":"' + "ab" * 32
                    + '","price":"100.5","qty":"0.010","seq":3,"trade_id":null,"ts":1000,"type":"fill"}')


def test_log_written_by_the_template_encoder_equals_the_json_written_one(tmp_path):
    """The whole file, hashes included, as the json-encoder writer produced it."""
    import hashlib

    log = AuditLog(tmp_path / "a.jsonl")
    records = [(5, "decision", {"action": "submit", "client_id": "tp-1", "qty": "0.01", "price": None,
                                "reduce_only": False, "parent_id": None}),
               (6, "fill", {"client_id": "tp-1", "evidence": {"b": [1, "x"], "a": Decimal("1.5")}, "note": "é%s"})]
    for ts, kind, fields in records:
        log.write(ts, kind, **fields)
    log.close()
    prev, want = "0" * 64, []
    for seq, (ts, kind, fields) in enumerate(records):
        body = json.dumps({"seq": seq, "ts": ts, "type": kind, **fields, "prev": prev}, sort_keys=True,
                          separators=(",", ":"), default=str)
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        want.append(body[:-1] + f',"hash":"{digest}"}}\n')
        prev = digest
    assert (tmp_path / "a.jsonl").read_text(encoding="utf-8") == "".join(want)


def test_a_field_named_type_overrides_the_record_type_as_before():
    """The submit decision passes type=<order type>: the record's `type` is that value."""
    body = canonical_record(0, 1, "decision", {"action": "submit", "type": "limit", "prev": "x"}, "p")
    assert body == '{"action":"submit","prev":"p","seq":0,"ts":1,"type":"limit"}'


# -- issue 11: live modes hand every record to the OS as it is written -----------------------
def test_flush_each_puts_every_record_on_disk_before_the_next(tmp_path):
    """A killed live session (kill -9) loses no record it wrote: each one is in the file
    (read through another handle) before the next write, without a close or a flush call."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, flush_each=True)
    for k in range(3):
        log.write(k, "decision", k=k)
        lines = path.read_text().splitlines()
        assert [json.loads(line)["k"] for line in lines] == list(range(k + 1))
    log.close()


def test_a_held_live_record_goes_out_with_the_next_one_or_at_a_flush_or_close(tmp_path):
    """Live modes write each record with one os.write of its bytes; a held record (the
    submit's decision) waits for the next record (one write for both), for `flush()` (the
    session's path when the submit raises) or for `close()`, and a bulk append after it
    keeps the chain's order. The file is the buffered log's, byte for byte."""
    from engine import audit_records as R
    from engine.audit import append_records
    from engine.audit_records import json_text

    live_path, buffered_path = tmp_path / "live.jsonl", tmp_path / "buffered.jsonl"
    live, buffered = AuditLog(live_path, flush_each=True), AuditLog(buffered_path)
    decision = (R.SUBMIT_DECISION.compiled, 5, "tp-1", "x:BTC/USDT", "buy", "limit", "GTC", "0.01", "100.5",
                False, None)
    for log in (live, buffered):
        log.write_shaped(*decision, hold=True)
    assert live_path.read_bytes() == b""  # held
    for log in (live, buffered):
        log.write_shaped(R.SUBMIT_REQUEST.compiled, 5, "tp-1", "x")
    assert [json.loads(line)["type"] for line in live_path.read_text().splitlines()] == ["limit", "request"]
    for log in (live, buffered):
        log.write_shaped(*decision, hold=True)
    live.flush()
    assert len(live_path.read_text().splitlines()) == 3  # the flush handed the held record over
    for log in (live, buffered):
        log.write_shaped(*decision, hold=True)
        append_records(log, [(*R.REJECT.template(), ("7", json_text("tp-1"), json_text("min_qty")))])
        log.write_shaped(*decision, hold=True)
        log.close()  # the held record is not lost
    assert live_path.read_bytes() == buffered_path.read_bytes()
    assert [json.loads(line)["type"] for line in live_path.read_text().splitlines()] == \
        ["limit", "request", "limit", "limit", "reject", "limit"]
    assert verify_chain_only(live_path) == 6


def verify_chain_only(path):
    """How many records whose chain links hold (the log has no closing record: not `verify`)."""
    import hashlib

    prev, count = "0" * 64, 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        claimed = record.pop("hash")
        assert record["prev"] == prev and record["seq"] == count
        assert hashlib.sha256((prev + _canonical(record)).encode()).hexdigest() == claimed
        prev, count = claimed, count + 1
    return count


def test_without_flush_each_a_backtest_log_buffers(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write(0, "decision", k=0)
    assert path.read_text() == ""  # buffered: a backtest's log is written at flush points
    log.close()
    assert json.loads(path.read_text())["k"] == 0


# -- compiled record shapes (engine.audit.RecordShape): the hot path's records ----------------
from engine.audit import RecordShape  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(type_=st.one_of(st.none(), st.text(max_size=8)), fixed=st.dictionaries(_names, _values, max_size=3),
       varying=st.dictionaries(_names, _values, max_size=5), seq=st.integers(0, 2**40),
       ts=st.one_of(st.integers(-(2**63), 2**63), st.text(max_size=4), st.booleans()),
       prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_a_compiled_shape_writes_exactly_the_canonical_json(type_, fixed, varying, seq, ts, prev):
    """shape.text(seq, ts, prev, *values) == the canonical JSON of {seq, ts, type, **fixed,
    **varying, prev} for any names (quotes, '%', the fixed keys) and values."""
    fixed = {k: v for k, v in fixed.items() if k not in varying}
    shape = RecordShape(type_, tuple(varying), fixed)
    lead = (type_,) if type_ is None else ()
    want = _canonical({"seq": seq, "ts": ts, "type": type_, **fixed, **varying, "prev": prev})
    assert shape.text(seq, ts, prev, *lead, *varying.values()) == want


def test_write_shaped_writes_the_bytes_write_writes(tmp_path):
    """The submit's records through their shapes, then as keywords: identical files, so the
    hot path's log verifies and a run directory stays byte-identical."""
    decision = RecordShape("decision", ("client_id", "instrument", "side", "type", "tif", "qty", "price",
                                        "reduce_only", "parent_id"), {"action": "submit"})
    request = RecordShape("request", ("client_id", "venue"), {"action": "submit"})
    a, b = AuditLog(tmp_path / "a.jsonl"), AuditLog(tmp_path / "b.jsonl")
    a.write_shaped(decision, 7, "tp-1", "binance:BTC/USDT", "buy", "limit", "GTC", "0.010", None, False, "p\"1")
    a.write_shaped(request, 7, "tp-1", "binance")
    b.write(7, "decision", action="submit", client_id="tp-1", instrument="binance:BTC/USDT", side="buy",
            type="limit", tif="GTC", qty="0.010", price=None, reduce_only=False, parent_id="p\"1")
    b.write(7, "request", action="submit", client_id="tp-1", venue="binance")
    for log in (a, b):
        log.seal(8)
        log.close()
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    first = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert first["type"] == "limit" and first["action"] == "submit" and first["parent_id"] == 'p"1'
    assert verify(tmp_path / "a.jsonl") == 3


def test_a_shape_refuses_a_field_both_fixed_and_varying():
    with pytest.raises(InternalError, match="both fixed and varying"):
        RecordShape("x", ("a",), {"a": 1})


# -- batch (backtests): rows kept and written in bulk, the same bytes -------------------------
_OPS = st.lists(st.one_of(
    st.tuples(st.just("shaped"), st.integers(0, 2**40), st.text(max_size=6), st.one_of(st.none(), st.integers())),
    st.tuples(st.just("write"), st.integers(0, 2**40), st.text(max_size=6), st.just(None)),
    st.tuples(st.just("flush"), st.just(0), st.just(""), st.just(None)),
    st.tuples(st.just("bulk"), st.integers(0, 2**40), st.text(max_size=6), st.just(None))), max_size=25)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS, batch_rows=st.sampled_from([1, 3, 4096]))
def test_a_batched_log_writes_the_bytes_of_a_record_by_record_one(tmp_path_factory, ops, batch_rows):
    """Shaped records kept as rows and written in bulk (at a flush, before a generic record
    or a bulk append, at the seal, or every BATCH_ROWS rows) give the same file as records
    written one by one: the same text, seq, prev and hash for every line."""
    import engine.audit as audit_module
    from engine import audit_records as R
    from engine.audit import append_records

    tmp = tmp_path_factory.mktemp("batch")
    saved = audit_module.BATCH_ROWS
    audit_module.BATCH_ROWS = batch_rows
    try:
        logs = AuditLog(tmp / "a.jsonl"), AuditLog(tmp / "b.jsonl", batch=True)
        shape = R.STATE_RESPONSE.compiled
        for op, ts, text, extra in ops:
            for log in logs:
                if op == "shaped":
                    log.write_shaped(shape, ts, text, "ack", None, extra, "sim")
                elif op == "write":
                    log.write(ts, "note", message=text)
                elif op == "flush":
                    log.flush()
                else:
                    template, order = R.REJECT.template()
                    append_records(log, [(template, order, (str(ts), json.dumps(text), "null"))])
        sizes = [log.path.stat().st_size for log in logs]
        for log in logs:
            log.seal(2**41)
            log.close()
    finally:
        audit_module.BATCH_ROWS = saved
    assert sizes[1] <= sizes[0]  # the batched log had not written its kept rows yet (or as many)
    assert (tmp / "a.jsonl").read_bytes() == (tmp / "b.jsonl").read_bytes()
    assert verify(tmp / "b.jsonl") == len(ops) - sum(op == "flush" for op, *_ in ops) + 1


def test_a_batched_log_hand_checked(tmp_path):
    """Two kept rows, then a generic record: the rows go first, linked in order."""
    from engine import audit_records as R

    log = AuditLog(tmp_path / "a.jsonl", batch=True)
    log.write_shaped(R.REJECT.compiled, 5, "tp-1", "price_band")
    log.write_shaped(R.CANCEL_REQUEST.compiled, 6, "tp-2")
    assert (tmp_path / "a.jsonl").read_text() == ""  # kept, not written
    log.write(7, "note", message="x")
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [(r["seq"], r["type"], r["ts"]) for r in lines] == [(0, "reject", 5), (1, "request", 6), (2, "note", 7)]
    assert lines[0]["prev"] == "0" * 64 and lines[1]["prev"] == lines[0]["hash"]
    assert lines[0]["reason"] == "price_band" and lines[1] == {**lines[1], "action": "cancel", "client_id": "tp-2"}
