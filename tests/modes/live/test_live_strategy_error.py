"""A strategy that raises in a testnet session: new submits stop, its resting orders are
cancelled at the venue, the session reconciles, the run directory is complete, and the
error reaches the caller (the CLI's one-line strategy error, exit 2)."""

from __future__ import annotations

import json

import pytest
from emu_helpers import sync_client
from live_helpers import session_config

from engine.errors import StrategyError
from modes.live import run_live
from modes.live.replay import replay_session

STRATEGY = '''
from decimal import Decimal
from engine.strategy import Strategy


class Quoter(Strategy):
    """Rests a bid far from the market, then fails on its third timer."""

    def on_start(self, ctx):
        ctx.schedule(every_ns=300_000_000)
        self.n = 0

    def on_timer(self, ctx, ts):
        self.n += 1
        book = ctx.book("binance:BTC/USDT")
        if self.n == 1:
            ctx.submit("binance:BTC/USDT", "buy", Decimal("0.01"), book.instrument.round_price(book.best_bid * Decimal("0.9")))
        if self.n == 3:
            raise RuntimeError("boom")
'''


@pytest.mark.parametrize("policy", ["cancel", "keep"])
def test_a_strategy_error_halts_cancels_and_reconciles(live_emu, alice_env, tmp_path, policy):
    (tmp_path / "quoter.py").write_text(STRATEGY)
    config = session_config(live_emu, strategy=f"{tmp_path / 'quoter.py'}:Quoter", base_dir=tmp_path)
    with pytest.raises(StrategyError, match="boom") as err:
        run_live(config, "testnet", tmp_path / "run", duration_s=10, health=False, write_html=False,
                 on_strategy_error=policy)
    assert err.value.callback == "on_timer"
    out = tmp_path / "run"
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    halt = next(r for r in audit if r.get("action") == "halt")
    assert halt["reason"].startswith("strategy error") and halt["cancel"] is (policy == "cancel")
    assert [r["at"] for r in audit if r["type"] == "reconcile"][-1] == "after-halt"
    assert all(r["ok"] for r in audit if r["type"] == "reconcile")
    summary = json.loads((out / "summary.json").read_text())["run"]
    # why it stopped, where in the user's code, and what it said
    assert summary["stopped_by"] == f"strategy error: on_timer at {err.value.location}: RuntimeError: boom"
    assert err.value.location.endswith("quoter.py:19") and err.value.run_dir == out
    prefix = next(json.loads(line) for line in (out / "session.jsonl").read_text().splitlines())["id_prefix"]
    ex = sync_client(live_emu, "alice")
    ours = [o for o in ex.fetch_open_orders("BTC/USDT") if o["clientOrderId"].startswith(prefix + "-")]
    if policy == "cancel":
        assert ours == [] and summary["open_orders"] == []
    else:  # kept at the venue, and said so
        assert len(ours) == 1 and summary["open_orders"] == [ours[0]["clientOrderId"]]
        ex.cancel_order(ours[0]["id"], "BTC/USDT")
    # the replay raises where the session raised, halts where it halted and ends as it
    # ended (sealed, no on_stop): identical
    result = replay_session(out, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
    assert result.identical_files == ["orders.parquet", "fills.parquet", "equity.parquet", "summary.json ledger"]


def test_the_cli_says_where_the_run_directory_of_a_stopped_session_is(live_emu, tmp_path, capsys):
    """`tickparity paper` with a strategy that raises in on_start: the one-line strategy
    error (exit 2) and, before it, the run directory (complete: summary.json with
    stopped_by); the paper session stops as a testnet one does, and replays identically."""
    from live_helpers import write_session_toml

    from modes.cli import main

    (tmp_path / "failing.py").write_text(
        "from engine.strategy import Strategy\n\n\nclass Failing(Strategy):\n"
        "    def on_start(self, ctx):\n        raise ValueError('no market for me')\n")
    toml = write_session_toml(tmp_path / "paper.toml", live_emu, params="", keys=False)
    toml.write_text(toml.read_text().replace(toml.read_text().splitlines()[1], 'strategy = "failing.py:Failing"'))
    out = tmp_path / "run"
    code = main(["paper", "--config", str(toml), "--out", str(out), "--duration", "5", "--no-report", "--no-health"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"run directory: {out}" in captured.out
    error = [line for line in captured.err.splitlines() if line.startswith("tickparity: error:")]
    assert len(error) == 1 and "strategy error in on_start" in error[0] and "failing.py:6" in error[0]
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["stopped_by"].startswith("strategy error: on_start at ")
    assert summary["stopped_by"].endswith("failing.py:6: ValueError: no market for me")
    result = replay_session(out, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
