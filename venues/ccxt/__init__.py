"""Testnet and live venues through ccxt (REST) and ccxt.pro (websockets), with order
handling that survives real venue faults (Binance spot first).

Public API: `CcxtVenue` (engine.venue.QueryableVenue over a ccxt.pro exchange).

Modules, each one concept:
- `venue`: `CcxtVenue`, the session's venue (commands through the gateway, the user stream);
- `outcomes`: a ccxt exception + HTTP status + Binance code -> the command's typed Outcome
  and whether resending is safe;
- `http`: a tap on ccxt's REST replies (status and headers of each request);
- `ratelimit`: the venue's request-weight and order-count budget, corrected from its headers;
- `retry`: exponential backoff with full jitter (seeded in tests);
- `orders`: an engine Order -> the ccxt call (TIF, post-only, STP mode, amend, GTD);
- `parse`: ccxt order / trade dicts -> `engine.types.venue_reports` records;
- `gateway`: the commands and lookups, with the above applied (what a live venue calls);
- `credentials`, `confirm`: keys from the environment or a 0600 file; the live confirmation.

See docs/live.md.
"""

from venues.ccxt.venue import CcxtVenue, order_status

__all__ = ["CcxtVenue", "order_status"]
