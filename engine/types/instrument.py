"""Instruments: exact conversion between venue decimals and integer ticks/lots.

Why integers: matching runs in numba on int64, and money must be exact. A price that is
not a whole number of ticks is a bug in the caller, so it raises instead of being
rounded silently; strategies that want rounding call `round_price`/`round_qty`, which
say which way they round.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from engine.errors import ConfigError, InstrumentError, OffGridError, file_problem

_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}
_REQUIRED = ("base", "quote", "tick_size", "lot_size")
_KNOWN = set(_REQUIRED) | {
    "venue_symbol",
    "min_qty",
    "min_notional",
    "maker_fee_bps",
    "taker_fee_bps",
    # derivatives (docs/derivatives.md)
    "type",
    "settle",
    "linear",
    "contract_size",
    "expiry",
    "funding_interval_h",
    "margin_brackets",
    "source",
}
#: ccxt's market types: spot, perpetual swap, dated future
MARKET_TYPES = ("spot", "swap", "future")


@dataclass(frozen=True, slots=True)
class MarginBracket:
    """One tier of a contract's margin table: positions whose notional is at most `cap`
    (quote units for linear contracts, base units for inverse ones, as Binance states
    them) need `maintenance_rate` of their notional as maintenance margin, less
    `maintenance_amount`, and allow at most `max_leverage`.

    `maintenance_amount` is Binance's "cum": floor_n x (mmr_n - mmr_{n-1}) + cum_{n-1}
    (https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46, "Maintenance
    Amount formula"), computed here from the tiers so the file cannot contradict itself.
    """

    cap: Decimal
    maintenance_rate: Decimal
    max_leverage: int
    maintenance_amount: Decimal = Decimal(0)


def to_decimal(value: Decimal | str | int, field: str = "value") -> Decimal:
    """Decimal from Decimal/str/int; floats are refused because they are not exact."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or isinstance(value, float):
        raise InstrumentError(
            f"{field}={value!r}: pass a Decimal or a string, not {type(value).__name__} "
            "(floats are not exact)"
        )
    elif isinstance(value, (str, int)):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise InstrumentError(f"{field}={value!r} is not a decimal number") from None
    else:
        raise InstrumentError(f"{field}={value!r}: expected Decimal or str")
    if not result.is_finite():
        raise InstrumentError(f"{field}={value!r} is not finite")
    return result


def decimal_str(value: Decimal) -> str:
    """Plain positional text for a Decimal: '0.0000001', never '1E-7'; zero is '0'."""
    if value == 0:
        return "0"
    # str() is format 'f' unless it chose exponent notation (exponent > 0 or < -6 digits),
    # and 3x faster: the audit log and the run directory write several per fill
    text = str(value)
    return text if "E" not in text else format(value, "f")


_UNITS_TEXT: dict[Decimal, dict[int, str]] = {}


def units_text(units: int, step: Decimal) -> str:
    """`decimal_str(units * step)`: the text of a whole number of ticks or lots (what an
    order request and the audit log write), remembered per step. Why: the live hot path
    writes an order's price and amount as text on every submit (~1 us each by Decimal
    arithmetic, a dict hit ~0.1 us); the text depends on the two values alone. Bounded: a
    step's table starts over past 65,536 entries."""
    table = _UNITS_TEXT.get(step)
    if table is None:
        table = _UNITS_TEXT.setdefault(step, {})
    text = table.get(units)
    if text is None:
        if len(table) >= 65_536:
            table.clear()
        text = table[units] = decimal_str(_from_units(units, step))
    return text


def units_text_table(step: Decimal) -> dict[int, str]:
    """`units_text`'s remembered texts of `step` (units -> text), for a caller that reads
    them directly (the live order mapping: a dict hit, `units_text` on a miss). The same
    dict for the whole process: emptied in place when full, never replaced."""
    table = _UNITS_TEXT.get(step)
    if table is None:
        table = _UNITS_TEXT.setdefault(step, {})
    return table


def parse_instrument_id(instrument_id: str) -> tuple[str, str]:
    """Split ``venue:BASE/QUOTE`` into (venue, symbol), with a clear error otherwise."""
    venue, sep, symbol = instrument_id.partition(":")
    if not sep or not venue or "/" not in symbol:
        raise InstrumentError(
            f"instrument id {instrument_id!r} must look like 'venue:BASE/QUOTE' "
            "(for example 'binance:BTC/USDT')"
        )
    return venue, symbol


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable market on one venue (ccxt unified symbol, e.g. ``BTC/USDT``)."""

    id: str
    venue: str
    symbol: str
    venue_symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee_bps: Decimal | None = None
    taker_fee_bps: Decimal | None = None
    # -- derivatives (ccxt's market fields; docs/derivatives.md) ----------------------
    type: str = "spot"  # "spot" | "swap" (perpetual) | "future" (dated)
    settle: str | None = None  # the asset margin, PnL and funding are booked in
    linear: bool | None = None  # True: settled in the quote; False: inverse, settled in the base
    contract_size: Decimal = Decimal(1)  # base per contract (linear) or quote per contract (inverse)
    expiry_ns: int | None = None  # dated futures: delivery time, ns since epoch
    funding_interval_ns: int | None = None  # perpetuals: time between funding settlements
    margin_brackets: tuple[MarginBracket, ...] = ()

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"instrument {self.id}: {name} must be > 0")
        for name in ("min_qty", "min_notional"):
            if getattr(self, name) < 0:
                raise ConfigError(f"instrument {self.id}: {name} must be >= 0")
        if self.type not in MARKET_TYPES:
            raise ConfigError(f"instrument {self.id}: type {self.type!r}: expected one of {list(MARKET_TYPES)}")
        if self.contract:
            if self.settle is None or self.linear is None:
                raise ConfigError(f"instrument {self.id}: a {self.type} needs settle and linear")
            if self.contract_size <= 0:
                raise ConfigError(f"instrument {self.id}: contract_size must be > 0")
            if not self.margin_brackets:
                raise ConfigError(f"instrument {self.id}: a {self.type} needs margin_brackets")

    @property
    def contract(self) -> bool:
        """True for perpetual swaps and dated futures (margin, not spot balances)."""
        return self.type != "spot"

    @property
    def inverse(self) -> bool:
        return self.linear is False

    def bracket(self, notional: Decimal) -> MarginBracket:
        """The margin tier of a position of this notional (quote units if linear, base
        units if inverse); beyond the last cap the last tier applies (stated)."""
        for tier in self.margin_brackets:
            if notional <= tier.cap:
                return tier
        return self.margin_brackets[-1]

    # -- exact conversions -------------------------------------------------------------
    def price_to_ticks(self, price: Decimal | str | int) -> int:
        """Price -> int ticks; raises OffGridError unless it is a whole number of ticks."""
        return _to_units(to_decimal(price, "price"), self.tick_size, self.id, "price", "tick_size")

    def qty_to_lots(self, qty: Decimal | str | int) -> int:
        """Quantity -> int lots; raises OffGridError unless it is a whole number of lots."""
        return _to_units(to_decimal(qty, "qty"), self.lot_size, self.id, "qty", "lot_size")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return _from_units(ticks, self.tick_size)

    def lots_to_qty(self, lots: int) -> Decimal:
        return _from_units(lots, self.lot_size)

    # -- explicit rounding helpers for strategies ----------------------------------------
    def round_price(self, price: Decimal | str | int, mode: str = "nearest") -> Decimal:
        """Snap a price onto the tick grid; mode is 'down', 'up' or 'nearest' (half-even)."""
        return _round(to_decimal(price, "price"), self.tick_size, mode)

    def round_qty(self, qty: Decimal | str | int, mode: str = "down") -> Decimal:
        """Snap a quantity onto the lot grid; rounds down by default (never oversize)."""
        return _round(to_decimal(qty, "qty"), self.lot_size, mode)

    def notional(self, price_ticks: int, qty_lots: int) -> Decimal:
        """Exact quote-currency value of qty at price (contracts: x contract_size; an
        inverse contract's quote value is contracts x contract_size, whatever the price)."""
        if self.inverse:
            return self.lots_to_qty(qty_lots) * self.contract_size
        value = self.ticks_to_price(price_ticks) * self.lots_to_qty(qty_lots)
        return value * self.contract_size if self.contract else value


INT64_MAX = 2**63 - 1  # ticks and lots are int64 (numba matching, stores)


def beyond_range_message(inst: str, field: str, value: Decimal | str, step: Decimal, step_name: str) -> str:
    """The error text for a value whose count of steps does not fit in int64: the largest
    representable value at this step and the finest coarser power-of-ten step that holds
    it (used by `Instrument.price_to_ticks` and the importers' parser)."""
    largest = Decimal(INT64_MAX) * step
    coarser = step * 10
    try:
        while abs(Decimal(value)) / coarser > INT64_MAX:
            coarser *= 10
    except ArithmeticError:  # not a number at all: no suggestion beyond the limit
        pass
    unit = "ticks" if step_name == "tick_size" else "lots"
    shown = format(value, "f") if isinstance(value, Decimal) else value
    return (
        f"{inst}: {field} {shown} is beyond the largest {field} representable at {step_name} "
        f"{step:f}: {largest:f} (2^63-1 {unit}); use a coarser {step_name} "
        f"(e.g. {coarser.normalize():f})"
    )


def _to_units(value: Decimal, step: Decimal, inst: str, field: str, step_name: str) -> int:
    units = value / step
    if units != units.to_integral_value():
        raise OffGridError(
            f"{inst}: {field} {value} is not a multiple of {step_name} {step} "
            f"(use round_{field}() to snap it)"
        )
    if abs(units) > INT64_MAX:
        raise InstrumentError(beyond_range_message(inst, field, value, step, step_name))
    return int(units)


def _from_units(units: int, step: Decimal) -> Decimal:
    # keep the step's exponent: 100 lots of 0.00001 is 0.00100, never 1E-3
    return Decimal(int(units)) * step


def _round(value: Decimal, step: Decimal, mode: str) -> Decimal:
    if mode not in _ROUNDING:
        raise InstrumentError(f"rounding mode {mode!r}: expected one of {sorted(_ROUNDING)}")
    units = (value / step).to_integral_value(rounding=_ROUNDING[mode])
    return _from_units(int(units), step)


def default_instruments_path() -> Path:
    """The shipped instruments file (main spot pairs of five venues)."""
    return Path(__file__).resolve().parent.parent / "instruments.toml"


def load_instruments(path: str | Path | None = None) -> dict[str, Instrument]:
    """Read an instruments TOML file: one table per ``venue:BASE/QUOTE`` id."""
    file = Path(path) if path is not None else default_instruments_path()
    if (problem := file_problem(file)) is not None:
        raise ConfigError(f"instruments file {problem}: {file}")
    try:
        raw = tomllib.loads(file.read_text(), parse_float=Decimal)  # 0.01 stays Decimal('0.01')
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    out: dict[str, Instrument] = {}
    for inst_id, spec in raw.items():
        where = f"{file} [{inst_id}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a table of fields")
        venue, symbol = _checked_id(inst_id, where)
        unknown = set(spec) - _KNOWN
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
        missing = [k for k in _REQUIRED if k not in spec]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing}")

        def dec(key: str, default: str | None = None, _spec=spec, _where=where) -> Decimal | None:
            value = _spec.get(key, default)
            if value is None:
                return None
            try:
                return to_decimal(value, key)
            except InstrumentError as exc:
                raise ConfigError(f"{_where}: {exc}") from None

        out[inst_id] = Instrument(
            id=inst_id,
            venue=venue,
            symbol=symbol,
            venue_symbol=str(spec.get("venue_symbol", symbol.replace("/", ""))),
            base=str(spec["base"]),
            quote=str(spec["quote"]),
            tick_size=dec("tick_size"),
            lot_size=dec("lot_size"),
            min_qty=dec("min_qty", "0"),
            min_notional=dec("min_notional", "0"),
            maker_fee_bps=dec("maker_fee_bps"),
            taker_fee_bps=dec("taker_fee_bps"),
            **_contract_fields(spec, symbol, where, dec),
        )
    return out


def _contract_fields(spec: dict, symbol: str, where: str, dec) -> dict:
    """The derivatives fields of one instruments-file table (none for spot)."""
    kind = str(spec.get("type", "spot"))
    if kind == "spot":
        extra = [k for k in ("settle", "linear", "contract_size", "expiry", "funding_interval_h",
                             "margin_brackets") if k in spec]
        if extra:
            raise ConfigError(f"{where}: {extra} apply to type = 'swap' or 'future' only")
        return {}
    if kind not in MARKET_TYPES:
        raise ConfigError(f"{where}: type = {kind!r}: expected one of {list(MARKET_TYPES)}")
    settle = spec.get("settle")
    if settle is None or ":" not in symbol or symbol.partition(":")[2].partition("-")[0] != settle:
        raise ConfigError(f"{where}: settle must be given and match the ccxt symbol's settle part "
                          f"(BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT)")
    linear = spec.get("linear")
    if not isinstance(linear, bool):
        raise ConfigError(f"{where}: linear = true (settled in the quote) or false (inverse) is required")
    want_settle = spec["quote"] if linear else spec["base"]
    if settle != want_settle:
        raise ConfigError(f"{where}: a {'linear' if linear else 'inverse'} contract settles in "
                          f"{want_settle}, not {settle}")
    expiry_ns = None
    if kind == "future":
        raw = spec.get("expiry")
        if raw is None:
            raise ConfigError(f"{where}: a dated future needs expiry = \"2025-12-26T08:00:00Z\"")
        expiry_ns = _iso_ns(str(raw), where)
    elif "expiry" in spec:
        raise ConfigError(f"{where}: expiry applies to type = 'future' only")
    funding_ns = None
    if kind == "swap":
        hours = spec.get("funding_interval_h")
        if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
            raise ConfigError(f"{where}: a perpetual needs funding_interval_h = <hours> (e.g. 8)")
        funding_ns = hours * 3_600_000_000_000
    brackets = _brackets(spec.get("margin_brackets"), where)
    return {"type": kind, "settle": str(settle), "linear": linear,
            "contract_size": dec("contract_size", "1"), "expiry_ns": expiry_ns,
            "funding_interval_ns": funding_ns, "margin_brackets": brackets}


def _brackets(raw, where: str) -> tuple[MarginBracket, ...]:
    """margin_brackets = [{cap, maintenance_rate, max_leverage}, ...] in rising caps; the
    maintenance amount ("cum") of each tier is derived (see MarginBracket)."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: margin_brackets = [{{ cap = \"50000\", maintenance_rate = "
                          f"\"0.004\", max_leverage = 125 }}, ...] is required for a contract")
    out: list[MarginBracket] = []
    floor, prev_rate, cum = Decimal(0), Decimal(0), Decimal(0)
    for n, tier in enumerate(raw, 1):
        at = f"{where} margin_brackets[{n}]"
        if not isinstance(tier, dict) or set(tier) != {"cap", "maintenance_rate", "max_leverage"}:
            raise ConfigError(f"{at}: expected exactly cap, maintenance_rate, max_leverage")
        try:
            cap = to_decimal(tier["cap"], "cap")
            rate = to_decimal(tier["maintenance_rate"], "maintenance_rate")
        except InstrumentError as exc:
            raise ConfigError(f"{at}: {exc}") from None
        lev = tier["max_leverage"]
        if not isinstance(lev, int) or isinstance(lev, bool) or lev <= 0:
            raise ConfigError(f"{at}: max_leverage = {lev!r}: expected a positive integer")
        if cap <= floor or not 0 < rate < 1 or rate < prev_rate:
            raise ConfigError(f"{at}: caps must rise and rates must be in (0, 1) and not fall")
        cum = floor * (rate - prev_rate) + cum
        out.append(MarginBracket(cap=cap, maintenance_rate=rate, max_leverage=lev, maintenance_amount=cum))
        floor, prev_rate = cap, rate
    return tuple(out)


def _iso_ns(text: str, where: str) -> int:
    # engine.config imports nothing of engine.types: no cycle
    from engine.config import parse_time

    ns = parse_time(text, f"{where} expiry")
    assert ns is not None
    return ns


def _checked_id(inst_id: str, where: str) -> tuple[str, str]:
    try:
        return parse_instrument_id(inst_id)
    except InstrumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None
