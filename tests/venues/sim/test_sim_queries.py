"""The simulated venue as a QueryableVenue, and fees in the asset the venue charges.

A TradingSession runs on the real numba venue (SimCore + SimulatedVenue); a lost request
or a lost reply is played by the test (a submit never handed to the core, a response row
never handed to the session), then the OMS resolves it by a lookup the venue answers from
its own state after the round trip (entry + response latency), never by a resend.
"""

from decimal import Decimal

import pytest
from sim_helpers import BUY, DELTA, SELL, events, instrument

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import OrderEventKind, OrderStatus
from engine.types.venue_reports import Command, CommandResult, Outcome
from venues.sim import SimCore, SimVenueConfig, WakeKind
from venues.simulated import SimulatedVenue

INST = instrument()  # sim:BTC/USDT, tick 0.01, lot 0.001
MS = 1_000_000
FAR = 10**18


class Updates(Strategy):
    def __init__(self):
        self.updates = []

    def on_order(self, ctx, update):
        self.updates.append(update)


class LossyVenue(SimulatedVenue):
    """The simulated venue with a network that can lose our next submit on the way."""

    lose_next_submit = False

    def submit(self, order, ts):
        if self.lose_next_submit:
            self.lose_next_submit = False
            return
        super().submit(order, ts)


def _feed(ask_qty=5_000):
    rows = [(0, DELTA, BUY, 100_00, 5_000), (0, DELTA, SELL, 100_10, ask_qty)]
    rows += [(k * 100 * MS, DELTA, BUY, 99_00, k) for k in range(1, 100)]  # keeps the venue busy 10 s
    return events(rows)


def _session(tmp_path, *, fee_asset="quote", ask_qty=5_000):
    table = {"latency": {"entry_ns": MS, "response_ns": MS}, "maker_fee_bps": 10, "taker_fee_bps": 10,
             "balances": {"USDT": "1000"}, "enforce_balances": True, "fee_asset": fee_asset}
    config = SimVenueConfig.from_table("sim", table)
    core = SimCore([INST], {"sim": config}, iter([_feed(ask_qty)]), 7)
    venue = LossyVenue("sim", core, config)
    strategy = Updates()
    session = TradingSession(
        strategy=strategy, instruments={INST.id: INST}, venues={"sim": venue}, clock=SimClock(0),
        ledger=Ledger({INST.id: INST}, {"sim": {"USDT": Decimal("1000")}}),
        risk=RiskEngine(RiskConfig.from_table(None)), audit=AuditLog(tmp_path / "audit.jsonl"))
    session.start()
    return session, core, venue, strategy


def _run(session, core, until, lose=lambda rec: False):
    """The backtest loop (modes.backtest._drive, without outputs) up to local time `until`;
    `lose(rec)` True drops a response row on its way to the session (a lost reply)."""
    while True:
        wake = core.run_until(until, session.wake_book, session.wake_trade)
        if wake.kind == WakeKind.END:
            return
        session.clock.advance_to(max(int(wake.ts), session.clock.now()))
        if wake.kind == WakeKind.ORDER:
            if not lose(wake.record):
                session.on_order_event(wake.record)
        elif wake.kind == WakeKind.BOUND:
            return


def _ledger_matches_venue(session, core):
    venue = {a: free + locked for a, (free, locked) in core.balances("sim").items()}
    ledger = {a: amount for (v, a), amount in session.ledger.balances.items() if v == "sim"}
    assert {a: x for a, x in ledger.items() if x} == {a: x for a, x in venue.items() if x}


def test_a_lost_submit_is_looked_up_and_rejected_not_received(tmp_path):
    session, core, venue, strategy = _session(tmp_path)
    _run(session, core, 10 * MS)
    venue.lose_next_submit = True
    cid = session.ctx.submit(INST.id, "buy", "0.002", "99.50")
    _run(session, core, 20 * MS)
    assert session.oms.by_client[cid].status == OrderStatus.SUBMITTED  # no answer: it never arrived
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.AMBIGUOUS, 20 * MS,
                                            evidence={"error": "timeout"}))
    _run(session, core, 40 * MS)
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.REJECTED and order.reason == "not_received"
    assert order.done_ts == 22 * MS  # the lookup's round trip: 1 ms there, 1 ms back
    assert strategy.updates[-1].event == "rejected" and strategy.updates[-1].reason == "not_received"
    assert core.order_state(order.order_no) is None  # and nothing was sent twice


def test_an_ambiguous_submit_that_arrived_is_adopted(tmp_path):
    session, core, _, strategy = _session(tmp_path)
    _run(session, core, 10 * MS)
    cid = session.ctx.submit(INST.id, "buy", "0.002", "99.50")  # rests below the bid
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.AMBIGUOUS, 10 * MS))
    _run(session, core, 40 * MS, lose=lambda rec: int(rec["kind"]) == OrderEventKind.ACK)  # its ack lost too
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.ACKNOWLEDGED and not order.ambiguous and not order.lookup_pending
    assert [u.event for u in strategy.updates] == ["acknowledged"]


def test_a_lost_fill_reply_is_recovered_from_the_venue_history(tmp_path):
    # an IOC buy of 5 lots meets 3 at the ask: fill 3, remainder cancelled; the fill's
    # reply is lost, the cancel (filled 3) reports fills owed and the OMS looks them up
    session, core, _, strategy = _session(tmp_path, ask_qty=3)
    _run(session, core, 10 * MS)
    cid = session.ctx.submit(INST.id, "buy", "0.005", "100.10", tif="IOC")
    _run(session, core, 40 * MS, lose=lambda rec: int(rec["kind"]) == OrderEventKind.FILL)
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.CANCELLED and order.filled == 3 and order.owed == 0
    assert session.fill_count == 1 and session.ledger.position(INST.id) == Decimal("0.003")
    assert [u.event for u in strategy.updates] == ["acknowledged", "cancelled", "fill"]
    _ledger_matches_venue(session, core)


def test_balances_and_open_orders_are_answered_after_the_round_trip(tmp_path):
    session, core, venue, _ = _session(tmp_path)
    _run(session, core, 10 * MS)
    cid = session.ctx.submit(INST.id, "buy", "0.002", "99.50")
    _run(session, core, 20 * MS)
    venue.request_balances(20 * MS)
    venue.request_open_orders(20 * MS)
    _run(session, core, 21 * MS)
    assert session.venue_balances == {}  # not before the round trip
    _run(session, core, 40 * MS)
    free, locked = session.venue_balances["sim"]["USDT"]
    # the bid locks 0.002 x 99.50 = 0.199 plus its largest fee, 10 bp of it: 0.000199
    assert (free, locked) == (Decimal("999.800801"), Decimal("0.199199"))
    assert session.oms.by_client[cid].status == OrderStatus.ACKNOWLEDGED


@pytest.mark.parametrize("fee_asset", ["received", "quote"])
def test_fees_are_charged_in_the_venues_fee_asset_and_balances_reconcile(tmp_path, fee_asset):
    session, core, _, _ = _session(tmp_path, fee_asset=fee_asset)
    _run(session, core, 10 * MS)
    session.ctx.submit(INST.id, "buy", "0.002", "100.10", tif="IOC")  # takes 2 lots at 100.10
    _run(session, core, 20 * MS)
    session.ctx.submit(INST.id, "sell", "0.001", "100.00", tif="IOC")  # hits the bid at 100.00
    _run(session, core, 40 * MS)
    ledger = session.ledger
    if fee_asset == "received":
        # buy: fee 0.002 x 10 bp = 0.000002 BTC out of the BTC received; sell: 0.1 x 10 bp in USDT
        assert ledger.balance("sim", "BTC") == Decimal("0.000998")  # 0.002 - 0.000002 - 0.001
        assert ledger.balance("sim", "USDT") == Decimal("999.8997")  # 1000 - 0.2002 + 0.1 - 0.0001
    else:
        # both fees in USDT: 0.2002 x 10 bp = 0.0002002 and 0.0001
        assert ledger.balance("sim", "BTC") == Decimal("0.001")
        assert ledger.balance("sim", "USDT") == Decimal("999.8994998")  # 1000 - 0.2002 - 0.0002002 + 0.1 - 0.0001
    # in quote for PnL and TCA either way: 0.000002 BTC x 100.10 = 0.0002002, + 0.0001
    assert ledger.fees() == Decimal("0.0003002")
    _ledger_matches_venue(session, core)
    fills = [o for o in session.oms.by_no.values()]
    assert [o.fees for o in fills] == [Decimal("0.0002002"), Decimal("0.0001")]


def test_fill_fee_rule_by_hand():
    from engine.fees import fill_fee
    from engine.types import Liquidity

    rate = Decimal("10")
    buy = fill_fee(INST, 1, 100_10, 2, Liquidity.TAKER, rate, rate, "received")
    sell = fill_fee(INST, -1, 100_00, 1, Liquidity.MAKER, rate, rate, "received")
    assert buy == (Decimal("0.000002"), "BTC") and sell == (Decimal("0.0001"), "USDT")
    assert fill_fee(INST, 1, 100_10, 2, Liquidity.TAKER, rate, rate, "quote") == (Decimal("0.0002002"), "USDT")
