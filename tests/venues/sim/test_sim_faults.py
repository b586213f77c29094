"""venues.sim.faults on its own: the shared vocabulary, a cancel refused in a halt, a
request refused with its exact record, and ambiguous kinds refused by a session without the
typed-outcome entry point."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.errors import ConfigError
from engine.types.orders import ORDER_EVENT_DTYPE, OrderEventKind, RejectReason
from venues.emulator.faults import KINDS as EMULATOR_KINDS
from venues.faults import FAULT_KEYS, SIM_KINDS, parse_fault
from venues.sim.faults import SimFaults, parse_sim_fault

S = 1_000_000_000


class Session:
    def __init__(self):
        self.audit = SimpleNamespace(records=[])
        self.audit.write = lambda ts, type_, **f: self.audit.records.append((ts, type_, f))
        self.events, self.health = [], []

    def on_order_event(self, rec):
        self.events.append(rec)

    def set_venue_health(self, venue, state, reason):
        self.health.append((venue, state, reason))


def order(no: int):
    return SimpleNamespace(order_no=no, client_id=f"c{no}", instrument_index=0, price=100, qty=5, filled=0,
                           instrument=SimpleNamespace(venue="v"))


def test_one_vocabulary():
    assert set(EMULATOR_KINDS) <= set(FAULT_KEYS) and SIM_KINDS <= set(FAULT_KEYS)
    assert all(EMULATOR_KINDS[k] == set(FAULT_KEYS[k]) for k in EMULATOR_KINDS)
    with pytest.raises(ConfigError, match=r"f1 \(reject\) needs code"):
        parse_fault({"kind": "reject"}, "f1")
    with pytest.raises(ConfigError, match="does not simulate"):
        parse_fault({"kind": "user_drop"}, "f2", SIM_KINDS)
    spec = parse_fault({"kind": "maintenance", "after": 90, "duration": "30s", "halt": "1m"}, "f3")
    assert (spec.after_ns, spec.params) == (90 * S, {"duration": 30 * S, "halt": 60 * S})


def test_a_key_left_out_takes_one_default_in_both_backends():
    """FAULT_DEFAULTS is the one place: a maintenance without duration/halt is 5 s + 5 s in
    the simulated venue as in the emulator (it was 0 + 0 there, a fault that did nothing,
    and 5 s + 5 s in the emulator), a reject without msg carries Binance's message in both."""
    from venues.emulator.faults import Fault
    from venues.faults import FAULT_DEFAULTS

    spec = parse_fault({"kind": "maintenance", "after": "10s"}, "f", SIM_KINDS)
    assert spec.params == {"duration": 5 * S, "halt": 5 * S}
    assert Fault.from_spec(spec).params == {"duration": 5.0, "halt": 5.0}  # the emulator's seconds
    assert Fault.from_table({"kind": "maintenance"}, "f").params == {"duration": 5.0, "halt": 5.0}
    phases = [SimFaults._maintenance_phase(spec, off * S) for off in (9, 10, 14, 15, 19, 20)]
    assert phases == [None, "cancel-only", "cancel-only", "halt", "halt", None]
    reject = parse_fault({"kind": "reject", "code": -2010}, "r")
    assert reject.params == {"code": -2010, "status": 400, "msg": "Account has insufficient balance for requested "
                                                                  "action."}
    assert parse_fault({"kind": "reject", "code": -9999}, "r").params["msg"] == "Rejected by the fault plan."
    assert parse_fault({"kind": "http_5xx_before", "status": 500}, "h").params == {"status": 500, "body": "json"}
    assert parse_fault({"kind": "http_5xx_after"}, "h").params == {"status": 502, "body": "html"}
    for kind, defaults in FAULT_DEFAULTS.items():  # every default is a key of its kind's vocabulary
        assert set(defaults) <= FAULT_KEYS[kind], kind
    with pytest.raises(ConfigError, match="lasts no time"):  # both given as 0 is still refused
        parse_fault({"kind": "maintenance", "duration": 0, "halt": "0s"}, "m")


def test_halt_refuses_cancels_with_market_closed():
    faults = SimFaults([parse_sim_fault({"kind": "maintenance", "after": "10s", "duration": "10s", "halt": "10s"},
                                        "m")], seed=1)
    session = Session()
    faults.bind(session, 1000 * S, {"v": None})
    assert faults.next_ts() == 1010 * S  # the health change
    assert not faults.intercept("v", "submit", order(1), 1005 * S, 7)  # before: to the core
    assert not faults.intercept("v", "cancel", order(1), 1015 * S, 7)  # cancel-only: cancels pass
    assert faults.intercept("v", "submit", order(2), 1015 * S, 7)  # ... new orders do not
    assert faults.intercept("v", "cancel", order(1), 1025 * S, 7)  # halt: nothing passes
    assert not faults.intercept("v", "cancel", order(1), 1030 * S, 7)  # over
    faults.deliver(1100 * S)
    kinds = [(int(e["local_ts"]), OrderEventKind(int(e["kind"])), RejectReason(int(e["reason"]))) for e in session.events]
    assert kinds == [(1015 * S + 7, OrderEventKind.REJECTED, RejectReason.MARKET_CLOSED),
                     (1025 * S + 7, OrderEventKind.CANCEL_REJECTED, RejectReason.MARKET_CLOSED)]
    assert session.health == [("v", "down", "maintenance"), ("v", "up", "maintenance over")]
    assert [(ts, f["kind"], f["code"]) for ts, t, f in session.audit.records if t == "fault"] == [
        (1015 * S, "maintenance (cancel-only)", -2010), (1025 * S, "maintenance (halt)", -2010)]
    assert session.events[0].dtype == ORDER_EVENT_DTYPE


def test_ambiguous_kinds_need_the_typed_outcome_entry_point():
    faults = SimFaults([parse_sim_fault({"kind": "outage", "after": "1s", "duration": "5s"}, "o")], seed=1)
    with pytest.raises(ConfigError, match="outage answer AMBIGUOUS: they need the session's on_command_result"):
        faults.bind(Session(), 0, {"v": None})


@pytest.mark.parametrize(("table", "message"), [
    ({"kind": "outage", "duration": 0}, "f9 duration = 0: must be > 0 (a outage of no duration"),
    ({"kind": "http_5xx_before", "after": "15m", "until": "5m"}, "f9 until = '5m': must be later than after = '15m'"),
    ({"kind": "reject", "code": -2010, "until": 0}, "f9 until = 0: must be later than after = 0"),
    ({"kind": "latency_spike", "duration": "1m", "extra": "0ms"}, "f9 extra = '0ms': must be > 0"),
    ({"kind": "maintenance", "duration": "0s", "halt": 0}, "f9 duration = '0s': with halt = 0"),
])
def test_a_window_that_can_never_act_is_refused_in_every_backend(table, message):
    """The simulated venue's scenario faults share the emulator's window rules (one parser)."""
    with pytest.raises(ConfigError) as err:
        parse_sim_fault(table, "f9")
    assert str(err.value).startswith(message), str(err.value)
