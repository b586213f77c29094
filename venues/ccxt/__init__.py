"""Testnet and live venues through ccxt (REST) and ccxt.pro (websockets).

Public API: `CcxtVenue` (engine.venue.QueryableVenue over a ccxt.pro exchange).
"""

from venues.ccxt.venue import CcxtVenue, classify_error, order_status

__all__ = ["CcxtVenue", "classify_error", "order_status"]
