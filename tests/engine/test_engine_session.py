"""TradingSession semantics with a scripted venue (our own Venue protocol, driven by hand)."""

import json
from decimal import Decimal

import numpy as np
import pytest

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.errors import (
    IllegalTransitionError,
    InstrumentError,
    InternalError,
    OffGridError,
    OrderError,
    StrategyError,
    TickparityError,
)
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import (
    ORDER_EVENT_DTYPE,
    Liquidity,
    OrderEventKind,
    RejectReason,
    load_instruments,
)
from engine.views import Event, OrderUpdate, OrderView

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


def _session(tmp_path, risk=None, strategy=None):
    venue = ScriptedVenue()
    strategy = strategy or Recorder()
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


def _ack_then_fill(session, price_ticks):
    """Order 1 (0.5 BTC) acknowledged at t=2000, then 0.2 of it filled as maker at t=3000."""
    session.clock.advance_to(2_000)
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    session.clock.advance_to(3_000)
    session.on_order_event(_event(1, OrderEventKind.FILL, price=price_ticks, qty=20_000, filled=20_000,
                                  leaves=30_000, liquidity=Liquidity.MAKER))


def test_submit_ack_partial_fill_and_fees(tmp_path):
    session, venue, strategy = _session(tmp_path)
    ctx = session.ctx
    cid = ctx.submit(BTC.id, "buy", "0.5", "10000.00", post_only=True)
    assert venue.requests == [("submit", 1, 1_000)]
    _ack_then_fill(session, 10_000_00)
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


# -- issue 9: errors point at the user's code ------------------------------------------------
class Faulty(Recorder):
    """Raises in the callback named `where` (the line below is what the error must name)."""

    def __init__(self, where):
        super().__init__()
        self.where = where

    def _maybe_fail(self, callback):
        if callback == self.where:
            return 1 / int(callback == self.where) - 1 / 0  # FAULT LINE

    def on_start(self, ctx):
        ctx.subscribe(BTC.id)
        self._maybe_fail("on_start")

    def on_timer(self, ctx, ts):
        self._maybe_fail("on_timer")

    def on_book(self, ctx, book):
        self._maybe_fail("on_book")

    def on_trade(self, ctx, trade):
        self._maybe_fail("on_trade")

    def on_order(self, ctx, update):
        self._maybe_fail("on_order")

    def on_stop(self, ctx):
        self._maybe_fail("on_stop")


def _fault_line():
    with open(__file__) as handle:
        return next(i for i, line in enumerate(handle, 1) if "# FAULT LINE" in line and "return" in line)


@pytest.mark.parametrize("callback", ["on_start", "on_timer", "on_book", "on_trade", "on_order", "on_stop"])
def test_an_exception_in_a_callback_names_the_callback_and_the_users_line(tmp_path, callback):
    strategy = Faulty(callback)
    with pytest.raises(StrategyError) as info:
        session, venue, _ = _session(tmp_path, strategy=strategy)
        session.schedule(at_ns=2_000)
        session.fire_timers(2_000)
        session.on_book(0)
        session.on_trade(0, 1, 10_000_00, 1, 2_000)
        session.ctx.submit(BTC.id, "buy", "0.1", "10000")
        session.on_order_event(_event(1, OrderEventKind.ACK, leaves=10_000))
        session.stop()
    error = info.value
    where = f"test_engine_session.py:{_fault_line()}"
    assert str(error).startswith(f"strategy error in {callback} (")
    assert str(error).endswith(f"{where}): ZeroDivisionError: division by zero")
    assert error.callback == callback and error.location.endswith(where)
    assert isinstance(error.__cause__, ZeroDivisionError)  # the user's exception, for --debug


def test_a_user_error_raised_through_ctx_points_at_the_call(tmp_path):
    class BadSide(Recorder):
        def on_timer(self, ctx, ts):
            ctx.submit(BTC.id, "up", "0.1", "10000")  # BAD SIDE

    session, _, _ = _session(tmp_path, strategy=BadSide())
    session.schedule(at_ns=2_000)
    with pytest.raises(StrategyError, match=r"in on_timer \(.*test_engine_session.py:\d+\): OrderError: "
                                            r"side='up': expected 'buy' or 'sell'") as info:
        session.fire_timers(2_000)
    line = int(info.value.location.rsplit(":", 1)[1])
    assert "# BAD SIDE" in open(__file__).read().splitlines()[line - 1]


def test_an_engine_bug_under_a_callback_stays_internal(tmp_path):
    # no frame of the user's file on the stack: not the user's fault, not a StrategyError
    session, _, _ = _session(tmp_path)
    assert 7 not in session.oms.by_no
    with pytest.raises(InternalError, match="unknown order number 7"):
        session.on_order_event(_event(7, OrderEventKind.ACK))


# -- issue 9: the taxonomy ---------------------------------------------------------------------
def test_bad_order_arguments_are_order_errors_not_instrument_errors(tmp_path):
    session, venue, _ = _session(tmp_path)
    ctx = session.ctx
    for call in (lambda: ctx.submit(BTC.id, "up", "0.1", "10000"),
                 lambda: ctx.open_parent(BTC.id, "long", "1"),
                 lambda: ctx.submit(BTC.id, "buy", "abc", "10000"),
                 lambda: ctx.submit(BTC.id, "buy", "0", "10000"),
                 lambda: ctx.submit(BTC.id, "buy", "0.1", "10000", type="stop"),
                 lambda: ctx.submit(BTC.id, "buy", "0.1", "10000", tif="DAY"),
                 lambda: ctx.submit(BTC.id, "buy", "0.1"),
                 lambda: ctx.submit(BTC.id, "buy", "0.1", type="market", tif="GTC")):
        with pytest.raises(OrderError) as info:
            call()
        assert not isinstance(info.value, InstrumentError)
    with pytest.raises(InstrumentError, match="unknown instrument"):  # this one is about the instrument
        ctx.submit("binance:NOPE/USDT", "buy", "0.1", "10000")
    assert venue.requests == []


def test_an_illegal_transition_is_our_bug_not_a_user_error():
    assert issubclass(IllegalTransitionError, InternalError)
    assert not issubclass(IllegalTransitionError, TickparityError)


# -- issue 9: ctx.order is a read-only view in Decimals ------------------------------------
def test_ctx_order_is_a_frozen_decimal_view(tmp_path):
    session, _, _ = _session(tmp_path)
    ctx = session.ctx
    cid = ctx.submit(BTC.id, "buy", "0.5", "10000.01", post_only=True)
    session.clock.advance_to(2_000)
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_01, qty=20_000, filled=20_000,
                                  leaves=30_000, liquidity=Liquidity.MAKER))
    view = ctx.order(cid)
    assert isinstance(view, OrderView)
    assert (view.price, view.qty, view.filled_qty, view.leaves_qty) == (
        Decimal("10000.01"), Decimal("0.5"), Decimal("0.2"), Decimal("0.3"))
    assert view.avg_fill_price == Decimal("10000.01") and view.fees == Decimal("-0.1000001")  # 2000.002 x -0.5 bp
    assert (view.side, view.type, view.tif, view.status) == ("buy", "limit", "GTX", "partially_filled")
    assert view.is_open and view.reason is None and view.ack_ts == 2_000
    with pytest.raises(AttributeError):
        view.price = Decimal("1")  # frozen: the strategy cannot change engine state
    assert session.oms.by_client[cid].price == 10_000_01  # the OMS keeps ticks
    assert ctx.order("unknown") is None


def test_market_orders_are_ioc_and_show_no_price(tmp_path):
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.1", type="market")
    view = session.ctx.order(cid)
    assert (view.type, view.tif, view.price) == ("market", "IOC", None)
    fok = session.ctx.submit(BTC.id, "buy", "0.1", type="market", tif="FOK")
    assert session.ctx.order(fok).tif == "FOK"


# -- issue 9: reasons --------------------------------------------------------------------------
def test_updates_carry_no_reason_unless_there_is_one(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.1", "10000")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=10_000))
    session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_00, qty=10_000, filled=10_000, leaves=0))
    assert [(u.event, u.status, u.reason) for u in strategy.updates] == [
        ("acknowledged", "acknowledged", None), ("fill", "filled", None)]
    assert session.ctx.order(cid).reason is None
    session.ctx.submit(BTC.id, "buy", "0.1", "10000", post_only=True)
    session.on_order_event(_event(2, OrderEventKind.REJECTED, reason=RejectReason.POST_ONLY_WOULD_CROSS))
    assert (strategy.updates[-1].status, strategy.updates[-1].reason) == ("rejected", "post_only_would_take")


def test_a_refused_amend_keeps_the_order_and_says_amend_rejected(tmp_path):
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.1", "10000", post_only=True)
    session.clock.advance_to(2_000)
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=10_000))
    assert session.ctx.amend(cid, price="10001") is True  # would cross the 10001 ask
    session.clock.advance_to(3_000)
    session.on_order_event(_event(1, OrderEventKind.CANCEL_REJECTED, reason=RejectReason.POST_ONLY_WOULD_CROSS))
    refused = strategy.updates[-1]
    assert (refused.event, refused.reason) == ("amend_rejected", "post_only_would_take")
    # the order is unchanged: still resting at 10000, status and reason as before
    assert refused.status == "acknowledged" and refused.price == Decimal("10000")
    view = session.ctx.order(cid)
    assert view.reason is None and view.price == Decimal("10000") and view.ack_ts == 2_000
    assert session.ctx.cancel(cid) is True
    session.on_order_event(_event(1, OrderEventKind.CANCEL_REJECTED, reason=RejectReason.ALREADY_CLOSED))
    assert (strategy.updates[-1].event, strategy.updates[-1].reason) == ("cancel_rejected", "already_closed")


def test_a_refusal_before_the_ack_does_not_stamp_the_ack_time(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.1", "10000")
    session.ctx.amend(cid, qty="0.2")
    session.clock.advance_to(1_500)  # the amend reached the venue before the order (faster path)
    session.on_order_event(_event(1, OrderEventKind.CANCEL_REJECTED, reason=RejectReason.UNKNOWN_ORDER))
    assert strategy.updates[-1].event == "amend_rejected" and strategy.updates[-1].status == "submitted"
    assert session.ctx.order(cid).ack_ts is None


def test_the_book_view_cannot_be_repointed_by_a_strategy(tmp_path):
    session, _, _ = _session(tmp_path)
    book = session.ctx.book(BTC.id)
    with pytest.raises(AttributeError):
        book.instrument = None
    assert session.ctx.book(BTC.id).instrument is BTC and book.best_bid == Decimal("10000")


def test_the_python_api_refuses_a_class_that_is_not_a_strategy(tmp_path):
    class Duck:  # has the callbacks, but the engine could not promise it runs in every mode
        def on_start(self, ctx):
            pass

    with pytest.raises(StrategyError, match="is not a Strategy"):
        _session(tmp_path, strategy=Duck())


# -- submit's remembered grid conversions (engine.session._on_grid, bench/PROFILE.md 1c) ------
def test_remembered_grid_conversions_give_what_the_instrument_gives(tmp_path):
    """The same price in another Decimal spelling (10000.0 vs 10000.00) is the same ticks;
    the audit log keeps each order's own spelling; an off-grid price raises every time
    (nothing is remembered for it); a float equal to a remembered Decimal is still refused."""
    from engine.session import _on_grid

    session, venue, strategy = _session(tmp_path)
    ctx = session.ctx
    for price in ("10000.00", "10000.0", "10000.00"):
        ctx.submit(BTC.id, "buy", "0.10", price)
    orders = [session.oms.by_no[n] for n in (1, 2, 3)]
    assert [o.price for o in orders] == [BTC.price_to_ticks(Decimal("10000"))] * 3
    assert [o.qty for o in orders] == [BTC.qty_to_lots(Decimal("0.1"))] * 3
    assert [o.arrival_bid for o in orders] == [Decimal("10000.00")] * 3
    session.audit.close()
    prices = [json.loads(line).get("price") for line in (tmp_path / "audit.jsonl").read_text().splitlines()
              if '"action":"submit"' in line and '"type":"limit"' in line]
    assert prices == ["10000.00", "10000.0", "10000.00"]
    for _ in range(2):
        with pytest.raises(OffGridError):
            ctx.submit(BTC.id, "buy", "0.1", "10000.001")
    cache = session._grids[BTC.id].ticks
    assert Decimal("10000.001") not in cache and cache[Decimal("10000")] == 1_000_000
    with pytest.raises(InstrumentError, match="not float"):
        _on_grid(cache, BTC.price_to_ticks, 10000.0)
    with pytest.raises(InstrumentError, match="not a decimal number|not finite"):
        _on_grid(cache, BTC.price_to_ticks, Decimal("sNaN"))


def test_the_audit_is_on_disk_before_the_venue_sees_the_order(tmp_path):
    """Write-ahead in live modes (AuditLog flush_each): when the venue's submit runs, the
    submit's decision and request records are already in the file (read through another
    handle, no flush or close); a refused order's decision and reject are on disk too, and
    so is the decision when the venue raises."""
    seen = []

    class PeekingVenue(ScriptedVenue):
        fail = False

        def submit(self, order, ts):
            seen.append([json.loads(line) for line in path.read_text().splitlines()])
            if self.fail:
                raise RuntimeError("venue adapter failed")
            super().submit(order, ts)

    path = tmp_path / "audit.jsonl"
    venue = PeekingVenue()
    session = TradingSession(
        strategy=Recorder(), instruments={BTC.id: BTC}, venues={"binance": venue}, clock=SimClock(1_000),
        ledger=Ledger({BTC.id: BTC}, {"binance": {"USDT": Decimal("100000")}}),
        risk=RiskEngine(RiskConfig.from_table({"max_order_notional": "5000"})),
        audit=AuditLog(path, flush_each=True))
    session.start()
    cid = session.ctx.submit(BTC.id, "buy", "0.1", "10000")
    decision, request = seen[0][-2:]
    assert (decision["type"], decision["action"], decision["client_id"]) == ("limit", "submit", cid)
    assert (request["type"], request["action"], request["client_id"]) == ("request", "submit", cid)
    refused = session.ctx.submit(BTC.id, "buy", "1", "10000")  # 10,000 > max_order_notional
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["type"], r["client_id"]) for r in on_disk[-2:]] == [("limit", refused), ("reject", refused)]
    venue.fail = True
    with pytest.raises(RuntimeError, match="venue adapter failed"):
        session.ctx.submit(BTC.id, "sell", "0.1", "10001")
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["type"], r.get("action"), r["side"] if "side" in r else None) for r in on_disk[-2:]] == [
        ("limit", "submit", "sell"), ("request", "submit", None)]


def test_every_field_of_the_order_update_is_the_right_one(tmp_path):
    """The session builds its OrderUpdate by position (engine/frozen.py `positional`): each
    field must carry its own value (hand-computed here, field by field)."""
    from engine.views import Event, OrderUpdate, Status

    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "sell", "0.5", "10000.01", post_only=True)
    _ack_then_fill(session, 10_000_01)
    ack, fill = strategy.updates
    assert ack == OrderUpdate(
        client_id=cid, instrument=BTC.id, side="sell", status=Status.ACKNOWLEDGED, event=Event.ACKNOWLEDGED,
        filled_qty=Decimal("0"), leaves_qty=Decimal("0.5"), last_fill_price=None, last_fill_qty=Decimal(0),
        fee=Decimal(0), liquidity=None, reason=None, ts=2_000, price=Decimal("10000.01"), qty=Decimal("0.5"),
        parent_id=None, fee_charged=None, fee_asset=None)
    assert fill == OrderUpdate(
        client_id=cid, instrument=BTC.id, side="sell", status=Status.PARTIALLY_FILLED, event=Event.FILL,
        filled_qty=Decimal("0.2"), leaves_qty=Decimal("0.3"), last_fill_price=Decimal("10000.01"),
        last_fill_qty=Decimal("0.2"), fee=Decimal("-0.1000001"), liquidity="maker", reason=None, ts=3_000,
        price=Decimal("10000.01"), qty=Decimal("0.5"), parent_id=None, fee_charged=Decimal("-0.1000001"),
        fee_asset="USDT")  # 0.2 x 10000.01 x -0.5 bp, charged in the quote asset
    assert str(fill.filled_qty) == "0.20000" and str(fill.last_fill_price) == "10000.01"  # the grid's exponents


def test_the_submit_record_prints_each_amount_as_the_strategy_gave_it(tmp_path):
    """The decision record's qty/price texts are remembered per Decimal object (session
    `_Grid.text_of`): equal amounts with other exponents print their own digits."""
    session, _, _ = _session(tmp_path)
    ctx = session.ctx
    half, price = Decimal("0.50"), Decimal("10000.00")
    for qty, px in ((half, price), (Decimal("0.5"), Decimal("10000.0")), (half, price), (Decimal("0.500"), price)):
        ctx.submit(BTC.id, "buy", qty, px)
    session.audit.close()
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    submits = [(r["qty"], r["price"]) for r in records if r.get("action") == "submit" and "qty" in r]
    assert submits == [("0.50", "10000.00"), ("0.5", "10000.0"), ("0.50", "10000.00"), ("0.500", "10000.00")]


class Quiet(Strategy):
    """Keeps Strategy.on_order (which does nothing): nobody reads its order updates."""


def test_no_update_is_built_when_nobody_reads_it_and_the_order_is_still_booked(tmp_path):
    # `_update` hands risk a stand-in when no component, strategy callback, contingent leg or
    # slippage trigger would read the update (bench/PROFILE.md 1j); the booking is the same
    session, venue, _ = _session(tmp_path, strategy=Quiet())
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000.00", post_only=True)
    order = session.oms.by_client[cid]
    assert session._update(order, 1_000, Event.ACKNOWLEDGED).event is Event.ACKNOWLEDGED
    assert type(session._update(order, 1_000, Event.ACKNOWLEDGED)) is not OrderUpdate
    _ack_then_fill(session, 10_000_00)
    assert session.ctx.position(BTC.id) == Decimal("0.2")
    assert session.risk._held[cid][2] == 30_000  # risk's held exposure followed the fill
    # anyone who would read it gets the real update: a slippage trigger, or the strategy's
    # own on_order (`test_every_field_of_the_order_update_is_the_right_one` pins its fields)
    (tmp_path / "s").mkdir()
    (tmp_path / "l").mkdir()
    slippage, _, _ = _session(tmp_path / "s", risk={"disable_slippage_bps": 50}, strategy=Quiet())
    cid = slippage.ctx.submit(BTC.id, "buy", "0.5", "10000.00", post_only=True)
    assert type(slippage._update(slippage.oms.by_client[cid], 1_000, Event.ACKNOWLEDGED)) is OrderUpdate
    loud, _, _ = _session(tmp_path / "l")
    cid = loud.ctx.submit(BTC.id, "buy", "0.5", "10000.00", post_only=True)
    assert type(loud._update(loud.oms.by_client[cid], 1_000, Event.ACKNOWLEDGED)) is OrderUpdate
