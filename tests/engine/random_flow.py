"""A strategy that sends seeded random order flow (all types, TIFs, amends, cancels)."""

from decimal import Decimal

import numpy as np

from engine import Strategy


class RandomFlow(Strategy):
    def __init__(self, seed: int = 0, every_ms: int = 50) -> None:
        self.rng = np.random.default_rng(seed)
        self.every_ns = every_ms * 1_000_000

    def on_start(self, ctx) -> None:
        self.inst = ctx.instruments[0]
        self.spec = ctx.instrument(self.inst)
        ctx.schedule(every_ns=self.every_ns)

    def on_timer(self, ctx, ts: int) -> None:
        book = ctx.book(self.inst)
        mid = book.mid
        if mid is None:
            return
        rng = self.rng
        action = rng.integers(0, 10)
        open_ids = ctx.open_orders(self.inst)
        if action < 2 and open_ids:
            ctx.cancel(open_ids[int(rng.integers(0, len(open_ids)))])
            return
        if action == 2 and open_ids:
            target = open_ids[int(rng.integers(0, len(open_ids)))]
            ctx.amend(target, price=self.spec.round_price(mid * Decimal(str(1 + rng.normal(0, 2e-4))), "down"),
                      qty=self.spec.lots_to_qty(int(rng.integers(100, 5000))))
            return
        side = "buy" if rng.integers(0, 2) else "sell"
        qty = self.spec.lots_to_qty(int(rng.integers(50, 5000)))
        if action == 3:
            ctx.submit(self.inst, side, qty, type="market")
            return
        offset = Decimal(str(rng.normal(0, 3e-4)))
        price = self.spec.round_price(mid * (1 + offset), "down")
        tif = ["GTC", "IOC", "FOK", "GTX", "GTD"][int(rng.integers(0, 5))]
        expire = ts + int(rng.integers(1, 500)) * 1_000_000 if tif == "GTD" else None
        ctx.submit(self.inst, side, qty, price, tif=tif, expire_ns=expire)
