"""A live session's heartbeat rows (TRADE, side 0, price 0, modes/live/stepper.py) are no
trades for armed contingent orders: before the fix the replay loop recorded price 0 as the
last trade and woke every armed last-trade sell stop (it fired with reference 0.00)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.contingent.watch import TW_LAST, TW_TRADE_LO, new_watch
from engine.types import EVENT_DTYPE, EventKind, Instrument
from modes.live.stepper import heartbeat_rows
from venues.sim import SimCore, SimVenueConfig, WakeKind

INST = Instrument(id="binance:BTC/USDT", venue="binance", symbol="BTC/USDT", venue_symbol="BTCUSDT", base="BTC",
                  quote="USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                  min_notional=Decimal(0))


def test_a_heartbeat_neither_sets_the_last_trade_nor_touches_a_stop():
    core = SimCore([INST], {"binance": SimVenueConfig.from_table("binance", {})}, None, 1)
    watch = new_watch(1)
    watch[0, TW_TRADE_LO] = 5_950_000  # a sell stop armed at 59500.00 on the last trade
    no_wake = np.zeros(1, dtype=np.bool_)
    core.push(heartbeat_rows(1, 1_000, np.array([0])))
    wake = core.run_until(2_000, no_wake, no_wake, watch)
    assert wake.kind != WakeKind.TRADE and watch[0, TW_LAST] == -1
    trade = np.zeros(1, dtype=EVENT_DTYPE)
    trade["local_ts"] = trade["exch_ts"] = 3_000
    trade["kind"], trade["side"], trade["price"], trade["qty"] = EventKind.TRADE, -1, 5_940_000, 1
    core.push(trade)
    wake = core.run_until(4_000, no_wake, no_wake, watch)  # a real print at 59400.00 touches it
    assert wake.kind == WakeKind.TRADE and watch[0, TW_LAST] == 5_940_000
