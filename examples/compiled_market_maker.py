"""A compiled market maker: one post-only bid at the best bid and one post-only ask at the
best ask, cancel/replace when the best moves, every `every_ms` (the benchmark's quoter).

    tickparity backtest --strategy examples/compiled_market_maker.py:CompiledTouchQuoter \
        --data synthetic:42:10m

`timer_nb` is plain numba over the compiled `ctx` (engine.compiled, ticks and lots): a
backtest runs it inside the numba venue loop; `engine.compiled.as_strategy` runs the same
function as a normal Strategy in paper/live modes. See README "Compiled strategies".
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from numba import njit

from engine import compiled as cc


@njit(cache=True)
def touch_quoter_nb(ctx, params, state):
    qty = params[0]
    bid_qty = cc.best_bid_qty(ctx, 0)
    ask_qty = cc.best_ask_qty(ctx, 0)
    if bid_qty <= 0 or ask_qty <= 0:
        return
    bid = cc.best_bid(ctx, 0)
    ask = cc.best_ask(ctx, 0)
    quoted_bid = False
    quoted_ask = False
    for k in range(cc.open_count(ctx)):
        if cc.order_cancelling(ctx, k) or cc.order_instrument(ctx, k) != 0:
            continue  # a cancel is already on its way
        side = cc.order_side(ctx, k)
        target = bid if side > 0 else ask
        if cc.order_price(ctx, k) == target and not (quoted_bid if side > 0 else quoted_ask):
            if side > 0:
                quoted_bid = True
            else:
                quoted_ask = True
        else:
            cc.cancel(ctx, cc.order_no(ctx, k))
    if not quoted_bid:
        cc.submit(ctx, 0, cc.BUY, qty, bid, cc.GTX, True)
    if not quoted_ask:
        cc.submit(ctx, 0, cc.SELL, qty, ask, cc.GTX, True)


class CompiledTouchQuoter(cc.CompiledStrategy):
    """Parameters (from [run.params]): qty (base units, a decimal string), every_ms."""

    timer_nb = touch_quoter_nb

    def __init__(self, qty: str = "0.01", every_ms: int = 100) -> None:
        self.qty = Decimal(str(qty))
        self.every_ns = int(every_ms) * 1_000_000

    def setup(self, instruments):
        return np.array([instruments[0].qty_to_lots(self.qty)], dtype=np.int64)
