"""A normal stop is not a kill: after a session ends by --duration (its shutdown cancelling
resting orders), summary.json `run.risk` keeps the state trading left (`active`, no
transition, no kill), as the backtest of the same strategy says; an order the strategy
or amend it tries while the session stops is refused `fail_closed` (the session's gate),
and the replay is identical."""

from __future__ import annotations

import json

import pytest
from live_helpers import session_config

from modes.live import run_live
from modes.live.replay import replay_session

STRATEGY = '''
from decimal import Decimal
from engine.strategy import Strategy


class Requoter(Strategy):
    """Rests a bid far below the market; when it is cancelled, tries another one."""

    def __init__(self, log=""):
        self.log = log

    def on_start(self, ctx):
        ctx.schedule(every_ns=300_000_000)

    def note(self, text):
        if self.log:
            with open(self.log, "a") as log:
                log.write(text + "\\n")

    def on_timer(self, ctx, ts):
        book = ctx.book("binance:BTC/USDT")
        if book.best_bid is not None and not getattr(self, "sent", False):
            self.sent = True
            self.bid = book.instrument.round_price(book.best_bid * Decimal("0.9"))
            self.first = ctx.submit("binance:BTC/USDT", "buy", Decimal("0.01"), self.bid)
            self.second = ctx.submit("binance:BTC/USDT", "buy", Decimal("0.01"), self.bid)

    def on_order(self, ctx, update):
        if update.event == "cancelled" and update.client_id == self.first:
            ctx.submit("binance:BTC/USDT", "buy", Decimal("0.01"), self.bid)
            # the second bid, if its cancel has not ended it yet: no amend either
            if ctx.amend(self.second, price=self.bid - 1) is False and ctx.order(self.second).status == "open":
                self.note("amend refused")
        if update.event == "amend_rejected":
            self.note(update.reason)
'''


@pytest.mark.parametrize("mode", ["paper", "testnet"])
def test_a_normal_stop_leaves_the_risk_state_as_trading_left_it(live_emu, alice_env, tmp_path, mode):
    (tmp_path / "requoter.py").write_text(STRATEGY)
    config = session_config(live_emu, strategy=f"{tmp_path / 'requoter.py'}:Requoter", base_dir=tmp_path,
                            params={"log": str(tmp_path / "amends.log")})
    out = run_live(config, mode, tmp_path / "run", duration_s=3, health=False, write_html=False)
    summary = json.loads((out / "summary.json").read_text())["run"]
    risk = summary["risk"]
    assert (risk["state"], risk["state_reason"], risk["kills"], risk["transitions"]) == ("active", None, [], [])
    assert summary["open_orders"] == [] and summary["orders"] == 3
    # the second bid, tried while the shutdown cancelled the first, was refused by the gate
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in audit if r["type"] == "reject"] == ["fail_closed"]
    assert not any("kill_switch" in json.dumps(r) for r in audit)
    # the amend of the second bid while its cancel was on its way: refused by the gate too
    # (once in the session, once in its replay below, which runs the strategy again)
    assert (tmp_path / "amends.log").read_text().splitlines() == ["fail_closed"]
    result = replay_session(out, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
    assert (tmp_path / "amends.log").read_text().splitlines() == ["fail_closed", "fail_closed"]
    # the backtest of the same strategy says the same
    from engine.config import resolve
    from modes.backtest import run_backtest

    bt = run_backtest(resolve({"run": {"strategy": f"{tmp_path / 'requoter.py'}:Requoter", "data": "synthetic:3:10s",
                                       "instruments": ["binance:BTC/USDT"]}}, {}, base_dir=str(tmp_path)),
                      tmp_path / "bt", write_html=False)
    bt_risk = json.loads((bt / "summary.json").read_text())["run"]["risk"]
    assert (bt_risk["state"], bt_risk["state_reason"], bt_risk["transitions"]) == ("active", None, [])
