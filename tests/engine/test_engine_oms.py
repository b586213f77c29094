"""The OMS state machine under random event sequences (hypothesis stateful testing)."""

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.errors import IllegalTransitionError
from engine.oms import LEGAL_TRANSITIONS, OrderManager, check_transition
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments
from engine.types.orders import TERMINAL_STATUSES

BTC = load_instruments()["binance:BTC/USDT"]


def _new(oms: OrderManager, client_id=None, qty=10):
    return oms.create(client_id=client_id, instrument=BTC, instrument_index=0, side=1,
                      type=OrderType.LIMIT, tif=TimeInForce.GTC, price=100, qty=qty)


def test_lifecycle_and_illegal_transition():
    oms = OrderManager()
    order = _new(oms)
    assert order.status == OrderStatus.PENDING and order.client_id == "tp-1"
    for status in (OrderStatus.SUBMITTED, OrderStatus.ACKNOWLEDGED, OrderStatus.PARTIALLY_FILLED,
                   OrderStatus.FILLED):
        oms.set_status(order, status, ts=5)
    assert order.done_ts == 5 and not order.is_open and oms.open_orders() == []
    with pytest.raises(IllegalTransitionError, match="FILLED -> CANCELLED"):
        oms.set_status(order, OrderStatus.CANCELLED, ts=6)


def test_client_ids_unique_and_lru_bounded():
    oms = OrderManager(recent_capacity=2)
    _new(oms, "a")
    assert oms.is_duplicate("a") and "a" not in oms.recent  # an order's id: by_client holds it
    assert not oms.is_duplicate("b")
    for cid in ("g1", "g2", "g3"):  # ids taken that are not orders' (contingent groups, legs)
        oms.recent.add(cid)
    assert "g1" not in oms.recent and not oms.is_duplicate("g1")  # evicted from the LRU ...
    assert oms.is_duplicate("g3") and oms.is_duplicate("a")  # ... the rest still known


class OrderLifecycle(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.oms = OrderManager()
        self.order = _new(self.oms)
        self.seen = [self.order.status]

    @rule(target_status=st.sampled_from(list(OrderStatus)))
    def attempt(self, target_status):
        before = self.order.status
        legal = target_status in LEGAL_TRANSITIONS[before]
        if legal:
            self.oms.set_status(self.order, target_status, ts=len(self.seen))
            assert self.order.status == target_status
            self.seen.append(target_status)
        else:
            with pytest.raises(IllegalTransitionError):
                self.oms.set_status(self.order, target_status, ts=len(self.seen))
            assert self.order.status == before  # a refused change leaves the order as it was

    @invariant()
    def terminal_is_absorbing_and_tracked(self):
        status = self.order.status
        if status in TERMINAL_STATUSES:
            assert not LEGAL_TRANSITIONS[status]
            assert self.order.order_no not in self.oms.open_nos
            assert self.order.done_ts is not None
        else:
            assert self.order.order_no in self.oms.open_nos

    @invariant()
    def never_returns_to_pending(self):
        assert OrderStatus.PENDING not in self.seen[1:]


TestOrderLifecycle = OrderLifecycle.TestCase


def test_every_status_has_a_rule():
    assert set(LEGAL_TRANSITIONS) == set(OrderStatus)
    check_transition(OrderStatus.PENDING, OrderStatus.SUBMITTED)


# -- issue 11: client ids unique across sessions and restarts on one account -----------------
def test_session_prefixes_are_unique_per_account_even_in_one_millisecond(tmp_path):
    from engine.oms import CLIENT_ID_MAX, base36, session_id_prefix

    state = tmp_path / "state"
    ms = 1_796_063_222_592  # 2026-11-30T18:27:02.592Z
    first = session_id_prefix(state, ["binance:main"], ms)
    second = session_id_prefix(state, ["binance:main"], ms)  # a second session, the same millisecond
    other = session_id_prefix(state, ["binance:hedge"], ms)  # another account: its own stamps
    # a restart after the wall clock stepped back a second still gets a new stamp
    third = session_id_prefix(state, ["okx:main", "binance:main"], ms - 1000)
    assert (first, second, other, third) == (f"tp{base36(ms)}", f"tp{base36(ms + 1)}", f"tp{base36(ms)}",
                                            f"tp{base36(ms + 2)}")
    # hand-computed: 1796063222592 = 22*36^7 + 33*36^6 + 3*36^5 + 21*36^4 + 24*36^3 + 4*36^2
    assert first == "tpmx3lo400"
    # every id starts with the root prefix reconciliation adopts by (modes/live/safety.py)
    assert all(p.startswith("tp") for p in (first, second, other, third))
    oms = OrderManager(id_prefix=second)
    ids = [_new(oms).client_id for _ in range(2)]
    assert ids == [f"{second}-1", f"{second}-2"]
    assert base36(10**12) == "cre66i9s" and base36(0) == "0"
    longest = f"tp{base36(2**63 - 1)}-{2**53}"
    assert len(longest) <= CLIENT_ID_MAX


def test_a_backtest_keeps_deterministic_ids():
    assert [_new(OrderManager()).client_id for _ in range(2)] == ["tp-1", "tp-1"]


def test_the_int_indexed_status_tables_are_the_transition_table():
    """engine.order_state_nb.is_legal (the one table) and engine.oms._LEGAL / _TERMINAL
    (the hot path's lookups of it) say what LEGAL_TRANSITIONS and TERMINAL_STATUSES say,
    for every pair."""
    from engine.oms import _LEGAL, _TERMINAL, LEGAL_TRANSITIONS
    from engine.order_state_nb import is_legal
    from engine.types import OrderStatus
    from engine.types.orders import TERMINAL_STATUSES

    for current in OrderStatus:
        assert _TERMINAL[current] == (current in TERMINAL_STATUSES)
        for new in OrderStatus:
            assert is_legal(current, new) == _LEGAL[current][new] == (new in LEGAL_TRANSITIONS[current])


def test_create_builds_the_dataclass_order_field_for_field():
    """`OrderManager.create` builds its Order by the generated positional builder
    (engine/oms.py `_order_builder`, bench/PROFILE.md 1i): every field equals the dataclass
    constructor's, the mutable defaults are fresh per order, and the keyword call still works."""
    import dataclasses
    from decimal import Decimal

    from engine.oms import Order

    oms = OrderManager()
    args = (BTC, 0, -1, OrderType.LIMIT, TimeInForce.GTX, 123, 7, "x-1", True, True, 99, "p-1", 5, 4,
            Decimal("1.5"), None)
    built = oms.create(*args)
    by_keyword = oms.create(instrument=BTC, instrument_index=0, side=-1, type=OrderType.LIMIT,
                            tif=TimeInForce.GTX, price=123, qty=7, client_id="x-2", post_only=True,
                            reduce_only=True, gtd_ts=99, parent_id="p-1", created_ts=5, trigger_ts=4,
                            arrival_bid=Decimal("1.5"), arrival_ask=None)
    expected = Order(1, "x-1", BTC, 0, -1, OrderType.LIMIT, TimeInForce.GTX, 123, 7, True, True, 99, "p-1",
                     created_ts=5, trigger_ts=4, arrival_bid=Decimal("1.5"), arrival_ask=None)
    assert type(built) is Order
    for f in dataclasses.fields(Order):
        assert getattr(built, f.name) == getattr(expected, f.name), f.name
        assert type(getattr(built, f.name)) is type(getattr(expected, f.name)), f.name
        if f.name not in ("order_no", "client_id"):
            assert getattr(by_keyword, f.name) == getattr(expected, f.name), f.name
    assert by_keyword.order_no == 2 and by_keyword.client_id == "x-2"
    assert built.history is not by_keyword.history and built.ambiguous is not by_keyword.ambiguous
    default = oms.create(BTC, 0, 1, OrderType.MARKET, TimeInForce.IOC, 0, 3)
    assert default.client_id == "tp-3" and default.status == OrderStatus.PENDING and default.parent_id is None


def test_open_client_ids_are_the_open_orders_ids():
    """`open_client_ids` (ctx.open_orders) lists `open_orders`' ids, oldest first, per instrument."""
    eth = load_instruments()["binance:ETH/USDT"]
    oms = OrderManager()
    orders = [_new(oms), oms.create(eth, 1, 1, OrderType.LIMIT, TimeInForce.GTC, 100, 10), _new(oms), _new(oms)]
    oms.set_status(orders[2], OrderStatus.REJECTED, ts=1)
    for instrument in (None, BTC.id, eth.id, "other"):
        assert oms.open_client_ids(instrument) == [o.client_id for o in oms.open_orders(instrument)]
    assert oms.open_client_ids() == ["tp-1", "tp-2", "tp-4"] and oms.open_client_ids(BTC.id) == ["tp-1", "tp-4"]
