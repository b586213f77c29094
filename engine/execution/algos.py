"""Execution algorithms started from ctx: TWAP, VWAP, POV, Almgren–Chriss, limit-then-market.

Why one base class: every algorithm here is "a target cumulative quantity over time plus a
way to place what is behind it". The base class owns the parent order, the children (all
tagged with the parent id, so the report's parent figures apply), catch-up, risk refusals,
passive/aggressive placement, re-routing, the end of the horizon and the audit records of
the schedule; a subclass only says what should be done by when (`targets`/`target`).

Placement (`style`):
- "aggressive": a limit IOC at the far touch moved `max_slippage_bps` through it (never a
  bare market order: the cap bounds slippage on a thin book);
- "passive": a post-only limit at the near touch; at the next slice an unfilled passive
  child is cancelled and its quantity rejoins what is due (catch-up), re-posted at the then
  touch. At the end of the horizon `finish="aggressive"` sends the remainder as IOC (up to
  `final_attempts` tries, one per `retry_ns`), `finish="passive"` leaves it unfilled.

Risk: a refusal is an order update (REJECTED with a reason), never an exception. The
quantity returns to what is due; "max_order_notional" caps every later child at half
the refused one; "order_rate" waits for the next slice; "kill_switch", the risk states
("risk_halted", "risk_reducing"), "reduce_only" and "max_position" stop the algorithm and close its parent with that
reason; other refusals (min_qty, min_notional, price_band) are retried at the next slice, and
stop the algorithm after `max_rejects` in a row.

A remainder smaller than the coarsest lot / largest minimum quantity (left by a partial fill
on a venue with a finer lot) cannot be traded anywhere: the algorithm closes the parent with
reason "remainder_below_min_qty".

Schedules are audited: `algo_schedule` records (times in ns, cumulative target quantities)
at start and at each re-plan; the report draws them against what was executed.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from engine.config import parse_decimal
from engine.errors import ConfigError
from engine.execution.almgren_chriss import ImpactModel, optimal_trajectory
from engine.execution.host import Component
from engine.execution.router import (
    SmartOrderRouter,
    fmt_decimal,
    plan_aggressive,
    plan_best_price,
    plan_passive,
)
from engine.types.instrument import decimal_str

if TYPE_CHECKING:
    from engine.context import Context
    from engine.views import BookView, OrderUpdate, TradeView

_BPS = Decimal(10000)
NS = 1_000_000_000
FATAL_REJECTS = ("kill_switch", "risk_halted", "risk_reducing", "reduce_only", "max_position")


def _dec(value: object, name: str) -> Decimal:
    """An algorithm argument as the Decimal of its written digits (ConfigError naming it)."""
    return parse_decimal(value, name, floats=True)


class ExecutionAlgorithm(Component):
    """Base of the algorithms (module docstring). Construct, then ``ctx.execute(algo)``.

    `instrument`: run instrument id (the parent's; with a `router`, children may go to the
    same asset on other venues); `side` 'buy'/'sell'; `quantity` base units (whole lots);
    `parent_id` default "<algo>-<n>"; `max_slippage_bps` cap through the far touch for
    aggressive children; `retry_ns` the pause between final attempts; `min_child` the
    smallest child worth sending (smaller amounts wait until more is due, as do amounts
    below the venue's min_notional).
    """

    name = "algo"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, parent_id: str | None = None,
                 style: str = "aggressive", max_slippage_bps: Decimal | str = "10", finish: str = "aggressive",
                 router: SmartOrderRouter | None = None, final_attempts: int = 3, retry_ns: int = NS,
                 max_rejects: int = 5, min_child: Decimal | str = "0") -> None:
        if side not in ("buy", "sell"):
            raise ConfigError(f"{self.name}: side={side!r}: expected 'buy' or 'sell'")
        if style not in ("aggressive", "passive"):
            raise ConfigError(f"{self.name}: style={style!r}: expected 'aggressive' or 'passive'")
        if finish not in ("aggressive", "passive"):
            raise ConfigError(f"{self.name}: finish={finish!r}: expected 'aggressive' or 'passive'")
        self.instrument = instrument
        self.side = side
        self.sign = 1 if side == "buy" else -1
        self.quantity = _dec(quantity, f"{self.name} quantity")
        if self.quantity <= 0:
            raise ConfigError(f"{self.name}: quantity={quantity!r}: must be > 0")
        self.style = style
        self.finish = finish
        self.max_slippage = _dec(max_slippage_bps, f"{self.name} max_slippage_bps") / _BPS
        self.router = router
        self.final_attempts = int(final_attempts)
        self.retry_ns = int(retry_ns)
        self.max_rejects = int(max_rejects)
        self.min_child = _dec(min_child, f"{self.name} min_child")
        self.id = parent_id or ""
        self.filled = Decimal(0)
        self.notional = Decimal(0)
        self.working: dict[str, Decimal] = {}  # client id -> leaves qty
        self._working_inst: dict[str, str] = {}
        self._passive: set[str] = set()
        self._refreshing: set[str] = set()
        self.child_cap: Decimal | None = None
        self.rejects_in_row = 0
        self.reason = ""
        self.done = False
        self.final = False
        self._attempts = 0
        self._repeating: list[int] = []
        self.start_ts = 0
        self.end_ts = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, ctx: Context) -> None:
        self.spec = ctx.instrument(self.instrument)
        self.spec.qty_to_lots(self.quantity)  # OffGridError for a quantity off the lot grid
        self.id = ctx.open_parent(self.instrument, self.side, self.quantity, parent_id=self.id)
        self.start_ts = ctx.now
        self.lot = self.spec.lot_size
        self.min_qty = self.spec.min_qty
        if self.router is not None:
            # routed: quantities are whole lots of the coarsest venue (decimal lots nest), so
            # no split leaves a remainder some venue could not trade
            specs = [ctx.instrument(i) for i in self.router.attach(ctx, self, self.instrument)]
            self.lot = max(s.lot_size for s in specs)
            self.min_qty = max(s.min_qty for s in specs)
        self.begin(ctx)

    def begin(self, ctx: Context) -> None:
        """Subclasses: schedule timers and record the schedule."""

    def repeat(self, ctx: Context, every_ns: int, at_ns: int) -> int:
        """A repeating timer of this algorithm, stopped with it."""
        timer_id = ctx.schedule_for(self, every_ns=every_ns, at_ns=at_ns)
        self._repeating.append(timer_id)
        return timer_id

    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    def working_qty(self) -> Decimal:
        return sum(self.working.values(), Decimal(0))

    def stop(self, ctx: Context, reason: str = "stopped") -> None:
        """Cancel open children and close the parent (filled if the target was reached)."""
        if self.done:
            return
        self.done = True
        self.reason = "" if self.filled >= self.quantity else reason
        for timer_id in self._repeating:
            ctx.unschedule(timer_id)
        for client_id in list(self.working):
            ctx.cancel(client_id)
        ctx.close_parent(self.id, reason)

    def on_stop(self, ctx: Context) -> None:
        self.stop(ctx, "run_end")

    def record_schedule(self, ctx: Context, times: list[int], targets: list[Decimal], **extra: object) -> None:
        ctx.record("algo_schedule", parent_id=self.id, algo=self.name, instrument=self.instrument,
                   side=self.side, times=[int(t) for t in times], target=[decimal_str(q) for q in targets],
                   filled=decimal_str(self.filled), **extra)

    # -- what is due ----------------------------------------------------------------------
    def target(self, ctx: Context, now: int) -> Decimal:
        """Cumulative quantity that should be filled by `now` (subclasses)."""
        return self.quantity

    def step(self, ctx: Context, *, aggressive: bool | None = None) -> None:
        """Place what is behind the target (net of working children); refresh stale passive ones."""
        if self.done:
            return
        if self.filled >= self.quantity:
            self.stop(ctx, "filled")
            return
        if self.remaining() < max(self.min_qty, self.lot) and not self.working:
            # a partial fill on a finer-lot venue can leave less than any venue accepts
            self.stop(ctx, "remainder_below_min_qty")
            return
        aggressive = (self.style == "aggressive" or (self.final and self.finish == "aggressive")
                      if aggressive is None else aggressive)
        for client_id in list(self._passive):
            if client_id in self.working and client_id not in self._refreshing:
                self._refreshing.add(client_id)
                ctx.cancel(client_id)
        if self._refreshing:
            return  # the cancels' replies come back to step() with the quantity freed
        due = min(self.target(ctx, ctx.now), self.quantity) - self.filled - self.working_qty()
        if self.child_cap is not None:
            due = min(due, self.child_cap)
        due = self._lots(due)
        if due <= 0 or due < self.min_qty:
            return
        mid = ctx.book(self.instrument).mid
        small = due < self.min_child or (
            self.spec.min_notional and mid is not None and due * mid < self.spec.min_notional)
        if small and self.target(ctx, ctx.now) < self.quantity and not self.final:
            return  # below the venue's filter or `min_child`: wait until more is due
        self.place(ctx, due, aggressive)

    def _lots(self, qty: Decimal) -> Decimal:
        lot = getattr(self, "lot", None) or self.spec.lot_size
        return (qty / lot).to_integral_value(rounding=ROUND_DOWN) * lot if qty > 0 else Decimal(0)

    # -- placing children -----------------------------------------------------------------
    def place(self, ctx: Context, qty: Decimal, aggressive: bool) -> None:
        if self.router is not None:
            self._place_routed(ctx, qty, aggressive)
            return
        book = ctx.book(self.instrument)
        price = self._price(book, aggressive)
        if price is None:
            return
        self._send(ctx, self.instrument, qty, price, aggressive)

    def _price(self, book: BookView, aggressive: bool) -> Decimal | None:
        spec = book.instrument
        if aggressive:
            touch = book.best_ask if self.sign > 0 else book.best_bid
            if touch is None:
                return None
            capped = touch * (1 + self.sign * self.max_slippage)
            return spec.round_price(capped, "down" if self.sign > 0 else "up")
        return book.best_bid if self.sign > 0 else book.best_ask

    def _send(self, ctx: Context, instrument: str, qty: Decimal, price: Decimal, aggressive: bool) -> str:
        client_id = ctx.submit(instrument, self.side, qty, price, tif="IOC" if aggressive else "GTC",
                               post_only=not aggressive, parent_id=self.id)
        order = ctx.order(client_id)
        if order is not None and order.is_open:
            self.working[client_id] = qty
            self._working_inst[client_id] = instrument
            if not aggressive:
                self._passive.add(client_id)
        return client_id

    def _place_routed(self, ctx: Context, qty: Decimal, aggressive: bool) -> None:
        router = self.router
        assert router is not None
        limit = None
        if aggressive:
            # the slippage cap is measured from the best far touch across the candidate venues
            touches = []
            for inst in router.candidates():
                book = ctx.book(inst)
                t = book.best_ask if self.sign > 0 else book.best_bid
                if t is not None:
                    touches.append(t)
            if not touches:
                return
            best = min(touches) if self.sign > 0 else max(touches)
            limit = best * (1 + self.sign * self.max_slippage)
        working: dict[str, Decimal] = {}
        notional: dict[str, Decimal] = {}
        for client_id, leaves in self.working.items():
            inst = self._working_inst[client_id]
            working[inst] = working.get(inst, Decimal(0)) + leaves
            order = ctx.order(client_id)
            px = order.price if order is not None and order.price is not None else Decimal(0)
            notional[inst] = notional.get(inst, Decimal(0)) + leaves * px
        quotes, skipped = router.quotes(ctx, self.side, aggressive, limit, working, notional, lot=self.lot)
        if aggressive and router.policy == "best_price":
            splits, unrouted = plan_best_price(self.side, qty, quotes, limit)
        elif aggressive:
            splits, unrouted = plan_aggressive(self.side, qty, quotes, router.params, limit)
        else:
            splits, unrouted = plan_passive(self.side, qty, quotes, router.params)
        ids = []
        for split in splits:
            spec = ctx.instrument(split.instrument)
            price = split.price
            if aggressive and limit is not None:
                # IOC up to the worst level planned there, never beyond the slippage cap
                price = spec.round_price(price, "down" if self.sign > 0 else "up")
            ids.append(self._send(ctx, split.instrument, split.qty, price, aggressive))
        ctx.record("route", parent_id=self.id, side=self.side, qty=decimal_str(qty),
                   style="aggressive" if aggressive else "passive",
                   limit=None if limit is None else decimal_str(limit),
                   splits=[{"client_id": cid, "instrument": s.instrument, "venue": s.venue,
                            "qty": decimal_str(s.qty), "price": decimal_str(s.price),
                            "effective_price": fmt_decimal(s.effective_price), "reason": s.reason}
                           for cid, s in zip(ids, splits, strict=True)],
                   unrouted=decimal_str(unrouted), skipped=skipped,
                   available={q.instrument: decimal_str(_available(q, self.sign, limit, aggressive)) for q in quotes})

    # -- updates --------------------------------------------------------------------------
    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        client_id = update.client_id
        if self.router is not None:
            self.router.observe_order(ctx, update)
        if update.last_fill_qty:
            self.filled += update.last_fill_qty
            self.notional += update.last_fill_qty * (update.last_fill_price or 0)
            self.rejects_in_row = 0
        if client_id in self.working:
            if update.status in ("filled", "cancelled", "rejected", "expired"):
                self.working.pop(client_id, None)
                self._working_inst.pop(client_id, None)
                self._passive.discard(client_id)
            else:
                self.working[client_id] = update.leaves_qty
        if update.status == "rejected":
            self._on_reject(ctx, update.reason, update.qty)
        if self.done:
            return
        if self.filled >= self.quantity:
            self.stop(ctx, "filled")
            return
        if client_id in self._refreshing and update.status in ("filled", "cancelled", "expired"):
            self._refreshing.discard(client_id)
            if not self._refreshing:
                self.step(ctx)

    def _on_reject(self, ctx: Context, reason: str, qty: Decimal) -> None:
        self.rejects_in_row += 1
        ctx.record("algo_reject", parent_id=self.id, reason=reason, rejects_in_row=self.rejects_in_row)
        if reason in FATAL_REJECTS:
            self.stop(ctx, reason)
        elif reason == "max_order_notional":
            self.child_cap = self._lots(qty / 2)
        elif self.rejects_in_row >= self.max_rejects:
            self.stop(ctx, f"rejected:{reason}")

    def on_venue_health(self, ctx: Context, venue: str, state: str) -> None:
        """A venue that is no longer routable: cancel our children there; their quantity is re-routed."""
        if state in ("up", "degraded"):
            return
        for client_id, inst in list(self._working_inst.items()):
            if ctx.instrument(inst).venue == venue and client_id not in self._refreshing:
                self._refreshing.add(client_id)
                ctx.cancel(client_id)

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        if self.router is not None:
            self.router.observe_trade(trade)

    # -- the end of the horizon -------------------------------------------------------------
    def schedule_end(self, ctx: Context) -> None:
        ctx.schedule_for(self, at_ns=self.end_ts)

    def on_end(self, ctx: Context) -> None:
        """At the horizon: finish aggressively (a few attempts) or leave the rest unfilled."""
        self.final = True
        if self.finish == "passive":
            self.stop(ctx, "horizon_end")
            return
        self._attempts += 1
        if self._attempts > self.final_attempts:
            self.stop(ctx, "horizon_end")
            return
        self.step(ctx, aggressive=True)
        if not self.done:
            ctx.schedule_for(self, at_ns=ctx.now + self.retry_ns)


def _available(quote, sign: int, limit: Decimal | None, aggressive: bool) -> Decimal:
    """Displayed quantity a venue offered at decision time: within the limit (aggressive) or
    at the touch (passive), capped by the venue's room; the report's "share of available liquidity"."""
    if not aggressive:
        levels = quote.levels[:1]
    else:
        levels = [lv for lv in quote.levels if limit is None or sign * (lv[0] - limit) <= 0]
    return min(sum((q for _, q in levels), Decimal(0)), quote.cap)


class ScheduledAlgorithm(ExecutionAlgorithm):
    """An algorithm with a fixed list of (time, cumulative target) steps: TWAP and VWAP."""

    def begin(self, ctx: Context) -> None:
        self.times, self.targets = self.plan(ctx)
        self.end_ts = self.start_ts + self.horizon_ns
        self.record_schedule(ctx, self.times + [self.end_ts], self.targets + [self.quantity])
        for t in dict.fromkeys(self.times):
            ctx.schedule_for(self, at_ns=t)
        self.schedule_end(ctx)

    def plan(self, ctx: Context) -> tuple[list[int], list[Decimal]]:
        raise NotImplementedError

    def target(self, ctx: Context, now: int) -> Decimal:
        out = Decimal(0)
        for t, q in zip(self.times, self.targets, strict=True):
            if t <= now:
                out = q
        return out

    def on_timer(self, ctx: Context, ts: int) -> None:
        if ts >= self.end_ts:
            self.on_end(ctx)
        else:
            self.step(ctx)


class TWAP(ScheduledAlgorithm):
    """Equal slices over `horizon_s`, slice k due at start + k*horizon/slices (k = 0..slices-1).

    `randomize` in [0, 1): each slice time moves by u*randomize*interval, u uniform in
    [-1/2, 1/2) from ``ctx.rng(parent_id)`` (the first never before the start): seeded, so a
    run is reproducible yet the timing is not predictable from the outside. Target after
    slice k: quantity*(k+1)/slices rounded down to lots (the last slice takes the rest).
    """

    name = "twap"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, horizon_s: float = 600,
                 slices: int = 10, randomize: float = 0.0, **kwargs) -> None:
        super().__init__(instrument, side, quantity, **kwargs)
        if not isinstance(slices, int) or slices < 1:
            raise ConfigError(f"twap: slices={slices!r}: expected an integer >= 1")
        if not 0 <= randomize < 1:
            raise ConfigError(f"twap: randomize={randomize!r}: expected 0 <= randomize < 1")
        if not horizon_s > 0:
            raise ConfigError(f"twap: horizon_s={horizon_s!r}: expected > 0")
        self.horizon_ns = int(Decimal(str(horizon_s)) * NS)
        self.slices = slices
        self.randomize = randomize

    def plan(self, ctx: Context) -> tuple[list[int], list[Decimal]]:
        interval = self.horizon_ns // self.slices
        rng = ctx.rng(self.id)
        times, targets = [], []
        for k in range(self.slices):
            t = self.start_ts + k * interval
            if self.randomize:
                t += int((rng.random() - 0.5) * self.randomize * interval)
            times.append(max(self.start_ts, t))
            targets.append(self.quantity if k == self.slices - 1 else self._lots(self.quantity * (k + 1) / self.slices))
        return times, targets


class VWAP(ScheduledAlgorithm):
    """Slices sized by a volume curve: bucket b of `len(curve)` equal buckets over `horizon_s`
    is due at its start with quantity*sum(curve[:b+1])/sum(curve) (rounded down to lots).

    `curve`: relative volumes per bucket (e.g. the historical intraday profile, see
    `volume_curve`), any non-negative numbers with a positive sum.
    """

    name = "vwap"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, horizon_s: float = 600,
                 curve: list[float] | list[Decimal] | None = None, **kwargs) -> None:
        super().__init__(instrument, side, quantity, **kwargs)
        if not curve:
            raise ConfigError("vwap: curve is required (relative volume per bucket)")
        weights = [_dec(w, "vwap curve") for w in curve]
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"vwap: curve={list(curve)!r}: expected non-negative numbers with a positive sum")
        if not horizon_s > 0:
            raise ConfigError(f"vwap: horizon_s={horizon_s!r}: expected > 0")
        self.horizon_ns = int(Decimal(str(horizon_s)) * NS)
        self.curve = weights

    def plan(self, ctx: Context) -> tuple[list[int], list[Decimal]]:
        buckets = len(self.curve)
        interval = self.horizon_ns // buckets
        total = sum(self.curve)
        times, targets, cum = [], [], Decimal(0)
        for b, w in enumerate(self.curve):
            cum += w
            times.append(self.start_ts + b * interval)
            targets.append(self.quantity if b == buckets - 1 else self._lots(self.quantity * cum / total))
        return times, targets


def volume_curve(trade_ts: list[int], trade_qty: list[Decimal | float], start_ns: int, horizon_ns: int,
                 buckets: int, period_ns: int = 86_400 * NS) -> list[float]:
    """A VWAP curve from historical trades: volume per bucket of the time of day (mod `period_ns`).

    Trades are folded onto [start_ns, start_ns + horizon_ns) modulo `period_ns` (a day by
    default), so several days of history average into one intraday profile.
    """
    if buckets < 1 or horizon_ns <= 0:
        raise ConfigError("volume_curve: buckets >= 1 and horizon_ns > 0 required")
    out = [0.0] * buckets
    width = horizon_ns / buckets
    for ts, qty in zip(trade_ts, trade_qty, strict=True):
        offset = (int(ts) - start_ns) % period_ns
        if offset < horizon_ns:
            out[min(buckets - 1, int(offset // width))] += float(qty)
    return out


class POV(ExecutionAlgorithm):
    """Participation of volume: fill `rate` x the market volume traded on the instrument since
    the start (our own fills are not in the market's prints), checked on every trade and every
    `check_ms`.

    Bounds: never more than `max_rate` x volume filled or working; when the fill falls below
    `min_rate` x volume the catch-up child is aggressive whatever `style` says. Stops at
    `quantity` or at `horizon_s` (then `finish` applies).
    """

    name = "pov"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, rate: float | str = "0.1",
                 min_rate: float | str | None = None, max_rate: float | str | None = None,
                 horizon_s: float = 3600, check_ms: int = 1000, **kwargs) -> None:
        super().__init__(instrument, side, quantity, **kwargs)
        self.rate = _dec(rate, "pov rate")
        self.min_rate = _dec(min_rate, "pov min_rate") if min_rate is not None else Decimal(0)
        self.max_rate = _dec(max_rate, "pov max_rate") if max_rate is not None else self.rate
        if not 0 < self.rate <= 1 or not 0 <= self.min_rate <= self.rate <= self.max_rate <= 1:
            raise ConfigError(f"pov: expected 0 <= min_rate <= rate <= max_rate <= 1 and rate > 0; "
                              f"got min_rate={self.min_rate}, rate={self.rate}, max_rate={self.max_rate}")
        self.horizon_ns = int(Decimal(str(horizon_s)) * NS)
        self.check_ns = int(check_ms) * 1_000_000
        self.market_volume = Decimal(0)

    def begin(self, ctx: Context) -> None:
        self.end_ts = self.start_ts + self.horizon_ns
        ctx.watch(self, self.instrument, book=False, trades=True)
        self._timer = self.repeat(ctx, self.check_ns, self.start_ts + self.check_ns)
        self.schedule_end(ctx)
        self.record_schedule(ctx, [self.start_ts, self.end_ts], [Decimal(0), self.quantity],
                             rate=decimal_str(self.rate), min_rate=decimal_str(self.min_rate),
                             max_rate=decimal_str(self.max_rate))

    def target(self, ctx: Context, now: int) -> Decimal:
        return self.rate * self.market_volume

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        super().on_trade(ctx, trade)
        if trade.instrument == self.instrument and not self.done and not self.final:
            self.market_volume += trade.qty
            self._pace(ctx)

    def _pace(self, ctx: Context) -> None:
        behind = self.filled < self.min_rate * self.market_volume
        ceiling = self.max_rate * self.market_volume - self.filled - self.working_qty()
        cap = self.child_cap
        self.child_cap = self._lots(ceiling) if cap is None else min(cap, self._lots(ceiling))
        try:
            self.step(ctx, aggressive=True if behind else None)
        finally:
            self.child_cap = cap

    def on_timer(self, ctx: Context, ts: int) -> None:
        if ts >= self.end_ts:
            ctx.unschedule(self._timer)
            self.on_end(ctx)
        elif not self.final:
            self._pace(ctx)



class AlmgrenChriss(ExecutionAlgorithm):
    """Almgren–Chriss schedule (engine.execution.almgren_chriss), re-planned every period.

    At the start of each of `periods` equal periods the trajectory is recomputed from the
    remaining quantity, the time left and the realised volatility (sample standard deviation of
    mid changes sampled every `sample_ms`, per sqrt(second), once `min_samples` are in; before
    that `sigma`), and the first trade of the new trajectory is due now. Impact parameters are
    in price units per base unit and seconds: `eta` (temporary), `gamma` (permanent),
    `epsilon` (fixed cost per unit), `beta` the temporary exponent (1 linear closed form,
    0.5 square root, solved numerically). `risk_aversion` is lambda (1/price units).
    """

    name = "almgren_chriss"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, horizon_s: float = 600,
                 periods: int = 10, risk_aversion: float = 1e-6, sigma: float = 1.0, eta: float = 1e-3,
                 gamma: float = 0.0, epsilon: float = 0.0, beta: float = 1.0, sample_ms: int = 1000,
                 min_samples: int = 10, **kwargs) -> None:
        super().__init__(instrument, side, quantity, **kwargs)
        if not isinstance(periods, int) or periods < 1:
            raise ConfigError(f"almgren_chriss: periods={periods!r}: expected an integer >= 1")
        self.horizon_ns = int(Decimal(str(horizon_s)) * NS)
        self.periods = periods
        self.risk_aversion = float(risk_aversion)
        self.prior_sigma = float(sigma)
        self.model = ImpactModel(sigma=float(sigma), eta=float(eta), gamma=float(gamma),
                                 epsilon=float(epsilon), beta=float(beta))
        self.sample_ns = int(sample_ms) * 1_000_000
        self.min_samples = int(min_samples)
        self._mids: list[float] = []
        self.period = 0
        self._target = Decimal(0)

    def begin(self, ctx: Context) -> None:
        self.end_ts = self.start_ts + self.horizon_ns
        self.interval = self.horizon_ns // self.periods
        self._sampler = self.repeat(ctx, self.sample_ns, self.start_ts)
        for k in range(self.periods):
            ctx.schedule_for(self, at_ns=self.start_ts + k * self.interval)
        self.schedule_end(ctx)

    def realised_sigma(self) -> float:
        """Std dev of mid changes per sqrt(second), or the prior before `min_samples`."""
        diffs = [b - a for a, b in zip(self._mids, self._mids[1:], strict=False)]
        if len(diffs) < self.min_samples:
            return self.prior_sigma
        mean = sum(diffs) / len(diffs)
        var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
        return math.sqrt(var / (self.sample_ns / NS))

    def replan(self, ctx: Context) -> None:
        left_periods = self.periods - self.period
        time_left = (self.end_ts - ctx.now) / NS
        remaining = float(self.remaining())
        if left_periods < 1 or time_left <= 0 or remaining <= 0:
            return
        sigma = self.realised_sigma()
        model = ImpactModel(sigma=sigma, eta=self.model.eta, gamma=self.model.gamma,
                            epsilon=self.model.epsilon, beta=self.model.beta)
        holdings = optimal_trajectory(remaining, time_left, left_periods, model, self.risk_aversion)
        step = self.interval
        times = [ctx.now + j * step for j in range(left_periods)] + [self.end_ts]
        targets = [self.filled + self._lots(Decimal(str(remaining - h))) for h in holdings[:-1]] + [self.quantity]
        self._target = targets[1] if left_periods > 1 else self.quantity
        # due at the start of each period: the cumulative quantity after that period's trade
        self.record_schedule(ctx, times, targets[1:] + [self.quantity], sigma=sigma, period=self.period,
                             risk_aversion=self.risk_aversion)

    def target(self, ctx: Context, now: int) -> Decimal:
        return self._target

    def on_timer(self, ctx: Context, ts: int) -> None:
        if ts >= self.end_ts:
            ctx.unschedule(self._sampler)
            self.on_end(ctx)
            return
        mid = ctx.book(self.instrument).mid
        if (ts - self.start_ts) % self.sample_ns == 0 and mid is not None and ts != getattr(self, "_sampled", None):
            self._sampled = ts
            self._mids.append(float(mid))
        if (ts - self.start_ts) % self.interval == 0 and ts != getattr(self, "_planned", None) and not self.final:
            self._planned = ts
            self.period = (ts - self.start_ts) // self.interval
            self.replan(ctx)
            self.step(ctx)



class LimitThenMarket(ExecutionAlgorithm):
    """Rest at the near touch, follow it every `repeg_ms`, escalate after `timeout_ms`.

    Escalation sends the remainder as an IOC capped `max_slippage_bps` through the far touch
    (`finish="aggressive"`, the default). Abort: when the far touch has moved more than
    `abort_slippage_bps` against us from the arrival far touch, everything is cancelled and
    the parent closes with reason "max_slippage".
    """

    name = "limit_then_market"

    def __init__(self, instrument: str, side: str, quantity: Decimal | str, *, timeout_ms: int = 5000,
                 repeg_ms: int = 500, abort_slippage_bps: Decimal | str = "50", **kwargs) -> None:
        kwargs.setdefault("style", "passive")
        super().__init__(instrument, side, quantity, **kwargs)
        self.timeout_ns = int(timeout_ms) * 1_000_000
        self.repeg_ns = int(repeg_ms) * 1_000_000
        self.abort = _dec(abort_slippage_bps, "limit_then_market abort_slippage_bps") / _BPS

    def begin(self, ctx: Context) -> None:
        book = ctx.book(self.instrument)
        self.arrival = book.best_ask if self.sign > 0 else book.best_bid
        self.end_ts = self.start_ts + self.timeout_ns
        self._repeg = self.repeat(ctx, self.repeg_ns, self.start_ts)
        self.schedule_end(ctx)
        self.record_schedule(ctx, [self.start_ts, self.end_ts], [Decimal(0), self.quantity],
                             arrival=None if self.arrival is None else decimal_str(self.arrival))

    def _moved_too_far(self, ctx: Context) -> bool:
        book = ctx.book(self.instrument)
        far = book.best_ask if self.sign > 0 else book.best_bid
        if far is None or self.arrival is None:
            return False
        return self.sign * (far - self.arrival) > self.abort * self.arrival

    def on_timer(self, ctx: Context, ts: int) -> None:
        if self.done:
            return
        if self._moved_too_far(ctx):
            ctx.unschedule(self._repeg)
            self.stop(ctx, "max_slippage")
            return
        if ts >= self.end_ts:
            ctx.unschedule(self._repeg)
            self.on_end(ctx)
            return
        if self.final:
            return
        touch = self._price(ctx.book(self.instrument), False)
        stale = [c for c in self._passive if (o := ctx.order(c)) is not None and touch is not None
                 and self.spec.ticks_to_price(o.price) != touch]
        if stale or not self.working:
            self.step(ctx)

