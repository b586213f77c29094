"""TradingSession semantics with a scripted venue (our own Venue protocol, driven by hand)."""

from decimal import Decimal

import numpy as np
import pytest

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.errors import OffGridError
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import ORDER_EVENT_DTYPE, Liquidity, OrderEventKind, load_instruments

BTC = load_instruments()["binance:BTC/USDT"]


class ScriptedVenue:
    """Records requests; the test plays the venue's responses."""

    name = "binance"
    maker_fee_bps = Decimal("-0.5")
    taker_fee_bps = Decimal("7")

    def __init__(self):
        self.requests = []
        self.top = (10_000_00, 100, 10_001_00, 100)  # 10000.00 / 10001.00

    def submit(self, order, ts):
        self.requests.append(("submit", order.order_no, ts))

    def cancel(self, order, ts):
        self.requests.append(("cancel", order.order_no, ts))

    def amend(self, order, price, qty, ts):
        self.requests.append(("amend", order.order_no, price, qty, ts))

    def top_of_book(self, i):
        return self.top

    def levels(self, i, side, n):
        px, q = (self.top[0], self.top[1]) if side > 0 else (self.top[2], self.top[3])
        return np.array([px]), np.array([q])


class Recorder(Strategy):
    def __init__(self):
        self.updates = []
        self.timers = []

    def on_order(self, ctx, update):
        self.updates.append(update)

    def on_timer(self, ctx, ts):
        self.timers.append(ts)


def _session(tmp_path, risk=None):
    venue = ScriptedVenue()
    strategy = Recorder()
    session = TradingSession(
        strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue}, clock=SimClock(1_000),
        ledger=Ledger({BTC.id: BTC}, {"binance": {"USDT": Decimal("100000")}}),
        risk=RiskEngine(RiskConfig.from_table(risk)), audit=AuditLog(tmp_path / "audit.jsonl"))
    session.start()
    return session, venue, strategy


def _event(order_no, kind, *, price=0, qty=0, filled=0, leaves=0, liquidity=0, reason=0):
    rec = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
    rec["order_no"], rec["kind"], rec["price"], rec["qty"] = order_no, kind, price, qty
    rec["filled"], rec["leaves"], rec["liquidity"], rec["reason"] = filled, leaves, liquidity, reason
    return rec


def test_submit_ack_partial_fill_and_fees(tmp_path):
    session, venue, strategy = _session(tmp_path)
    ctx = session.ctx
    cid = ctx.submit(BTC.id, "buy", "0.5", "10000.00", post_only=True)
    assert venue.requests == [("submit", 1, 1_000)]
    session.clock.advance_to(2_000)
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    session.clock.advance_to(3_000)
    session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_00, qty=20_000, filled=20_000,
                                  leaves=30_000, liquidity=Liquidity.MAKER))
    ack, fill = strategy.updates
    assert ack.status == "acknowledged" and ack.client_id == cid
    assert fill.status == "partially_filled" and fill.last_fill_qty == Decimal("0.2")
    assert fill.leaves_qty == Decimal("0.3") and fill.liquidity == "maker"
    assert fill.fee == Decimal("-0.1")  # 0.2 * 10000 * -0.5 bp: a rebate
    assert ctx.position(BTC.id) == Decimal("0.2")
    assert ctx.balance("binance", "USDT") == Decimal("100000") - Decimal("2000") + Decimal("0.1")
    order = ctx.order(cid)
    assert order.ack_ts == 2_000 and order.first_fill_ts == 3_000


def test_duplicate_client_id_is_rejected_with_reason(tmp_path):
    session, venue, strategy = _session(tmp_path)
    session.ctx.submit(BTC.id, "buy", "0.1", "10000", client_id="mine")
    session.ctx.submit(BTC.id, "buy", "0.1", "10000", client_id="mine")
    session._flush()
    assert len(venue.requests) == 1
    assert [u.reason for u in strategy.updates] == ["duplicate_client_id"]
    assert session.ctx.order("mine").status.name == "SUBMITTED"


@pytest.mark.parametrize(("risk", "kwargs", "reason"), [
    ({"max_order_notional": 1000}, {"qty": "0.2", "price": "10000"}, "max_order_notional"),
    ({"max_position": "0.1"}, {"qty": "0.2", "price": "10000"}, "max_position"),
    ({"price_band_bps": 50}, {"qty": "0.01", "price": "9000"}, "price_band"),
    (None, {"qty": "0.00001", "price": "10000"}, "min_notional"),
    (None, {"qty": "0.1", "price": "10000", "reduce_only": True}, "reduce_only"),
])
def test_refusals_become_rejected_updates(tmp_path, risk, kwargs, reason):
    session, venue, strategy = _session(tmp_path, risk)
    cid = session.ctx.submit(BTC.id, "buy", **kwargs)
    assert strategy.updates == []  # delivered after the submitting callback returns
    session._flush()
    assert venue.requests == []
    assert strategy.updates[-1].status == "rejected" and strategy.updates[-1].reason == reason
    assert session.ctx.order(cid).status.name == "REJECTED"


def test_order_rate_limit(tmp_path):
    session, venue, strategy = _session(tmp_path, {"max_orders_per_second": 2})
    for _ in range(3):
        session.ctx.submit(BTC.id, "buy", "0.01", "10000")
    session._flush()
    assert len(venue.requests) == 2 and strategy.updates[-1].reason == "order_rate"
    session.clock.advance_to(1_000 + 1_000_000_001)
    session.ctx.submit(BTC.id, "buy", "0.01", "10000")
    assert len(venue.requests) == 3


def test_off_grid_raises_and_cancel_amend_of_finished_orders(tmp_path):
    session, venue, strategy = _session(tmp_path)
    with pytest.raises(OffGridError):
        session.ctx.submit(BTC.id, "buy", "0.1", "10000.001")
    cid = session.ctx.submit(BTC.id, "buy", "0.1", "10000")
    assert session.ctx.cancel(cid) is True
    session.on_order_event(_event(1, OrderEventKind.CANCELLED, reason=10))
    assert strategy.updates[-1].status == "cancelled" and strategy.updates[-1].reason == "user_cancel"
    assert session.ctx.cancel(cid) is False and session.ctx.amend(cid, price="9999") is False
    assert session.ctx.cancel("never-sent") is False


def test_timers_fire_in_order_and_repeat(tmp_path):
    session, venue, strategy = _session(tmp_path)
    session.ctx.schedule(every_ns=100)
    one_shot = session.ctx.schedule(at_ns=1_150)
    assert one_shot == 1
    session.fire_timers(1_350)
    assert strategy.timers == [1_100, 1_150, 1_200, 1_300]
    assert session.next_timer_ts() == 1_400


def test_book_view_converts_exactly(tmp_path):
    session, venue, _ = _session(tmp_path)
    book = session.ctx.book(BTC.id)
    assert book.best_bid == Decimal("10000.00") and book.best_ask == Decimal("10001.00")
    assert book.mid == Decimal("10000.50") and book.spread == Decimal("1.00")
    assert book.bids(1) == [(Decimal("10000.00"), Decimal("0.00100"))]
    venue.top = (0, 0, 10_001_00, 100)
    assert book.best_bid is None and book.mid is None
