"""A strategy that raises at the session's end (in on_stop, or in on_order while the
shutdown cancels its orders): the end still completes in every mode (orders cancelled,
run directory written and published, audit log closed, `stopped_by` naming the callback
and the user's file:line), the one-line strategy error follows (exit 2), and the replay
of such a session is identical (the exception is part of what was recorded)."""

from __future__ import annotations

import json

import pytest
from emu_helpers import sync_client
from live_helpers import session_config, write_session_toml

from engine.audit import verify
from engine.errors import StrategyError
from modes.live import run_live
from modes.live.replay import replay_session

STRATEGIES = '''
from decimal import Decimal
from engine.strategy import Strategy


class Resting(Strategy):
    """Rests one bid far below the market on its first timer."""

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        ctx.schedule(every_ns=300_000_000)

    def on_timer(self, ctx, ts):
        book = ctx.book(self.inst)
        if book.best_bid is not None and not getattr(self, "sent", False):
            self.sent = True
            ctx.submit(self.inst, "buy", Decimal("0.01"), book.instrument.round_price(book.best_bid * Decimal("0.9")))


class StopBoom(Resting):
    def on_stop(self, ctx):
        1 / 0


class CancelBoom(Resting):
    def on_order(self, ctx, update):
        if update.event == "cancelled":
            raise RuntimeError("cannot take a cancel")
'''

#: the line of each failing callback in STRATEGIES
LINES = {"StopBoom": ("on_stop", 22, "ZeroDivisionError: division by zero"),
         "CancelBoom": ("on_order", 28, "RuntimeError: cannot take a cancel")}


def _complete(out, error: StrategyError, name: str) -> dict:
    """The run directory a normal end writes, with the error said in summary.json."""
    callback, line, text = LINES[name]
    assert error.callback == callback and error.location.endswith(f"ends.py:{line}")
    assert error.run_dir == out
    for table in ("orders.parquet", "fills.parquet", "equity.parquet", "summary.json", "audit.jsonl"):
        assert (out / table).is_file(), table
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["stopped_by"] == f"strategy error: {callback} at {error.location}: {text}"
    verify(out / "audit.jsonl", summary["audit"])  # closed by its end record, as summary.json says
    return summary


@pytest.mark.parametrize("name", ["StopBoom", "CancelBoom"])
@pytest.mark.parametrize("mode", ["paper", "testnet"])
def test_an_error_at_the_end_still_completes_the_session(live_emu, alice_env, tmp_path, mode, name):
    (tmp_path / "ends.py").write_text(STRATEGIES)
    config = session_config(live_emu, strategy=f"{tmp_path / 'ends.py'}:{name}", base_dir=tmp_path)
    out = tmp_path / "run"
    with pytest.raises(StrategyError) as err:
        run_live(config, mode, out, duration_s=3, health=False, write_html=False)
    summary = _complete(out, err.value, name)
    journal = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert "stop" in journal[-1] and "halted" not in journal[-1]  # a normal end, not a halt
    assert summary["open_orders"] == [] and summary["orders"] == 1
    if mode == "testnet":  # the bid was cancelled at the venue
        prefix = journal[0]["id_prefix"]
        ex = sync_client(live_emu, "alice")
        assert [o for o in ex.fetch_open_orders("BTC/USDT") if o["clientOrderId"].startswith(prefix + "-")] == []
    result = replay_session(out, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
    assert not result.crashed
    assert result.identical_files == ["orders.parquet", "fills.parquet", "equity.parquet", "summary.json ledger"]


def test_the_cli_prints_the_run_directory_and_the_error(live_emu, tmp_path, capsys, monkeypatch):
    """`tickparity testnet` with on_stop raising: the run directory line, then the one-line
    strategy error, exit 2; `tickparity audit verify` and `tickparity replay` accept it."""
    from modes.cli import main

    monkeypatch.setenv("TP_TEST_KEY", "alice-key")
    monkeypatch.setenv("TP_TEST_SECRET", "alice-secret")
    (tmp_path / "ends.py").write_text(STRATEGIES)
    toml = write_session_toml(tmp_path / "run.toml", live_emu, params="")
    toml.write_text(toml.read_text().replace(toml.read_text().splitlines()[1], 'strategy = "ends.py:StopBoom"'))
    out = tmp_path / "run"
    code = main(["testnet", "--config", str(toml), "--out", str(out), "--duration", "3", "--no-report",
                 "--no-health"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"run directory: {out} (stopped by the strategy error below)" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("tickparity: error:")]
    assert len(errors) == 1 and errors[0].startswith("tickparity: error: strategy error in on_stop (")
    assert errors[0].endswith("ends.py:22): ZeroDivisionError: division by zero")
    assert main(["audit", "verify", str(out / "audit.jsonl")]) == 0
    assert main(["replay", str(out)]) == 0
    assert "identical (" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["StopBoom", "CancelBoom"])
def test_a_backtest_whose_strategy_raises_at_the_end_keeps_its_run_directory(tmp_path, name, capsys):
    """The backtest: on_stop raising (on_order has nothing to cancel at a backtest's end, so
    CancelBoom ends cleanly) still publishes the run directory; the CLI says where it is."""
    from engine.config import resolve
    from modes.backtest import run_backtest
    from modes.cli import main

    (tmp_path / "ends.py").write_text(STRATEGIES)
    config = resolve({"run": {"strategy": f"{tmp_path / 'ends.py'}:{name}", "data": "synthetic:3:20s",
                              "instruments": ["binance:BTC/USDT"]}}, {}, base_dir=str(tmp_path))
    out = tmp_path / "bt"
    if name == "CancelBoom":
        assert run_backtest(config, out, write_html=False) == out
        assert "stopped_by" not in json.loads((out / "summary.json").read_text())["run"]
        return
    with pytest.raises(StrategyError) as err:
        run_backtest(config, out, write_html=False)
    _complete(out, err.value, name)
    code = main(["backtest", "--strategy", f"{tmp_path / 'ends.py'}:{name}", "--data", "synthetic:3:20s",
                 "--out", str(tmp_path / "bt-cli"), "--no-report"])
    captured = capsys.readouterr()
    assert code == 2 and f"run directory: {tmp_path / 'bt-cli'} (stopped by the strategy error below)" in captured.out
    assert "tickparity: error: strategy error in on_stop (" in captured.err
    assert (tmp_path / "bt-cli" / "summary.json").is_file()
