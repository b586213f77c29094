"""The Venue protocol: the only view the engine has of any exchange, simulated or real.

Why a protocol: the kernel, OMS, risk and strategies must run unchanged against the
numba simulator, the local emulator over ccxt, a testnet and a live venue. Venues report
back through the session's entry points with the typed records of
`engine.types.venue_reports` (`on_command_result`, `on_venue_state`, `on_venue_fill`,
`on_balances`); the simulated venue's numeric `ORDER_EVENT_DTYPE` rows enter through
`on_order_event`, which converts them to the same records (engine/venue_merge.py), so
one merge path serves every mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from engine.oms import Order


class Venue(Protocol):
    name: str
    maker_fee_bps: object
    taker_fee_bps: object

    def submit(self, order: Order, ts: int) -> None:
        """Send a new order (ticks/lots on the Order); responses arrive later."""

    def cancel(self, order: Order, ts: int) -> None:
        """Ask the venue to cancel an open order."""

    def amend(self, order: Order, price: int, qty: int, ts: int) -> None:
        """Ask to change price (ticks) and total quantity (lots) of an open order."""

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        """Local best bid price, bid qty, ask price, ask qty (qty 0 = empty side)."""

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best n local levels of one side (+1 bids, -1 asks), best first."""


class QueryableVenue(Venue, Protocol):
    """A venue the OMS can question (live venues, and the simulated venue for parity).

    Why asynchronous requests and not return values: a real venue answers over the network,
    and the event loop must never block on it. Every answer comes back through the session's
    entry points as the typed records of `engine.types.venue_reports`:
    `TradingSession.on_command_result(CommandResult)`, `on_venue_state(VenueOrderState)`,
    `on_venue_fill(VenueFill)` and `on_balances(venue, {asset: (free, locked)})`.
    """

    def request_order_state(self, order: Order, ts: int) -> None:
        """Look one order up by client id (order, then open orders, then my trades).

        Answers with a VenueOrderState (found=False when the venue has no such order) and
        a VenueFill for each fill of it the venue lists.
        """

    def request_open_orders(self, ts: int) -> None:
        """All open orders of the account (ours and not ours), as VenueOrderState records."""

    def request_balances(self, ts: int) -> None:
        """The account's balances, answered through `on_balances`."""

    def push(self, rows: np.ndarray) -> None:
        """Market rows (EVENT_DTYPE) received from a live feed (paper mode's data path)."""
