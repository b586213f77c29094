"""summary.json `errors` reads as text for the user: an ambiguous order command (the venue
executed the submit, the reply was lost) is said as what happened and what the session
does about it, not as an internal class name (`_Ambiguous: exception=...`)."""

from __future__ import annotations

import json

from emu_helpers import control
from live_helpers import session_config

from modes.live import run_live
from venues.ccxt.venue import ambiguous_text

STRATEGY = '''
from decimal import Decimal
from engine.strategy import Strategy


class Resting(Strategy):
    def on_start(self, ctx):
        ctx.schedule(every_ns=300_000_000)

    def on_timer(self, ctx, ts):
        book = ctx.book("binance:BTC/USDT")
        if book.best_bid is not None and not getattr(self, "sent", False):
            self.sent = True
            ctx.submit("binance:BTC/USDT", "buy", Decimal("0.01"), book.instrument.round_price(book.best_bid * Decimal("0.9")))
'''


def test_an_ambiguous_submit_is_one_readable_line(live_emu, alice_env, tmp_path):
    (tmp_path / "resting.py").write_text(STRATEGY)
    config = session_config(live_emu, strategy=f"{tmp_path / 'resting.py'}:Resting", base_dir=tmp_path)
    control(live_emu, "faults", {"kind": "response_lost", "endpoint": "POST /api/v3/order", "count": 1})
    try:
        out = run_live(config, "testnet", tmp_path / "run", duration_s=4, health=False, write_html=False)
    finally:
        control(live_emu, "faults", {"clear": True})
    summary = json.loads((out / "summary.json").read_text())["run"]
    (cid,) = [json.loads(line)["client_id"] for line in (out / "audit.jsonl").read_text().splitlines()
              if '"action":"submit"' in line and '"instrument"' in line]
    assert f"submit {cid}: ambiguous (ccxt ExchangeNotAvailable): outcome unknown, the order is looked up " \
           "by client id" in summary["errors"], summary["errors"]
    assert not any("_Ambiguous" in line or "exception=" in line for line in summary["errors"])
    # the lookup found the order the venue executed; the shutdown cancelled it
    assert summary["orders"] == 1 and summary["open_orders"] == []


def test_every_kind_of_evidence_is_said_in_words():
    assert ambiguous_text({"exception": "OperationFailed", "http_status": 500, "code": -1001,
                           "msg": "Internal error; unable to process your request."}) == (
        'ambiguous (ccxt OperationFailed, HTTP 500, venue code -1001, "Internal error; unable to process your '
        'request."): outcome unknown, the order is looked up by client id')
    assert ambiguous_text({"reply": "no order in the body"}).startswith("ambiguous (reply: no order in the body)")
    resent = ambiguous_text({"exception": "OrderNotFound", "code": -2011, "earlier": {"exception": "RequestTimeout"}})
    assert resent.startswith("ambiguous (ccxt OrderNotFound, venue code -2011, after an earlier attempt of unknown "
                             "outcome (ccxt RequestTimeout))")
    assert ambiguous_text({"exception": "ExchangeError", "transport": "ClientPayloadError"}).startswith(
        "ambiguous (ccxt ExchangeError, transport: ClientPayloadError)")
