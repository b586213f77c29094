"""Exact ledger: balances per venue and asset, positions, average price, PnL, fees.

Why Fractions inside: an average entry price is a division, and Decimal division rounds.
The cost basis is kept as an exact Fraction so realized + unrealized PnL always equals the
change in marked equity to the last unit; Decimals are produced only for display/output
(rounded to 18 places). Balances themselves are sums of exact Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact
from fractions import Fraction
from functools import lru_cache

from engine.types import Instrument

_DISPLAY = Decimal("1e-18")
# Wide enough that sums and products of realistic balances, prices and quantities never round.
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[Inexact])


@lru_cache(maxsize=4096)
def _terminates(denominator: int) -> bool:
    """True when 1/denominator has a finite decimal expansion (only factors 2 and 5)."""
    for factor in (2, 5):
        while denominator % factor == 0:
            denominator //= factor
    return denominator == 1


def to_decimal(value: Fraction) -> Decimal:
    """A Fraction as a Decimal: exact when it terminates, else rounded to 18 places."""
    numerator, denominator = value.numerator, value.denominator
    if denominator == 1:
        return Decimal(numerator)
    if _terminates(denominator):
        return _EXACT.divide(Decimal(numerator), Decimal(denominator))
    return (Decimal(numerator) / Decimal(denominator)).quantize(_DISPLAY)


@dataclass(slots=True)
class Position:
    """Signed position in one instrument with its exact cost basis."""

    qty: Decimal = Decimal(0)  # signed base quantity
    cost: Fraction = Fraction(0)  # signed quote cost of the open quantity
    realized: Fraction = Fraction(0)
    fees: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)  # traded quote notional (turnover)

    @property
    def avg_price(self) -> Decimal | None:
        if self.qty == 0:
            return None
        return to_decimal(self.cost / Fraction(self.qty))

    def unrealized(self, mark: Decimal) -> Fraction:
        return Fraction(self.qty) * Fraction(mark) - self.cost


class Ledger:
    """Balances, positions and PnL for one run; every mode books fills through `apply_fill`."""

    def __init__(self, instruments: dict[str, Instrument], balances: dict[str, dict[str, Decimal]]):
        self.instruments = instruments
        self.balances: dict[tuple[str, str], Decimal] = {}
        for venue, assets in balances.items():
            for asset, amount in assets.items():
                self.balances[(venue, asset)] = Decimal(amount)
        self.positions: dict[str, Position] = {i: Position() for i in instruments}

    # -- booking -------------------------------------------------------------------------
    def apply_fill(
        self, instrument: Instrument, side: int, price: Decimal, qty: Decimal, fee: Decimal
    ) -> Fraction:
        """Book one fill; returns the realized PnL it produced (before fees)."""
        notional = _EXACT.multiply(price, qty)
        venue = instrument.venue
        base, quote = (venue, instrument.base), (venue, instrument.quote)
        self.balances[base] = _EXACT.add(self.balances.get(base, Decimal(0)), side * qty)
        self.balances[quote] = _EXACT.subtract(
            _EXACT.subtract(self.balances.get(quote, Decimal(0)), side * notional), fee)

        pos = self.positions.setdefault(instrument.id, Position())
        pos.fees += fee
        pos.volume += notional
        signed = side * qty
        realized = Fraction(0)
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            pos.cost += Fraction(signed) * Fraction(price)
        else:
            closing = min(abs(signed), abs(pos.qty))
            # cost of the closed part at the average price, exactly
            closed_cost = pos.cost * Fraction(closing) / Fraction(abs(pos.qty))
            direction = 1 if pos.qty > 0 else -1
            realized = direction * (Fraction(closing) * Fraction(price)) - closed_cost
            pos.cost -= closed_cost
            opening = abs(signed) - closing
            if opening:
                pos.cost += Fraction(side * opening) * Fraction(price)
        pos.qty += signed
        if pos.qty == 0:
            pos.cost = Fraction(0)
        pos.realized += realized
        return realized

    # -- queries -------------------------------------------------------------------------
    def balance(self, venue: str, asset: str) -> Decimal:
        return self.balances.get((venue, asset), Decimal(0))

    def position(self, instrument_id: str) -> Decimal:
        pos = self.positions.get(instrument_id)
        return pos.qty if pos is not None else Decimal(0)

    def realized_pnl(self) -> Fraction:
        return sum((p.realized for p in self.positions.values()), Fraction(0))

    def fees(self) -> Decimal:
        return sum((p.fees for p in self.positions.values()), Decimal(0))

    def turnover(self) -> Decimal:
        return sum((p.volume for p in self.positions.values()), Decimal(0))

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Fraction:
        total = Fraction(0)
        for inst_id, pos in self.positions.items():
            if pos.qty != 0 and marks.get(inst_id) is not None:
                total += pos.unrealized(marks[inst_id])
        return total

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash plus holdings marked at mid, counted in quote units (exact Decimal).

        Quote assets count 1:1 (USDT, USD, ...; a stated simplification until FX marks
        exist); a base asset is marked at the mid of the first instrument on that venue
        that has it as base. Unmarked assets are left out.
        """
        mark_of: dict[tuple[str, str], Decimal] = {}
        quotes: set[tuple[str, str]] = set()
        for inst in self.instruments.values():
            quotes.add((inst.venue, inst.quote))
            mark = marks.get(inst.id)
            if mark is not None:
                mark_of.setdefault((inst.venue, inst.base), mark)
        total = Decimal(0)
        for key in sorted(self.balances):
            amount = self.balances[key]
            if key in quotes:
                total = _EXACT.add(total, amount)
            elif key in mark_of:
                total = _EXACT.add(total, _EXACT.multiply(amount, mark_of[key]))
        return total
