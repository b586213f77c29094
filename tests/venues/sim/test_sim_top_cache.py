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


def _run_all(core, submits):
    wb = np.ones(1, dtype=bool)
    wt = np.ones(1, dtype=bool)
    for no, side, price in submits:
        core.submit(no, 0, side, 1, 1, price, 2, False, 0, 0)  # limit GTC, 2 lots
    out = []
    while True:
        wake = core.run_until(FAR, wb, wt)
        if wake.kind == WakeKind.ORDER:  # the row's kind, as a driver reads it without the row
            assert core.order_kind == int(wake.record["kind"])
        out.append((int(wake.kind), wake.ts, wake.instrument,
                    None if wake.record is None else wake.record.tobytes()))
        if wake.kind == WakeKind.END:
            return out, core.drain_bbo().tobytes(), core.drain_trades().tobytes()


def test_the_kernels_entry_point_gives_the_dispatchers_run(monkeypatch):
    """run_until calls run_nb's compiled entry point while its arguments stay the same
    objects (`_entry_point`); the same feed through the dispatcher on every call gives
    the same wakes, rows and tapes, across feed chunks (each pull rebuilds the arguments)."""
    from sim_helpers import TRADE

    from venues.sim import core as core_module

    rows = []
    for k in range(3_000):
        ts = 10 + k
        rows.append((ts, DELTA, BUY if k % 2 else SELL, (100_00 - k % 5) if k % 2 else (100_10 + k % 5), 1 + k % 9))
        if k % 7 == 0:
            rows.append((ts, TRADE, BUY if k % 3 else SELL, 100_00 + k % 11, 1 + k % 4))
    submits = [(no, BUY if no % 2 else SELL, 100_00 - no % 4 if no % 2 else 100_10 + no % 4) for no in range(1, 40)]
    resolved = []

    def counted(*args):
        resolved.append(1)
        return entry_point(*args)

    entry_point = core_module._entry_point
    monkeypatch.setattr(core_module, "_entry_point", counted)
    fast_core = make_core(rows, chunk=700)
    fast = _run_all(fast_core, submits)
    assert fast_core._fast is not None  # the entry point was used
    assert len(resolved) == 1  # once: a pulled chunk or a grown buffer keeps the types (_same_types)
    monkeypatch.setattr(core_module, "_entry_point", lambda *a: None)
    slow_core = make_core(rows, chunk=700)
    slow = _run_all(slow_core, submits)
    assert slow_core._fast is None
    assert fast == slow
    assert sum(1 for w in fast[0] if w[0] == int(WakeKind.ORDER)) >= 39  # every submit answered


def test_same_types_tells_what_numba_would_type_differently():
    from venues.sim.core import _same_types

    a = np.zeros((4, 3), dtype=np.int64)
    assert _same_types((a, None, 5), (a, None, 5))
    assert _same_types((np.ones((8, 3), dtype=np.int64),), (a,))  # another size: the same type
    assert not _same_types((a[:, ::2],), (a,))  # not contiguous: layout 'A'
    assert not _same_types((np.asfortranarray(a),), (a,))  # layout 'F'
    assert not _same_types((a.astype(np.int32),), (a,))
    assert not _same_types((a[0],), (a,))  # one dimension fewer
    frozen = a.copy()
    frozen.flags.writeable = False
    assert not _same_types((frozen,), (a,))  # read-only
    assert not _same_types((None,), (a,)) and not _same_types((a,), (None,))
    assert not _same_types(([1, 2],), ([1, 2],))  # equal lists, other objects: not decided here
