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

The shipped models below (`risk_averse`, `power`, `log`, `l3_fifo`) are `QueueModel`s like
any a user writes (venues/sim/models.py, docs/models.md): the kernels know no model by
name. Per-order state: column 0 `ahead` (lots), column 1 `cum_trade` (lots traded at the
price since the last level change; power and log only).
"""

from __future__ import annotations

import math

from numba import njit

from venues.sim.codes import QM_L3_FIFO, QM_LOG, QM_POWER, QM_RISK_AVERSE
from venues.sim.models import QueueModel


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


# --------------------------------------------------------------------------------------
# the shipped models, as QueueModel objects (one hook set per formula above)
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def new_nb(st, s, ahead, param):
    """Every shipped model: the order starts with the visible lots ahead, no trades seen."""
    st[s, 0] = ahead
    if st.shape[1] > 1:
        st[s, 1] = 0.0


@njit(cache=True, _nrt=False)
def filled_nb(st, s, param):
    """Every shipped model: the lots past the order's front (ahead < 0)."""
    return queue_filled_nb(st[s, 0])


@njit(cache=True, _nrt=False)
def risk_averse_depth_nb(st, s, prev, new, param):
    a, c = queue_depth_nb(QM_RISK_AVERSE, param, st[s, 0], 0.0, prev, new)
    st[s, 0] = a


@njit(cache=True, _nrt=False)
def risk_averse_trade_nb(st, s, qty, param):
    st[s, 0] = st[s, 0] - qty


@njit(cache=True, _nrt=False)
def power_depth_nb(st, s, prev, new, param):
    a, c = queue_depth_nb(QM_POWER, param, st[s, 0], st[s, 1], prev, new)
    st[s, 0] = a
    st[s, 1] = c


@njit(cache=True, _nrt=False)
def log_depth_nb(st, s, prev, new, param):
    a, c = queue_depth_nb(QM_LOG, param, st[s, 0], st[s, 1], prev, new)
    st[s, 0] = a
    st[s, 1] = c


@njit(cache=True, _nrt=False)
def prob_trade_nb(st, s, qty, param):
    a, c = queue_trade_nb(QM_POWER, st[s, 0], st[s, 1], qty)
    st[s, 0] = a
    st[s, 1] = c


@njit(cache=True, _nrt=False)
def l3_depth_nb(st, s, prev, new, param):
    """l3_fifo: the core moves ahead exactly from L3 rows; a level change moves nothing."""


@njit(cache=True, _nrt=False)
def l3_trade_nb(st, s, qty, param):
    """l3_fifo: a trade print moves nothing either (an L3 execution is the venue's)."""


risk_averse = QueueModel(width=1, on_new=new_nb, on_depth=risk_averse_depth_nb,
                         on_trade=risk_averse_trade_nb, filled=filled_nb)
power = QueueModel(width=2, on_new=new_nb, on_depth=power_depth_nb, on_trade=prob_trade_nb,
                   filled=filled_nb)
log = QueueModel(width=2, on_new=new_nb, on_depth=log_depth_nb, on_trade=prob_trade_nb,
                 filled=filled_nb)
l3_fifo = QueueModel(width=1, on_new=new_nb, on_depth=l3_depth_nb, on_trade=l3_trade_nb,
                     filled=filled_nb, l3=True)

# the shipped names of the venue table, in kernel-index order (codes.QM_*)
SHIPPED = {"risk_averse": "venues.sim.queue_nb:risk_averse", "power": "venues.sim.queue_nb:power",
           "log": "venues.sim.queue_nb:log", "l3_fifo": "venues.sim.queue_nb:l3_fifo"}
