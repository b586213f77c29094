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

    def __init__(self, name: str, core, config, faults=None) -> None:
        self.name = name
        self._core = core
        self.config = config
        # venues.sim.faults.SimFaults of a stress scenario: refuses or loses requests and replies
        self.faults = faults
        self.maker_fee_bps = config.maker_fee_bps
        self.taker_fee_bps = config.taker_fee_bps
        # orders lock funds and beyond the free balance are rejected insufficient_balance
        self.enforce_balances = config.enforce_balances

    def submit(self, order: Order, ts: int) -> None:
        if self.faults is not None and self.faults.intercept(self.name, "submit", order, ts, self.config.response_ns):
            return
        self._core.submit(order.order_no, order.instrument_index, order.side, int(order.type),
                          int(order.tif), order.price, order.qty, order.post_only, order.gtd_ts, ts)

    def cancel(self, order: Order, ts: int) -> None:
        if self.faults is not None and self.faults.intercept(self.name, "cancel", order, ts, self.config.response_ns):
            return
        self._core.cancel(order.order_no, ts)

    def amend(self, order: Order, price: int, qty: int, ts: int) -> None:
        if self.faults is not None and self.faults.intercept(self.name, "amend", order, ts, self.config.response_ns):
            return
        self._core.amend(order.order_no, price, qty, ts)

    def request_order_state(self, order: Order, ts: int) -> None:
        """Look an order up by client id (engine.venue.QueryableVenue): answered through the
        session's `on_venue_state` after the response latency, with what the venue knows of
        it then (found=False for an order it never received). Needs a run with venue
        faults, whose bookkeeping keeps every order's venue-side state."""
        if self.faults is None:
            from engine.errors import ConfigError

            raise ConfigError("simulated venue: order lookups are answered in runs with venue faults only")
        self.faults.order_state(order, ts, self.config.response_ns)

    def balances(self) -> dict:
        """{asset: (free, locked)} as the venue holds them now (exact; see SimCore.balances)."""
        return self._core.balances(self.name)

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        return self._core.local_bbo(instrument_index)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._core.local_levels(instrument_index, side, n)
