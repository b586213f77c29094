"""Exact ledger: balances per venue and asset, positions, average price, PnL, fees.

Why integers: a position's cost basis is kept in whole price-ticks x quantity-lots (the
smallest money step a fill can produce), so every fill books in constant time and nothing
is ever rounded silently. Closing part of a position takes the average cost of the closed
part, truncated to that step; the sub-step remainder stays with the open quantity, so
realized + unrealized PnL always equals the change in marked equity exactly and a flat
position has realized everything to the last unit. Balances are exact Decimal sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact
from fractions import Fraction
from functools import lru_cache

from engine.types import Instrument
from engine.types.venue_reports import BookedFill

_DISPLAY = Decimal("1e-18")
# Wide enough that sums and products of realistic balances, prices and quantities never
# round; a result that would round raises decimal.Inexact instead.
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[Inexact])
# its operations bound once: `_EXACT.multiply(a, b)` looks the method up on every call
# (~0.2 us of a ~0.3 us product); the fill booking and each equity sample make ~25 of them
_mul, _add, _sub = _EXACT.multiply, _EXACT.add, _EXACT.subtract
_ZERO = Decimal(0)
_NO_MARKS: dict[str, Decimal] = {}  # `quote_marks` not given (never written to)
_UNSET = (None, None)  # a Position memo before its first use


@lru_cache(maxsize=4096)
def _terminates(denominator: int) -> bool:
    """True when 1/denominator has a finite decimal expansion (only factors 2 and 5)."""
    for factor in (2, 5):
        while denominator % factor == 0:
            denominator //= factor
    return denominator == 1


def fraction_to_decimal(value: Fraction) -> Decimal:
    """A Fraction as a Decimal: exact when it terminates, else rounded to 18 places."""
    numerator, denominator = value.numerator, value.denominator
    if denominator == 1:
        return Decimal(numerator)
    if _terminates(denominator):
        return _EXACT.divide(Decimal(numerator), Decimal(denominator))
    return (Decimal(numerator) / Decimal(denominator)).quantize(_DISPLAY)


@dataclass(slots=True)
class Position:
    """Signed position in one instrument; money in units of tick_size x lot_size.

    `qty` (and a fill's signed quantity, `qty_of`) is remembered per lots (`_qtys`; a
    quoting strategy's position and fill sizes come back again and again), `realized` and
    the cost's value with the integer they come from (`_realized`, `_cost`: (units,
    Decimal)): the equity sample after every fill reads them for every position. Keyed by
    value, so code that sets `lots` or `cost` itself (a warm restart, modes/live/resume.py)
    is still seen."""

    unit: Decimal  # quote value of one tick x one lot
    lot_size: Decimal
    tick_size: Decimal
    lots: int = 0  # signed
    cost: int = 0  # signed cost of the open lots, in units
    realized_units: int = 0
    volume_units: int = 0  # traded notional (turnover), in units
    fees: Decimal = Decimal(0)
    _qtys: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _realized: tuple = field(default=_UNSET, init=False, repr=False, compare=False)
    _cost: tuple = field(default=_UNSET, init=False, repr=False, compare=False)

    @property
    def qty(self) -> Decimal:
        qty = self._qtys.get(self.lots)
        return self.qty_of(self.lots) if qty is None else qty

    @property
    def realized(self) -> Decimal:
        units, memo = self.realized_units, self._realized
        if memo[0] != units:
            memo = self._realized = (units, _mul(Decimal(units), self.unit))
        return memo[1]

    # spot and linear amounts are in the quote already (an inverse contract's are not:
    # engine/margin.py InversePosition keeps them valued at each fill's price)
    realized_quote = realized

    @property
    def volume(self) -> Decimal:
        return _mul(Decimal(self.volume_units), self.unit)

    @property
    def fees_quote(self) -> Decimal:
        return self.fees

    @property
    def avg_price(self) -> Decimal | None:
        if self.lots == 0:
            return None
        return fraction_to_decimal(Fraction(self.cost, self.lots) * Fraction(self.tick_size))

    def cost_value(self) -> Decimal:
        """The open lots' cost in quote: cost x unit (remembered with `cost`)."""
        cost, memo = self.cost, self._cost
        if memo[0] != cost:
            memo = self._cost = (cost, _mul(Decimal(cost), self.unit))
        return memo[1]

    def unrealized(self, mark: Decimal) -> Decimal:
        return _sub(_mul(self.qty, mark), self.cost_value())

    def qty_of(self, lots: int) -> Decimal:
        """`lots` (signed) x lot_size, exact: the position's quantity or a fill's signed
        base amount, remembered per lots (bounded: starts over past 4,096 sizes)."""
        qtys = self._qtys
        qty = qtys.get(lots)
        if qty is None:
            if len(qtys) >= 4096:
                qtys.clear()
            qty = qtys[lots] = _mul(Decimal(lots), self.lot_size)
        return qty

    def book(self, side: int, price_ticks: int, qty_lots: int) -> int:
        """Apply a fill; returns the realized PnL it produced, in units (before fees)."""
        self.volume_units += price_ticks * qty_lots
        realized = 0
        if self.lots == 0 or (self.lots > 0) == (side > 0):
            self.cost += side * price_ticks * qty_lots
        else:
            held = abs(self.lots)
            closing = min(qty_lots, held)
            direction = 1 if self.lots > 0 else -1
            # average cost of the closed part, truncated toward zero to whole units
            closed_cost = direction * (abs(self.cost) * closing // held) if closing < held else self.cost
            realized = direction * closing * price_ticks - closed_cost
            self.cost -= closed_cost
            opening = qty_lots - closing
            if opening:
                self.cost += side * opening * price_ticks
        self.lots += side * qty_lots
        self.realized_units += realized
        return realized


class Ledger:
    """Balances, positions and PnL for one run; every mode books fills through `apply_fill`."""

    def __init__(self, instruments: dict[str, Instrument], balances: dict[str, dict[str, Decimal]]):
        self.instruments = instruments
        self.balances: dict[tuple[str, str], Decimal] = {}
        for venue, assets in balances.items():
            for asset, amount in assets.items():
                self.balances[(venue, asset)] = Decimal(amount)
        self.positions: dict[str, Position] = {i: _position(inst) for i, inst in instruments.items()}
        # contracts: positions, margin, funding (engine/margin.py)
        from engine.margin import MarginBook

        self.derivatives = MarginBook(self)
        # fees charged in an asset that is neither the base nor the quote of the fill (BNB)
        # and had no mark to value them: booked in their asset, counted 0 in `fees()`
        self.unpriced_fees: dict[tuple[str, str], Decimal] = {}
        self._layout: tuple | None = None  # `_equity_layout`'s cache

    # -- booking -------------------------------------------------------------------------
    def apply_fill(self, instrument: Instrument, side: int, price_ticks: int, qty_lots: int,
                   fee: Decimal, fee_asset: str | None = None, fee_quote: Decimal | None = None) -> Decimal:
        """Book one fill (price in ticks, quantity in lots); returns its realized PnL before fees.

        `fee` is debited from `fee_asset` (default: the quote asset) on the fill's venue;
        the position's fees (PnL, TCA) count it valued in quote: `fee_quote`, or
        `fee_in_quote` at the fill price when not given (see engine/fees.py `fill_fee`).
        A contract moves no base/quote: engine/margin.py books it (fee in its settle asset).
        """
        if instrument.contract:
            return self.derivatives.apply_fill(instrument, side, price_ticks, qty_lots, fee)
        pos = self.positions.get(instrument.id)
        if pos is None:
            pos = self.positions[instrument.id] = _position(instrument)
        realized = self._book_spot(instrument, pos, side, price_ticks, qty_lots, fee, fee_asset, fee_quote)
        return _mul(Decimal(realized), pos.unit)

    def book_fill(self, instrument: Instrument, side: int, fill: BookedFill) -> None:
        """The ledger's part of a booked fill (engine/venue_merge.py `_hand_fill` hands it
        the record): `apply_fill` of its ticks, lots, fee in its asset and fee valued in
        quote, without making the realized PnL's Decimal nobody reads there (`apply_fill`
        returns it; the position keeps it in units)."""
        if instrument.contract:
            self.derivatives.apply_fill(instrument, side, fill.price_ticks, fill.lots, fill.fee)
            return
        pos = self.positions.get(instrument.id)
        if pos is None:
            pos = self.positions[instrument.id] = _position(instrument)
        self._book_spot(instrument, pos, side, fill.price_ticks, fill.lots, fill.fee, fill.fee_asset, fill.fee_quote)

    def _book_spot(self, instrument: Instrument, pos: Position, side: int, price_ticks: int, qty_lots: int,
                   fee: Decimal, fee_asset: str | None, fee_quote: Decimal | None) -> int:
        """A spot fill on the balances and `pos`; returns the realized PnL in units. The
        signed base amount is `Position.qty_of` (remembered per signed lots: a quoting
        strategy fills the same sizes again and again), the signed quote amount
        side x ticks x lots x unit, both exact (the same Decimals as side x qty and
        side x notional)."""
        venue = instrument.venue
        base, quote = (venue, instrument.base), (venue, instrument.quote)
        asset = fee_asset or instrument.quote
        balances = self.balances
        balances[base] = _add(balances.get(base, _ZERO), pos.qty_of(side * qty_lots))
        balances[quote] = _sub(balances.get(quote, _ZERO), _mul(Decimal(side * price_ticks * qty_lots), pos.unit))
        charged = (venue, asset)
        balances[charged] = _sub(balances.get(charged, _ZERO), fee)
        if fee_quote is None:
            fee_quote = self.fee_in_quote(instrument, price_ticks, fee, asset)
        if asset not in (instrument.base, instrument.quote) and not fee_quote and fee:
            self.unpriced_fees[charged] = _add(self.unpriced_fees.get(charged, Decimal(0)), fee)
        pos.fees = _add(pos.fees, fee_quote)
        return pos.book(side, price_ticks, qty_lots)

    @staticmethod
    def fee_in_quote(instrument: Instrument, price_ticks: int, fee: Decimal, fee_asset: str,
                     mark: Decimal | None = None) -> Decimal:
        """A fee valued in the instrument's quote asset: as is in quote, x the fill price in
        base, x `mark` (the asset's price in quote, e.g. BNB/USDT's mid) in a third asset;
        0 for a third asset without a mark (the ledger keeps it in `unpriced_fees`).
        An inverse contract's fee is charged in its settle coin, the base: x the fill price
        too (the position keeps the coin amount as well, engine/margin.py)."""
        if fee_asset == instrument.quote:
            return fee
        if fee_asset == instrument.base:
            return _mul(fee, _mul(Decimal(price_ticks), instrument.tick_size))
        return _mul(fee, mark) if mark is not None else Decimal(0)

    def balance_differences(self, venue: str, reported: dict[str, tuple[Decimal, Decimal]]
                            ) -> dict[str, tuple[Decimal, Decimal]]:
        """{asset: (ledger, venue free + locked)} where the two differ, for one venue."""
        assets = {a for v, a in self.balances if v == venue} | set(reported)
        out = {}
        for asset in sorted(assets):
            ours = self.balances.get((venue, asset), Decimal(0))
            free, locked = reported.get(asset, (Decimal(0), Decimal(0)))
            theirs = _add(Decimal(free), Decimal(locked))
            if ours != theirs:
                out[asset] = (ours, theirs)
        return out

    # -- queries -------------------------------------------------------------------------
    def balance(self, venue: str, asset: str) -> Decimal:
        return self.balances.get((venue, asset), Decimal(0))

    def position(self, instrument_id: str) -> Decimal:
        pos = self.positions.get(instrument_id)
        return pos.qty if pos is not None else Decimal(0)

    def realized_pnl(self) -> Decimal:
        """Realized PnL of every position in quote units: spot and linear amounts as they
        are, an inverse contract's coin amounts valued at the price of the fill that realized
        them (`realized_quote`), so a total never adds BTC to USD. The equity samples'
        column and summary.json's `pnl.realized`; `pnl_by_asset` keeps each asset's own."""
        total = _ZERO  # `sum(...)`'s left fold (the default context's +), without a generator
        for pos in self.positions.values():
            total = total + pos.realized_quote
        return total

    def fees(self) -> Decimal:
        """Fees of every position in quote units, each valued at its fill's price (an
        inverse contract's coin fee x the fill price; `fees_quote`): equals the fills' `fee`
        column, which the stress invariant `ledger_reconciles` checks against the equity
        samples; `pnl_by_asset` keeps each asset's own amounts."""
        total = _ZERO  # as `realized_pnl`
        for pos in self.positions.values():
            total = total + pos.fees_quote
        return total

    def in_quote(self, instrument_id: str, amount: Decimal, marks: dict[str, Decimal] | None = None) -> Decimal:
        """A position's unrealized PnL in quote units, so totals never add different assets
        as they are (a COIN-M contract's BTC to a USDⓈ-M contract's USDT): spot and linear
        amounts are in the quote already; an inverse contract's are in its settle coin and
        count at the contract's mark (before the first mark, its last fill price), the way
        `equity` and `unrealized_pnl` value them (`_in_quote_at`). Quote assets (USDT,
        USD, ...) count 1:1, as in `equity`."""
        inst = self.instruments.get(instrument_id)
        if inst is None or not inst.inverse:
            return amount
        mark = self.derivatives.mark_of(instrument_id, (marks or {}).get(instrument_id))
        if mark is None:
            mark = getattr(self.positions.get(instrument_id), "last_price", None)
        return _in_quote_at(inst, amount, mark) if mark is not None else Decimal(0)

    def pnl_by_asset(self, marks: dict[str, Decimal]) -> dict[str, dict[str, Decimal]]:
        """{asset: {realized, unrealized, fees}} in each position's own currency (spot and
        linear: the quote; contracts: the settle asset), exact: summary.json's
        `pnl.by_asset`, beside the totals in quote units."""
        out: dict[str, dict[str, Decimal]] = {}
        for inst_id, pos in self.positions.items():
            inst = self.instruments.get(inst_id)
            if inst is None:
                continue
            asset = inst.settle if inst.contract else inst.quote
            row = out.setdefault(asset, {"realized": Decimal(0), "unrealized": Decimal(0), "fees": Decimal(0)})
            row["realized"] = _add(row["realized"], pos.realized)
            row["fees"] = _add(row["fees"], pos.fees)
            mark = self.derivatives.mark_of(inst_id, marks.get(inst_id))
            if pos.lots != 0 and mark is not None:
                row["unrealized"] = _add(row["unrealized"], pos.unrealized(mark))
        return out

    def turnover(self) -> Decimal:
        return sum((p.volume for p in self.positions.values()), Decimal(0))

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Decimal:
        """Unrealized PnL of every open position at its mark (a contract's mark price, else
        `marks`' mid), in quote units (`in_quote`): `figures`' third figure."""
        return self.figures(marks)[2]

    def equity(self, marks: dict[str, Decimal], quote_marks: dict[str, Decimal] | None = None) -> Decimal:
        """Cash plus holdings marked at mid, counted in quote units (exact Decimal).

        Quote assets count 1:1 (USDT, USD, ...) unless `quote_marks` ({asset: value in the
        reporting currency}, QuoteMarks.at) marks them: then equity is in the reporting
        currency, a quote asset worth its mark and a base asset its mid times its quote's
        mark (a stablecoin depeg moves equity). A base asset is marked at the mid of the
        first instrument on that venue that has it as base. Unmarked assets are left out.
        Contracts add their unrealized PnL at the mark, in quote. `figures`' first figure.
        """
        return self.figures(marks, quote_marks)[0]

    def figures(self, marks: dict[str, Decimal], quote_marks: dict[str, Decimal] | None = None
                ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(equity, realized PnL, unrealized PnL, fees) at `marks` ({instrument: mid}): the
        four figures of an equity sample (`TradingSession.sample_equity`, after every fill),
        `equity`, `realized_pnl`, `unrealized_pnl` and `fees` in one pass, exact Decimals.

        Why one pass: each open position's unrealized PnL is both a term of the unrealized
        total and, for a contract, a term of equity; the sample needs all four. Sums of
        exact Decimals have one value and one exponent whatever the order of their terms,
        so the figures (and their text) equal the four methods' one by one. Realized PnL and
        fees are summed with the default context's `+` (`realized_pnl`'s left fold).
        """
        qm = quote_marks or _NO_MARKS
        contract_marks, instruments = self.derivatives.marks, self.instruments
        realized = fees = unrealized = contracts = _ZERO
        for inst_id, pos in self.positions.items():
            realized = realized + pos.realized_quote
            fees = fees + pos.fees_quote
            if pos.lots == 0:
                continue
            mark = contract_marks.get(inst_id)  # MarginBook.mark_of: a contract's mark price,
            if mark is None:  # else the mid
                mark = marks.get(inst_id)
                if mark is None:
                    continue
            amount = pos.unrealized(mark)
            inst = instruments.get(inst_id)
            if inst is not None and inst.contract:
                amount = _in_quote_at(inst, amount, mark)
                contracts = _add(contracts, amount)
            unrealized = _add(unrealized, amount)
        total = _ZERO
        balances = self.balances
        for key, asset, marked_by in self._equity_layout():
            amount = balances[key]
            if marked_by is None:  # a quote asset: 1:1, or its mark in the reporting currency
                fx = qm.get(asset)
                total = _add(total, amount if fx is None else _mul(amount, fx))
                continue
            for inst_id, quote in marked_by:  # a base asset: the first instrument with a mid
                mark = marks.get(inst_id)
                if mark is not None:
                    fx = qm.get(quote)
                    total = _add(total, _mul(amount, mark if fx is None else _mul(mark, fx)))
                    break
        if contracts is not _ZERO:
            total = _add(total, contracts)
        return total, realized, unrealized, fees

    def _equity_layout(self) -> list[tuple[tuple[str, str], str, list[tuple[str, str]] | None]]:
        """`equity`'s terms: each balance key, sorted, with its asset and what values it:
        None for a quote asset of an instrument on its venue (1:1 or its quote mark), else
        the (instrument, its quote) pairs, in instrument order, whose base it is on its venue
        (the first with a mid marks it; none: the key is left out). Runs after every fill:
        recomputed only when a balance or an instrument was added (both only gain keys)."""
        shape = (len(self.balances), len(self.instruments))
        cached = self._layout
        if cached is None or cached[0] != shape:
            quotes = {(inst.venue, inst.quote) for inst in self.instruments.values()}
            bases: dict[tuple[str, str], list[tuple[str, str]]] = {}
            for inst in self.instruments.values():
                bases.setdefault((inst.venue, inst.base), []).append((inst.id, inst.quote))
            layout = [(key, key[1], None if key in quotes else bases[key])
                      for key in sorted(self.balances) if key in quotes or key in bases]
            cached = self._layout = (shape, layout)
        return cached[1]


class QuoteMarks:
    """Marks of quote assets in a reporting currency over time (a stablecoin depeg).

    `paths`: {asset: [(offset ns from the run's start, mark), ...]} with offsets increasing;
    the mark is linear between points, constant before the first and after the last, and
    rounded half-even to 1e-8 (so equity products stay exact). An asset without a path
    counts 1:1. `bind(t0)` sets the run's start; `at(ts)` gives {asset: mark} for
    `Ledger.equity`.
    """

    STEP = Decimal("1e-8")

    def __init__(self, currency: str, paths: dict[str, list[tuple[int, Decimal]]]) -> None:
        self.currency = currency
        self.paths = {a: [(int(t), Decimal(m)) for t, m in pts] for a, pts in paths.items()}
        self.t0 = 0

    def bind(self, t0: int) -> None:
        self.t0 = int(t0)

    def at(self, ts: int) -> dict[str, Decimal]:
        off = int(ts) - self.t0
        out = {}
        for asset, pts in self.paths.items():
            value = pts[-1][1] if off >= pts[-1][0] else pts[0][1]
            for (t1, m1), (t2, m2) in zip(pts, pts[1:], strict=False):
                if t1 <= off < t2:
                    value = m1 + (m2 - m1) * Decimal(off - t1) / Decimal(t2 - t1)
                    break
            out[asset] = value.quantize(self.STEP, rounding=ROUND_HALF_EVEN)
        return out


def _in_quote_at(inst: Instrument, amount: Decimal, mark: Decimal) -> Decimal:
    """A contract position's unrealized PnL in quote units at `mark`: a linear contract's
    is in its quote (USDT) already, an inverse one's is coin (BTC) and counts x the mark.
    The one rule `Ledger.in_quote`, `unrealized_pnl` and `equity` value it by."""
    return _mul(amount, mark) if inst.inverse else amount


def _position(instrument: Instrument) -> Position:
    if instrument.contract:
        from engine.margin import contract_position

        return contract_position(instrument)  # type: ignore[return-value]
    return Position(unit=_mul(instrument.tick_size, instrument.lot_size),
                    lot_size=instrument.lot_size, tick_size=instrument.tick_size)
