"""The race's market maker on NautilusTrader (runs in its own Python 3.12 virtualenv).

    .venv-nautilus/bin/python bench/nautilus_peer.py FEED.npy SETTINGS.json [--repeat N]

Started by `bench/nautilus.py` (the bench's side, `make bench-nautilus`); imports only
numpy and nautilus_trader, never tickparity (which is not installed in that venv). Prints
one JSON line: {"version", "events", "runs": [{"wall", "cpu"}...], "counts": {...}}.

The same rows and rules as bench/bench_sim.py's case (b):
- the feed (bench/feed.py's EVENT_DTYPE rows, saved by numpy) becomes `OrderBookDelta`
  (a BOOK_DELTA row sets the level (side, price) to qty: ADD for a new level, UPDATE for
  an existing one, DELETE at 0; `F_LAST` on every delta, so the book is consistent after
  each) and `TradeTick` (aggressor = the row's side); ts_event = exch_ts, ts_init = local_ts.
- the venue: `BacktestEngine.add_venue(book_type=L2_MBP, queue_position=True)` (their
  queue-position tracking for limit orders on an L2 book, advanced by trades), trade
  execution on, a cash account, `LatencyModel(base_latency_nanos=entry)` (NautilusTrader
  delays commands one way only: there is no response latency), maker/taker fees on the
  instrument (`MakerTakerFeeModel`).
- the strategy: a Python `Strategy` with a 100 ms timer; on each tick it reads the best
  bid and ask of the cached L2 book (subscribed by deltas, managed) and, per side, keeps one
  post-only limit order at that price: an open order elsewhere (or a second one) is
  cancelled and a new one submitted in the same tick; orders with a cancel in flight are
  skipped. Exactly TouchQuoter's rules (bench/strategies.py).

Timing: `engine.run()` only (wall and process CPU time); building the engine and the data
objects is outside it; `--repeat` runs reset the engine and run again on the same data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal

import numpy as np

BOOK_DELTA, TRADE = 1, 4  # engine.types.EventKind values (checked against the settings file)


def build_data(feed: np.ndarray, instrument_id, price_precision: int, size_precision: int,
               tick: Decimal, lot: Decimal) -> list:
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity

    f_last = RecordFlag.F_LAST
    tick_f, lot_f = float(tick), float(lot)
    levels: set[tuple[int, int]] = set()
    out = []
    prices: dict[int, Price] = {}
    kinds = feed["kind"].tolist()
    sides = feed["side"].tolist()
    pxs = feed["price"].tolist()
    qtys = feed["qty"].tolist()
    exch = feed["exch_ts"].tolist()
    local = feed["local_ts"].tolist()
    for i in range(len(kinds)):
        px_ticks = pxs[i]
        price = prices.get(px_ticks)
        if price is None:
            price = prices[px_ticks] = Price(px_ticks * tick_f, price_precision)
        if kinds[i] == TRADE:
            out.append(TradeTick(instrument_id, price, Quantity(qtys[i] * lot_f, size_precision),
                                 AggressorSide.BUYER if sides[i] > 0 else AggressorSide.SELLER,
                                 TradeId(str(i)), exch[i], local[i]))
            continue
        if kinds[i] != BOOK_DELTA:
            raise SystemExit(f"feed row {i}: kind {kinds[i]} is not a book delta or a trade")
        side = OrderSide.BUY if sides[i] > 0 else OrderSide.SELL
        key = (sides[i], px_ticks)
        if qtys[i] == 0:
            action = BookAction.DELETE
            levels.discard(key)
        elif key in levels:
            action = BookAction.UPDATE
        else:
            action = BookAction.ADD
            levels.add(key)
        order = BookOrder(side, price, Quantity(qtys[i] * lot_f, size_precision), 0)
        out.append(OrderBookDelta(instrument_id, action, order, f_last, 0, exch[i], local[i]))
    return out


def make_strategy(instrument_id, qty: str, step_ns: int):
    from datetime import timedelta

    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.model.enums import BookType, OrderSide, TimeInForce
    from nautilus_trader.trading.strategy import Strategy

    class TouchQuoterConfig(StrategyConfig, frozen=True):
        qty: str = "0.01"
        step_ns: int = 100_000_000

    class TouchQuoter(Strategy):
        """TouchQuoter's rules (bench/strategies.py) on NautilusTrader's API."""

        def __init__(self, config: TouchQuoterConfig) -> None:
            super().__init__(config)
            self.iid = instrument_id
            self.submits = 0
            self.cancels = 0
            self.rejects = 0
            self.fills = 0
            self.wakes = 0

        def on_start(self) -> None:
            self.instrument = self.cache.instrument(self.iid)
            self.qty = self.instrument.make_qty(Decimal(self.config.qty))  # the lot precision
            self.subscribe_order_book_deltas(self.iid, BookType.L2_MBP, managed=True)
            self.clock.set_timer("quote", timedelta(microseconds=self.config.step_ns // 1000),
                                 callback=self.on_quote_timer)

        def on_quote_timer(self, event) -> None:
            self.wakes += 1
            book = self.cache.order_book(self.iid)
            if book is None:
                return
            bid, ask = book.best_bid_price(), book.best_ask_price()
            if bid is None or ask is None:
                return
            quoted_bid = quoted_ask = False
            for order in self.cache.orders_open(instrument_id=self.iid):
                if order.is_pending_cancel:
                    continue  # a cancel is already on its way
                if order.side == OrderSide.BUY:
                    if order.price == bid and not quoted_bid:
                        quoted_bid = True
                        continue
                elif order.price == ask and not quoted_ask:
                    quoted_ask = True
                    continue
                self.cancel_order(order)
                self.cancels += 1
            for side, quoted, price in ((OrderSide.BUY, quoted_bid, bid), (OrderSide.SELL, quoted_ask, ask)):
                if not quoted:
                    order = self.order_factory.limit(self.iid, side, self.qty, price,
                                                     time_in_force=TimeInForce.GTC, post_only=True)
                    self.submit_order(order)
                    self.submits += 1

        def on_order_rejected(self, event) -> None:
            self.rejects += 1

        def on_order_filled(self, event) -> None:
            self.fills += 1

    return TouchQuoter(TouchQuoterConfig(qty=qty, step_ns=step_ns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nautilus_peer", description=__doc__.split("\n")[0])
    parser.add_argument("feed", help="the bench feed, numpy .npy of EVENT_DTYPE rows")
    parser.add_argument("settings", help="JSON: tick, lot, qty, step_ns, entry_ns, maker/taker fee, kinds")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    cfg = json.loads(open(args.settings).read())
    if cfg["kinds"] != {"BOOK_DELTA": BOOK_DELTA, "TRADE": TRADE}:
        raise SystemExit(f"event kinds changed: {cfg['kinds']}; update bench/nautilus_peer.py")

    import nautilus_trader
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.backtest.models import LatencyModel, MakerTakerFeeModel
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.enums import AccountType, BookType, OmsType, OrderStatus
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Money, Price, Quantity

    feed = np.load(args.feed)
    tick, lot = Decimal(cfg["tick"]), Decimal(cfg["lot"])
    pp, sp = -tick.as_tuple().exponent, -lot.as_tuple().exponent
    venue = Venue("BINANCE")
    iid = InstrumentId(Symbol("BTCUSDT"), venue)
    instrument = CurrencyPair(
        instrument_id=iid, raw_symbol=Symbol("BTCUSDT"), base_currency=BTC, quote_currency=USDT,
        price_precision=pp, size_precision=sp, price_increment=Price(float(tick), pp),
        size_increment=Quantity(float(lot), sp), lot_size=None, max_quantity=None, min_quantity=None,
        max_notional=None, min_notional=None, max_price=None, min_price=None, margin_init=Decimal(0),
        margin_maint=Decimal(0), maker_fee=Decimal(cfg["maker_fee"]), taker_fee=Decimal(cfg["taker_fee"]),
        ts_event=0, ts_init=0)
    t0 = time.perf_counter()
    data = build_data(feed, iid, pp, sp, tick, lot)
    build_s = time.perf_counter() - t0

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(venue, OmsType.NETTING, AccountType.CASH,
                     [Money(100_000_000, USDT), Money(1_000, BTC)],
                     latency_model=LatencyModel(base_latency_nanos=int(cfg["entry_ns"])),
                     fee_model=MakerTakerFeeModel(), book_type=BookType.L2_MBP, queue_position=True)
    engine.add_instrument(instrument)
    engine.add_data(data)
    runs = []
    counts: dict[str, float] = {}
    for rep in range(max(1, args.repeat)):
        if rep:
            engine.reset()
        strategy = make_strategy(iid, cfg["qty"], int(cfg["step_ns"]))
        engine.add_strategy(strategy)
        w0, c0 = time.perf_counter(), time.process_time()
        engine.run()
        runs.append({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0})
        orders = engine.cache.orders(instrument_id=iid)
        status = [o.status for o in orders]
        counts = {
            "submits": strategy.submits, "cancels": strategy.cancels,
            "post-only rejects": strategy.rejects,
            "orders filled": status.count(OrderStatus.FILLED),
            "partly filled, cancelled": sum(1 for o in orders if o.status == OrderStatus.CANCELED
                                            and o.filled_qty.as_decimal() > 0),
            "filled qty": float(sum(o.filled_qty.as_decimal() for o in orders)),
            "fill events": strategy.fills,
        }
        engine.trader.remove_strategy(strategy.id) if hasattr(engine.trader, "remove_strategy") else None
    print(json.dumps({"version": nautilus_trader.__version__, "python": sys.version.split()[0],
                      "events": len(data), "build_s": build_s, "runs": runs, "counts": counts}))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
