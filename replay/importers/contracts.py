"""Contract market data in the event schema: MARK_PRICE and FUNDING_RATE rows.

Why here: every importer that reads mark prices or funding rates (binance-ws
`markPriceUpdate`, Binance dumps `markPriceKlines` / `fundingRate`, Tardis
`derivative_ticker`) encodes them the one way `engine.types.market.EventKind` states:
- a mark price is rounded half-even to the instrument's tick (a venue computes it finer
  than its tick: Binance BTCUSDT marks carry 8 decimals on a 0.1 tick; the rounding error
  is at most half a tick, stated in docs/derivatives.md);
- a funding rate is stored in units of FUNDING_RATE_UNIT (1e-12), its sign in `side`, and
  the settlement's mark (when the source gives one) in `qty` as ticks.
The helpers return decimal texts on the instrument's grid, so `RowBuilder` parses them
like any other row.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from engine.types import EventKind, Instrument
from engine.types.market import FUNDING_RATE_UNIT
from replay.importers.common import RowBuilder

MARK = EventKind.MARK_PRICE.value
FUNDING = EventKind.FUNDING_RATE.value


def mark_ticks(inst: Instrument, text: str) -> int | None:
    """A mark price text -> ticks, half-even; None when it is not a positive number."""
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0:
        return None
    return int((value / inst.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))


def add_mark(b: RowBuilder, exch: int, local: int, text: str, fi: int, line: int) -> bool:
    """Append a MARK_PRICE row; False when the text is not a positive price."""
    ticks = mark_ticks(b.inst, text)
    if ticks is None:
        return False
    b.add(exch, local, MARK, 0, str(ticks * b.inst.tick_size), "0", 0, fi, line)
    return True


def add_funding(b: RowBuilder, exch: int, local: int, rate_text: str, mark_text: str | None,
                fi: int, line: int) -> bool:
    """Append a FUNDING_RATE row settled at `exch` (the funding time); False when the rate
    is not a number. A rate finer than 1e-12 is rounded half-even to it."""
    encoded = funding_columns(rate_text)
    if encoded is None:
        return False
    side, units = encoded
    ticks = mark_ticks(b.inst, mark_text) if mark_text not in (None, "", "0") else None
    qty = "0" if ticks is None else str(ticks * b.inst.lot_size)
    b.add(exch, local, FUNDING, side, str(units * b.inst.tick_size), qty, 0, fi, line)
    return True


def funding_columns(rate_text: str) -> tuple[int, int] | None:
    """A funding rate text -> the FUNDING_RATE row's (`side`, `price` in FUNDING_RATE_UNIT),
    half-even to 1e-12; None when the text is not a finite number."""
    try:
        rate = Decimal(str(rate_text))
    except InvalidOperation:
        return None
    if not rate.is_finite():
        return None
    units = int((abs(rate) / FUNDING_RATE_UNIT).to_integral_value(rounding=ROUND_HALF_EVEN))
    return (0 if units == 0 else (1 if rate > 0 else -1)), units


class FundingFromMarks:
    """Binance's mark-price stream as funding settlements (`markPriceUpdate`, also
    `GET /fapi/v1/premiumIndex`): each message carries the funding rate `r` that will be
    settled at the next funding time `T`. Once a message's event time `E` reaches the
    previous message's `T`, that funding was settled at `T`, at the rate `r` and the mark
    `p` of the last message before it (docs/derivatives.md "Market data"). The one rule for
    the binance-ws importer and the live feed (modes.live.derivatives)."""

    def __init__(self) -> None:
        self.due: tuple[int, str, str] | None = None  # (T ns, r, p) of the last message

    def update(self, exch_ns: int, mark: str, rate: str | None, next_funding_ns: int | None) -> tuple[int, str, str] | None:
        """One message (times in ns, texts as sent); returns the settlement it reveals,
        (funding time ns, rate text, mark text), or None."""
        out = None
        if self.due is not None and exch_ns >= self.due[0]:
            out, self.due = self.due, None
        if rate is not None and next_funding_ns is not None:
            self.due = (int(next_funding_ns), rate, mark)
        return out


def funding_rate(side: int, price: int) -> Decimal:
    """The rate a FUNDING_RATE row carries (its `side` and `price` columns)."""
    return Decimal(side * price) * FUNDING_RATE_UNIT
