"""One definition of the audit record shapes (engine/audit_records.py): the per-event
writer (`AuditLog.write` with `Shape.fields`) and the bulk writer (`append_records` with
`Shape.template`) give the same bytes, and the bulk chain verifies."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine import audit_records as R
from engine.audit import AuditLog, append_records, canonical_record, verify

CASES = [
    (R.START, ("CompiledAdapter",)),
    (R.SUBMIT_DECISION, ("tp-1", "binance:BTC/USDT", "buy", "limit", "GTX", Decimal("0.01000"),
                         Decimal("59998.92"), False, None)),
    (R.SUBMIT_REQUEST, ("tp-1", "binance")),
    (R.CANCEL_REQUEST, ("tp-1",)),
    (R.REJECT, ("tp-2", "max_position")),
    (R.STATE_RESPONSE, ("tp-1", "acknowledged", None, 1704067200101000000, "sim")),
    (R.COMMAND_RESPONSE_TS_EVIDENCE, ("tp-91", "cancel", "rejected", "already_closed", 17,
                                      {"venue": "binance", "code": 5, "exch_ts": 17})),
    (R.COMMAND_RESPONSE, ("tp-9", "submit", "confirmed", None)),
    (R.FILL, ("tp-4", 1704067200208979944, Decimal("59999.02"), Decimal("0.01000"), Decimal("-0.02999951"),
              "USDT", "maker", "4.1000")),
    (R.STOP, (2385, 1278)),
    # braces and percent signs in a constant and in the values: text, not format fields
    (R.Shape("note", ("mode", "text", "pct"), {"mode": "50% {0} %s %%s}{"}), ("{1}%s%%{", "100%")),
]


def _bulk(shape, ts, values):
    template, order = shape.template()
    return template, order, (R.json_text(ts), *(R.json_text(v) for v in values))


def test_submit_decision_text_is_pinned():
    # the submit decision's `type` field is the order type: it replaces the record type
    fields = R.SUBMIT_DECISION.fields(*CASES[1][1])
    assert canonical_record(1, 5, "decision", fields, "p") == (
        '{"action":"submit","client_id":"tp-1","instrument":"binance:BTC/USDT","parent_id":null,"prev":"p",'
        '"price":"59998.92","qty":"0.01000","reduce_only":false,"seq":1,"side":"buy","tif":"GTX","ts":5,'
        '"type":"limit"}')


def test_template_equals_canonical_record_for_every_shape():
    for shape, values in CASES:
        template, order, texts = _bulk(shape, 99, values)
        full = ("7", *texts, '"ab"')
        assert template % tuple(full[i] for i in order) == canonical_record(7, 99, shape.type,
                                                                            shape.fields(*values), "ab")


def test_command_response_variants():
    assert R.command_response("c", "submit", "rejected", "x", None, None)[0] is R.COMMAND_RESPONSE
    assert R.command_response("c", "submit", "rejected", "x", 3, {})[0] is R.COMMAND_RESPONSE_TS
    assert R.command_response("c", "cancel", "rejected", "x", None, {"a": 1})[0] is R.COMMAND_RESPONSE_EVIDENCE


@given(st.lists(st.tuples(st.sampled_from(range(len(CASES))), st.integers(0, 2**62)), min_size=1, max_size=30),
       st.integers(0, 30))
def test_bulk_chain_is_the_per_event_chain(tmp_path_factory, picks, split):
    tmp = tmp_path_factory.mktemp("chain")
    one, bulk = AuditLog(tmp / "one.jsonl"), AuditLog(tmp / "bulk.jsonl")
    for k, ts in picks:
        shape, values = CASES[k]
        one.write(ts, shape.type, **shape.fields(*values))
    split = min(split, len(picks))
    for k, ts in picks[:split]:  # some records per event, the rest in bulk: one chain
        shape, values = CASES[k]
        bulk.write(ts, shape.type, **shape.fields(*values))
    append_records(bulk, [_bulk(CASES[k][0], ts, CASES[k][1]) for k, ts in picks[split:]])
    for log in (one, bulk):
        log.seal(1)
        log.close()
    assert (tmp / "one.jsonl").read_bytes() == (tmp / "bulk.jsonl").read_bytes()
    assert verify(tmp / "bulk.jsonl", bulk.sealed) == len(picks) + 1
