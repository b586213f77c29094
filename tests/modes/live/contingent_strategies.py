"""Strategies for the live contingent-order tests (loaded by path, as a user's file is)."""

from __future__ import annotations

from engine import Strategy

INST = "binance:BTC/USDT"


class ArmOnce(Strategy):
    """On start, unless the session took over contingent orders (`--resume`): a bracket
    whose entry crosses the spread (limit buy 0.01 at 60000.10), stop-loss at 59500 and
    take-profit at 61000 (best bid/ask referenced), and a lone take-profit (buy if touched)
    of 0.005 when the ask falls to 59600. After a restart it sends nothing and records what
    it found."""

    def on_start(self, ctx) -> None:
        found = ctx.contingent_orders()
        if found:
            ctx.record("resumed", ids=",".join(found))
            return
        ctx.submit_bracket(INST, "buy", "0.01", "60000.10", stop_loss_price="59500", take_profit_price="61000",
                           trigger_type="bid_ask", client_id="br")
        ctx.submit_take_profit(INST, "buy", "0.005", "59600", trigger_type="bid_ask", client_id="st")
