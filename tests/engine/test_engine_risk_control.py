"""Live-mode risk: orders waiting for approval, the control inbox and its CLI, ambiguous
outcomes, SIGUSR1. A session built by hand with a scripted venue (the test plays the
venue's answers) and the run directory's inbox attached as a live driver attaches it
(`session.attach_control`, which also makes approvals wait for an operator).
"""

from __future__ import annotations

import os
import signal
from decimal import Decimal

import numpy as np

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.control import ControlInbox, kill_on_sigusr1
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import ORDER_EVENT_DTYPE, OrderEventKind, load_instruments
from modes.cli import main

BTC = load_instruments()["binance:BTC/USDT"]
S = 1_000_000_000


class Venue:
    name = "binance"
    maker_fee_bps = Decimal(0)
    taker_fee_bps = Decimal(0)

    def __init__(self):
        self.requests = []

    def submit(self, order, ts):
        self.requests.append(("submit", order.client_id))

    def cancel(self, order, ts):
        self.requests.append(("cancel", order.client_id))

    def amend(self, order, price, qty, ts):
        self.requests.append(("amend", order.client_id))

    def top_of_book(self, i):
        return (10_000_00, 100, 10_001_00, 100)  # 10000.00 / 10001.00, mid 10000.50

    def levels(self, i, side, n):
        return np.array([10_000_00]), np.array([100])


class Recorder(Strategy):
    def __init__(self):
        self.updates = []

    def on_order(self, ctx, update):
        self.updates.append((update.client_id, update.event.value, update.status.value, update.reason))


def _session(tmp_path, table):
    venue, strategy = Venue(), Recorder()
    session = TradingSession(
        strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue}, clock=SimClock(S),
        ledger=Ledger({BTC.id: BTC}, {"binance": {"USDT": Decimal("1000000")}}),
        risk=RiskEngine(RiskConfig.from_table(table)), audit=AuditLog(tmp_path / "audit.jsonl"))
    session.attach_control(tmp_path)  # what a live driver does
    session.start()
    return session, venue, strategy


def _event(order_no, kind, *, leaves=0):
    rec = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
    rec["order_no"], rec["kind"], rec["leaves"] = order_no, kind, leaves
    return rec


def test_orders_wait_for_approval_and_operators_release_refuse_or_time_them_out(tmp_path):
    # 0.5 x 10001 = 5000.50 >= 5000: needs approval; 0.4 x 10001 = 4000.40 does not
    session, venue, strategy = _session(tmp_path, {"approval_notional": 5000, "approval_timeout_s": 10,
                                                   "max_position_notional": 16000})
    ctx = session.ctx
    small = ctx.submit(BTC.id, "buy", "0.4", "10001")
    ctx.submit(BTC.id, "buy", "0.5", "10001", client_id="big")
    session._flush()  # what the session does after a strategy callback
    assert venue.requests == [("submit", small)]
    assert strategy.updates == [("big", "pending_approval", "pending", None)]
    assert ctx.order("big").status == "pending"
    assert ControlInbox(tmp_path).pending() == ["big"]
    assert session.risk.held(0) == (90_000, 0)  # 0.4 + 0.5 BTC in lots: the waiting order counts
    # worst 0.4 + 0.5 + 0.7 = 1.6 x 10000.50 = 16000.80 > 16000: refused because "big" is held
    assert ctx.submit(BTC.id, "buy", "0.7", "9000", client_id="over") == "over"
    session._flush()
    assert strategy.updates[-1] == ("over", "rejected", "rejected", "max_position_notional")

    assert main(["approve", str(tmp_path), "big", "--why", "desk ok", "--who", "alice"]) == 0
    assert main(["approve", str(tmp_path)]) == 0  # lists what waits
    assert session.poll_control() == 1
    assert venue.requests[-1] == ("submit", "big")
    (approved,) = session.guard.summary()["approvals"]
    assert (approved["client_id"], approved["approved"], approved["who"], approved["why"]) == \
        ("big", True, "operator:alice", "desk ok")

    ctx.submit(BTC.id, "buy", "0.5", "10001", client_id="refuse-me")
    assert ctx.amend("refuse-me", price="10000") is False  # waiting: never sent, nothing to amend
    session._flush()
    assert strategy.updates[-1] == ("refuse-me", "amend_rejected", "pending", "approval_pending")
    assert main(["refuse", str(tmp_path), "refuse-me", "--why", "too big", "--who", "bob"]) == 0
    session.poll_control()
    assert strategy.updates[-1] == ("refuse-me", "rejected", "rejected", "approval_refused")

    ctx.submit(BTC.id, "buy", "0.5", "10001", client_id="late")
    session.clock.advance_to(session.clock.now() + 10 * S)  # the 10 s timeout
    session.poll_control()
    assert strategy.updates[-1] == ("late", "rejected", "rejected", "approval_timeout")
    assert ControlInbox(tmp_path).pending() == []
    assert session.risk.held(0) == (90_000, 0)  # small and big only
    summary = session.guard.summary()
    assert summary["refusals"] == {"approval_pending": 1, "approval_refused": 1, "approval_timeout": 1,
                                   "max_position_notional": 1}
    # every command file was applied and kept
    assert len(list((tmp_path / "control" / "done").glob("*.json"))) == 2


def test_kill_and_resume_through_the_control_inbox(tmp_path):
    session, venue, strategy = _session(tmp_path, {})
    ctx = session.ctx
    a = ctx.submit(BTC.id, "buy", "0.1", "9990")
    b = ctx.submit(BTC.id, "sell", "0.1", "10010")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=10_000))
    assert main(["kill", str(tmp_path), "--why", "feed stale", "--who", "carol"]) == 0
    assert main(["resume", str(tmp_path), "--why", "", "--who", "carol"]) == 2  # a reason is required
    session.clock.advance_to(2 * S)
    assert session.poll_control() == 1
    assert venue.requests[-2:] == [("cancel", a), ("cancel", b)]
    assert ctx.risk_state == "halted"
    assert ctx.submit(BTC.id, "buy", "0.1", "9990", client_id="no") == "no"
    session._flush()
    assert strategy.updates[-1][3] == "kill_switch"
    session.clock.advance_to(2 * S + 3_000_000)
    session.on_order_event(_event(1, OrderEventKind.CANCELLED))
    session.clock.advance_to(2 * S + 5_000_000)
    session.on_order_event(_event(2, OrderEventKind.CANCELLED))
    (kill,) = session.guard.summary()["kills"]
    assert (kill["who"], kill["reason"], kill["cancels"], kill["cancel_ack_ns"]) == \
        ("operator:carol", "feed stale", 2, 5_000_000)
    assert main(["resume", str(tmp_path), "--why", "feed back", "--who", "carol"]) == 0
    session.poll_control()
    assert ctx.risk_state == "active"
    last = session.guard.summary()["transitions"][-1]
    assert (last["to"], last["who"], last["why"]) == ("active", "operator:carol", "feed back")


def test_ambiguous_outcomes_auto_disable(tmp_path):
    session, _, _ = _session(tmp_path, {"disable_after_ambiguous": 2, "disable_window_s": 5})
    session.guard.record_ambiguous("tp-1")
    assert session.ctx.risk_state == "active"
    session.clock.advance_to(7 * S)  # the first one left the 5 s window
    session.guard.record_ambiguous("tp-2")
    assert session.ctx.risk_state == "active"
    session.guard.record_ambiguous("tp-3")
    assert session.ctx.risk_state == "halted"
    assert session.risk.state_reason == "disable_after_ambiguous"


def test_sigusr1_posts_a_kill(tmp_path):
    inbox = ControlInbox(tmp_path)
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        kill_on_sigusr1(inbox)
        os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    (command,) = inbox.take()
    assert command.command == "kill" and command.who.startswith("signal SIGUSR1")


def test_a_malformed_command_file_is_set_aside(tmp_path):
    inbox = ControlInbox(tmp_path)
    inbox.post("resume", why="x")
    (tmp_path / "control" / "inbox" / "0-bad.json").write_text("{not json")
    assert [c.command for c in inbox.take()] == ["resume"]
    assert (tmp_path / "control" / "done" / "0-bad.json.invalid").exists()


def test_risk_check_answers_without_counting(tmp_path):
    # what a contingent order asks before it arms or triggers: nothing is counted
    session, venue, _ = _session(tmp_path, {"max_orders_per_second": 1, "max_position_notional": 6000})
    assert session.risk_check(BTC.id, 1, Decimal("0.5"), Decimal("10001")) is None  # 5000.25
    assert session.risk_check(BTC.id, 1, Decimal("0.6"), Decimal("10001")) == "max_position_notional"  # 6000.30
    session.risk.hold("contingent:stop-1", 0, 1, 50_000)  # an armed 0.5 BTC buy stop
    assert session.risk_check(BTC.id, 1, Decimal("0.1"), Decimal("10001")) == "max_position_notional"
    session.risk.hold("contingent:stop-1", 0, 1, 0)
    session.ctx.submit(BTC.id, "buy", "0.1", "10001")  # the rate window was not used by the checks
    assert venue.requests == [("submit", "tp-1")]
