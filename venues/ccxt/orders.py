"""An engine order -> the ccxt call that places, amends or cancels it on Binance spot.

What maps how (Binance spot API docs, "New order", "Cancel an existing order and send a new
order", "STP FAQ"):
- limit GTC/IOC/FOK -> LIMIT with that timeInForce; post-only (GTX) -> LIMIT_MAKER, which the
  venue refuses (-2010 "Order would immediately match and take.") instead of taking;
- market -> MARKET by `quantity`; never with a price (ccxt would turn a price into
  quoteOrderQty = amount x price, a different order);
- GTD: Binance spot has no GTD. The order goes out as GTC and the engine cancels it when
  venue time passes its expiry (`ExpiryWatch`, driven by the session's clock): between the
  deadline and the cancel's acknowledgement it can still fill, a difference from a venue
  GTD that the docs state;
- amend -> cancel-replace (POST /api/v3/order/cancelReplace, cancelReplaceMode
  STOP_ON_FAILURE: if the cancel fails nothing new is placed). The replacement loses queue
  priority (it is a new order) and keeps the client id (the original is cancelled first, and
  ids are unique only among open orders). Its quantity is the new total minus what already
  filled;
- self-trade prevention per order -> `selfTradePreventionMode` (the engine's STP names of
  `venues.sim`, mapped as the emulator maps them: cancel-new = EXPIRE_TAKER, cancel-resting =
  EXPIRE_MAKER, cancel-both = EXPIRE_BOTH, decrement-both = DECREMENT, none = NONE).
- newClientOrderId is always the engine's client id (<= 36 characters, Binance's limit), so
  every lookup of an ambiguous command is by that id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import OrderError
from engine.frozen import frozen_builder
from engine.oms import Order
from engine.types import Instrument, OrderType, TimeInForce
from engine.types.instrument import decimal_str, units_text, units_text_table
from venues.emulator.exchange import STP_OF_SIM

MAX_CLIENT_ID = 36  # Binance: newClientOrderId length limit
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.GTD: "GTC"}
# the same by the code's int value (the live hot path: an IntEnum hashes in Python code,
# and TimeInForce(x) is a metaclass call); GTX never gets here (it is LIMIT_MAKER)
_TIF_BY_CODE = tuple(_TIF.get(t) for t in TimeInForce)
_MARKET, _GTX = OrderType.MARKET, TimeInForce.GTX


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """Arguments of ccxt's create_order / edit_order (amount and price as exact strings)."""

    symbol: str
    type: str
    side: str
    amount: str
    price: str | None
    params: dict[str, Any]

    def args(self) -> tuple[str, str, str, str, str | None, dict[str, Any]]:
        return self.symbol, self.type, self.side, self.amount, self.price, dict(self.params)


_new_request = frozen_builder(OrderRequest)  # the same object, built without the frozen __init__


def stp_mode(stp: str) -> str:
    """The engine's STP name (venues.sim) -> Binance's selfTradePreventionMode."""
    try:
        return STP_OF_SIM[stp]
    except KeyError:
        raise OrderError(f"stp={stp!r}: expected one of {sorted(STP_OF_SIM)}") from None


class OrderMapping:
    """The create_order arguments of one instrument's orders, with what never changes
    between its orders worked out once (see module doc for what maps how).

    `mapping.args(order)` -> (symbol, type, side, amount, price, params), a fresh params dict
    each call (ccxt may keep it). Why a per-instrument object: the live hot path maps an
    order on every submit; the symbol, the STP mode, the contract flag, the lot and tick
    steps and their text tables are the instrument's, and looking them up per order was
    most of the mapping's ~2.5 us (bench/PROFILE.md 1e). The price and amount text come
    from `units_text`'s table of each step (the same text `decimal_str` gives), read here
    directly: a dict hit per value, `units_text` only on a miss. Raises OrderError for a
    client id longer than Binance's 36 characters and for an unknown STP name.
    """

    __slots__ = ("symbol", "lot_size", "tick_size", "contract", "stp_mode", "_amounts", "_prices")

    def __init__(self, instrument: Instrument, stp: str | None = None) -> None:
        self.symbol = instrument.symbol
        self.lot_size, self.tick_size = instrument.lot_size, instrument.tick_size
        self.contract = bool(instrument.contract)
        self.stp_mode = None if stp is None else stp_mode(stp)
        self._amounts = units_text_table(self.lot_size)
        self._prices = units_text_table(self.tick_size)

    def args(self, order: Order) -> tuple[str, str, str, str, str | None, dict[str, Any]]:
        client_id = order.client_id
        if len(client_id) > MAX_CLIENT_ID:
            raise OrderError(f"client id {client_id!r} is longer than Binance's {MAX_CLIENT_ID} characters")
        params: dict[str, Any] = {"newClientOrderId": client_id, "newOrderRespType": "FULL"}
        if self.stp_mode is not None:
            params["selfTradePreventionMode"] = self.stp_mode
        if order.reduce_only and self.contract:  # futures: may only reduce the position
            params["reduceOnly"] = True
        amount = self._amounts.get(order.qty) or units_text(order.qty, self.lot_size)
        side = "buy" if order.side > 0 else "sell"
        if order.type is _MARKET:
            return self.symbol, "market", side, amount, None, params
        price = self._prices.get(order.price) or units_text(order.price, self.tick_size)
        if order.post_only or order.tif is _GTX:
            params["postOnly"] = True
        else:
            tif = _TIF_BY_CODE[order.tif]
            if tif is None:
                raise KeyError(TimeInForce(order.tif))
            params["timeInForce"] = tif
        return self.symbol, "limit", side, amount, price, params


def order_request(order: Order, *, stp: str | None = None) -> OrderRequest:
    """The create_order call for `order` (see module doc; `OrderMapping` is the one mapping)."""
    symbol, type_, side, amount, price, params = OrderMapping(order.instrument, stp).args(order)
    return _new_request(symbol=symbol, type=type_, side=side, amount=amount, price=price, params=params)


def amend_request(order: Order, price: int, qty: int, *, stp: str | None = None) -> OrderRequest:
    """The edit_order (cancel-replace) call moving `order` to price (ticks) and total qty (lots).

    Raises OrderError when the new total is not above what already filled (a cancel, not an
    amend, is what the caller wants then).
    """
    if order.type != OrderType.LIMIT:
        raise OrderError(f"amend {order.client_id}: only limit orders can be amended")
    leaves = qty - order.filled
    if leaves <= 0:
        raise OrderError(f"amend {order.client_id}: new qty is not above the filled qty; cancel instead")
    inst = order.instrument
    req = order_request(order, stp=stp)
    params = dict(req.params)
    params.update({"cancelOrigClientOrderId": order.client_id, "cancelReplaceMode": "STOP_ON_FAILURE"})
    return OrderRequest(req.symbol, "limit", req.side, decimal_str(inst.lots_to_qty(leaves)),
                        decimal_str(inst.ticks_to_price(price)), params)


class ExpiryWatch:
    """GTD emulated by the engine: the orders whose venue-time deadline has passed.

    `add(client_id, expire_ns)` when a GTD order is sent; `due(now_ns)` returns (and forgets)
    the ids to cancel, earliest first; `discard` when the order ends by itself.
    """

    def __init__(self) -> None:
        self._deadlines: dict[str, int] = {}

    def add(self, client_id: str, expire_ns: int) -> None:
        if expire_ns > 0:
            self._deadlines[client_id] = expire_ns

    def discard(self, client_id: str) -> None:
        self._deadlines.pop(client_id, None)

    def due(self, now_ns: int) -> list[str]:
        out = sorted((ts, cid) for cid, ts in self._deadlines.items() if ts <= now_ns)
        for _, cid in out:
            del self._deadlines[cid]
        return [cid for _, cid in out]
