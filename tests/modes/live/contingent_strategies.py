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


class EveryCase(Strategy):
    """Every contingent order type at once on a flat book (bid 60000.00 / ask 60000.10) that
    trade prints then move (tests/modes/live/test_live_contingent_parity.py computes each
    case's orders by hand). Last-trade triggers; ids name the case."""

    def on_start(self, ctx) -> None:
        from engine.contingent import OrderSpec

        ctx.submit_stop(INST, "sell", "0.001", "59500", client_id="sm")
        ctx.submit_stop(INST, "buy", "0.001", "60400", "60600", client_id="sl")
        ctx.submit_trailing_stop(INST, "sell", "0.001", trailing_amount="300", client_id="tr")
        ctx.submit_oco(OrderSpec(INST, "sell", "0.001", type="take_profit", trigger_price="60800"),
                       OrderSpec(INST, "sell", "0.001", type="stop_market", trigger_price="59000"), client_id="oco")
        ctx.submit_oto(OrderSpec(INST, "buy", "0.001", "60000.10"),
                       [OrderSpec(INST, "sell", "0.001", "59400", type="stop_limit", trigger_price="59450")],
                       client_id="oto")
        ctx.submit_bracket(INST, "buy", "0.002", "60000.10", stop_loss_price="59700", take_profit_price="61500",
                           client_id="br")
        ctx.submit_iceberg(INST, "buy", "0.003", "60010", "0.001", client_id="ice")
