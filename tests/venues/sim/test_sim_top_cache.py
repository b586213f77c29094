"""`SimCore.local_bbo` remembers the top of book until a kernel runs again, and
`run_until` checks its wake masks once per array (venues/sim/core.py; bench/PROFILE.md 1g):
neither may ever hand out a stale top or let a bad mask through."""

import numpy as np
import pytest
from sim_helpers import BUY, DELTA, FAR, SELL, make_core

from engine.errors import ConfigError
from venues.sim import WakeKind


def test_the_remembered_top_follows_every_book_change():
    # hand-computed tops after each local_ts (latency 0): bid/ask price and quantity
    rows = [(1, DELTA, BUY, 100_00, 5), (1, DELTA, SELL, 100_10, 7),
            (2, DELTA, BUY, 100_05, 2),   # a better bid
            (3, DELTA, BUY, 100_05, 0),   # ... removed: back to 100_00
            (4, DELTA, SELL, 100_10, 3),  # the ask's size changes
            (5, DELTA, SELL, 100_10, 0)]  # the ask side empties
    want = {1: (100_00, 5, 100_10, 7), 2: (100_05, 2, 100_10, 7), 3: (100_00, 5, 100_10, 7),
            4: (100_00, 5, 100_10, 3), 5: (100_00, 5, 0, 0)}
    core = make_core(rows)
    wb = np.ones(1, dtype=bool)
    wt = np.zeros(1, dtype=bool)
    seen = {}
    while True:
        wake = core.run_until(FAR, wb, wt)
        if wake.kind == WakeKind.END:
            break
        assert wake.kind == WakeKind.BOOK
        first = core.local_bbo(0)
        assert core.local_bbo(0) == first == core._bbo_of(0, 1)  # remembered, and equal to the arrays
        seen[wake.ts] = first
    assert seen == want


def test_the_remembered_top_is_forgotten_when_anyone_takes_the_kernel_state():
    core = make_core([(1, DELTA, BUY, 100_00, 5), (1, DELTA, SELL, 100_10, 7), (9, DELTA, BUY, 100_02, 1)])
    none = np.zeros(1, dtype=bool)
    assert core.run_until(5, none, none).kind == WakeKind.BOUND
    assert core.local_bbo(0) == (100_00, 5, 100_10, 7)
    core._args()  # the compiled loop takes the arrays this way, then runs its kernel
    assert core._tops == {}
    assert core.run_until(FAR, none, none).kind == WakeKind.END
    assert core.local_bbo(0) == (100_02, 1, 100_10, 7)
    assert core.local_bbo(np.int64(0)) == (100_02, 1, 100_10, 7)  # any index type, same answer
    with pytest.raises(Exception, match="out of range"):
        core.local_bbo(1)


def test_masks_are_checked_again_for_every_new_array():
    core = make_core([(1, DELTA, BUY, 100_00, 5), (1, DELTA, SELL, 100_10, 7)])
    good = np.zeros(1, dtype=bool)
    assert core.run_until(0, good, good).kind == WakeKind.BOUND
    with pytest.raises(ConfigError, match="wake_book"):
        core.run_until(0, np.zeros(2, dtype=bool), good)
    with pytest.raises(ConfigError, match="triggers"):
        core.run_until(0, good, good, np.zeros((1, 1), dtype=np.int64))
    assert core.run_until(0, [False], good).kind == WakeKind.BOUND  # converted, not remembered
    assert core.run_until(0, good, good).kind == WakeKind.BOUND
