"""The Venue protocol over the numba simulator, one object per simulated venue name.

Why a thin adapter: `venues.sim.SimCore` holds every simulated instrument in one numba
state for speed; the engine wants one `Venue` per exchange. This maps one onto the other
and converts nothing but ints.
"""

from __future__ import annotations

import numpy as np

from engine.oms import Order


class SimulatedVenue:
    """One venue name's slice of a shared `SimCore` (see engine.venue.Venue)."""

    def __init__(self, name: str, core, config) -> None:
        self.name = name
        self._core = core
        self.config = config
        self.maker_fee_bps = config.maker_fee_bps
        self.taker_fee_bps = config.taker_fee_bps
        # orders lock funds and beyond the free balance are rejected insufficient_balance
        self.enforce_balances = config.enforce_balances

    def submit(self, order: Order, ts: int) -> None:
        self._core.submit(order.order_no, order.instrument_index, order.side, int(order.type),
                          int(order.tif), order.price, order.qty, order.post_only, order.gtd_ts, ts)

    def cancel(self, order: Order, ts: int) -> None:
        self._core.cancel(order.order_no, ts)

    def amend(self, order: Order, price: int, qty: int, ts: int) -> None:
        self._core.amend(order.order_no, price, qty, ts)

    def balances(self) -> dict:
        """{asset: (free, locked)} as the venue holds them now (exact; see SimCore.balances)."""
        return self._core.balances(self.name)

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        return self._core.local_bbo(instrument_index)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._core.local_levels(instrument_index, side, n)
