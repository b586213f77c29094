"""Derivatives accounting: positions per contract, cross/isolated margin, leverage, funding,
mark-to-market and the liquidation rule (docs/derivatives.md).

Why a separate book beside the spot ledger: a contract moves no base or quote balance. Its
fills change a position; realized PnL, fees and funding are booked in the contract's
*settle* asset (USDT for Binance USDⓈ-M, the coin for COIN-M), into the same
`Ledger.balances` as every other amount, so equity and reconciliation see one wallet.

Units. Quantities are contracts (ccxt's `amount` for derivatives): a linear contract is
`contract_size` base units, an inverse one `contract_size` quote units (BTCUSD on COIN-M:
100 USD). Linear positions keep their cost in whole tick x lot x contract_size units, as
spot positions do (`engine.ledger.Position`), so linear PnL and funding are exact Decimals.
Inverse PnL is `contracts x contract_size x (1/entry - 1/exit)` in the base: it is kept as
an exact Fraction and booked to the settle asset at `SETTLE_STEP` (1e-8, the precision of
Binance COIN-M balances), half-even, with the remainder carried, so the total booked is
always the exact total rounded once (never a drift of one step per fill).

Formulas, each from the venue's published rules (one-way mode, Binance):
- maintenance margin = notional at the mark x maintenance rate - maintenance amount
  ("cum") of the notional's bracket (`Instrument.bracket`);
  https://www.binance.com/en/support/faq/360033162192
- initial margin = notional at the mark (orders: at their price) / leverage;
- margin ratio = maintenance margin / margin balance, margin balance = wallet balance +
  unrealized PnL at the mark (cross: the account's cross wallet and every cross position;
  isolated: the position's isolated margin and its own PnL);
- liquidation price, USDⓈ-M: LP = (WB + cum - side x Q x EP) / (Q x MMR - side x Q),
  https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93 ;
  COIN-M: LP = Q x CS x (MMR + side) / (WB + cum + side x Q x CS / EP),
  https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46
  (WB = the wallet that backs the position, less the other positions' maintenance margin
  plus their unrealized PnL in cross mode: Binance's TMM1 and UPNL1);
- bankruptcy price: the same with MMR = 0 and cum = 0 (the margin balance is then zero);
- funding payment = position size x contract notional at the mark x funding rate; a long
  pays when the rate is positive (https://www.binance.com/en/support/faq/360033525031).

The liquidation rule of the simulated venue (`MarginBook.due_liquidations`): when a margin
ratio reaches 100 % (maintenance margin >= margin balance) at a mark, the venue takes over
the position(s) and closes them at the bankruptcy price, rounded to the tick in the
trader's favour (so the wallet keeps less than one tick of value, never a negative
balance): the whole margin is lost, which is what Binance's liquidation clearance fee
amounts to when the insurance fund closes the position. In cross mode every position of
the account is closed, in instrument order. Auto-deleveraging (ADL) is not modelled: the
venue always finds the other side at the bankruptcy price. Hedge mode is not supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any

from engine.config import did_you_mean
from engine.errors import ConfigError
from engine.ledger import _EXACT, Position, fraction_to_decimal
from engine.types import Instrument
from engine.types.orders import ReasonCode

#: inverse contracts book PnL, fees and funding to 8 decimals of the coin (Binance COIN-M)
SETTLE_STEP = Decimal("1e-8")
#: Binance's leverage when an account never set one (https://www.binance.com/en/support/faq/360033162192)
DEFAULT_LEVERAGE = 20
MARGIN_MODES = ("cross", "isolated")
_BPS = Decimal(10000)


@dataclass(frozen=True, kw_only=True)
class MarginSettings:
    """A venue's margin settings from its `[venues.<name>]` table: `margin_mode`
    ("cross" default, or "isolated") and `leverage` (an int for every contract of the
    venue, or a table by ccxt symbol: `leverage = { "BTC/USDT:USDT" = 10 }`)."""

    margin_mode: str = "cross"
    leverage: int = DEFAULT_LEVERAGE
    by_symbol: Mapping[str, int] = field(default_factory=dict)
    #: testnet/live: a contract position already at the venue when a session starts is
    #: "adopt"ed (the ledger starts from it) or makes the session "refuse" to start
    #: (docs/derivatives.md "A position already open at start")
    open_positions: str = "adopt"

    def leverage_of(self, instrument: Instrument) -> int:
        return int(self.by_symbol.get(instrument.symbol, self.leverage))

    @classmethod
    def from_table(cls, venue: str, table: Mapping[str, Any]) -> MarginSettings:
        where = f"[venues.{venue}]"
        mode = table.get("margin_mode", "cross")
        if mode not in MARGIN_MODES:
            raise ConfigError(f"{where} margin_mode = {mode!r}: expected 'cross' or 'isolated'")
        raw = table.get("leverage", DEFAULT_LEVERAGE)
        by_symbol: dict[str, int] = {}
        default = DEFAULT_LEVERAGE
        if isinstance(raw, Mapping):
            for symbol, value in raw.items():
                by_symbol[str(symbol)] = _leverage(value, f"{where} leverage.{symbol}")
        else:
            default = _leverage(raw, f"{where} leverage")
        opening = table.get("open_positions", "adopt")
        if opening not in ("adopt", "refuse"):
            raise ConfigError(f"{where} open_positions = {opening!r}: expected 'adopt' or 'refuse'")
        return cls(margin_mode=str(mode), leverage=default, by_symbol=by_symbol, open_positions=str(opening))

    def check_symbols(self, venue: str, contracts: Iterable[str]) -> None:
        """Refuse a `leverage = { SYMBOL = N }` key that names none of `contracts` (the ccxt
        symbols of the venue's contracts in the instruments file): a misspelt key
        ("BTC/USD", "BTCUSD_PERP") would otherwise leave the contract at the default 20x
        without a word. Raises ConfigError naming the key, with the closest symbols."""
        known = set(contracts)
        for symbol in self.by_symbol:
            if symbol not in known:
                raise ConfigError(
                    f"[venues.{venue}] leverage.{symbol}: no contract {symbol!r} on {venue} "
                    f"(keys are ccxt symbols, e.g. 'BTC/USDT:USDT')" + did_you_mean(symbol, known))

    def check_max_leverage(self, venue: str, contracts: Iterable[Instrument]) -> None:
        """Refuse a leverage above a contract's highest bracket leverage (ETHUSDT: 75x):
        Binance refuses to set it (-4028 "Leverage N is not valid"), and a run with it
        would only refuse every order `max_notional_at_leverage`. Raises ConfigError
        naming the key, the contract and its maximum."""
        for inst in contracts:
            if not inst.margin_brackets:
                continue
            top = max(t.max_leverage for t in inst.margin_brackets)
            lev = self.leverage_of(inst)
            if lev > top:
                key = f"leverage.{inst.symbol}" if inst.symbol in self.by_symbol else "leverage"
                raise ConfigError(f"[venues.{venue}] {key} = {lev}: above {inst.id}'s maximum leverage {top} "
                                  f"(its margin_brackets; Binance refuses it, -4028)")


def _leverage(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 125:
        raise ConfigError(f"{where} = {value!r}: expected an integer leverage from 1 to 125")
    return value


@dataclass(slots=True)
class LinearPosition(Position):
    """A linear contract: `Position` with unit = tick x lot x contract_size (quote)."""

    contract_size: Decimal = Decimal(1)

    def unrealized(self, mark: Decimal) -> Decimal:
        value = _EXACT.multiply(_EXACT.multiply(self.qty, self.contract_size), mark)
        return _EXACT.subtract(value, self.cost_value())

    def upnl_fraction(self, mark: Fraction) -> Fraction:
        return (Fraction(self.qty) * Fraction(self.contract_size) * mark
                - Fraction(self.cost) * Fraction(self.unit))


@dataclass(slots=True)
class InversePosition:
    """An inverse contract: signed contracts; cost basis = the coin value at entry of the
    open contracts, sum(contracts x contract_size / price), exact (Fraction).

    Same interface as `engine.ledger.Position` where the ledger sums positions (qty,
    realized, volume, fees, avg_price, unrealized); amounts are in the base (settle) asset
    except `volume`, the traded notional in the quote (contracts x contract_size)."""

    lot_size: Decimal
    tick_size: Decimal
    contract_size: Decimal
    lots: int = 0
    basis: Fraction = Fraction(0)  # signed coin value at entry
    realized_exact: Fraction = Fraction(0)
    booked: Decimal = Decimal(0)  # realized PnL booked so far, at SETTLE_STEP
    volume_contracts: int = 0  # in lots
    fees: Decimal = Decimal(0)
    # the same PnL and fees in the quote (USD), each amount valued at the price of the fill
    # that booked it: the report's and the equity samples' currency (engine/ledger.py)
    realized_quote: Decimal = Decimal(0)
    fees_quote: Decimal = Decimal(0)
    last_price: Decimal | None = None  # the last fill's price (values coin amounts before a mark)

    @property
    def qty(self) -> Decimal:
        return _EXACT.multiply(Decimal(self.lots), self.lot_size)

    @property
    def realized(self) -> Decimal:
        return self.booked

    @property
    def volume(self) -> Decimal:
        return _EXACT.multiply(_EXACT.multiply(Decimal(self.volume_contracts), self.lot_size),
                               self.contract_size)

    @property
    def avg_price(self) -> Decimal | None:
        """Entry price: the harmonic mean of the fills' prices (Binance COIN-M)."""
        if self.lots == 0:
            return None
        return fraction_to_decimal(Fraction(self.qty) * Fraction(self.contract_size) / self.basis)

    def upnl_fraction(self, mark: Fraction) -> Fraction:
        return self.basis - Fraction(self.qty) * Fraction(self.contract_size) / mark

    def unrealized(self, mark: Decimal) -> Decimal:
        return _round_settle(self.upnl_fraction(Fraction(mark)))

    def book(self, side: int, price_ticks: int, qty_lots: int) -> Decimal:
        """Apply a fill; returns the realized PnL to book now (Decimal, SETTLE_STEP)."""
        price = Fraction(price_ticks) * Fraction(self.tick_size)
        per_lot = Fraction(self.lot_size) * Fraction(self.contract_size) / price
        self.volume_contracts += qty_lots
        self.last_price = _EXACT.multiply(Decimal(price_ticks), self.tick_size)
        if self.lots == 0 or (self.lots > 0) == (side > 0):
            self.basis += side * qty_lots * per_lot
        else:
            held = abs(self.lots)
            closing = min(qty_lots, held)
            closed_basis = self.basis * closing / held
            direction = 1 if self.lots > 0 else -1
            # long: coin value at entry - coin value at exit; short: the reverse
            self.realized_exact += closed_basis - direction * closing * per_lot
            self.basis -= closed_basis
            opening = qty_lots - closing
            if opening:
                self.basis += side * opening * per_lot
        self.lots += side * qty_lots
        if self.lots == 0:
            self.basis = Fraction(0)
        target = _round_settle(self.realized_exact)
        now, self.booked = target - self.booked, target
        return now


def _round_settle(value: Fraction) -> Decimal:
    """A coin amount at SETTLE_STEP, half-even."""
    scaled = value / Fraction(SETTLE_STEP)
    return Decimal(round(scaled)) * SETTLE_STEP  # round() of a Fraction is half-even


def contract_position(instrument: Instrument) -> LinearPosition | InversePosition:
    return position_for(instrument.inverse, instrument.lot_size, instrument.tick_size, instrument.contract_size)


def position_for(inverse: bool, lot_size: Decimal, tick_size: Decimal,
                 contract_size: Decimal) -> LinearPosition | InversePosition:
    """An empty contract position (also what a run directory's checker rebuilds with)."""
    if inverse:
        return InversePosition(lot_size=lot_size, tick_size=tick_size, contract_size=contract_size)
    unit = _EXACT.multiply(_EXACT.multiply(tick_size, lot_size), contract_size)
    return LinearPosition(unit=unit, lot_size=lot_size, tick_size=tick_size, contract_size=contract_size)


def book_fill(pos: LinearPosition | InversePosition, side: int, price_ticks: int, qty_lots: int) -> Decimal:
    """Apply a fill to a contract position; its realized PnL before fees, settle asset."""
    if isinstance(pos, InversePosition):
        return pos.book(side, price_ticks, qty_lots)
    return _EXACT.multiply(Decimal(pos.book(side, price_ticks, qty_lots)), pos.unit)


def contract_fee(instrument: Instrument, price_ticks: int, qty_lots: int, rate_bps: Decimal) -> Decimal:
    """A contract fill's fee in the settle asset: linear notional x rate (exact); inverse
    contracts x contract_size / price x rate, at SETTLE_STEP half-even (Binance COIN-M
    charges its fee in the coin; https://www.binance.com/en/support/faq/360033544231)."""
    if instrument.inverse:
        price = Fraction(price_ticks) * Fraction(instrument.tick_size)
        coin = Fraction(qty_lots) * Fraction(instrument.lot_size) * Fraction(instrument.contract_size) / price
        return _round_settle(coin * Fraction(rate_bps) / 10000)
    return _EXACT.multiply(instrument.notional(price_ticks, qty_lots), rate_bps) / _BPS


@dataclass(frozen=True, slots=True)
class Liquidation:
    """The venue's close of a position: `side` of the closing fill, `lots`, `price_ticks`
    (the bankruptcy price), the mark that triggered it and the margin ratio there."""

    instrument: Instrument
    side: int
    lots: int
    price_ticks: int
    mark: Decimal
    margin_ratio: Decimal
    reason: str = "liquidation"


@dataclass(frozen=True, slots=True)
class AccountState:
    """One margin account (cross: a venue's settle asset; isolated: one position)."""

    venue: str
    asset: str
    instrument: str | None  # None for the cross account
    wallet: Decimal
    unrealized: Decimal
    margin_balance: Decimal
    maintenance: Decimal
    initial: Decimal
    notional: Decimal  # in the settle asset

    @property
    def margin_ratio(self) -> Decimal | None:
        if self.margin_balance <= 0:
            return None if self.maintenance == 0 else Decimal("Infinity")
        return self.maintenance / self.margin_balance


class MarginBook:
    """Every contract position of a run and the margin accounts behind them.

    Owned by `engine.ledger.Ledger` (its `derivatives` attribute); balances live in the
    ledger (`(venue, settle asset)`), isolated margin is a part of that balance set aside
    for one position."""

    def __init__(self, ledger: Any, settings: Mapping[str, MarginSettings] | None = None) -> None:
        self.ledger = ledger
        self.settings: dict[str, MarginSettings] = dict(settings or {})
        # the ledger's own positions dict (contracts hold LinearPosition / InversePosition)
        self.positions: dict[str, Any] = ledger.positions
        self.isolated: dict[str, Decimal] = {}  # instrument id -> isolated margin
        self.marks: dict[str, Decimal] = {}
        self.mark_ts: dict[str, int] = {}
        self.funding: dict[str, Decimal] = {}  # instrument id -> funding received (settle asset)
        self.liquidations: list[tuple[int, Liquidation]] = []
        # live modes: funding incomes booked, and lots booked per venue liquidation order
        self.venue_trades: set[str] = set()
        self.venue_liquidated: dict[str, int] = {}
        # dated futures past their expiry (the simulated venue's ContractVenue adds them):
        # delivered, no longer traded, so check_order refuses every order on them
        self.delivered: set[str] = set()

    # -- settings ------------------------------------------------------------------------
    def settings_of(self, venue: str) -> MarginSettings:
        return self.settings.get(venue) or MarginSettings()

    def leverage(self, inst: Instrument) -> int:
        return self.settings_of(inst.venue).leverage_of(inst)

    def is_isolated(self, inst: Instrument) -> bool:
        return self.settings_of(inst.venue).margin_mode == "isolated"

    # -- booking -------------------------------------------------------------------------
    def position(self, inst: Instrument) -> LinearPosition | InversePosition:
        pos = self.positions.get(inst.id)
        if pos is None:
            pos = self.positions[inst.id] = contract_position(inst)
        return pos

    def apply_fill(self, inst: Instrument, side: int, price_ticks: int, qty_lots: int, fee: Decimal) -> Decimal:
        """Book a contract fill: realized PnL and the fee go to the settle asset's wallet;
        in isolated mode the opening part's initial margin (at the fill price) moves into
        the position's isolated margin and a close releases its share. Returns the
        realized PnL before fees (settle asset)."""
        pos = self.position(inst)
        before = pos.lots
        realized = book_fill(pos, side, price_ticks, qty_lots)
        pos.fees = _EXACT.add(pos.fees, fee)
        if isinstance(pos, InversePosition):  # coin amounts, valued at this fill's price
            price = _EXACT.multiply(Decimal(price_ticks), inst.tick_size)
            pos.realized_quote = _EXACT.add(pos.realized_quote, _EXACT.multiply(realized, price))
            pos.fees_quote = _EXACT.add(pos.fees_quote, _EXACT.multiply(fee, price))
        key = (inst.venue, inst.settle)
        balances = self.ledger.balances
        balances[key] = _EXACT.subtract(_EXACT.add(balances.get(key, Decimal(0)), realized), fee)
        if self.is_isolated(inst):
            self._isolated_after_fill(inst, pos, before, side, price_ticks, qty_lots, realized, fee)
        return realized

    def _isolated_after_fill(self, inst, pos, before, side, price_ticks, qty_lots, realized, fee) -> None:
        margin = self.isolated.get(inst.id, Decimal(0))
        closing = 0 if before == 0 or (before > 0) == (side > 0) else min(qty_lots, abs(before))
        if closing:  # release the closed share, keep the position's PnL and fee in the wallet
            margin = margin - margin * Decimal(closing) / Decimal(abs(before))
        opening = qty_lots - closing
        if opening:
            value = _notional_at(inst, opening, Fraction(price_ticks) * Fraction(inst.tick_size))
            margin += fraction_to_decimal(value / self.leverage(inst))
        self.isolated[inst.id] = margin if pos.lots != 0 else Decimal(0)

    def adopt_position(self, inst: Instrument, lots: int, entry: Decimal, isolated: Decimal | None) -> str | None:
        """Warm restart (live modes): start from a position the venue already holds, `lots`
        signed at its stated entry price `entry`, with its isolated margin `isolated` in
        isolated mode (already part of the wallet balance the ledger is seeded from, as
        Binance's isolatedWallet is). Returns None when adopted, else why it cannot be taken
        over exactly: the ledger holds a position already, or (linear) entry x quantity is
        not a whole number of tick x lot units, so the PnL of closing it could not equal the
        venue's. An inverse position's coin basis is quantity x contract size / entry
        (Binance states the harmonic mean it settles with)."""
        pos = self.position(inst)
        if pos.lots:
            return f"the ledger already holds {pos.qty}"
        if entry <= 0:
            return f"entry price {entry} is not a price"
        if isinstance(pos, InversePosition):
            pos.lots = lots
            pos.basis = Fraction(lots) * Fraction(inst.lot_size) * Fraction(inst.contract_size) / Fraction(entry)
            pos.last_price = entry
        else:
            units = Fraction(entry) / Fraction(inst.tick_size) * lots
            if units.denominator != 1:
                return (f"entry price {entry} x {inst.lots_to_qty(abs(lots))} is not a whole number of "
                        f"{inst.tick_size} x {inst.lot_size} units (the venue's average is rounded)")
            pos.lots = lots
            pos.cost = int(units)
        if self.is_isolated(inst):
            self.isolated[inst.id] = Decimal(0) if isolated is None else isolated
        return None

    def pay_funding(self, inst: Instrument, rate: Decimal, mark: Decimal) -> Decimal:
        """Settle one funding payment for `inst` at `rate` and `mark`; returns what the
        account received (negative = paid), in the settle asset, booked exactly (linear)
        or at SETTLE_STEP (inverse). A long pays when the rate is positive."""
        pos = self.positions.get(inst.id)
        if pos is None or pos.lots == 0:
            return Decimal(0)
        value = _notional_at(inst, pos.lots, Fraction(mark))  # signed
        exact = -value * Fraction(rate)
        amount = _round_settle(exact) if inst.inverse else fraction_to_decimal(exact)
        return self.book_funding(inst, amount)

    def book_funding(self, inst: Instrument, amount: Decimal) -> Decimal:
        """Book a funding payment the venue states (live modes: its FUNDING_FEE income),
        `amount` received (negative = paid) in the settle asset: the wallet, the contract's
        funding total and, in isolated mode, its isolated margin. Returns `amount`."""
        key = (inst.venue, inst.settle)
        self.ledger.balances[key] = _EXACT.add(self.ledger.balances.get(key, Decimal(0)), amount)
        self.funding[inst.id] = self.funding.get(inst.id, Decimal(0)) + amount
        if self.is_isolated(inst) and self._lots(inst):  # a flat position has no margin left
            self.isolated[inst.id] = self.isolated.get(inst.id, Decimal(0)) + amount
        return amount

    def set_mark(self, inst_id: str, mark: Decimal, ts: int) -> None:
        self.marks[inst_id] = mark
        self.mark_ts[inst_id] = ts

    # -- figures -------------------------------------------------------------------------
    def mark_of(self, inst_id: str, fallback: Decimal | None = None) -> Decimal | None:
        return self.marks.get(inst_id, fallback)

    def unrealized(self, inst: Instrument, mark: Decimal | None = None) -> Decimal:
        pos = self.positions.get(inst.id)
        mark = mark if mark is not None else self.marks.get(inst.id)
        if pos is None or pos.lots == 0 or mark is None:
            return Decimal(0)
        return pos.unrealized(mark)

    def accounts(self, instruments: Iterable[Instrument]) -> list[AccountState]:
        """Every margin account with positions or a wallet, in a stable order."""
        out: list[AccountState] = []
        by_key: dict[tuple[str, str], list[Instrument]] = {}
        for inst in instruments:
            if inst.contract:
                by_key.setdefault((inst.venue, inst.settle), []).append(inst)
        for (venue, asset), insts in by_key.items():
            cross = [i for i in insts if not self.is_isolated(i)]
            out.append(self._account(venue, asset, None, self._cross_wallet(venue, asset, insts), cross))
            for inst in insts:
                if self.is_isolated(inst) and self._lots(inst):
                    out.append(self._account(venue, asset, inst.id, self.isolated.get(inst.id, Decimal(0)), [inst]))
        return out

    def _cross_wallet(self, venue: str, asset: str, insts: list[Instrument]) -> Decimal:
        wallet = self.ledger.balances.get((venue, asset), Decimal(0))
        for inst in insts:
            if self.is_isolated(inst):
                wallet -= self.isolated.get(inst.id, Decimal(0))
        return wallet

    def _lots(self, inst: Instrument) -> int:
        pos = self.positions.get(inst.id)
        return 0 if pos is None else pos.lots

    def _account(self, venue, asset, inst_id, wallet, insts) -> AccountState:
        upnl = Fraction(0)
        mm = Fraction(0)
        im = Fraction(0)
        notional = Fraction(0)
        for inst in insts:
            lots = self._lots(inst)
            if lots == 0:
                continue
            # before the first mark a position is valued at its entry price
            mark = self.marks.get(inst.id) or self.positions[inst.id].avg_price
            fmark = Fraction(mark)
            upnl += self.positions[inst.id].upnl_fraction(fmark)
            value = abs(_notional_at(inst, lots, fmark))
            notional += value
            mm += _maintenance(inst, value)
            im += value / self.leverage(inst)
        return AccountState(venue=venue, asset=asset, instrument=inst_id, wallet=wallet,
                            unrealized=fraction_to_decimal(upnl), margin_balance=fraction_to_decimal(Fraction(wallet) + upnl),
                            maintenance=fraction_to_decimal(mm), initial=fraction_to_decimal(im),
                            notional=fraction_to_decimal(notional))

    def liquidation_price(self, inst: Instrument) -> Decimal | None:
        """Binance's liquidation price of the position (module doc), at the bracket of the
        notional there; None when flat or when no price liquidates it (a 1x long)."""
        return self._critical_price(inst, maintenance=True)

    def bankruptcy_price(self, inst: Instrument) -> Decimal | None:
        """The price at which the margin backing the position is exactly used up."""
        return self._critical_price(inst, maintenance=False)

    def _backing(self, inst: Instrument) -> Fraction:
        """WB of the formulas: the isolated margin, or the cross wallet less the other cross
        positions' maintenance margin (TMM1) plus their unrealized PnL (UPNL1)."""
        if self.is_isolated(inst):
            return Fraction(self.isolated.get(inst.id, Decimal(0)))
        insts = [self.ledger.instruments[i] for i in self.positions if i in self.ledger.instruments]
        same = [i for i in insts if i.venue == inst.venue and i.settle == inst.settle]
        wallet = Fraction(self._cross_wallet(inst.venue, inst.settle, same))
        for other in same:
            if other.id == inst.id or self.is_isolated(other) or not self._lots(other):
                continue
            mark = self.marks.get(other.id)
            if mark is None:
                continue
            wallet += self.positions[other.id].upnl_fraction(Fraction(mark))
        return wallet

    def _critical_price(self, inst: Instrument, *, maintenance: bool,
                        backing: Fraction | None = None) -> Decimal | None:
        pos = self.positions.get(inst.id)
        if pos is None or pos.lots == 0:
            return None
        wb = self._backing(inst) if backing is None else backing
        if maintenance and not self.is_isolated(inst):
            insts = self.ledger.instruments
            for other_id in self.positions:
                other = insts.get(other_id)
                if (other is None or other.id == inst.id or other.venue != inst.venue
                        or other.settle != inst.settle or self.is_isolated(other) or not self._lots(other)):
                    continue
                mark = self.marks.get(other.id)
                if mark is not None:
                    wb -= _maintenance(other, abs(_notional_at(other, self._lots(other), Fraction(mark))))
        q = Fraction(pos.qty)
        cs = Fraction(inst.contract_size)
        tiers = inst.margin_brackets if maintenance else ()
        guess = self.marks.get(inst.id) or pos.avg_price
        tier = inst.bracket(fraction_to_decimal(abs(_notional_at(inst, pos.lots, Fraction(guess))))) if tiers else None
        for _ in range(len(inst.margin_brackets) + 1):
            mmr = Fraction(tier.maintenance_rate) if tier else Fraction(0)
            cum = Fraction(tier.maintenance_amount) if tier else Fraction(0)
            if inst.inverse:
                denominator = wb + cum + Fraction(pos.basis)
                if denominator == 0:
                    return None
                price = cs * (q + abs(q) * mmr) / denominator
            else:
                cost = Fraction(pos.cost) * Fraction(pos.unit)
                denominator = cs * (q - abs(q) * mmr)
                if denominator == 0:
                    return None
                price = (cost - wb - cum) / denominator
            if price <= 0:
                return None
            if not tiers:
                break
            at = inst.bracket(fraction_to_decimal(abs(_notional_at(inst, pos.lots, price))))
            if at == tier:  # Binance: recompute with the bracket of the notional at LP
                break
            tier = at
        return fraction_to_decimal(price)

    # -- the venue's checks --------------------------------------------------------------
    def due_liquidations(self, instruments: Iterable[Instrument], inst_ids: set[str] | None = None) -> list[Liquidation]:
        """Positions the venue must take over now (margin ratio >= 100 % at the marks),
        with their closing prices (module doc); `inst_ids` limits the check to accounts
        holding one of these instruments (the ones whose mark just moved)."""
        out: list[Liquidation] = []
        insts = [i for i in instruments if i.contract and self._lots(i)]
        if not insts:  # flat: nothing to take over (and no exact arithmetic to do)
            return out
        for acct in self.accounts(insts):
            members = ([self.ledger.instruments[acct.instrument]] if acct.instrument is not None else
                       [i for i in insts if i.venue == acct.venue and i.settle == acct.asset
                        and not self.is_isolated(i) and self._lots(i)])
            if not members or (inst_ids is not None and not any(i.id in inst_ids for i in members)):
                continue
            if acct.maintenance == 0 or acct.margin_balance > acct.maintenance:
                continue
            ratio = acct.margin_ratio or Decimal("Infinity")
            backing = Fraction(acct.wallet) if acct.instrument is None else None
            for n, inst in enumerate(members):
                pos = self.positions[inst.id]
                if acct.instrument is None:
                    # the others at their marks back this one; later ones close at their marks
                    others = sum((self.positions[o.id].upnl_fraction(Fraction(self.marks[o.id]))
                                  for o in members[n + 1:] if o.id in self.marks), Fraction(0))
                    price = self._critical_price(inst, maintenance=False, backing=backing + others)
                else:
                    price = self.bankruptcy_price(inst)
                mark = self.marks.get(inst.id) or pos.avg_price
                if price is None:
                    price = mark
                side = -1 if pos.lots > 0 else 1
                ticks = Decimal(price) / inst.tick_size
                # in the trader's favour: a long closes at or above, a short at or below
                ticks_int = int(ticks.to_integral_value(rounding=ROUND_CEILING if pos.lots > 0 else ROUND_FLOOR))
                ticks_int = max(ticks_int, 1)
                out.append(Liquidation(inst, side, abs(pos.lots), ticks_int, mark, ratio))
                if acct.instrument is None:
                    closing_price = Fraction(ticks_int) * Fraction(inst.tick_size)
                    backing += pos.upnl_fraction(closing_price)
        return out

    def delivery(self, inst: Instrument, price_ticks: int, mark: Decimal | None = None) -> Liquidation | None:
        """A dated future's delivery: the venue closes the whole position at the delivery
        price (`price_ticks`), no fee, reason "delivery"; None when nothing is held. One
        rule for the simulated venue (venues.sim.derivatives.ContractVenue), the futures
        emulator and a live session booking the venue's settlement (modes.live.derivatives);
        each books the returned close as it books a liquidation (`TradingSession.on_liquidation`,
        or the ledger's `apply_fill`). `mark`: the mark then (the delivery price if None)."""
        lots = self._lots(inst)
        if not lots:
            return None
        price = inst.ticks_to_price(int(price_ticks))
        return Liquidation(inst, -1 if lots > 0 else 1, abs(lots), int(price_ticks),
                           price if mark is None else mark, Decimal(0), reason="delivery")

    def check_order(self, inst: Instrument, side: int, qty_lots: int, price: Decimal | None,
                    open_orders: Iterable[tuple[Instrument, int, int, Decimal | None]],
                    max_leverage: Decimal | None = None,
                    max_margin_ratio: Decimal | None = None,
                    touch: Decimal | None = None) -> ReasonCode | None:
        """The venue's margin check before an order (and the risk limits on leverage and
        margin ratio): None when the order may go, else the reason.

        - `max_notional_at_leverage` (venue): the position after the order would exceed
          the notional cap of the bracket whose max leverage allows the set leverage
          (Binance -2027);
        - `insufficient_margin` (venue): the opening part's initial margin (notional at
          the order's price, or the mark for a market order, / leverage) plus the open
          orders' and positions' initial margin exceeds the margin balance (Binance -2019);
        - `max_leverage` / `max_margin_ratio` (risk): total notional of the account after
          the order over its margin balance above `[risk] max_leverage`; or the account's
          margin ratio at or above `[risk] max_margin_ratio` for an order that adds
          exposure.
        `open_orders`: (instrument, side, leaves lots, price) of the other open orders.
        A market order is valued at the mark, or before the first mark at `touch` (the
        price it would take: best ask for a buy, best bid for a sell).
        A dated future in `delivered` (at or past its expiry) refuses every order,
        `market_closed`: Binance stops trading a quarterly at delivery (status SETTLING,
        then CLOSE), so a position opened after it would never be delivered.
        """
        if inst.id in self.delivered:
            return ReasonCode.MARKET_CLOSED
        pos_lots = self._lots(inst)
        closing = 0 if pos_lots == 0 or (pos_lots > 0) == (side > 0) else min(qty_lots, abs(pos_lots))
        opening = qty_lots - closing
        if opening == 0:
            return None  # reduces only: always allowed
        ref = price if price is not None else self.marks.get(inst.id, touch)
        if ref is None:
            return None  # no price to judge by (empty book, no mark): the venue decides later
        fref = Fraction(ref)
        after = pos_lots + side * qty_lots
        lev = self.leverage(inst)
        notional_after = abs(_notional_at(inst, after, fref))
        allowed = [t for t in inst.margin_brackets if t.max_leverage >= lev]
        # beyond the table's last tier that tier applies (Instrument.bracket): no cap there
        capped = allowed and allowed[-1] is not inst.margin_brackets[-1]
        if not allowed or (capped and Fraction(allowed[-1].cap) < notional_after):
            return ReasonCode.MAX_NOTIONAL_AT_LEVERAGE
        same = [i for i in self.ledger.instruments.values() if i.contract and i.venue == inst.venue and i.settle == inst.settle]
        isolated = self.is_isolated(inst)
        members = [inst] if isolated else [i for i in same if not self.is_isolated(i)]
        acct = self._account(inst.venue, inst.settle, inst.id if isolated else None,
                             Decimal(0) if isolated else self._cross_wallet(inst.venue, inst.settle, same), members)
        balance = Fraction(acct.margin_balance)
        if isolated:  # the new margin comes from the cross wallet
            cross = self._account(inst.venue, inst.settle, None, self._cross_wallet(inst.venue, inst.settle, same),
                                  [i for i in same if not self.is_isolated(i)])
            balance = Fraction(cross.margin_balance) - Fraction(cross.initial)
            used = Fraction(0)
        else:
            used = Fraction(acct.initial)
        for o_inst, _o_side, o_lots, o_price in open_orders:
            if o_inst.venue != inst.venue or o_inst.settle != inst.settle or not o_inst.contract:
                continue
            if (self.is_isolated(o_inst) != isolated) or (isolated and o_inst.id != inst.id):
                continue
            p = Fraction(o_price) if o_price is not None else Fraction(self.marks.get(o_inst.id, ref))
            used += abs(_notional_at(o_inst, o_lots, p)) / self.leverage(o_inst)
        # our risk limits first (a refusal names our limit), then the venue's margin rule
        if max_margin_ratio is not None and acct.margin_ratio is not None and acct.margin_ratio >= max_margin_ratio:
            return ReasonCode.MAX_MARGIN_RATIO
        if max_leverage is not None:
            total = Fraction(acct.notional) - abs(_notional_at(inst, pos_lots, Fraction(self.marks.get(inst.id, ref)))) + notional_after
            if balance <= 0 or total / balance > Fraction(max_leverage):
                return ReasonCode.MAX_LEVERAGE
        need = abs(_notional_at(inst, opening, fref)) / lev
        if used + need > balance:
            return ReasonCode.INSUFFICIENT_MARGIN
        return None


def margin_view(book: MarginBook, inst: Instrument) -> dict[str, Any]:
    """A contract position's margin figures, as `ctx.margin(instrument)` returns them:
    position (contracts), mark, unrealized PnL, liquidation and bankruptcy price, the margin
    ratio of the account that backs it (0..1; >= 1 is liquidation), funding received so far
    (settle asset), leverage and margin mode. None where unknown (no mark yet, flat)."""
    accounts = book.accounts(book.ledger.instruments.values())
    acct = next((a for a in accounts if a.instrument == inst.id), None) or next(
        (a for a in accounts if a.instrument is None and a.venue == inst.venue and a.asset == inst.settle), None)
    pos = book.positions.get(inst.id)
    return {"position": pos.qty if pos is not None else Decimal(0), "mark": book.mark_of(inst.id),
            "unrealized": book.unrealized(inst), "liquidation_price": book.liquidation_price(inst),
            "bankruptcy_price": book.bankruptcy_price(inst),
            "margin_ratio": acct.margin_ratio if acct is not None else None,
            "funding": book.funding.get(inst.id, Decimal(0)), "asset": inst.settle,
            "leverage": book.leverage(inst), "margin_mode": "isolated" if book.is_isolated(inst) else "cross"}


def _notional_at(inst: Instrument, lots: int, price: Fraction) -> Fraction:
    """Signed notional of `lots` at `price`, in the settle asset (linear: quote; inverse:
    base = contracts x contract_size / price)."""
    contracts = Fraction(lots) * Fraction(inst.lot_size) * Fraction(inst.contract_size)
    return contracts / price if inst.inverse else contracts * price


def _maintenance(inst: Instrument, notional: Fraction) -> Fraction:
    tier = inst.bracket(fraction_to_decimal(notional))
    return notional * Fraction(tier.maintenance_rate) - Fraction(tier.maintenance_amount)

