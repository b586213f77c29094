"""The session's one-pass pre-submit check (`RiskEngine.check_submit`) is the reference chain.

`check_submit` is a second copy of the rules, written for speed (bench/bench_risk.py, issue
13's p99 < 5 us); `submit_reference` runs the reference methods (`check_lots`, then
`check_exposure`, then `needs_approval_lots`) that the hand-computed tests in
test_engine_risk.py pin. Here both run on identically prepared engines over random
configs, books (empty sides, remembered mids), positions, held exposure, risk states,
bypass and order-rate windows, and must give the same verdict and leave the same state
(the order-rate window, the remembered mids).
"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.risk import APPROVAL, RiskConfig, RiskEngine, RiskState
from engine.types import load_instruments

IDS = ("binance:BTC/USDT", "binance:ETH/USDT", "okx:BTC/USDT")


class _Pos:
    def __init__(self, lots: int) -> None:
        self.lots = lots


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
    engine._recent_submits.extend(window)
    return engine


@settings(max_examples=800, deadline=None)
@given(table=st.fixed_dictionaries({}, optional=_LIMITS),
       venue_pct=st.sampled_from([None, "30", "100"]),
       positions=st.lists(st.integers(-3_000, 3_000), min_size=3, max_size=3),
       books=st.lists(_book, min_size=3, max_size=3), earlier=st.lists(_book, min_size=3, max_size=3),
       holds=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1, -1]), st.integers(0, 3_000)), max_size=6),
       index=st.integers(0, 2), side=st.sampled_from([1, -1]), lots=st.integers(1, 5_000),
       ticks=st.one_of(st.just(0), st.integers(1, 6_000_000)), open_orders=st.integers(0, 7),
       reduce_only=_mostly, state=st.sampled_from([RiskState.ACTIVE] * 6 + [RiskState.REDUCING, RiskState.HALTED]),
       bypass=_mostly,
       window=st.lists(st.integers(0, 2_000_000_000), max_size=5))
def test_check_submit_is_the_reference_chain(table, venue_pct, positions, books, earlier, holds, index, side, lots,
                                             ticks, open_orders, reduce_only, state, bypass, window):
    if venue_pct is not None and "max_total_position_notional" in table:
        table = table | {"max_venue_exposure_pct": venue_pct}
    specs = load_instruments()
    insts = [specs[i] for i in IDS]
    config = RiskConfig.from_table(table)
    window = sorted(window)
    now = 2_000_000_000
    args = (config, insts, positions, books, earlier, holds, state, bypass, window)
    fast, ref = _engine(*args), _engine(*args)
    got = fast.check_submit(index, now, side, lots, ticks, open_orders, reduce_only)
    mid2 = ref.mid2_now(index)
    expected = ref.submit_reference(index, now, side, lots, ticks, open_orders, reduce_only, mid2)
    event(f"verdict {got}")
    assert got == expected
    assert list(fast._recent_submits) == list(ref._recent_submits)
    assert fast._mid2 == ref._mid2


def test_every_verdict_is_reached():
    """The random cases above are not all passes: a hand-made book reaches the refusals
    and the approval through check_submit (BTC/USDT tick 0.01, lot 0.00001)."""
    specs = load_instruments()
    insts = [specs[i] for i in IDS]
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
