"""Binance USDⓈ-M futures (`/fapi`) and COIN-M futures (`/dapi`, inverse contracts) over
HTTP and websockets, for unmodified ccxt (`ccxt.binanceusdm` / `ccxt.binancecoinm`, async
and pro). COIN-M differs in its path family, `contractSize`, `cumBase` / `baseQty` and
its user stream at `/ws/<listenKey>`; the list below names the USDⓈ-M paths.

Why a subclass of `BinanceServer`: signing, rate limits, faults, the stepped clock, the
inspection and control endpoints and the websocket rules are Binance's for both; what
differs is the paths, the field names and the contract figures (`FuturesExchange`).
Served (the fields unmodified ccxt 4.5.90 reads, docs/emulator.md "Futures"):

- REST `/fapi/v1/{ping,time,exchangeInfo,depth,ticker/bookTicker,premiumIndex}`;
  signed `/fapi/v1/{order,openOrders,userTrades,income,leverage,listenKey}`,
  `/fapi/v2|v3/{account,balance,positionRisk}`;
- market streams on `/public/ws/{n}` (`<symbol>@depth@100ms` with `pu`, `@trade`,
  `@bookTicker`) and `/market/ws/{n}` (`<symbol>@markPrice`, `@markPrice@1s`), the paths
  ccxt.pro derives from the `linear` websocket URL;
- the user data stream by listenKey (`POST /fapi/v1/listenKey`, then
  `/private/ws?listenKey=KEY`): `ORDER_TRADE_UPDATE` and `ACCOUNT_UPDATE` (reason ORDER,
  FUNDING_FEE), the venue's liquidations as `LIQUIDATION` orders `autoclose-...`.
"""

from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

from aiohttp import web

from engine.margin import _notional_at
from venues.emulator.binance import (
    BinanceServer,
    MarketConnection,
    _Connection,
    fmt,
    mandatory,
)
from venues.emulator.clock import NS_PER_MS
from venues.emulator.exchange import BinanceError, EmuOrder, UserEvent
from venues.emulator.futures import FuturesExchange

_FUNDING_MS = 8 * 3600 * 1000
_PERPETUAL_DELIVERY_MS = 4133404800000  # Binance's deliveryDate of a perpetual (2100-12-25)


def _f(value: Decimal | None) -> str:
    return "0" if value is None else fmt(Decimal(value))


class FuturesServer(BinanceServer):
    """The aiohttp application around one `FuturesExchange` (see module doc)."""

    exchange: FuturesExchange

    def __init__(self, exchange: FuturesExchange, **kw: Any) -> None:
        self.listen_keys: dict[str, Any] = {}
        self._last_u: dict[int, int] = {}
        self._mark_sent: dict[int, int] = {}
        super().__init__(exchange, **kw)  # type: ignore[arg-type]
        self.time_units = False  # Binance documents X-MBX-TIME-UNIT / timeUnit for spot only

    @property
    def api(self) -> str:
        """The path family: "fapi" (USDⓈ-M) or "dapi" (COIN-M, inverse contracts)."""
        return "dapi" if self.exchange.instruments[0].inverse else "fapi"

    def _venue_routes(self, r: web.UrlDispatcher) -> None:
        a = f"/{self.api}"
        r.add_get(f"{a}/v1/ping", self.ping)
        r.add_get(f"{a}/v1/time", self.server_time)
        r.add_get(f"{a}/v1/exchangeInfo", self.exchange_info)
        r.add_get(f"{a}/v1/depth", self.depth)
        r.add_get(f"{a}/v1/ticker/bookTicker", self.book_ticker)
        r.add_get(f"{a}/v1/premiumIndex", self.premium_index)
        r.add_get("/futures/data/delivery-price", self.delivery_price)  # fapiData / dapiData
        for version in ("v1", "v2", "v3"):
            r.add_get(f"{a}/{version}/account", self.account)
            r.add_get(f"{a}/{version}/balance", self.balance)
            r.add_get(f"{a}/{version}/positionRisk", self.position_risk)
            r.add_get(f"{a}/{version}/leverageBracket", self.leverage_bracket)
        r.add_post(f"{a}/v1/leverage", self.leverage)
        r.add_post(f"{a}/v1/marginType", self.margin_type)
        r.add_post(f"{a}/v1/order", self.post_order)
        r.add_get(f"{a}/v1/order", self.get_order)
        r.add_delete(f"{a}/v1/order", self.delete_order)
        r.add_get(f"{a}/v1/openOrders", self.open_orders)
        r.add_get(f"{a}/v1/userTrades", self.my_trades)
        r.add_get(f"{a}/v1/income", self.income)
        r.add_get(f"{a}/v1/forceOrders", self.force_orders)
        r.add_post(f"{a}/v1/listenKey", self.listen_key)
        r.add_put(f"{a}/v1/listenKey", self.listen_key)
        r.add_delete(f"{a}/v1/listenKey", self.listen_key)
        for prefix in ("/public/ws", "/market/ws", "/ws"):
            r.add_get(prefix, self.market_socket)
            r.add_get(prefix + "/{n}", self.market_socket)
        r.add_get("/private/ws", self.private_socket)

    async def market_socket(self, request: web.Request) -> web.WebSocketResponse:
        """COIN-M's user stream is `/ws/<listenKey>` beside the market's `/ws/<n>`."""
        if request.match_info.get("n") in self.listen_keys:
            return await self.private_socket(request, request.match_info["n"])
        return await super().market_socket(request)

    def _market_connection(self, ws: web.WebSocketResponse) -> MarketConnection:
        return FuturesMarketConnection(self, ws)

    # ------------------------------------------------------------------ the clock ---
    def step(self) -> None:
        super().step()
        ex = self.exchange
        for k in range(len(ex.instruments)):
            ts = ex.mark_ts.get(ex.instruments[k].id)
            if ts is None or self._mark_sent.get(k) == ts:
                continue
            self._mark_sent[k] = ts
            if not any(c.wants(k, "markPrice") for c in self.market_ws):
                continue
            msg = json.dumps(self._mark_msg(k))
            for conn in list(self.market_ws):
                if conn.wants(k, "markPrice"):
                    conn.send_raw(msg)

    # ------------------------------------------------------------------ public ------
    def _next_funding_ms(self, k: int) -> int:
        """The next funding time, client ms: the data's next FUNDING_RATE row when it has been
        read, else every `funding_interval_h` from 00:00 UTC."""
        due = self.exchange.next_funding(k)
        if due is not None:
            return self._ms(due[0])
        spec = self._spec(k)
        every = (spec.funding_interval_ns or _FUNDING_MS * 1_000_000) // 1_000_000
        now = self._ms(self.exchange.clock.now())
        return (now // every + 1) * every

    def _premium(self, k: int) -> dict[str, Any]:
        ex = self.exchange
        mark = ex.mark_of(k)
        t = ex.clock.now()
        if self._spec(k).expiry_ns is not None:
            # a dated future pays no funding: Binance shows "" for the rates and 0 for the time
            # ("For delivery symbols, "" will be shown ... 0 will be shown", premiumIndex doc)
            return {"symbol": ex.symbols[k], "markPrice": _f(mark), "indexPrice": _f(mark),
                    "estimatedSettlePrice": _f(mark), "lastFundingRate": "", "interestRate": "",
                    "nextFundingTime": 0, "time": self._ms(t)}
        return {"symbol": ex.symbols[k], "markPrice": _f(mark),
                # the index is not modelled: the mark stands for it (docs/emulator.md)
                "indexPrice": _f(mark), "estimatedSettlePrice": _f(mark),
                # Binance's lastFundingRate / `r` is the rate to be settled at nextFundingTime:
                # the data's next settlement when read, else the last one settled
                "lastFundingRate": _f(due[1] if (due := ex.next_funding(k)) is not None
                                      else ex.last_funding.get(k, Decimal(0))),
                "interestRate": "0.00010000", "nextFundingTime": self._next_funding_ms(k),
                "time": self._ms(t)}

    def _mark_msg(self, k: int) -> dict[str, Any]:
        p = self._premium(k)
        return {"e": "markPriceUpdate", "E": p["time"], "s": p["symbol"], "p": p["markPrice"],
                "i": p["indexPrice"], "P": p["estimatedSettlePrice"], "r": p["lastFundingRate"],
                "T": p["nextFundingTime"]}

    async def premium_index(self, request: web.Request) -> web.Response:
        k = self._inst(request.query, required=False)
        self.step()
        if k is not None and self.api == "fapi":
            return web.json_response(self._premium(k))
        return web.json_response([self._premium(i) for i in range(len(self.exchange.instruments))
                                  if k is None or i == k])  # COIN-M: always a list

    async def delivery_price(self, request: web.Request) -> web.Response:
        """GET /futures/data/delivery-price?pair=BTCUSDT (ccxt fapiDataGetDeliveryPrice /
        dapiDataGetDeliveryPrice): the pair's delivered contracts, newest first, as Binance's
        "Quarterly Contract Settlement Price" answers: `[{"deliveryTime": ms,
        "deliveryPrice": number}]` (a JSON number, as Binance sends it). `deliveryTime` is
        the contract's `deliveryDate` as exchangeInfo lists it (ccxt's market `expiry`; not
        shifted like the other times, since ccxt derives the symbol from it)."""
        ex = self.exchange
        pair = request.query.get("pair", "")
        if not pair:
            raise BinanceError(-1102, "Mandatory parameter 'pair' was not sent, was empty/null, or malformed.")
        self.step()
        out = [{"deliveryTime": int(spec.expiry_ns) // 1_000_000, "deliveryPrice": float(spec.ticks_to_price(ticks))}
               for k, spec in enumerate(ex.instruments)
               if (ticks := ex.delivered.get(k)) and spec.base + spec.quote == pair]
        return web.json_response(sorted(out, key=lambda d: -d["deliveryTime"]))

    async def exchange_info(self, request: web.Request) -> web.Response:
        ex = self.exchange
        # a delivered dated future shows DELIVERED (Binance's contract status after delivery)
        symbols = [futures_symbol_info(ex.symbols[k], spec, "DELIVERED" if k in ex.delivered else self._symbol_status(),
                                       ex.max_num_orders)
                   for k, spec in enumerate(ex.instruments)]
        return web.json_response({
            "timezone": "UTC", "serverTime": time.time_ns() // 1_000_000, "futuresType": "COIN_MARGINED" if self.api == "dapi" else "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.limiter.weight_per_minute},
                *({"rateLimitType": "ORDERS", "interval": {10: "SECOND", 60: "MINUTE", 86400: "DAY"}[w],
                   "intervalNum": 10 if w == 10 else 1, "limit": limit}
                  for w, _, limit in self.limiter.order_limits()),
            ],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                       for a in sorted({s.settle for s in ex.instruments})],
            "symbols": symbols,
        })

    def _depth_msg(self, k: int, diff, t: int) -> str:
        """Futures diffs carry `pu` (the previous diff's `u`) and `T`; ccxt.pro syncs by it."""
        msg = json.loads(super()._depth_msg(k, diff, t))
        msg["pu"] = self._last_u.get(k, msg["U"] - 1)
        msg["T"] = msg["E"]
        self._last_u[k] = msg["u"]
        return json.dumps(msg)

    # ------------------------------------------------------------------ account -----
    def _account_figures(self, acct) -> dict[str, Any]:
        """Per settle asset: wallet, unrealized PnL, margin balance, maintenance and
        initial margin (positions, open orders), available balance; and per contract its
        position (engine.margin figures, exact)."""
        ex = self.exchange
        ledger = ex.ledgers[acct.name]
        book = ledger.derivatives
        states = book.accounts(ex.instruments)
        assets: dict[str, dict[str, Decimal]] = {}
        for (_, asset), wallet in sorted(ledger.balances.items()):
            assets[asset] = {"wallet": wallet, "upnl": Decimal(0), "mm": Decimal(0), "im": Decimal(0),
                             "oim": Decimal(0), "isolated": Decimal(0), "cross_upnl": Decimal(0),
                             "cross_im": Decimal(0)}
        for st in states:
            a = assets.setdefault(st.asset, {"wallet": Decimal(0), "upnl": Decimal(0), "mm": Decimal(0),
                                             "im": Decimal(0), "oim": Decimal(0), "isolated": Decimal(0),
                                             "cross_upnl": Decimal(0), "cross_im": Decimal(0)})
            a["upnl"] += st.unrealized
            a["mm"] += st.maintenance
            a["im"] += st.initial
            if st.instrument is None:
                a["cross_upnl"] += st.unrealized
                a["cross_im"] += st.initial
            else:
                a["isolated"] += st.wallet
        for o in ex.open_orders(acct, None):
            spec = ex.instruments[o.inst]
            ref = spec.ticks_to_price(o.price) if o.type != "MARKET" else ex.mark_of(o.inst)
            if ref is None:
                continue
            value = abs(_notional_at(spec, o.qty - o.executed, Fraction(ref))) / book.leverage(spec)
            assets[spec.settle]["oim"] += Decimal(value.numerator) / Decimal(value.denominator)
        return assets

    def _position_rows(self, acct, only_open: bool) -> list[dict[str, Any]]:
        ex = self.exchange
        ledger = ex.ledgers[acct.name]
        book = ledger.derivatives
        rows = []
        for k, spec in enumerate(ex.instruments):
            pos = ledger.positions.get(spec.id)
            lots = 0 if pos is None else pos.lots
            if only_open and lots == 0 and not ex.open_orders(acct, k):
                continue
            mark = ex.mark_of(k)
            qty = spec.lots_to_qty(lots) if lots else Decimal(0)
            notional = Decimal(0)
            if mark is not None and lots:  # quote for USDⓈ-M, the coin for COIN-M
                value = _notional_at(spec, lots, Fraction(mark))
                notional = Decimal(value.numerator) / Decimal(value.denominator)
            isolated = book.is_isolated(spec)
            liq = book.liquidation_price(spec) if lots else None
            rows.append({
                "symbol": ex.symbols[k], "positionSide": "BOTH", "positionAmt": _f(qty),
                "entryPrice": _f(pos.avg_price if lots else Decimal(0)), "breakEvenPrice": _f(pos.avg_price if lots else Decimal(0)),
                "markPrice": _f(mark), "unRealizedProfit": _f(book.unrealized(spec) if lots else Decimal(0)),
                "liquidationPrice": _f(liq.quantize(spec.tick_size) if liq is not None else Decimal(0)),
                "leverage": str(book.leverage(spec)), "marginType": "isolated" if isolated else "cross",
                "isolatedMargin": _f(book.isolated.get(spec.id, Decimal(0)) + (book.unrealized(spec) if lots and isolated else 0)),
                "isolatedWallet": _f(book.isolated.get(spec.id, Decimal(0)) if isolated else Decimal(0)),
                "notional": _f(notional), "notionalValue": _f(notional), "maxNotionalValue": _f(self._max_notional(spec, book.leverage(spec))),
                "isAutoAddMargin": "false", "updateTime": acct.update_ms or self._ms(ex.clock.now()),
            })
        return rows

    @staticmethod
    def _max_notional(spec, leverage: int) -> Decimal:
        allowed = [t for t in spec.margin_brackets if t.max_leverage >= leverage]
        return Decimal(allowed[-1].cap) if allowed else Decimal(0)

    async def account(self, request: web.Request) -> web.Response:
        acct, _ = await self._signed(request)
        self.step()
        figures = self._account_figures(acct)
        ms = acct.update_ms or self._ms(self.exchange.clock.now())
        assets = []
        totals = {k: Decimal(0) for k in ("wallet", "upnl", "mm", "im", "oim", "cross", "avail")}
        for asset, a in figures.items():
            cross_wallet = a["wallet"] - a["isolated"]
            available = cross_wallet + a["cross_upnl"] - a["cross_im"] - a["oim"]
            available = max(available, Decimal(0))
            assets.append({"asset": asset, "walletBalance": _f(a["wallet"]), "unrealizedProfit": _f(a["upnl"]),
                           "marginBalance": _f(a["wallet"] + a["upnl"]), "maintMargin": _f(a["mm"]),
                           "initialMargin": _f(a["im"] + a["oim"]), "positionInitialMargin": _f(a["im"]),
                           "openOrderInitialMargin": _f(a["oim"]), "crossWalletBalance": _f(cross_wallet),
                           "crossUnPnl": _f(a["cross_upnl"]), "availableBalance": _f(available),
                           "maxWithdrawAmount": _f(available), "marginAvailable": True, "updateTime": ms})
            for key, value in (("wallet", a["wallet"]), ("upnl", a["upnl"]), ("mm", a["mm"]),
                               ("im", a["im"]), ("oim", a["oim"]), ("cross", cross_wallet),
                               ("avail", available)):
                totals[key] += value
        positions = [{"symbol": p["symbol"], "positionSide": "BOTH", "positionAmt": p["positionAmt"],
                      "unrealizedProfit": p["unRealizedProfit"], "isolatedMargin": p["isolatedMargin"],
                      "notional": p["notional"], "isolatedWallet": p["isolatedWallet"],
                      "initialMargin": "0", "maintMargin": "0", "updateTime": p["updateTime"]}
                     for p in self._position_rows(acct, only_open=True)]
        return web.json_response({
            "totalInitialMargin": _f(totals["im"] + totals["oim"]), "totalMaintMargin": _f(totals["mm"]),
            "totalWalletBalance": _f(totals["wallet"]), "totalUnrealizedProfit": _f(totals["upnl"]),
            "totalMarginBalance": _f(totals["wallet"] + totals["upnl"]),
            "totalPositionInitialMargin": _f(totals["im"]), "totalOpenOrderInitialMargin": _f(totals["oim"]),
            "totalCrossWalletBalance": _f(totals["cross"]), "totalCrossUnPnl": _f(totals["upnl"]),
            "availableBalance": _f(totals["avail"]), "maxWithdrawAmount": _f(totals["avail"]),
            "canTrade": True, "canDeposit": False, "canWithdraw": False, "feeTier": 0, "updateTime": 0,
            "multiAssetsMargin": False, "assets": assets, "positions": positions,
        })

    async def balance(self, request: web.Request) -> web.Response:
        acct, _ = await self._signed(request)
        self.step()
        ms = acct.update_ms or self._ms(self.exchange.clock.now())
        out = []
        for asset, a in self._account_figures(acct).items():
            cross_wallet = a["wallet"] - a["isolated"]
            available = max(cross_wallet + a["cross_upnl"] - a["cross_im"] - a["oim"], Decimal(0))
            out.append({"accountAlias": acct.name, "asset": asset, "balance": _f(a["wallet"]),
                        "crossWalletBalance": _f(cross_wallet), "crossUnPnl": _f(a["cross_upnl"]),
                        "availableBalance": _f(available), "maxWithdrawAmount": _f(available),
                        "marginAvailable": True, "updateTime": ms})
        return web.json_response(out)

    async def position_risk(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        k = self._inst(params, required=False)
        self.step()
        # v3 lists the symbols with a position or open orders; v2 every symbol
        rows = self._position_rows(acct, only_open=request.path.startswith(("/fapi/v3", "/dapi/")))
        if k is not None:
            rows = [r for r in rows if r["symbol"] == self.exchange.symbols[k]]
        return web.json_response(rows)

    async def leverage(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        k = self._inst(params)
        text = params.get("leverage")
        if not text:
            raise mandatory("leverage")
        try:
            lev = int(text)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'leverage'.") from None
        self.exchange.set_leverage(acct, k, lev)
        spec = self._spec(k)
        return web.json_response({"leverage": lev, "maxNotionalValue": _f(self._max_notional(spec, lev)),
                                  "symbol": self.exchange.symbols[k]})

    async def margin_type(self, request: web.Request) -> web.Response:
        """ISOLATED / CROSSED for the account (-4046 when already so; -4048 with a
        position or open orders, as Binance)."""
        acct, params = await self._signed(request)
        k = self._inst(params)
        wanted = {"ISOLATED": "isolated", "CROSSED": "cross"}.get(str(params.get("marginType", "")).upper())
        if wanted is None:
            raise mandatory("marginType")
        self.step()
        self.exchange.set_margin_mode(acct, k, wanted)
        return web.json_response({"code": 200, "msg": "success"})

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        """The instrument's margin tiers (ccxt reads them before positionRisk)."""
        _, params = await self._signed(request)
        k = self._inst(params, required=False)
        out = []
        for i, spec in enumerate(self.exchange.instruments):
            if k is not None and i != k:
                continue
            floor = Decimal(0)
            tiers = []
            for n, t in enumerate(spec.margin_brackets, 1):
                tiers.append({"bracket": n, "initialLeverage": t.max_leverage, "notionalCap": float(t.cap),
                              "notionalFloor": float(floor), "maintMarginRatio": float(t.maintenance_rate),
                              "cum": float(t.maintenance_amount)})
                floor = t.cap
            out.append({"symbol": self.exchange.symbols[i], "notionalCoef": 1.0, "brackets": tiers})
        return web.json_response(out if k is None else out[0])

    async def income(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        self.step()
        k = self._inst(params, required=False)
        kind = params.get("incomeType")
        try:
            start = int(params["startTime"]) if params.get("startTime") else None
            end = int(params["endTime"]) if params.get("endTime") else None
            limit = min(int(params.get("limit", "100")), 1000)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        out = []
        for row in self.exchange.income[acct.name]:
            if kind and row["incomeType"] != kind:
                continue
            if k is not None and row["symbol"] != self.exchange.symbols[k]:
                continue
            if (start is not None and row["time"] < start) or (end is not None and row["time"] > end):
                continue
            out.append({**row, "income": _f(row["income"]), "info": ""})
        return web.json_response(out[:limit])

    async def force_orders(self, request: web.Request) -> web.Response:
        """The account's liquidation orders (ccxt fetch_my_liquidations), newest last."""
        acct, params = await self._signed(request)
        k = self._inst(params, required=False)
        self.step()
        try:
            start = int(params["startTime"]) if params.get("startTime") else None
            limit = min(int(params.get("limit", "50")), 100)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        out = [self._order_json(o) for o in self.exchange.force_orders[acct.name]
               if (k is None or o.inst == k) and (start is None or o.update_ms >= start)]
        return web.json_response(out[-limit:])

    async def listen_key(self, request: web.Request) -> web.Response:
        """The user data stream's key (API key only, no signature, as Binance)."""
        key = request.headers.get("X-MBX-APIKEY")
        acct = self.exchange.by_key.get(key or "")
        if acct is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        if request.method == "POST":
            mine = next((lk for lk, a in self.listen_keys.items() if a is acct), None)
            if mine is None:  # Binance: one key per account, the same one while it is valid
                mine = secrets.token_hex(32)
                self.listen_keys[mine] = acct
            return web.json_response({"listenKey": mine})
        if request.method == "DELETE":
            for lk in [lk for lk, a in self.listen_keys.items() if a is acct]:
                del self.listen_keys[lk]
        return web.json_response({})

    # ------------------------------------------------------------------ orders ------
    def _parse_new(self, params) -> dict[str, Any]:
        """Futures order parameters onto the spot parser: `timeInForce=GTX` (post-only)
        is LIMIT_MAKER; `reduceOnly` must reduce the position (-2022); no quoteOrderQty;
        the notional minimum does not apply to reduce-only orders (Binance -4164)."""
        p = dict(params)
        if p.get("positionSide") not in (None, "", "BOTH"):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        if p.get("type") not in (None, "LIMIT", "MARKET"):
            if p.get("type") in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
                raise BinanceError(-1116, "Invalid orderType.")
        if "quoteOrderQty" in p:
            raise BinanceError(-1104, "Not all sent parameters were read.")
        if p.get("timeInForce") == "GTX":
            p["type"] = "LIMIT_MAKER"
            p.pop("timeInForce")
        if p.get("type") == "LIMIT_MAKER" and params.get("type") == "LIMIT_MAKER":
            raise BinanceError(-1116, "Invalid orderType.")
        reduce_only = str(p.pop("reduceOnly", "false")).lower() == "true"
        p.setdefault("newOrderRespType", "RESULT")
        if p["newOrderRespType"] == "FULL":
            p["newOrderRespType"] = "RESULT"
        try:
            out = super()._parse_new(p, check_notional=not reduce_only)
        except BinanceError as exc:
            if "NOTIONAL" not in exc.msg:
                raise
            raise BinanceError(-4164, f"Order's notional must be no smaller than "
                               f"{self._spec(self._inst(p)).min_notional} (unless you choose reduce only).") from None
        out["reduce_only"] = reduce_only
        return out

    async def _place(self, request: web.Request, acct, params) -> dict[str, Any]:
        p = self._parse_new(params)
        reduce_only = p.pop("reduce_only")
        if reduce_only:
            held = self.exchange.position_lots(acct, p["inst"])
            if held == 0 or (held > 0) == (p["side"] > 0) or p["qty"] > abs(held):
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        self.limiter.check_order(request.remote or "?", acct.name, time.time())
        if p["typ"] == "MARKET":
            self.step()
        p.pop("resp_type")
        pending = self.exchange.new_order(acct, **p)
        pending.order.reduce_only = reduce_only
        await self.wait_for(pending)
        if pending.error is not None:
            raise pending.error
        return self._order_json(pending.answer())  # as the venue answered (exchange.Pending)

    def _order_json(self, o: EmuOrder) -> dict[str, Any]:
        spec = self._spec(o.inst)
        executed = spec.lots_to_qty(o.executed)
        avg = (o.cum_quote / executed) if o.executed else Decimal(0)
        typ, tif = ("LIMIT", "GTX") if o.type == "LIMIT_MAKER" else (o.type, o.tif)
        cum = ({"cumBase": _f(sum((f["qty"] * spec.contract_size / f["price"] for f in o.fills), Decimal(0))
                              .quantize(Decimal("1e-8")))}
               if spec.inverse else {"cumQuote": _f(o.cum_quote)})
        return {**cum, "pair": spec.base + spec.quote,
            "orderId": o.order_id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_id,
            "price": _f(spec.ticks_to_price(o.price)), "avgPrice": _f(avg),
            "origQty": _f(spec.lots_to_qty(o.qty)), "executedQty": _f(executed), "cumQty": _f(executed),
            "timeInForce": tif, "type": typ,
            "reduceOnly": o.reduce_only or o.type == "LIQUIDATION",
            "closePosition": False, "side": "BUY" if o.side > 0 else "SELL", "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": typ,
            "priceMatch": "NONE", "selfTradePreventionMode": o.stp, "goodTillDate": 0,
            "time": o.time_ms, "updateTime": o.update_ms,
        }

    async def _cancel(self, acct, params, prefix: str = "") -> dict[str, Any]:
        lookup = {k: v for k, v in {"symbol": params.get("symbol", ""), "orderId": params.get("orderId", ""),
                                    "origClientOrderId": params.get("origClientOrderId", "")}.items() if v}
        order = self._lookup(acct, lookup, -2011)
        pending = self.exchange.cancel_order(order, order.client_id)
        await self.wait_for(pending)
        if pending.error is not None:
            raise pending.error
        return self._order_json(pending.answer())

    def _trade_json(self, t: dict[str, Any]) -> dict[str, Any]:
        """A userTrades row (COIN-M: baseQty, marginAsset, pair instead of quoteQty)."""
        o = t["order"]
        return {"symbol": o.symbol, "id": t["trade_id"], "orderId": o.order_id,
                "side": "BUY" if o.side > 0 else "SELL", "price": _f(t["price"]), "qty": _f(t["qty"]),
                "realizedPnl": _f(t.get("realized_pnl", Decimal(0))),
                **({"baseQty": _f((t["qty"] * self._spec(o.inst).contract_size / t["price"])
                                  .quantize(Decimal("1e-8"))), "marginAsset": self._spec(o.inst).settle,
                    "pair": self._spec(o.inst).base + self._spec(o.inst).quote}
                   if self._spec(o.inst).inverse else {"quoteQty": _f(t["quote_qty"])}),
                "commission": _f(t["commission"]), "commissionAsset": t["commission_asset"],
                "time": t["time"], "positionSide": "BOTH", "buyer": o.side > 0,
                "maker": t["is_maker"]}

    # ------------------------------------------------------------------ user stream -
    async def private_socket(self, request: web.Request, key: str | None = None) -> web.WebSocketResponse:
        acct = self.listen_keys.get(key if key is not None else request.query.get("listenKey", ""))
        if acct is None:
            raise web.HTTPBadRequest(text=json.dumps({"code": -1125, "msg": "This listenKey does not exist."}),
                                     content_type="application/json")
        ws = web.WebSocketResponse(heartbeat=self.ping_interval, autoping=True)
        await ws.prepare(request)
        conn = ListenKeyConnection(self, ws, acct)
        self.user_ws.add(conn)  # type: ignore[arg-type]
        try:
            await conn.run()
        finally:
            self.user_ws.discard(conn)  # type: ignore[arg-type]
        return ws

    def user_payload(self, ev: UserEvent, unit_ns: int = NS_PER_MS) -> dict[str, Any]:
        """ORDER_TRADE_UPDATE for an order event, ACCOUNT_UPDATE for a balance change
        (reason ORDER after fills, FUNDING_FEE at a funding settlement)."""
        acct = ev.account
        t = ev.payload["ts"]
        ms = self._ms(t)
        if ev.kind == "balance":
            figures = self._account_figures(acct)
            rows = self._position_rows(acct, only_open=False)
            return {"e": "ACCOUNT_UPDATE", "E": ms, "T": ms, "a": {
                "m": ev.payload.get("reason", "ORDER"),
                "B": [{"a": asset, "wb": _f(a["wallet"]), "cw": _f(a["wallet"] - a["isolated"]),
                       "bc": "0"} for asset, a in figures.items()],
                "P": [{"s": r["symbol"], "pa": r["positionAmt"], "ep": r["entryPrice"], "bep": r["breakEvenPrice"],
                       "cr": "0", "up": r["unRealizedProfit"], "mt": r["marginType"],
                       "iw": r["isolatedWallet"], "ps": "BOTH"} for r in rows]}}
        o = ev.order
        assert o is not None
        spec = self._spec(o.inst)
        fill = ev.payload["fill"]
        executed = spec.lots_to_qty(ev.payload["executed"])
        avg = ev.payload["cum_quote"] / executed if ev.payload["executed"] else Decimal(0)
        typ, tif = ("LIMIT", "GTX") if o.type == "LIMIT_MAKER" else (o.type, o.tif)
        return {"e": "ORDER_TRADE_UPDATE", "E": ms, "T": ms, "o": {
            "s": o.symbol, "c": o.client_id, "S": "BUY" if o.side > 0 else "SELL", "o": typ, "f": tif,
            "q": _f(spec.lots_to_qty(o.qty)), "p": _f(spec.ticks_to_price(o.price)), "ap": _f(avg),
            "sp": "0", "x": ev.payload["exec_type"], "X": ev.payload["status"], "i": o.order_id,
            "l": _f(fill["qty"]) if fill else "0", "z": _f(executed),
            "L": _f(fill["price"]) if fill else "0", "N": fill["commission_asset"] if fill else spec.settle,
            "n": _f(fill["commission"]) if fill else "0", "T": ms, "t": fill["trade_id"] if fill else 0,
            "b": "0", "a": "0", "m": bool(fill["is_maker"]) if fill else False,
            "R": o.reduce_only or o.type == "LIQUIDATION", "wt": "CONTRACT_PRICE",
            "ot": typ, "ps": "BOTH", "cp": False, "rp": _f(fill.get("realized_pnl", Decimal(0))) if fill else "0",
            "pP": False, "si": 0, "ss": 0, "V": o.stp, "pm": "NONE", "gtd": 0}}


def futures_symbol_info(symbol: str, spec, status: str, max_num_orders: int = 200) -> dict[str, Any]:
    """One /fapi/v1/exchangeInfo symbol, from our instrument spec (a perpetual)."""
    tick_dp = max(0, -spec.tick_size.normalize().as_tuple().exponent)
    lot_dp = max(0, -spec.lot_size.normalize().as_tuple().exponent)
    first = spec.margin_brackets[0] if spec.margin_brackets else None
    extra = ({"contractSize": int(spec.contract_size), "contractStatus": status, "equalQtyPrecision": 4}
             if spec.inverse else {})
    contract_type = "PERPETUAL" if spec.type == "swap" else "CURRENT_QUARTER"
    return {
        **extra,
        "symbol": symbol, "pair": spec.base + spec.quote,
        "contractType": contract_type,
        "deliveryDate": _PERPETUAL_DELIVERY_MS if spec.expiry_ns is None else spec.expiry_ns // 1_000_000,
        "onboardDate": 1569398400000, "status": status,
        "maintMarginPercent": _f(first.maintenance_rate * 100) if first else "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": spec.base, "quoteAsset": spec.quote,
        "marginAsset": spec.settle, "pricePrecision": tick_dp, "quantityPrecision": lot_dp,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _f(spec.tick_size), "maxPrice": "4529764",
             "tickSize": _f(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": _f(max(spec.min_qty, spec.lot_size)), "maxQty": "1000",
             "stepSize": _f(spec.lot_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": _f(max(spec.min_qty, spec.lot_size)), "maxQty": "120",
             "stepSize": _f(spec.lot_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": max_num_orders},
            {"filterType": "MIN_NOTIONAL", "notional": _f(spec.min_notional)},
        ],
        "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


class FuturesMarketConnection(MarketConnection):
    """`/public/ws/{n}` and `/market/ws/{n}`: the spot kinds plus `<symbol>@markPrice`."""

    KINDS = ("depth", "trade", "bookTicker", "markPrice")


class ListenKeyConnection(_Connection):
    """`/private/ws?listenKey=KEY`: one account's events, no subscription message."""

    def __init__(self, server: FuturesServer, ws: web.WebSocketResponse, account: Any) -> None:
        super().__init__(server, ws)  # type: ignore[arg-type]
        self.account = account
        self.silent = False  # a user_silent fault: this connection receives nothing more

    def send_event(self, ev: UserEvent) -> None:
        if ev.account is self.account and not self.silent:
            self.send_raw(json.dumps(self.server.user_payload(ev)))

    def go_silent(self) -> None:
        """user_silent fault: nothing more on this connection (no error, no close); a new
        connection to the listenKey is served again."""
        self.silent = True

    def speak_again(self) -> None:
        self.silent = False

    def terminate_subscriptions(self) -> None:
        """user_expire fault: Binance's `listenKeyExpired` event, the key forgotten."""
        server: FuturesServer = self.server  # type: ignore[assignment]
        ms = server._ms(server.exchange.clock.now())
        self.send_raw(json.dumps({"e": "listenKeyExpired", "E": ms}))
        for lk in [lk for lk, a in server.listen_keys.items() if a is self.account]:
            del server.listen_keys[lk]

    async def handle(self, data: Any) -> None:
        return None  # the stream takes no requests


__all__ = ["FuturesServer", "futures_symbol_info"]
