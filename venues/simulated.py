"""The Venue protocol over the numba simulator, one object per simulated venue name.

Why a thin adapter: `venues.sim.SimCore` holds every simulated instrument in one numba
state for speed; the engine wants one `Venue` per exchange. This maps one onto the other
and converts nothing but ints.
"""

from __future__ import annotations

import numpy as np

from engine.oms import Order
from venues.sim.codes import Q_BALANCES, Q_OPEN_ORDERS


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
        # the asset a fill's fee is charged in (engine.fees.fill_fee): "quote" or "received"
        self.fee_asset = getattr(config, "fee_asset", "quote")
        # `top_of_book(instrument_index)` is the core's `local_bbo` itself, not a method that
        # calls it: the session reads the top 3-4 times per order event (the strategy's best
        # prices, the submit's arrival prices, risk's mid, the equity marks), and a frame
        # less per read is ~0.1 us of each (bench/PROFILE.md 1j)
        self.top_of_book = core.local_bbo

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

    # -- queries (engine.venue.QueryableVenue): answered by the venue at the right latency
    def request_order_state(self, order: Order, ts: int) -> None:
        """Look one order up: the core answers with a STATE row after the round trip
        (entry + response latency), which the session completes from `order_history`.
        In a run with venue faults the faults' bookkeeping answers instead, once the venue
        is reachable again (an outage or halt answers no query; venues/sim/faults.py)."""
        if self.faults is not None:
            self.faults.order_state(order, ts, self.config.response_ns)
            return
        self._core.query(order.order_no, order.instrument_index, ts)

    def request_open_orders(self, ts: int) -> None:
        """One STATE row per open order of ours at this venue, as of the query's arrival."""
        self._core.query(Q_OPEN_ORDERS, self._first_instrument(), ts)

    def request_balances(self, ts: int) -> None:
        """A marker row after the round trip; the session then reads `balances()` (the
        venue's balances as the exchange side holds them at that moment)."""
        self._core.query(Q_BALANCES, self._first_instrument(), ts)

    def order_history(self, order_no: int):
        """(fill rows, end row or None) of one order, as the venue produced them."""
        return self._core.order_history(order_no)

    def push(self, rows: np.ndarray) -> None:
        """Market rows (EVENT_DTYPE) for a push-mode core (paper mode)."""
        self._core.push(rows)

    def _first_instrument(self) -> int:
        return next(i for i, inst in enumerate(self._core.instruments) if inst.venue == self.name)

    def balances(self) -> dict:
        """{asset: (free, locked)} as the venue holds them now (exact; see SimCore.balances)."""
        return self._core.balances(self.name)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._core.local_levels(instrument_index, side, n)
