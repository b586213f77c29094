"""The example market maker blind to venue health: it quotes through outages, maintenance,
disconnects and rate limits (breaks no_order_while_down, no_ban and
cancel_on_disconnect_within on purpose)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

from market_maker import MarketMaker  # noqa: E402


class HeedlessMarketMaker(MarketMaker):
    def venue_state(self, ctx) -> str:
        return "up"
