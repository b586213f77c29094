"""Exact trading fees, and the funds an open order locks at a spot venue.

Why here and not in numba: a fee is money, so it is computed from integer ticks and lots
with Decimal arithmetic, exactly, once per fill. A negative rate is a rebate. The asset a
fee is charged in follows the venue's rule (`fee_asset` of its profile, `fill_fee`):
"quote" charges the quote asset on both sides; "received" charges the asset the fill
credits, as Binance spot does without BNB (a buy pays in base, a sell in quote). The
ledger books the fee in that asset and values it in quote at the fill price for PnL and
TCA (`Ledger.fee_in_quote`). The simulated venue applies the same rates and rule in its
own exact integer units (venues/sim/matching_nb.py, "balances").
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.types import Instrument, Liquidity, OrderType

if TYPE_CHECKING:
    from engine.oms import Order

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
    maker, taker = rates(instrument, maker_bps, taker_bps)
    rate = maker if liquidity == Liquidity.MAKER else taker
    return instrument.notional(price_ticks, qty_lots) * rate / _BPS


FEE_ASSET_RULES = ("quote", "received")


def fill_fee(
    instrument: Instrument,
    side: int,
    price_ticks: int,
    qty_lots: int,
    liquidity: Liquidity,
    maker_bps: Decimal,
    taker_bps: Decimal,
    fee_asset: str = "quote",
) -> tuple[Decimal, str]:
    """(fee, asset) of one fill under the venue's fee-asset rule (`FEE_ASSET_RULES`).

    "quote": notional x rate / 10,000 in the quote asset, both sides. "received": a buy
    pays qty x rate / 10,000 in the base asset it receives, a sell notional x rate / 10,000
    in quote (Binance spot, "Trading fees are deducted from the asset you receive",
    https://www.binance.com/en/support/faq/detail/e85d6e703b874674840122196b89780a).
    The fee valued in quote at the fill price is the same number either way.
    """
    if fee_asset == "received" and side > 0:
        maker, taker = rates(instrument, maker_bps, taker_bps)
        rate = maker if liquidity == Liquidity.MAKER else taker
        return instrument.lots_to_qty(qty_lots) * rate / _BPS, instrument.base
    return fee_amount(instrument, price_ticks, qty_lots, liquidity, maker_bps, taker_bps), instrument.quote


def rates(instrument: Instrument, maker_bps: Decimal, taker_bps: Decimal) -> tuple[Decimal, Decimal]:
    """(maker, taker) bps for an instrument: its own rates override the venue's."""
    maker = instrument.maker_fee_bps if instrument.maker_fee_bps is not None else maker_bps
    taker = instrument.taker_fee_bps if instrument.taker_fee_bps is not None else taker_bps
    return maker, taker


def locked_amounts(orders: Iterable[Order], maker_bps: Decimal, taker_bps: Decimal) -> dict[str, Decimal]:
    """{asset: amount} the venue holds locked for these open orders, as Binance spot does.

    A limit buy locks its quote notional at its limit price plus the largest fee it may be
    charged (fees are charged in quote here: notional x max(maker, taker, 0) / 10,000); a
    sell locks its base quantity. Only orders the venue has acknowledged count (the venue
    locks on arrival; we learn it with the ack), and only what they have left. A market buy
    locks nothing (it pays fill by fill). Rule source: Binance spot "free" and "locked"
    balances (GET /api/v3/account); the simulated venue applies the same rule.
    """
    out: dict[str, Decimal] = {}
    for order in orders:
        if order.ack_ts is None or order.leaves <= 0:
            continue
        inst = order.instrument
        lots = Decimal(order.leaves) * inst.lot_size
        if order.side < 0:
            out[inst.base] = out.get(inst.base, Decimal(0)) + lots
        elif order.type != OrderType.MARKET:
            maker, taker = rates(inst, bps(maker_bps), bps(taker_bps))
            notional = lots * Decimal(order.price) * inst.tick_size
            out[inst.quote] = (out.get(inst.quote, Decimal(0))
                               + notional + notional * max(maker, taker, Decimal(0)) / _BPS)
    return out
