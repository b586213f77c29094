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

from engine.errors import ConfigError, InstrumentError, OffGridError

_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}
_REQUIRED = ("base", "quote", "tick_size", "lot_size")
_KNOWN = set(_REQUIRED) | {
    "venue_symbol",
    "min_qty",
    "min_notional",
    "maker_fee_bps",
    "taker_fee_bps",
}


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
    return format(value, "f")


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

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"instrument {self.id}: {name} must be > 0")
        for name in ("min_qty", "min_notional"):
            if getattr(self, name) < 0:
                raise ConfigError(f"instrument {self.id}: {name} must be >= 0")

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
        """Exact quote-currency value of qty at price."""
        return self.ticks_to_price(price_ticks) * self.lots_to_qty(qty_lots)


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
    if not file.is_file():
        raise ConfigError(f"instruments file not found: {file}")
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
        )
    return out


def _checked_id(inst_id: str, where: str) -> tuple[str, str]:
    try:
        return parse_instrument_id(inst_id)
    except InstrumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None
