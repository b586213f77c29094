"""Exact trading fees.

Why here and not in numba: a fee is money, so it is computed from integer ticks and lots
with Decimal arithmetic, exactly, once per fill. A negative rate is a rebate.
"""

from __future__ import annotations

from decimal import Decimal

from engine.types import Instrument, Liquidity

_BPS = Decimal(10000)


def bps(value: float | int | str | Decimal) -> Decimal:
    """A fee rate from config: TOML floats are read by their written digits (1.0 -> 1.0)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def fee_amount(
    instrument: Instrument,
    price_ticks: int,
    qty_lots: int,
    liquidity: Liquidity,
    maker_bps: Decimal,
    taker_bps: Decimal,
) -> Decimal:
    """Fee in the quote asset; the instrument's own rates override the venue's."""
    if liquidity == Liquidity.MAKER:
        rate = instrument.maker_fee_bps if instrument.maker_fee_bps is not None else maker_bps
    else:
        rate = instrument.taker_fee_bps if instrument.taker_fee_bps is not None else taker_bps
    return instrument.notional(price_ticks, qty_lots) * rate / _BPS
