"""Queue-position models (numba): how much visible quantity is ahead of a resting order.

One small interface, selected by an int code (hftbacktest style, composed not
multiplied): `queue_trade_nb` (a trade printed at our price), `queue_depth_nb` (the feed
changed our level from prev to new), `queue_filled_nb` (whole lots we are owed). The
order's `ahead` starts at the visible quantity of its level when it reaches the venue.

- risk_averse: trade: ahead -= q; level change: ahead = min(ahead, new).
- power:<n> / log (one probabilistic model taking f): keep ahead and cum_trade at the
  price. Trade: ahead -= q, cum_trade += q. Level change prev -> new:
  chg = prev - new - cum_trade; cum_trade = 0; chg < 0: ahead = min(ahead, new); otherwise
  back = prev - ahead, p = f(back) / (f(back) + f(ahead)),
  ahead = min(ahead - (1 - p) * chg + min(back - p * chg, 0), new),
  with f(x) = x**n (power) or log(1 + x) (log).
- l3_fifo: ahead is maintained exactly from L3 rows by the core; these hooks leave it.
"""

from __future__ import annotations

import math

from numba import njit

from venues.sim.codes import QM_L3_FIFO, QM_LOG, QM_POWER


@njit(cache=True, inline="always")
def prob_f_nb(model, param, x):
    """The probability weight f(x) of the probabilistic model."""
    if x <= 0.0:
        return 0.0
    if model == QM_LOG:
        return math.log1p(x)
    return x**param


@njit(cache=True, _nrt=False)
def queue_trade_nb(model, ahead, cum, qty):
    """A trade of `qty` printed at our price. Returns (ahead, cum_trade)."""
    if model == QM_L3_FIFO:
        return ahead, cum
    if model == QM_POWER or model == QM_LOG:
        return ahead - qty, cum + qty
    return ahead - qty, cum


@njit(cache=True, _nrt=False)
def queue_depth_nb(model, param, ahead, cum, prev, new):
    """The feed changed our level from `prev` to `new` lots. Returns (ahead, cum_trade)."""
    if model == QM_L3_FIFO:
        return ahead, cum
    if model == QM_POWER or model == QM_LOG:
        chg = float(prev) - float(new) - cum
        if chg < 0.0:
            return min(ahead, float(new)), 0.0
        back = float(prev) - ahead
        fb = prob_f_nb(model, param, back)
        fa = prob_f_nb(model, param, ahead)
        if fb + fa > 0.0:
            p = fb / (fb + fa)
        else:
            p = 1.0  # nothing on either side: attribute the decrease to the back
        return min(ahead - (1.0 - p) * chg + min(back - p * chg, 0.0), float(new)), 0.0
    return min(ahead, float(new)), cum


@njit(cache=True, inline="always")
def queue_filled_nb(ahead):
    """Whole lots owed to the order once `ahead` went negative (rounded down)."""
    if ahead >= 0.0:
        return 0
    return int(math.floor(-ahead + 1e-9))
