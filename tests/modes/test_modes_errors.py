"""Issue 9 through the CLI: errors point at the user's code, bugs stay internal, audit logs
that were cut short or extended are refused, and the orders table says null for "none"."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.errors import InternalError
from engine.types.orders import REASONS
from modes import cli
from modes.cli import main

FAULTY = """\
from engine import Strategy


class Faulty(Strategy):
    def on_start(self, ctx):
        ctx.subscribe(ctx.instruments[0])
        self.ticks = 0

    def on_book(self, ctx, book):
        self.ticks += 1
        if self.ticks == 3:
            return book.mid / (self.ticks - 3)  # line 12
"""


def _run(capsys, argv):
    """(exit code, stderr without the run's warning lines, e.g. the venue defaults it uses)."""
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines(keepends=True)
    return code, "".join(line for line in lines if not line.startswith("tickparity: warning:"))


def test_a_strategy_exception_is_one_line_naming_callback_and_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_mm.py").write_text(FAULTY)
    argv = ["backtest", "--strategy", "my_mm.py:Faulty", "--data", "synthetic:1:10s", "--out", "runs/x",
            "--no-report"]
    code, err = _run(capsys, argv)
    assert code == 2
    # Decimal / 0 raises decimal.DivisionByZero (a ZeroDivisionError)
    assert err == ("tickparity: error: strategy error in on_book (my_mm.py:12): DivisionByZero: "
                   "[<class 'decimal.DivisionByZero'>]\n")
    assert not (tmp_path / "runs" / "x").exists()  # nothing half-written

    code, err = _run(capsys, ["--debug", *argv])
    assert code == 2
    assert "Traceback" in err and 'my_mm.py", line 12, in on_book' in err
    assert err.rstrip().splitlines()[-1].startswith("tickparity: error: strategy error in on_book (my_mm.py:12)")
    assert "rerun with --debug" not in err


def test_an_async_callback_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_mm.py").write_text("from engine import Strategy\n\n\nclass A(Strategy):\n"
                                       "    async def on_start(self, ctx):\n        pass\n")
    code, err = _run(capsys, ["backtest", "--strategy", "my_mm.py:A", "--data", "synthetic:1:10s",
                              "--out", "runs/x", "--no-report"])
    assert code == 2
    assert err == ("tickparity: error: my_mm.py:A.on_start (my_mm.py:5) is an async def: callbacks are plain "
                   "synchronous functions (the engine never awaits or iterates them); remove async/yield\n")


def test_our_bugs_are_internal_errors_with_the_hint_only_without_debug(tmp_path, capsys, monkeypatch):
    def broken(args):
        raise InternalError("illegal order transition FILLED -> CANCELLED")

    monkeypatch.setattr(cli, "_cmd_audit_verify", broken)
    code, err = _run(capsys, ["audit", "verify", "x"])
    assert code == 1
    assert err == ("tickparity: internal error: InternalError: illegal order transition FILLED -> CANCELLED "
                   "(rerun with --debug for the traceback)\n")
    code, err = _run(capsys, ["--debug", "audit", "verify", "x"])
    assert code == 1 and "Traceback" in err and "rerun with --debug" not in err


@pytest.fixture(scope="module")
def random_run(tmp_path_factory, request):
    root = request.config.rootpath
    out = tmp_path_factory.mktemp("flow") / "run"
    code = main(["backtest", "--strategy", str(root / "tests/engine/random_flow.py:RandomFlow"),
                 "--data", "synthetic:3:1m", "--out", str(out), "--no-report"])
    assert code == 0
    return out


def test_audit_verify_refuses_a_log_cut_short_or_extended(random_run, tmp_path, capsys):
    log = random_run / "audit.jsonl"
    lines = log.read_text().splitlines()
    stated = json.loads((random_run / "summary.json").read_text())["run"]["audit"]
    assert stated == {"records": len(lines), "final_hash": json.loads(lines[-1])["hash"]}
    assert len(lines) > 100
    code = main(["audit", "verify", str(log)])
    out = capsys.readouterr().out
    assert code == 0 and f"OK, {len(lines)} records" in out and "matches summary.json" in out

    cut = tmp_path / "cut"
    shutil.copytree(random_run, cut)
    (cut / "audit.jsonl").write_text("\n".join(lines[:100]) + "\n")
    code, err = _run(capsys, ["audit", "verify", str(cut / "audit.jsonl")])
    assert code == 2
    assert (f"cut short: 100 records but the run wrote {len(lines)}; the first missing record is seq 100 "
            "(line 101)") in err

    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "audit.jsonl").write_text("\n".join(lines[:100]) + "\n")
    code, err = _run(capsys, ["audit", "verify", str(alone / "audit.jsonl")])
    assert code == 2 and "no closing record after 100 records" in err and "was killed" in err

    (alone / "audit.jsonl").write_text("\n".join(lines + lines[-1:]) + "\n")
    code, err = _run(capsys, ["audit", "verify", str(alone / "audit.jsonl")])
    assert code == 2 and f":{len(lines) + 1}: extended: a record after the closing record" in err


def test_orders_table_says_null_for_no_reason_and_market_orders_are_ioc(random_run):
    orders = pq.read_table(random_run / "orders.parquet").to_pylist()
    assert "" not in {o["reason"] for o in orders} and "" not in {o["tif"] for o in orders}
    assert {o["reason"] for o in orders if o["status"] == "filled"} == {None}
    market = [o for o in orders if o["type"] == "market"]
    assert market and {o["tif"] for o in market} == {"IOC"}
    assert {o["reason"] for o in orders} - {None} <= set(REASONS)
    assert any(o["reason"] == "ioc_remainder" for o in orders)
    audit = [json.loads(line) for line in (random_run / "audit.jsonl").read_text().splitlines()]
    assert "" not in {r.get("reason") for r in audit}




def test_a_helper_module_beside_the_strategy_imports_and_its_line_is_named(tmp_path, capsys, monkeypatch):
    """A strategy's own helper module imports without PYTHONPATH, and an exception raised in
    it names the helper's line (the user's code), not only the strategy's call."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "strat"
    folder.mkdir()
    (folder / "helper_mod.py").write_text("def size(x):\n    return x / 0\n")
    (folder / "my_mm.py").write_text("from engine import Strategy\nfrom helper_mod import size\n\n\n"
                                     "class H(Strategy):\n    def on_start(self, ctx):\n        size(1)\n")
    code, err = _run(capsys, ["backtest", "--strategy", "strat/my_mm.py:H", "--data", "synthetic:1:5s",
                              "--out", "runs/h", "--no-report"])
    assert code == 2
    assert err == ("tickparity: error: strategy error in on_start (strat/helper_mod.py:2): "
                   "ZeroDivisionError: division by zero\n")


@pytest.mark.parametrize("table, line, message", [
    ("venues.binance", 'queue_model = "foo"', "[venues.binance] queue_model = 'foo': expected"),
    ("venues.binance", 'maker_fee_bps = "abc"', "[venues.binance] maker_fee_bps = 'abc': expected a number"),
    ("venues.binance", "latency = { entry_ns = -5 }", "[venues.binance] latency.entry_ns = -5: expected"),
    ("risk", "max_position = -1", "[risk] max_position = -1: expected a positive number"),
])
def test_a_bad_venue_or_risk_value_names_the_file_table_and_key(tmp_path, capsys, table, line, message):
    strategy = Path(cli.__file__).parents[1] / "examples" / "market_maker.py"
    config = tmp_path / "run.toml"
    config.write_text(f'[run]\nstrategy = "{strategy}:MarketMaker"\ndata = "synthetic:1:10s"\n'
                      f'instruments = ["binance:BTC/USDT"]\n[{table}]\n{line}\n')
    code, err = _run(capsys, ["backtest", "--config", str(config), "--dry-run"])
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tickparity: error: {config}: {message}"), err


@pytest.mark.parametrize("argv, message", [
    (["backtest", "--config", "x.toml", "--seed", "abc"],
     "tickparity backtest: error: argument --seed: 'abc': expected a whole number (see tickparity backtest --help)"),
    (["bogus"], "tickparity: error: argument COMMAND: invalid choice: 'bogus'"),
])
def test_a_usage_error_is_one_line_pointing_at_help(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_the_refusals_line_counts_orders_by_reason_most_first():
    from modes.console import refusals_text

    assert refusals_text({}) is None
    assert refusals_text({"max_position": 2, "post_only_would_cross": 5, "kill_switch": 2}) == (
        "orders refused: 9 (post_only_would_cross 5, kill_switch 2, max_position 2) - reasons in orders.parquet "
        "and docs/errors.md")
    assert refusals_text({"max_position": 1}) == (
        "orders refused: 1 (max_position 1: |position + signed qty| would exceed [risk] max_position) - reasons "
        "in orders.parquet and docs/errors.md")
