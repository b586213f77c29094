"""The emulated Binance USDⓈ-M futures exchange: the spot emulator's core plus positions,
margin, marks, funding and the venue's liquidations (protocol-free; `futures_server`
speaks Binance's `/fapi`).

Why a subclass of `Exchange` and no new rules: matching is the same `venues.sim` core
(queue position, partial fills, latency, fees), and the money side is exactly the
backtest's: each account keeps an `engine.ledger.Ledger` whose `MarginBook`
(engine/margin.py) books contract fills, funding and liquidations, checks margin before
every order (Binance -2019 / -2027) and finds the positions to liquidate at each mark,
as `venues.sim.derivatives.ContractVenue` does for a backtest (docs/derivatives.md). What
differs is only that there are several accounts and that the results go out as Binance
futures replies and user-stream events.

Market data: MARK_PRICE / FUNDING_RATE rows of the dataset never reach the matching core
(as in a backtest, `ContractFeed`): they are kept aside and applied in time order with the
matching (`advance`). Without mark rows the mark is the mid of the venue's book every
second; without funding rows nothing is paid (docs/derivatives.md, "Market data").

Units: quantities in contracts (ccxt's `amount`), margin, PnL, fees and funding in the
settle asset (USDT), exact Decimals.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.ledger import Ledger
from engine.margin import Liquidation, MarginSettings, contract_fee
from engine.types import EventKind, Instrument
from engine.types.market import DERIVATIVE_KINDS, FUNDING_RATE_UNIT
from engine.types.orders import ReasonCode
from venues.emulator.accounts import Account
from venues.emulator.clock import MarketClock
from venues.emulator.exchange import BinanceError, EmuOrder, Exchange, UserEvent
from venues.sim import SimVenueConfig
from venues.sim.derivatives import MARK_INTERVAL_NS, DeliveryPrices

_MARK = int(EventKind.MARK_PRICE)
_FUNDING = int(EventKind.FUNDING_RATE)
#: the ccxt venue ids whose contracts this emulator serves (USDⓈ-M: linear, settled in USDT;
#: COIN-M: inverse, settled in the coin), one of them per emulator
FUTURES_VENUES = ("binanceusdm", "binancecoinm")


def serves_futures(instruments: Iterable[Instrument]) -> bool:
    """True when the instruments are Binance contracts (the emulator then speaks `/fapi` for
    USDⓈ-M, `/dapi` for COIN-M)."""
    return any(i.venue in FUTURES_VENUES for i in instruments)


class FuturesExchange(Exchange):
    """Accounts with contract positions over a push-mode `SimCore` (see module doc).

    `margin`: the venues' margin settings (`[venues.binanceusdm] leverage / margin_mode`);
    an account's `POST /fapi/v1/leverage` changes its own copy.
    """

    def __init__(self, instruments: Sequence[Instrument], venue_configs: Mapping[str, SimVenueConfig],
                 source: Iterable[np.ndarray], accounts: Sequence[Account],
                 clock_factory: Callable[[int], MarketClock], *,
                 margin: Mapping[str, MarginSettings] | None = None, **kw: Any) -> None:
        bad = [i.id for i in instruments if not i.contract or i.venue not in FUTURES_VENUES
               or i.inverse != (i.venue == "binancecoinm")]
        if bad or len({i.venue for i in instruments}) != 1:
            raise ConfigError(f"the futures emulator serves Binance USDⓈ-M (binanceusdm:*, linear) or COIN-M "
                              f"(binancecoinm:*, inverse) contracts, one venue at a time; not {bad or list(instruments)}")
        self._contract_rows: deque[Any] = deque()
        # per instrument, the funding settlements read ahead and not yet applied: (exch_ts, rate)
        self._funding_ahead: dict[int, deque[tuple[int, Decimal]]] = {}
        super().__init__(instruments, venue_configs, source, accounts, clock_factory, **kw)
        self.by_id = {i.id: i for i in self.instruments}
        self.marks: dict[str, Decimal] = {}
        self.mark_ts: dict[str, int] = {}
        self.last_funding: dict[int, Decimal] = {}
        self.seen_marks: set[int] = set()
        self.next_mid_mark = self.clock.now()
        self.margin = dict(margin or {})
        self.ledgers: dict[str, Ledger] = {}
        keep = kw.get("keep_trades", 50_000)
        self.income: dict[str, deque[dict[str, Any]]] = {a.name: deque(maxlen=int(keep)) for a in self.accounts}
        self._next_tran = 1
        self.liquidations: list[tuple[str, int, Liquidation]] = []  # account, ts, what
        self.force_orders: dict[str, list[EmuOrder]] = {a.name: [] for a in self.accounts}  # forceOrders
        # dated futures: the delivery price rule shared with the simulated venue, and the
        # instruments delivered (contractStatus DELIVERED, new orders -4108)
        self.delivery = DeliveryPrices(self.instruments)
        self.delivered: dict[int, int] = {}  # instrument -> delivery price, ticks
        for a in self.accounts:
            self.ledgers[a.name] = self._ledger(a)

    def _ledger(self, account: Account) -> Ledger:
        wallets: dict[str, dict[str, Decimal]] = {}
        for inst in self.instruments:
            wallets.setdefault(inst.venue, {})[inst.settle] = account.free.get(inst.settle, Decimal(0))
        ledger = Ledger(dict(self.by_id), wallets)
        book = ledger.derivatives
        book.settings = {v: self.margin.get(v, MarginSettings()) for v in wallets}
        book.marks = self.marks  # one mark per contract, shared by every account
        book.mark_ts = self.mark_ts
        return ledger

    # -- the feed: contract rows kept aside (as ContractFeed does for a backtest) --------
    def _next_chunk(self) -> np.ndarray | None:
        while True:
            chunk = super()._next_chunk()
            if chunk is None:
                return None
            mask = np.isin(chunk["kind"], DERIVATIVE_KINDS)
            if mask.any():
                self._contract_rows.extend(chunk[mask])
                for row in chunk[mask & (chunk["kind"] == _FUNDING)]:
                    self._funding_ahead.setdefault(int(row["instrument"]), deque()).append(
                        (int(row["exch_ts"]), Decimal(int(row["side"]) * int(row["price"])) * FUNDING_RATE_UNIT))
                chunk = chunk[~mask]
            if len(chunk):
                return chunk

    def _fill_ahead(self, m: int) -> None:
        while self.core.pushed_until <= m + self.lookahead_ns and self._push_more():
            pass

    def _next_contract_ts(self) -> int | None:
        out = int(self._contract_rows[0]["local_ts"]) if self._contract_rows else None
        if any(k not in self.seen_marks for k in range(len(self.instruments))):
            out = self.next_mid_mark if out is None else min(out, self.next_mid_mark)
        for k, inst in enumerate(self.instruments):
            if inst.expiry_ns is not None and k not in self.delivered:
                out = inst.expiry_ns if out is None else min(out, inst.expiry_ns)
        return out

    def advance(self, market_ns: int | None = None) -> None:
        """As `Exchange.advance`, with the contract events (marks, funding, liquidations)
        applied in time order between the matching steps."""
        m = self.clock.now() if market_ns is None else int(market_ns)
        while True:
            self._fill_ahead(m)
            te = self._next_contract_ts()
            if te is None or te > m:
                break
            super().advance(te)
            self._contract_events(te)
        super().advance(m)

    # -- marks, funding, liquidation ---------------------------------------------------
    def _mid(self, k: int) -> Decimal | None:
        bid, bid_qty, ask, ask_qty = self.core.exchange_bbo(k)
        if bid_qty <= 0 or ask_qty <= 0:
            return None
        return self.instruments[k].ticks_to_price(bid + ask) / 2

    def mark_of(self, k: int) -> Decimal | None:
        """The mark of instrument k (None before the first mark or mid)."""
        return self.marks.get(self.instruments[k].id)

    def next_funding(self, k: int) -> tuple[int, Decimal] | None:
        """The next funding settlement of instrument k in the data, (exch_ts ns, rate), when
        the feed has been read that far (the market `premiumIndex` / `markPrice` stream
        announce it as `nextFundingTime` and the rate `r`, as Binance announces the rate it
        will settle); None otherwise."""
        ahead = self._funding_ahead.get(k)
        return ahead[0] if ahead else None

    def _set_mark(self, k: int, mark: Decimal, t: int) -> None:
        inst_id = self.instruments[k].id
        self.marks[inst_id] = mark
        self.mark_ts[inst_id] = t
        self.delivery.note(inst_id, t, mark)

    def _contract_events(self, now: int) -> None:
        moved: set[str] = set()
        while self._contract_rows and int(self._contract_rows[0]["local_ts"]) <= now:
            row = self._contract_rows.popleft()
            k = int(row["instrument"])
            inst = self.instruments[k]
            t = int(row["exch_ts"])
            if int(row["kind"]) == _MARK:
                self._set_mark(k, inst.ticks_to_price(int(row["price"])), t)
                self.seen_marks.add(k)
                moved.add(inst.id)
                continue
            rate = Decimal(int(row["side"]) * int(row["price"])) * FUNDING_RATE_UNIT
            self.last_funding[k] = rate
            ahead = self._funding_ahead.get(k)
            if ahead:
                ahead.popleft()
            if int(row["qty"]):
                self._set_mark(k, inst.ticks_to_price(int(row["qty"])), t)
                moved.add(inst.id)
            mark = self.mark_of(k) or self._mid(k)
            if mark is not None:
                self._settle_funding(k, rate, mark, now)
        if now >= self.next_mid_mark:
            for k in range(len(self.instruments)):
                if k in self.seen_marks:
                    continue
                mid = self._mid(k)
                if mid is not None:
                    self._set_mark(k, mid, now)
                    moved.add(self.instruments[k].id)
            while self.next_mid_mark <= now:
                self.next_mid_mark += MARK_INTERVAL_NS
        if moved:
            self._liquidate(moved, now)
        for k, inst in enumerate(self.instruments):
            if inst.expiry_ns is not None and k not in self.delivered and now >= inst.expiry_ns:
                self._deliver(k, now)

    def _deliver(self, k: int, t: int) -> None:
        """A dated future at its expiry (Binance: the last Friday of the quarter, 08:00
        UTC): every account's open orders on it are cancelled and its position is settled
        at the delivery price (venues.sim.derivatives.DeliveryPrices, the simulated venue's
        rule) with no fee, booked as realized PnL (income `DELIVERED_SETTELMENT`, Binance's
        spelling) and an ACCOUNT_UPDATE; the symbol then shows DELIVERED in exchangeInfo
        and refuses new orders (-4108)."""
        spec = self.instruments[k]
        ticks = self.delivery.price_ticks(spec)
        if ticks is None:
            mid = self._mid(k)
            ticks = None if mid is None else int((mid / spec.tick_size).to_integral_value())
        self.delivered[k] = 0 if ticks is None else ticks
        ms = self.clock.shown_ms(t)
        self.journal.write("delivery", t, ms, symbol=self.symbols[k],
                           price=None if ticks is None else spec.ticks_to_price(ticks))
        for acct in self.accounts:
            for o in self.open_orders(acct, k):
                if o.order_id not in self._pending_cancel and not (self.ended or self.halted_reason):
                    self.cancel_order(o)
            ledger = self.ledgers[acct.name]
            close = None if ticks is None else ledger.derivatives.delivery(spec, ticks, self.mark_of(k))
            if close is None:
                continue
            realized = ledger.apply_fill(spec, close.side, close.price_ticks, close.lots, Decimal(0))
            self._sync_wallet(acct)
            self._income(acct, spec, "DELIVERED_SETTELMENT", realized, ms)
            self.journal.write("delivery_settlement", t, ms, account=acct.name, symbol=self.symbols[k],
                               side="BUY" if close.side > 0 else "SELL", qty=spec.lots_to_qty(close.lots),
                               price=spec.ticks_to_price(ticks), realized_pnl=realized)
            acct.update_ms = ms
            self.user_events.append(UserEvent(acct, "balance", None, {"ts": t, "reason": "ORDER"}))

    def _settle_funding(self, k: int, rate: Decimal, mark: Decimal, t: int) -> None:
        """Funding on every account's position (engine.margin.MarginBook.pay_funding: a
        long pays when the rate is positive), as a FUNDING_FEE income and an
        ACCOUNT_UPDATE with reason FUNDING_FEE."""
        inst = self.instruments[k]
        ms = self.clock.shown_ms(t)
        for acct in self.accounts:
            amount = self.ledgers[acct.name].derivatives.pay_funding(inst, rate, mark)
            if not amount:
                continue
            self._sync_wallet(acct)
            self._income(acct, inst, "FUNDING_FEE", amount, ms)
            self.journal.write("funding", t, ms, account=acct.name, symbol=self.symbols[k], rate=rate,
                               mark=mark, amount=amount, asset=inst.settle)
            acct.update_ms = ms
            self.user_events.append(UserEvent(acct, "balance", None, {"ts": t, "reason": "FUNDING_FEE"}))

    def _income(self, acct: Account, inst: Instrument, kind: str, amount: Decimal, ms: int,
                trade_id: int | None = None) -> None:
        self.income[acct.name].append({
            "symbol": self.symbols[self.instruments.index(inst)], "incomeType": kind, "income": amount,
            "asset": inst.settle, "time": ms, "tranId": self._next_tran,
            "tradeId": "" if trade_id is None else str(trade_id)})
        self._next_tran += 1

    def _liquidate(self, moved: set[str], now: int) -> None:
        """The venue takes over positions whose margin ratio reached 100 % at the marks
        (engine.margin.MarginBook.due_liquidations: closed at the bankruptcy price, no fee);
        their open orders on the contract are cancelled first, as Binance does, and the
        close goes out as a filled LIQUIDATION order `autoclose-...`."""
        for acct in self.accounts:
            ledger = self.ledgers[acct.name]
            for liq in ledger.derivatives.due_liquidations(self.instruments, moved):
                k = self.instruments.index(liq.instrument)
                for o in self.open_orders(acct, k):
                    if o.order_id not in self._pending_cancel and not (self.ended or self.halted_reason):
                        self.cancel_order(o)
                self._liquidation_fill(acct, k, liq, now)

    def _liquidation_fill(self, acct: Account, k: int, liq: Liquidation, t: int) -> None:
        spec = self.instruments[k]
        ms = self.clock.shown_ms(t)
        order = EmuOrder(order_id=self._next_order_id, account=acct, inst=k, symbol=self.symbols[k],
                         client_id=f"autoclose-{ms}{self._next_order_id}", side=liq.side, type="LIQUIDATION",
                         tif="IOC", price=liq.price_ticks, qty=liq.lots, quote_qty=None, stp="NONE",
                         time_ms=ms, update_ms=ms, working_ms=ms, status="NEW")
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self._order_event(order, "NEW", t)
        ledger = self.ledgers[acct.name]
        realized = ledger.apply_fill(spec, liq.side, liq.price_ticks, liq.lots, Decimal(0))
        self._sync_wallet(acct)
        price = spec.ticks_to_price(liq.price_ticks)
        qty = spec.lots_to_qty(liq.lots)
        cost = price * qty
        order.executed = liq.lots
        order.cum_quote = cost
        order.status = "FILLED"
        tid = self._next_trade_id
        self._next_trade_id += 1
        fill = {"trade_id": tid, "price": price, "qty": qty, "quote_qty": cost, "commission": Decimal(0),
                "commission_asset": spec.settle, "time": ms, "is_maker": False, "ts": t,
                "realized_pnl": realized}
        order.fills.append(fill)
        self.trades[acct.name].append({"order": order, **fill})
        self._income(acct, spec, "REALIZED_PNL", realized, ms, tid)
        self.liquidations.append((acct.name, t, liq))
        self.force_orders[acct.name].append(order)
        acct.update_ms = ms
        self.journal.write("liquidation", t, ms, account=acct.name, order_id=order.order_id,
                           client_order_id=order.client_id, symbol=order.symbol,
                           side="BUY" if liq.side > 0 else "SELL", price=price, qty=qty, mark=liq.mark,
                           margin_ratio=str(liq.margin_ratio))
        self.journal.write("fill", t, ms, account=acct.name, order_id=order.order_id,
                           client_order_id=order.client_id, symbol=order.symbol,
                           side="BUY" if liq.side > 0 else "SELL", trade_id=tid, price=price, qty=qty,
                           quote_qty=cost, commission=Decimal(0), commission_asset=spec.settle,
                           liquidity="taker", executed=qty, status="FILLED", realized_pnl=realized)
        self._order_event(order, "TRADE", t, fill)
        self._closed_history(order)
        self.user_events.append(UserEvent(acct, "balance", None, {"ts": t, "reason": "ORDER"}))

    # -- orders: margin instead of locked funds ----------------------------------------
    def _funds_for(self, account: Account, inst: int, side: int, typ: str, price: int, qty: int,
                   quote_qty: Decimal | None) -> tuple[str, Decimal]:
        """The venue's margin check (engine.margin.MarginBook.check_order): -2019 "Margin
        is insufficient." or -2027 when the position after the order exceeds what the set
        leverage allows. Nothing is locked: the open orders' margin is counted instead."""
        spec = self.instruments[inst]
        if inst in self.delivered:
            raise BinanceError(-4108, "Symbol is on delivering or delivered or settling or closed or pre-trading.")
        others = [(self.instruments[o.inst], o.side, o.qty - o.executed,
                   self.instruments[o.inst].ticks_to_price(o.price) if o.type != "MARKET" else None)
                  for o in self.open_orders(account, None)]
        bid, bid_qty, ask, ask_qty = self.books[inst].top()
        touch_px, touch_qty = (ask, ask_qty) if side > 0 else (bid, bid_qty)
        reason = self.ledgers[account.name].derivatives.check_order(
            spec, side, qty, spec.ticks_to_price(price) if typ != "MARKET" else None, others,
            touch=spec.ticks_to_price(touch_px) if touch_qty > 0 else None)
        if reason == ReasonCode.INSUFFICIENT_MARGIN:
            raise BinanceError(-2019, "Margin is insufficient.")
        if reason == ReasonCode.MAX_NOTIONAL_AT_LEVERAGE:
            raise BinanceError(-2027, "Exceeded the maximum allowable position at current leverage.")
        return spec.settle, Decimal(0)

    def position_lots(self, account: Account, k: int) -> int:
        pos = self.ledgers[account.name].positions.get(self.instruments[k].id)
        return 0 if pos is None else int(pos.lots)

    def _settle_fill(self, order: EmuOrder, px: int, x: int, price: Decimal, qty: Decimal, cost: Decimal,
                     rate: Decimal) -> tuple[Decimal, str, dict[str, Any]]:
        """A contract fill: the position, realized PnL and the fee (notional x rate, in the
        settle asset: engine.margin.contract_fee, as the backtest charges it)."""
        spec = self.instruments[order.inst]
        fee = contract_fee(spec, px, x, rate)
        realized = self.ledgers[order.account.name].apply_fill(spec, order.side, px, x, fee)
        self._sync_wallet(order.account)
        ms = self.clock.shown_ms(self.core.now)
        if realized:
            self._income(order.account, spec, "REALIZED_PNL", realized, ms)
        if fee:
            self._income(order.account, spec, "COMMISSION", -fee, ms)
        return fee, spec.settle, {"realized_pnl": realized}

    def _sync_wallet(self, acct: Account) -> None:
        """The account's free balance of each settle asset is its wallet balance."""
        for (_, asset), amount in self.ledgers[acct.name].balances.items():
            acct.free[asset] = amount

    # -- settings ----------------------------------------------------------------------
    def set_leverage(self, account: Account, k: int, leverage: int) -> None:
        """POST /fapi/v1/leverage: the account's leverage for one contract (1..the first
        bracket's max leverage, Binance -4028 otherwise)."""
        spec = self.instruments[k]
        top = max((t.max_leverage for t in spec.margin_brackets), default=125)
        if not 1 <= leverage <= top:
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        book = self.ledgers[account.name].derivatives
        current = book.settings_of(spec.venue)
        book.settings[spec.venue] = replace(current, by_symbol={**current.by_symbol, spec.symbol: leverage})
        t = self.clock.now()
        self.journal.write("leverage", t, self.clock.shown_ms(t), account=account.name,
                           symbol=self.symbols[k], leverage=leverage)

    def set_margin_mode(self, account: Account, k: int, mode: str) -> None:
        """POST /fapi/v1/marginType: "isolated" or "cross" for the account's contracts of
        the venue (engine.margin keeps one mode per venue): -4046 when it already is,
        -4048 while a position or an open order exists (Binance's rules)."""
        spec = self.instruments[k]
        book = self.ledgers[account.name].derivatives
        current = book.settings_of(spec.venue)
        if current.margin_mode == mode:
            raise BinanceError(-4046, "No need to change margin type.")
        if any(self.position_lots(account, i) for i in range(len(self.instruments))) or self.open_orders(account, None):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        book.settings[spec.venue] = replace(current, margin_mode=mode)
        t = self.clock.now()
        self.journal.write("margin_type", t, self.clock.shown_ms(t), account=account.name,
                           symbol=self.symbols[k], margin_mode=mode)

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        for a in self.accounts:
            ledger = self.ledgers[a.name]
            out["accounts"][a.name]["positions"] = {
                self.symbols[k]: str(ledger.position(inst.id)) for k, inst in enumerate(self.instruments)}
        out["marks"] = {self.symbols[k]: None if self.mark_of(k) is None else str(self.mark_of(k))
                        for k in range(len(self.instruments))}
        return out
