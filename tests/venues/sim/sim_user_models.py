"""Queue models a user writes (docs/models.md), named in tests by 'sim_user_models:NAME'."""

from __future__ import annotations

import math

from numba import njit

from venues.sim.models import QueueModel

N_LOTS = 5.0  # after_five: the order fills once this many lots traded at its price


@njit(cache=True)
def after_new(st, s, ahead, param):
    # the visible queue is ignored: N_LOTS must trade at the price first
    st[s, 0] = N_LOTS
    st[s, 1] = 0.0
    st[s, 2] = 0.0


@njit(cache=True)
def after_depth(st, s, prev, new, param):
    # cancellations and additions at the level never move the order
    st[s, 1] += 1.0  # column 1: level changes seen (state of the model's own)


@njit(cache=True)
def after_trade(st, s, qty, param):
    st[s, 0] -= qty
    st[s, 2] += qty  # column 2: lots traded at the price since the order rested


@njit(cache=True)
def after_filled(st, s, param):
    if st[s, 0] >= 0.0:
        return 0
    return int(math.floor(-st[s, 0] + 1e-9))


after_five = QueueModel(width=3, on_new=after_new, on_depth=after_depth, on_trade=after_trade,
                        filled=after_filled)


@njit(cache=True)
def bad_trade(st, s):  # one argument short
    st[s, 0] = 0.0


wrong_signature = QueueModel(width=1, on_new=after_new, on_depth=after_depth, on_trade=bad_trade,
                             filled=after_filled)
width_not_int = QueueModel(width=2.5, on_new=after_new, on_depth=after_depth,  # type: ignore[arg-type]
                           on_trade=after_trade, filled=after_filled)
not_a_model = {"width": 1}
# after_five's functions use columns 0..2: declared 2 wide, on_new writes beyond its width
too_narrow = QueueModel(width=2, on_new=after_new, on_depth=after_depth, on_trade=after_trade,
                        filled=after_filled)
too_wide = QueueModel(width=1_000_000, on_new=after_new, on_depth=after_depth, on_trade=after_trade,
                      filled=after_filled)


@njit(cache=True)
def reads_far(st, s, param):
    return int(st[s, 7])  # reads a column it does not own


reads_beyond = QueueModel(width=3, on_new=after_new, on_depth=after_depth, on_trade=after_trade,
                          filled=reads_far)


@njit(cache=True)
def share_new(st, s, ahead, param):
    st[s, 0] = 1.0 / ahead  # fails for an order opening a level (nothing ahead of it)


divides_by_ahead = QueueModel(width=3, on_new=share_new, on_depth=after_depth, on_trade=after_trade,
                              filled=after_filled)
