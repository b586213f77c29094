"""Partial-fill drought (venues.sim.faults `partial_fill_drought`, matching_nb.drought_nb):
inside its window every passive fill the feed drives is cut to `fraction` of its size
(rounded down, at least one lot); outside it, and between owners, nothing changes.
Hand-computed on the matching tests' book (tests/venues/sim/test_sim_matching.py)."""

from __future__ import annotations

import pytest
from sim_helpers import BUY, DELTA, SELL, TRADE, drain, fills, make_core

from engine.errors import ConfigError
from engine.types.orders import OrderType, TimeInForce

LIMIT, GTC = OrderType.LIMIT, TimeInForce.GTC
BOOK = [(0, DELTA, BUY, 99, 10), (0, DELTA, BUY, 98, 20), (0, DELTA, SELL, 101, 10)]


def _core(extra, drought=None):
    core = make_core(BOOK + extra)
    if drought is not None:
        core.set_fill_drought("sim", *drought)
    return core


def test_queue_fills_come_in_pieces_inside_the_window_only():
    # 10 lots ahead at 99; trades of 4, 8, 9 sell at 99 (as test_sim_matching's first test):
    # without a drought the order fills 2 then 3. With a 25 % drought over [0, 25): the
    # trade at 20 owes 2 -> 2 * 0.25 = 0.5 -> 1 lot (at least one); the trade at 30 is
    # outside the window and fills the remaining 4.
    core = _core([(10, TRADE, SELL, 99, 4), (20, TRADE, SELL, 99, 8), (30, TRADE, SELL, 99, 9)],
                 drought=(0, 25, 250_000))
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    assert fills(drain(core)) == [(1, 99, 1), (1, 99, 4)]


def test_a_trade_through_fills_a_fraction_of_the_order():
    # a sell at 98 trades through our bid at 99: normally all 40 lots fill; at 30 % 12 do,
    # then the second print (still inside the window) fills 30 % of the 28 left: 8
    core = _core([(10, TRADE, SELL, 98, 1), (20, TRADE, SELL, 98, 1)], drought=(0, 100, 300_000))
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 40, False, 0, 5)
    assert fills(drain(core)) == [(1, 99, 12), (1, 99, 8)]


def test_a_crossed_book_fills_a_fraction_each_time_it_moves():
    # an ask at 98 crosses our bid at 99 (rule c): 50 % of 5 = 2 lots, then the ask level
    # changes again (still crossed): 50 % of 3 = 1 lot
    core = _core([(10, DELTA, SELL, 98, 3), (20, DELTA, SELL, 98, 2)], drought=(0, 100, 500_000))
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    assert fills(drain(core)) == [(1, 99, 2), (1, 99, 1)]


def test_the_fraction_is_checked():
    with pytest.raises(ConfigError, match="fraction 0 ppm outside"):
        _core([], drought=(0, 10, 0))
