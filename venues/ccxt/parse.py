"""ccxt's Binance order and trade dicts -> the typed records of `engine.types.venue_reports`.

Read from `info` (Binance's own fields, exact decimal strings) rather than ccxt's floats:
money stays exact. Fields (Binance spot API docs; ccxt-binance-dialect note): order
`status` NEW / PARTIALLY_FILLED / FILLED / CANCELED / EXPIRED / EXPIRED_IN_MATCH / REJECTED /
PENDING_CANCEL, `origQty`, `executedQty`, `price`, `orderId`, `clientOrderId`,
`transactTime` / `updateTime` / `time` (ms, or µs for a client that asked for them:
`unit_ns`, venues/ccxt/timeunit.py); a FULL reply's `fills[]` (price, qty,
commission, commissionAsset, tradeId: the taking part of a new order); myTrades rows (id,
orderId, price, qty, commission, commissionAsset, time, isMaker).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.types import Instrument, Liquidity, OrderStatus
from engine.types.orders import ReasonCode
from engine.types.venue_reports import VenueFill, VenueOrderState

_MS = 1_000_000  # ns per venue time unit by default (timeunit.NS_PER_MS)
STATUS = {
    "NEW": OrderStatus.ACKNOWLEDGED,
    "PENDING_NEW": OrderStatus.ACKNOWLEDGED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "PENDING_CANCEL": OrderStatus.ACKNOWLEDGED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}


def venue_amount(text: Any) -> Decimal:
    """A venue's decimal amount (a fill's fee: `commission`, a stream's `n`, ccxt's fee
    cost), exact, without the zeros that pad it: '25.00005000' -> 25.00005, '0.00000000'
    -> 0, '100.00000000' -> 100 (never an exponent form). Why: Binance pads its REST texts
    to 8 decimals and its streams do not; a ledger balance's text keeps the exponent of
    every amount added to it, so without this a session's summary read '10024.89995000'
    or '10024.89995' depending on whether the REST reply or the stream booked the fill
    first, and a backtest (exact fee arithmetic) '10024.89995'."""
    value = Decimal(str(text))
    if not value:
        return Decimal(0)
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return value
    cut = 0
    while cut < -exponent and cut < len(digits) - 1 and digits[len(digits) - 1 - cut] == 0:
        cut += 1
    return Decimal((sign, digits[:len(digits) - cut] or (0,), exponent + cut)) if cut else value


#: time in force / order types whose unfilled remainder Binance ends as EXPIRED
_REMAINDER_TIFS = frozenset(("IOC", "FOK"))


def expired_meaning(raw: str, tif: Any, order_type: Any) -> tuple[OrderStatus, str | None]:
    """What Binance's EXPIRED end of an order means in the engine's terms (status, reason).

    Binance ends an IOC's, FOK's or market order's unfilled remainder as EXPIRED and a
    self-trade-prevented order as EXPIRED_IN_MATCH; the simulated venue reports the first
    as `cancelled` with reason `ioc_remainder` (docs/strategy-api.md), so the live path says
    the same and a strategy reads one vocabulary in every mode. Any other EXPIRED (a
    futures GTD deadline) stays `expired`.
    https://developers.binance.com/docs/binance-spot-api-docs/enums (order status)."""
    if raw == "EXPIRED_IN_MATCH":
        return OrderStatus.EXPIRED, ReasonCode.SELF_TRADE_PREVENTION.value
    if str(tif or "").upper() in _REMAINDER_TIFS or str(order_type or "").upper() == "MARKET":
        return OrderStatus.CANCELLED, ReasonCode.IOC_REMAINDER.value
    return OrderStatus.EXPIRED, None


def _ms(info: dict[str, Any], *keys: str, unit_ns: int = _MS) -> int:
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return int(value) * unit_ns
    return 0


def client_id_of(order: dict[str, Any]) -> str | None:
    """The order's client id; on a cancel reply Binance puts the original in origClientOrderId."""
    info = order.get("info") or {}
    return info.get("origClientOrderId") or info.get("clientOrderId") or order.get("clientOrderId")


def order_state(order: dict[str, Any], inst: Instrument, local_ts: int, source: str,
                unit_ns: int = _MS) -> VenueOrderState:
    """A ccxt order dict (create/fetch/cancel/open orders) as a VenueOrderState; `unit_ns`:
    ns per unit of the venue's time fields (timeunit.unit_ns of the client)."""
    info = order.get("info") or {}
    raw = str(info.get("status") or "").upper()
    status = STATUS.get(raw)
    filled = inst.qty_to_lots(Decimal(str(info.get("executedQty", "0"))))
    if status is None:  # ccxt's unified status when info lacks one
        status = {"open": OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACKNOWLEDGED,
                  "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
                  "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}[order["status"]]
    reason = None
    if status is OrderStatus.EXPIRED:
        status, reason = expired_meaning(raw, info.get("timeInForce") or order.get("timeInForce"),
                                         info.get("type") or order.get("type"))
    price = Decimal(str(info.get("price", "0")))
    return VenueOrderState(
        client_id=client_id_of(order) or "", venue_order_id=str(info.get("orderId", order.get("id"))),
        status=status, price=inst.price_to_ticks(price) if price else 0,
        qty=inst.qty_to_lots(Decimal(str(info.get("origQty", "0")))), filled=filled,
        exch_ts=_ms(info, "updateTime", "transactTime", "workingTime", "time", unit_ns=unit_ns), local_ts=local_ts,
        reason=reason, source=source)


def reply_fills(order: dict[str, Any], inst: Instrument, local_ts: int, unit_ns: int = _MS) -> list[VenueFill]:
    """The fills a FULL create_order reply lists (always the new order's taking part)."""
    info = order.get("info") or {}
    cid = client_id_of(order) or ""
    ts = _ms(info, "transactTime", "workingTime", unit_ns=unit_ns)
    return [VenueFill(client_id=cid, venue_order_id=str(info.get("orderId")), trade_id=str(f["tradeId"]),
                      price=inst.price_to_ticks(Decimal(f["price"])), qty=inst.qty_to_lots(Decimal(f["qty"])),
                      fee=venue_amount(f["commission"]), fee_asset=f["commissionAsset"],
                      liquidity=Liquidity.TAKER, exch_ts=ts, local_ts=local_ts, source="rest")
            for f in info.get("fills") or ()]


def trade_fill(trade: dict[str, Any], inst: Instrument, client_id: str, local_ts: int,
               unit_ns: int = _MS) -> VenueFill:
    """One myTrades row of the order `client_id` as a VenueFill."""
    info = trade.get("info") or {}
    return VenueFill(
        client_id=client_id, venue_order_id=str(info.get("orderId")), trade_id=str(info.get("id", trade.get("id"))),
        price=inst.price_to_ticks(Decimal(str(info["price"]))), qty=inst.qty_to_lots(Decimal(str(info["qty"]))),
        fee=venue_amount(info["commission"]), fee_asset=str(info["commissionAsset"]),
        liquidity=Liquidity.MAKER if info.get("isMaker", info.get("maker")) in (True, "true") else Liquidity.TAKER,
        exch_ts=int(info.get("time", 0)) * unit_ns, local_ts=local_ts, source="query")


def balances(balance: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """fetch_balance's `info.balances` -> {asset: (free, locked)}, exact.

    A futures account (Binance USDⓈ-M `/fapi/v3/account`: `info.assets`) -> {asset:
    (walletBalance, 0)}: the wallet is what the ledger books (realized PnL, fees,
    funding); margin in use and unrealized PnL are not balances (engine/margin.py)."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    info = balance.get("info") or {}
    if isinstance(info, dict) and "assets" in info and "balances" not in info:
        for row in info["assets"]:
            wallet = Decimal(str(row["walletBalance"]))
            if wallet:
                out[str(row["asset"])] = (wallet, Decimal(0))
        return out
    for row in (balance.get("info") or {}).get("balances") or ():
        free, locked = Decimal(str(row["free"])), Decimal(str(row["locked"]))
        if free or locked:
            out[str(row["asset"])] = (free, locked)
    return out

