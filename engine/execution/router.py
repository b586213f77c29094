"""Smart order router: split a quantity across venues trading the same asset.

Why a component on ctx: the router reads only what `ctx` gives every strategy (each venue's
local book, fees, balances, positions, the session's venue health, the round trips of its own
orders), so the same routing runs in backtest, paper, testnet and live, and its decisions are
audited like any other.

Rules (docs/execution.md, "Smart order router", gives worked examples):

- Same asset: instruments whose base and quote match (ccxt unified symbols); USD, USDT and
  USDC differ unless `quote_aliases` maps one onto another (e.g. {"USD": "USDT"}).
- Eligible venue: health "up" or "degraded" (`ctx.venue_health`), and room under its caps: a
  sale only up to the base held there (spot: `ctx.balance(venue, base)`), a purchase only up
  to the quote held there at the limit price and taker fee, and `max_venue_position` (|base|
  per venue after the order), all net of the router's own open children there.
- Aggressive slice: every level of every eligible book within the limit price is priced
  after the taker fee and a latency cost, `eff = price * (1 + side * (taker_bps +
  latency_cost_bps_per_ms * latency_ms) / 10^4)`; its displayed quantity counts at
  `survival = max(0, 1 - latency_ms / quote_life_ms)` (a quote that will be gone by the time
  we arrive is worth less). Levels are taken best `eff` first (ties: venue order) until the
  quantity is covered; each venue gets one IOC child up to the worst level taken there.
- Passive slice: each venue's own-side touch is priced after the maker fee (a rebate makes
  it better); a venue can absorb `capacity = max(0, rate * horizon - queue_ahead)` where
  `rate` is the opposite-side traded volume per second observed on that venue and
  `queue_ahead` the displayed quantity at the touch (we join at the back of the FIFO, the
  risk-averse queue model). Venues are filled best effective price first up to their
  capacity; the rest goes to the venue with the largest capacity (fill probability).
- Latency: the one-way order-entry latency of a venue is half the median round trip
  (request to acknowledgement) of the router's last 20 orders there, else `latency_ms`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.context import Context
    from engine.views import OrderUpdate, TradeView

_BPS = Decimal(10000)
_SIDES = {"buy": 1, "sell": -1}


@dataclass(frozen=True)
class VenueQuote:
    """One candidate venue as the router sees it at decision time (Decimals, base units)."""

    instrument: str
    venue: str
    levels: tuple[tuple[Decimal, Decimal], ...]  # opposite side for aggressive, own side for passive, best first
    fee_bps: Decimal  # taker for aggressive, maker for passive
    latency_ms: Decimal
    cap: Decimal  # most base quantity the venue may take (balances, exposure)
    lot_size: Decimal
    min_qty: Decimal = Decimal(0)
    trade_rate: Decimal = Decimal(0)  # opposite-side traded base qty per second (passive)


@dataclass(frozen=True)
class Split:
    """One child the router decided: where, how much, at what limit, and why."""

    instrument: str
    venue: str
    qty: Decimal
    price: Decimal
    effective_price: Decimal
    reason: str


@dataclass(frozen=True)
class RouteParams:
    """Router knobs (docs/execution.md); all Decimals, bps and ms."""

    latency_cost_bps_per_ms: Decimal = Decimal("0.05")
    quote_life_ms: Decimal = Decimal("200")
    passive_horizon_s: Decimal = Decimal("10")


def plan_aggressive(side: str, qty: Decimal, quotes: list[VenueQuote], params: RouteParams,
                    limit_price: Decimal | None = None) -> tuple[list[Split], Decimal]:
    """Split a marketable quantity across venues (module docstring); returns (splits, unrouted).

    Pure function of its inputs, so a test can pin it by hand.
    """
    sign = _SIDES[side]
    entries = []
    for order, q in enumerate(quotes):
        if q.cap <= 0:
            continue
        lat_bps = params.latency_cost_bps_per_ms * q.latency_ms
        survival = max(Decimal(0), 1 - q.latency_ms / params.quote_life_ms)
        for level, (price, size) in enumerate(q.levels):
            if limit_price is not None and sign * (price - limit_price) > 0:
                break
            eff = price * (1 + sign * (q.fee_bps + lat_bps) / _BPS)
            entries.append((sign * eff, order, level, price, size * survival, eff))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    left = qty
    taken: dict[int, list] = {}
    for _, order, _level, price, usable, eff in entries:
        if left <= 0:
            break
        q = quotes[order]
        room = q.cap - sum((t[0] for t in taken.get(order, [])), Decimal(0))
        take = min(left, usable, room)
        if take <= 0:
            continue
        taken.setdefault(order, []).append((take, price, eff))
        left -= take
    splits = []
    for order in sorted(taken):
        q = quotes[order]
        parts = taken[order]
        total = _lots(sum((p[0] for p in parts), Decimal(0)), q.lot_size)
        if total <= 0 or total < q.min_qty:
            continue
        worst = parts[-1][1]
        eff_avg = sum((p[0] * p[2] for p in parts), Decimal(0)) / sum((p[0] for p in parts), Decimal(0))
        reason = (f"{len(parts)} level(s) to {worst}; taker {q.fee_bps} bps + latency "
                  f"{params.latency_cost_bps_per_ms * q.latency_ms} bps; effective {fmt_decimal(eff_avg)}")
        splits.append(Split(q.instrument, q.venue, total, worst, eff_avg, reason))
    unrouted = qty - sum((s.qty for s in splits), Decimal(0))
    return splits, unrouted


def plan_passive(side: str, qty: Decimal, quotes: list[VenueQuote], params: RouteParams) -> tuple[list[Split], Decimal]:
    """Split a resting quantity across venues' touches (module docstring); returns (splits, unrouted)."""
    sign = _SIDES[side]
    cands = []
    for order, q in enumerate(quotes):
        if q.cap <= 0 or not q.levels:
            continue
        price, queue = q.levels[0]
        eff = price * (1 + sign * q.fee_bps / _BPS)
        capacity = max(Decimal(0), q.trade_rate * params.passive_horizon_s - queue)
        cands.append((sign * eff, order, price, eff, capacity, queue))
    cands.sort(key=lambda c: (c[0], c[1]))
    alloc: dict[int, Decimal] = {}
    left = qty
    for _, order, _price, _eff, capacity, _queue in cands:
        take = min(left, capacity, quotes[order].cap)
        if take > 0:
            alloc[order] = take
            left -= take
    if left > 0 and cands:
        # the rest to the venue most likely to fill it (largest capacity; ties: best price)
        best = max(cands, key=lambda c: (c[4], -c[0], -c[1]))
        order = best[1]
        room = quotes[order].cap - alloc.get(order, Decimal(0))
        extra = min(left, room)
        if extra > 0:
            alloc[order] = alloc.get(order, Decimal(0)) + extra
            left -= extra
    by_order = {c[1]: c for c in cands}
    splits = []
    for order in sorted(alloc):
        q = quotes[order]
        total = _lots(alloc[order], q.lot_size)
        if total <= 0 or total < q.min_qty:
            continue
        _, _, price, eff, capacity, queue = by_order[order]
        reason = (f"rest at touch {price}; maker {q.fee_bps} bps; queue ahead {fmt_decimal(queue)}, "
                  f"expected fill capacity {fmt_decimal(capacity)} in {params.passive_horizon_s}s; effective {fmt_decimal(eff)}")
        splits.append(Split(q.instrument, q.venue, total, price, eff, reason))
    return splits, qty - sum((s.qty for s in splits), Decimal(0))


def plan_best_price(side: str, qty: Decimal, quotes: list[VenueQuote], limit_price: Decimal | None) -> tuple[list[Split], Decimal]:
    """Baseline for the A/B benchmark: everything to the venue with the best displayed far
    touch (price only: no fees, latency or depth), as one IOC up to `limit_price`."""
    sign = _SIDES[side]
    live = [(sign * q.levels[0][0], order, q) for order, q in enumerate(quotes) if q.levels and q.cap > 0]
    if not live:
        return [], qty
    _, _, q = min(live, key=lambda e: (e[0], e[1]))
    take = _lots(min(qty, q.cap), q.lot_size)
    if take <= 0 or take < q.min_qty:
        return [], qty
    price = limit_price if limit_price is not None else q.levels[-1][0]
    return [Split(q.instrument, q.venue, take, price, q.levels[0][0], "best displayed price (baseline)")], qty - take


def best_taker_venue(ctx: Context, instruments: list[str], side: str,
                     qty: Decimal) -> tuple[str, Decimal, Decimal] | None:
    """Where to take `qty` at once (a hedge): the instrument whose touch is best after its
    taker fee, among those that accept the quantity on their lot grid (rounded down) above
    min_qty and min_notional and, for a sale, hold the base. Returns (instrument, touch price,
    rounded quantity), or None when no venue can take it (dust)."""
    best = None
    for inst in instruments:
        spec = ctx.instrument(inst)
        book = ctx.book(inst)
        price = book.best_bid if side == "sell" else book.best_ask
        rounded = spec.round_qty(qty, "down")
        if price is None or rounded <= 0 or rounded < spec.min_qty or rounded * price < spec.min_notional:
            continue
        if side == "sell" and ctx.balance(spec.venue, spec.base) < rounded:
            continue
        taker = ctx.fees(inst)[1] / _BPS
        value = price * (1 - taker) if side == "sell" else -price * (1 + taker)
        if best is None or value > best[0]:
            best = (value, inst, price, rounded)
    return None if best is None else best[1:]


def same_asset(a_base: str, a_quote: str, b_base: str, b_quote: str, aliases: dict[str, str]) -> bool:
    """True when two instruments are the same asset pair (quotes compared after `aliases`)."""
    def canon(q: str) -> str:
        return aliases.get(q, q)

    return a_base == b_base and canon(a_quote) == canon(b_quote)


@dataclass
class SmartOrderRouter:
    """Routes an algorithm's children across the venues of its instrument (see module docstring).

    `instruments`: candidate instrument ids (default: every run instrument that is the same
    asset as the algorithm's). `latency_ms`: prior one-way entry latency per venue (default
    1 ms). `max_venue_position`: |base| limit per venue. `quote_aliases`: quote currencies to
    treat as equal. `depth`: book levels read per venue (50: every level of a typical local book; fewer hides
    cheap depth and sends flow to dearer venues).
    """

    instruments: list[str] | None = None
    latency_ms: dict[str, Decimal] = field(default_factory=dict)
    max_venue_position: dict[str, Decimal] = field(default_factory=dict)
    quote_aliases: dict[str, str] = field(default_factory=dict)
    params: RouteParams = field(default_factory=RouteParams)
    depth: int = 50
    policy: str = "smart"  # "best_price": the A/B baseline (plan_best_price)

    def __post_init__(self) -> None:
        if self.policy not in ("smart", "best_price"):
            raise ConfigError(f"router policy={self.policy!r}: expected 'smart' or 'best_price'")
        self.latency_ms = {k: Decimal(str(v)) for k, v in self.latency_ms.items()}
        self.max_venue_position = {k: Decimal(str(v)) for k, v in self.max_venue_position.items()}
        self._round_trips: dict[str, deque[int]] = {}
        self._traded: dict[tuple[str, str], Decimal] = {}  # (instrument, aggressor side) -> qty
        self._t0: int | None = None
        self._candidates: list[str] = []
        self._timed: set[str] = set()

    # -- set-up by the algorithm --------------------------------------------------------
    def attach(self, ctx: Context, component, home: str) -> list[str]:
        """Resolve the candidate instruments for `home` and watch their trades; returns them."""
        spec = ctx.instrument(home)
        if self.instruments is None:
            ids = [i for i in ctx.instruments
                   if same_asset(spec.base, spec.quote, ctx.instrument(i).base, ctx.instrument(i).quote,
                                 self.quote_aliases)]
        else:
            ids = list(self.instruments)
            for i in ids:
                other = ctx.instrument(i)
                if not same_asset(spec.base, spec.quote, other.base, other.quote, self.quote_aliases):
                    raise ConfigError(f"router: {i} is not the same asset as {home} "
                                      f"(map quotes with quote_aliases, e.g. {{'USD': 'USDT'}})")
        if home not in ids:
            ids.insert(0, home)
        self._candidates = ids
        self._t0 = ctx.now
        for i in ids:
            ctx.watch(component, i, book=False, trades=True)
        return ids

    def observe_trade(self, trade: TradeView) -> None:
        key = (trade.instrument, trade.side)
        self._traded[key] = self._traded.get(key, Decimal(0)) + trade.qty

    def observe_order(self, ctx: Context, update: OrderUpdate) -> None:
        """Learn a venue's round trip from the first response to each of our orders."""
        if update.client_id in self._timed:
            return
        order = ctx.order(update.client_id)
        if order is None or order.ack_ts is None or update.status == "rejected":
            return
        self._timed.add(update.client_id)
        self._round_trips.setdefault(ctx.instrument(order.instrument).venue, deque(maxlen=20)).append(order.ack_ts - order.created_ts)

    def venue_latency_ms(self, venue: str) -> Decimal:
        trips = self._round_trips.get(venue)
        if trips:
            ordered = sorted(trips)
            median = ordered[len(ordered) // 2]
            return Decimal(median) / Decimal(2_000_000)
        return self.latency_ms.get(venue, Decimal(1))

    # -- the decision ------------------------------------------------------------------------
    def quotes(self, ctx: Context, side: str, aggressive: bool, limit_price: Decimal | None,
               working: dict[str, Decimal], working_notional: dict[str, Decimal],
               lot: Decimal | None = None) -> tuple[list[VenueQuote], list[str]]:
        """Candidate venues with their caps, and the reasons others were left out; splits are
        rounded to `lot` where it is coarser than a venue's own lot."""
        sign = _SIDES[side]
        quotes, skipped = [], []
        elapsed = max(1, ctx.now - (self._t0 or ctx.now)) / Decimal(1_000_000_000)
        for inst_id in self._candidates:
            spec = ctx.instrument(inst_id)
            venue = spec.venue
            health = ctx.venue_health(venue)
            if health not in ("up", "degraded"):
                skipped.append(f"{inst_id}: venue {health}")
                continue
            book = ctx.book(inst_id)
            if aggressive:
                levels = book.asks(self.depth) if sign > 0 else book.bids(self.depth)
            else:
                levels = book.bids(1) if sign > 0 else book.asks(1)
            if not levels:
                skipped.append(f"{inst_id}: empty book")
                continue
            maker, taker = ctx.fees(inst_id)
            fee = taker if aggressive else maker
            cap = self._cap(ctx, spec, sign, fee, levels, limit_price, working.get(inst_id, Decimal(0)),
                            working_notional.get(inst_id, Decimal(0)))
            if cap <= 0:
                skipped.append(f"{inst_id}: no room (balance/exposure)")
                continue
            opposite = "sell" if sign > 0 else "buy"
            rate = self._traded.get((inst_id, opposite), Decimal(0)) / elapsed
            step = spec.lot_size if lot is None else max(lot, spec.lot_size)
            quotes.append(VenueQuote(inst_id, venue, tuple(levels), fee, self.venue_latency_ms(venue),
                                     _lots(cap, step), step, spec.min_qty, rate))
        return quotes, skipped

    def _cap(self, ctx: Context, spec, sign: int, fee: Decimal, levels, limit_price, working_qty, working_notional) -> Decimal:
        venue = spec.venue
        caps = []
        if sign < 0:
            caps.append(ctx.balance(venue, spec.base) - working_qty)
        else:
            price = limit_price if limit_price is not None else levels[-1][0]
            if price > 0:
                cash = ctx.balance(venue, spec.quote) - working_notional
                caps.append(cash / (price * (1 + max(fee, Decimal(0)) / _BPS)))
        limit = self.max_venue_position.get(venue)
        if limit is not None:
            held = sum((ctx.position(i) for i in ctx.instruments
                        if ctx.instrument(i).venue == venue and ctx.instrument(i).base == spec.base), Decimal(0))
            caps.append(limit - sign * held - working_qty)
        cap = min(caps) if caps else Decimal(0)
        return _lots(max(cap, Decimal(0)), spec.lot_size)

    def candidates(self) -> list[str]:
        return list(self._candidates)


def _lots(qty: Decimal, lot: Decimal) -> Decimal:
    return (qty / lot).to_integral_value(rounding=ROUND_DOWN) * lot


def fmt_decimal(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001")).normalize())
