"""The one implementation of the pre-trade checks (`engine.risk_nb`) gives the verdicts of
the former Decimal rules, in Python (`RiskEngine.check_submit`, every mode) and in numba
(the compiled fast path).

The oracle below is the Decimal code `RiskEngine.check` held before the checks became one
kernel (kept here only), with one fix of kind: an order's notional is the instrument's
quote value (`Instrument.notional`: x contract_size for contracts; an inverse contract's
face value whatever the price), where the old code took qty x price for every instrument.
Random configs, books (empty sides, remembered mids), positions, held exposure, states,
bypass and order-rate windows run on spot, USD-M and COIN-M instruments.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from numba import njit

from engine.risk import APPROVAL, RiskConfig, RiskEngine, RiskState
from engine.risk_nb import (
    REASON_OF,
    RISK_OK,
    ST_ACTIVE,
    pretrade_check,
    rate_window,
    risk_limits,
    venue_minimums,
)
from engine.types import load_instruments
from engine.types.orders import ReasonCode

SETS = {
    "spot": ("binance:BTC/USDT", "binance:ETH/USDT", "okx:BTC/USDT"),
    "usdm": ("binanceusdm:BTC/USDT:USDT", "binanceusdm:ETH/USDT:USDT", "binanceusdm:BTC/USDT:USDT-251226"),
    "coinm": ("binancecoinm:BTC/USD:BTC", "binancecoinm:ETH/USD:ETH", "binancecoinm:BTC/USD:BTC-251226"),
}
_C = ReasonCode
SECOND_NS = 1_000_000_000


class _Pos:
    def __init__(self, lots: int) -> None:
        self.lots = lots


def _notional(inst, qty: Decimal, price: Decimal) -> Decimal:
    """The quote value of qty at price (`Instrument.notional`, in Decimals)."""
    if inst.inverse:
        return qty * inst.contract_size
    return qty * price * (inst.contract_size if inst.contract else 1)


def oracle_check(cfg: RiskConfig, inst, window: deque, *, state, state_reason, bypass, now, side, qty, price,
                 mid, position, open_orders, reduce_only, count=True):
    """The former `RiskEngine.check` (Decimal qty/price/mid/position), notional fixed as above."""
    if state is not RiskState.ACTIVE and not bypass and state is RiskState.HALTED:
        return _C.KILL_SWITCH if state_reason == "kill" else _C.RISK_HALTED
    reference = price if price is not None else mid
    if inst.inverse and reference is None:
        reference = Decimal(0)  # its face value needs no price (the fix of kind above)
    if cfg.max_order_notional is not None and reference is not None:
        if _notional(inst, qty, reference) > cfg.max_order_notional:
            return _C.MAX_ORDER_NOTIONAL
    if cfg.max_position is not None and abs(position + side * qty) > cfg.max_position:
        return _C.MAX_POSITION
    reducing = state is RiskState.REDUCING and not bypass
    if reduce_only or cfg.reduce_only or reducing:
        if position == 0 or (position > 0) == (side > 0) or qty > abs(position):
            return _C.REDUCE_ONLY if (reduce_only or cfg.reduce_only) else _C.RISK_REDUCING
    if cfg.max_open_orders is not None and open_orders >= cfg.max_open_orders:
        return _C.MAX_OPEN_ORDERS
    if cfg.price_band_bps is not None and price is not None and mid is not None and mid > 0:
        if abs(price - mid) * 10000 > cfg.price_band_bps * mid:
            return _C.PRICE_BAND
    if cfg.max_orders_per_second is not None and not bypass:
        while window and window[0] <= now - SECOND_NS:
            window.popleft()
        if len(window) >= cfg.max_orders_per_second:
            return _C.ORDER_RATE
        if count:
            window.append(now)
    return None


def oracle_venue_rules(inst, qty: Decimal, reference: Decimal | None):
    """The session's former Decimal venue filters (notional fixed as above)."""
    if qty < inst.min_qty:
        return _C.MIN_QTY
    if inst.inverse and reference is None:
        reference = Decimal(0)
    if reference is not None and inst.min_notional and _notional(inst, qty, reference) < inst.min_notional:
        return _C.MIN_NOTIONAL
    return None


def _ring(config: RiskConfig, window: list[int]) -> list[int]:
    """An order-rate window holding the newest `cap` of `window` (what the engine ever keeps:
    a count at the cap refuses, so the verdicts are those of the whole window)."""
    ring = rate_window(config).tolist()
    cap = config.max_orders_per_second or 0
    kept = window[-cap:] if cap else []
    ring[1] = len(kept)
    ring[2:2 + len(kept)] = kept
    return ring


def _engine(config, insts, positions, books, earlier, holds, state, bypass, window):
    engine = RiskEngine(config)
    current = list(earlier)  # the tops first show the earlier books (remembered mids) ...
    engine.bind(insts, [_Pos(p) for p in positions],
                [lambda j=j: (current[j][0], current[j][1], current[j][0] + current[j][2], current[j][3])
                 for j in range(len(insts))])
    for j in range(len(insts)):
        engine.mid2(j)
    current[:] = books  # ... then the books now
    for k, (i, side, lots) in enumerate(holds):
        engine.hold(f"k{k}", i, side, lots)
    engine.state, engine.state_reason = state, (None if state is RiskState.ACTIVE else "kill")
    engine.bypass = bypass
    engine.load_rate_window(_ring(config, window))
    return engine


_qty = st.sampled_from([0, 1, 2, 3, 4, 5, 6])  # 0 (an empty side) one time in seven
_book = st.tuples(st.integers(1, 6_000_000), _qty, st.integers(0, 400), _qty)  # bid, bid qty, spread, ask qty
_mostly = st.sampled_from([False] * 6 + [True])
_LIMITS = {
    "max_order_notional": st.sampled_from([50, "2500.5", 50_000, 10**7]),
    "max_position": st.sampled_from(["0.001", "0.05", "3", "1000"]),
    "max_open_orders": st.integers(1, 12),
    "price_band_bps": st.sampled_from(["0.5", "3", "25.25", "500"]),
    "max_orders_per_second": st.integers(1, 4),
    "reduce_only": _mostly,
    "max_position_notional": st.sampled_from([10, "999.99", 20_000, 10**8]),
    "max_open_notional": st.sampled_from([10, "999.99", 20_000, 10**8]),
    "max_total_position_notional": st.sampled_from([10, "1500.5", 40_000, 10**8]),
    "max_total_open_notional": st.sampled_from([10, "1500.5", 40_000, 10**8]),
    "approval_notional": st.sampled_from(["0.01", 100, "5000.5", 10**7]),
}


@settings(max_examples=800, deadline=None)
@given(kind=st.sampled_from(sorted(SETS)), table=st.fixed_dictionaries({}, optional=_LIMITS),
       venue_pct=st.sampled_from([None, "30", "100"]),
       positions=st.lists(st.integers(-3_000, 3_000), min_size=3, max_size=3),
       books=st.lists(_book, min_size=3, max_size=3), earlier=st.lists(_book, min_size=3, max_size=3),
       holds=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1, -1]), st.integers(0, 3_000)), max_size=6),
       index=st.integers(0, 2), side=st.sampled_from([1, -1]), lots=st.integers(1, 5_000),
       ticks=st.one_of(st.just(0), st.integers(1, 6_000_000)), open_orders=st.integers(0, 7),
       reduce_only=_mostly, state=st.sampled_from([RiskState.ACTIVE] * 6 + [RiskState.REDUCING, RiskState.HALTED]),
       bypass=_mostly,
       window=st.lists(st.integers(0, 2_000_000_000), max_size=5))
def test_check_submit_gives_the_decimal_verdicts(kind, table, venue_pct, positions, books, earlier, holds, index,
                                                 side, lots, ticks, open_orders, reduce_only, state, bypass, window):
    if venue_pct is not None and "max_total_position_notional" in table:
        table = table | {"max_venue_exposure_pct": venue_pct}
    specs = load_instruments()
    insts = [specs[i] for i in SETS[kind]]
    inst = insts[index]
    config = RiskConfig.from_table(table)
    window = sorted(window)
    now = 2_000_000_000
    args = (config, insts, positions, books, earlier, holds, state, bypass, window)
    engine, ref = _engine(*args), _engine(*args)
    got = engine.check_submit(index, now, side, lots, ticks, open_orders, reduce_only)
    # the oracle: the Decimal check at the mid now, then the exposure limits, then approval
    mid2 = ref.mid2_now(index)
    mid = inst.ticks_to_price(mid2) / 2 if mid2 else None
    price = inst.ticks_to_price(ticks) if ticks else None
    old_window = deque(window)
    expected = oracle_check(config, inst, old_window, state=state, state_reason=ref.state_reason, bypass=bypass,
                            now=now, side=side, qty=inst.lots_to_qty(lots), price=price, mid=mid,
                            position=inst.lots_to_qty(positions[index]), open_orders=open_orders,
                            reduce_only=reduce_only)
    if expected is None:
        expected = ref.check_exposure(index, side, lots, ticks, mid2)
    if expected is None and config.approval_notional is not None and not bypass:
        reference = price if price is not None else (Decimal(0) if inst.inverse else mid)
        notional = None if reference is None else _notional(inst, inst.lots_to_qty(lots), reference)
        if notional is not None and notional > 0 and notional >= config.approval_notional:
            expected = APPROVAL
    event(f"{kind} verdict {got}")
    assert got == expected
    cap = config.max_orders_per_second or 0
    assert engine.recent_submits() == list(old_window)[-cap:] if cap else engine.recent_submits() == []
    assert engine._mid2 == ref._mid2


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(SETS)), index=st.integers(0, 2), lots=st.integers(0, 3_000),
       reference=st.one_of(st.just(0), st.integers(1, 6_000_000)))
def test_venue_minimums_give_the_decimal_verdicts(kind, index, lots, reference):
    inst = load_instruments()[SETS[kind][index]]
    lim = risk_limits(RiskConfig(), [inst]).tolist()[0]
    got = REASON_OF[venue_minimums(lim, lots, reference)]
    expected = oracle_venue_rules(inst, inst.lots_to_qty(lots), inst.ticks_to_price(reference) if reference else None)
    assert got == expected


@njit(cache=True)
def _kernel_nb(limits, ring, inst, now, side, lots, price, mid2, position, open_orders):
    """The checks as the compiled loop calls them (venues.sim.compiled_nb)."""
    lim = limits[inst]
    code = venue_minimums(lim, lots, price)
    if code == RISK_OK:
        code = pretrade_check(lim, ring, ST_ACTIVE, False, now, side, lots, price, mid2, position, open_orders,
                              False, True)
    return code


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(SETS)), table=st.fixed_dictionaries({}, optional={
           k: _LIMITS[k] for k in ("max_order_notional", "max_position", "max_open_orders", "price_band_bps",
                                   "max_orders_per_second", "reduce_only")}),
       orders=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 600_000_000), st.sampled_from([1, -1]),
                                 st.integers(1, 5_000), st.integers(1, 6_000_000), st.integers(0, 12_000_000),
                                 st.integers(-3_000, 3_000), st.integers(0, 7)), min_size=1, max_size=12))
def test_numba_and_python_run_the_same_checks(kind, table, orders):
    """The compiled loop's numba copy of the function and the Python one decide alike and
    leave the same order-rate window, order after order (int64 vs Python ints)."""
    insts = [load_instruments()[i] for i in SETS[kind]]
    config = RiskConfig.from_table(table)
    limits = risk_limits(config, insts)
    rows = limits.tolist()
    ring_nb, ring_py = rate_window(config), rate_window(config).tolist()
    now = 0
    for inst, step, side, lots, price, mid2, position, open_orders in orders:
        now += step
        got = _kernel_nb(limits, ring_nb, inst, now, side, lots, price, mid2, position, open_orders)
        code = venue_minimums(rows[inst], lots, price)
        if code == RISK_OK:
            code = pretrade_check(rows[inst], ring_py, ST_ACTIVE, False, now, side, lots, price, mid2, position,
                                  open_orders, False, True)
        assert got == code
        assert ring_nb.tolist() == ring_py
    assert isinstance(limits, np.ndarray)


def test_every_verdict_is_reached():
    """The random cases above are not all passes: a hand-made book reaches the refusals
    and the approval through check_submit (BTC/USDT tick 0.01, lot 0.00001)."""
    specs = load_instruments()
    insts = [specs[i] for i in SETS["spot"]]
    book = (10_000_00, 1, 100, 1)  # bid 10000.00, ask 10001.00: mid2 = 2_000_100 ticks
    cases = [
        ({"max_order_notional": 100}, 1_001, 10_000_00, "max_order_notional"),  # 0.01001 x 10000 = 100.10 > 100
        ({"max_order_notional": 100}, 1_000, 10_000_00, None),  # 0.01 x 10000 = 100.00
        ({"max_position": "0.01"}, 1_001, 10_000_00, "max_position"),
        ({"max_open_orders": 1}, 1, 10_000_00, "max_open_orders"),  # one open already
        ({"price_band_bps": 5}, 1, 9_994_00, "price_band"),  # |9994 - 10000.50| / 10000.50 = 6.5 bps
        ({"price_band_bps": 7}, 1, 9_994_00, None),
        ({"max_position_notional": 100}, 999, 10_000_00, None),  # 0.00999 x 10000.50 = 99.905 <= 100
        ({"max_position_notional": 100}, 1_000, 10_000_00, "max_position_notional"),  # 100.005 > 100
        ({"max_open_notional": 100}, 999, 10_000_00, None),  # 0.00999 x 10000.50 = 99.905 <= 100
        ({"max_open_notional": 100}, 1_000, 10_000_00, "max_open_notional"),  # 100.005 > 100
        ({"max_total_open_notional": 100}, 1_000, 10_000_00, "max_total_open_notional"),
        ({"approval_notional": 100}, 1_000, 10_000_00, APPROVAL),  # 0.01 x 10000 = 100 >= 100
        ({"approval_notional": 100}, 999, 10_000_00, None),
    ]
    for table, lots, ticks, expected in cases:
        engine = _engine(RiskConfig.from_table(table), insts, [0, 0, 0], [book] * 3, [book] * 3, [], RiskState.ACTIVE,
                         False, [])
        assert engine.check_submit(0, 0, 1, lots, ticks, 1, False) == expected, table
    # the venue share: 30% of 1000 = 300 on binance; 0.04 x 10000.50 = 400.02 (<= 1000 in total)
    venue = RiskConfig.from_table({"max_total_position_notional": 1000, "max_venue_exposure_pct": 30})
    engine = _engine(venue, insts, [0, 0, 0], [book] * 3, [book] * 3, [], RiskState.ACTIVE, False, [])
    assert engine.check_submit(0, 0, 1, 4_000, 10_000_00, 1, False) == "max_venue_exposure"
    assert engine.check_submit(0, 0, 1, 2_999, 10_000_00, 1, False) is None  # 299.91
    # the order rate: one submit 1 ns ago in the one-second window, one allowed
    rate = RiskConfig.from_table({"max_orders_per_second": 1})
    engine = _engine(rate, insts, [0, 0, 0], [book] * 3, [book] * 3, [], RiskState.ACTIVE, False, [10**9 - 1])
    assert engine.check_submit(0, 10**9, 1, 1, 10_000_00, 1, False) == "order_rate"
    assert engine.check_submit(0, 2 * 10**9 - 1, 1, 1, 10_000_00, 1, False) is None  # the first one left


def test_an_inverse_contract_is_valued_at_its_face_value():
    """COIN-M BTCUSD: one contract is 100 USD whatever the price (binance.com COIN-M
    contract specifications; docs/derivatives.md). 10 contracts = 1,000 USD at 50,000.0 or
    at 5,000.0 (tick 0.1): the old qty x price rule called them 500,000 / 50,000 USD."""
    specs = load_instruments()
    insts = [specs[i] for i in SETS["coinm"]]
    for bid in (500_000, 50_000):  # 50,000.0 and 5,000.0 in ticks of 0.1
        book = (bid, 1, 10, 1)
        for table, lots, expected in [
            ({"max_order_notional": 1000}, 10, None), ({"max_order_notional": 1000}, 11, "max_order_notional"),
            ({"approval_notional": 1000}, 10, APPROVAL), ({"approval_notional": 1000}, 9, None),
            ({"max_position_notional": 1000}, 10, None),
            ({"max_position_notional": 1000}, 11, "max_position_notional"),
            ({"max_total_open_notional": "1999.99"}, 10, "max_total_open_notional"),  # 1000 here + 1000 held
            ({"max_total_open_notional": 2000}, 10, None),
        ]:
            engine = _engine(RiskConfig.from_table(table), insts, [0, 0, 0], [book] * 3, [book] * 3,
                             [(1, 1, 100)] if "total" in next(iter(table)) else [], RiskState.ACTIVE, False, [])
            # ETHUSD's contract is 10 USD: 100 contracts held = 1000 USD
            assert engine.check_submit(0, 0, 1, lots, bid, 0, False) == expected, (bid, table, lots)


def test_a_limit_beyond_int64_saturates_and_still_decides():
    """A user's "practically unlimited" limit used to crash the run (internal error:
    OverflowError filling the int64 limits table). BTC/USDT: tick 0.01, lot 0.00001, so a
    half unit is 0.01 x 0.00001 / 2 = 5e-8 USDT and max_order_notional = 1e12 is 2e19 half
    units (> 2^63): saturated at OFF = 2^62. max_position = 1e20 BTC is 1e25 lots: OFF.
    50,000 USDT stays exact: 50,000 / 5e-8 = 1e12 half units."""
    from engine.risk_nb import OFF, RL_MAX_NOTIONAL2, RL_MAX_OPEN, RL_MAX_POSITION

    specs = load_instruments()
    insts = [specs[i] for i in SETS["spot"]]
    big = RiskConfig.from_table({"max_order_notional": 10**12, "max_position": "1e20", "max_open_orders": 10**30})
    lim = risk_limits(big, insts)
    assert (lim[0, RL_MAX_NOTIONAL2], lim[0, RL_MAX_POSITION], lim[0, RL_MAX_OPEN]) == (OFF, OFF, OFF)
    assert risk_limits(RiskConfig.from_table({"max_order_notional": 50_000}), insts)[0, RL_MAX_NOTIONAL2] == 10**12
    book = (6_000_000, 1, 1, 1)  # bid 60,000.00, ask 60,000.01
    engine = _engine(big, insts, [0, 0, 0], [book] * 3, [book] * 3, [], RiskState.ACTIVE, False, [])
    # 1,000 BTC at 60,000.00 (6e7 USDT): 10^8 lots x 6e6 ticks x 2 = 1.2e15 half units, passes
    assert engine.check_submit(0, 0, 1, 10**8, 6_000_000, 0, False) is None


def test_risk_values_the_int64_checks_cannot_hold_are_config_errors():
    """price_band_bps is an integer ratio num / den multiplied in int64 by the compiled
    check, and max_orders_per_second sizes the rate window (one int64 per order): values
    that would overflow or exhaust memory were internal errors; now one line names the key."""
    import pytest

    from engine.errors import ConfigError

    for table, key in [({"price_band_bps": 12.345678901234567}, "price_band_bps"),
                       ({"price_band_bps": "1e30"}, "price_band_bps"),
                       ({"max_orders_per_second": 10**11}, "max_orders_per_second")]:
        with pytest.raises(ConfigError, match=rf"^\[risk\] {key} = "):
            RiskConfig.from_table(table)
    ok = RiskConfig.from_table({"price_band_bps": "12.3456", "max_orders_per_second": 10_000_000})
    assert ok.price_band_bps == Decimal("12.3456") and ok.max_orders_per_second == 10_000_000
