"""The bracket example on synthetic data (the run directory's contingent table), and the
contingent state surviving a restart (state -> JSON -> a new session)."""

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
from contingent_harness import ID, MS, T0, Script, book, run, trade

from engine.config import load_config_file, resolve
from modes.backtest import run_backtest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_bracket_example_writes_the_contingent_table(tmp_path):
    config = resolve(load_config_file(EXAMPLES / "bracket_trader.toml"),
                     {"data": "synthetic:5:3m", "params": {"every_s": 2, "stop_bps": "3", "take_bps": "3"}},
                     base_dir=str(EXAMPLES), config_file="bracket_trader.toml")
    out = run_backtest(config, tmp_path / "b", write_html=False)
    rows = pq.read_table(out / "contingent.parquet").to_pylist()
    brackets = {r["group_id"] for r in rows}
    assert len(brackets) >= 5 and {r["contingency"] for r in rows} == {"bracket"}
    stops = [r for r in rows if r["role"] == "stop_loss"]
    assert all(r["type"] == "stop_market" and r["trigger_type"] == "last" for r in stops)
    # every bracket that filled an entry closed through one of its exits, or is still protected
    fired = [r for r in stops if r["triggered_ts"] is not None]
    assert fired and all(r["orders"] for r in fired)
    notes = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    (stats,) = [n for n in notes if n["type"] == "note" and n["message"] == "bracket_stats"]
    assert int(stats["stops"]) == len(fired)
    orders = {r["client_id"]: r for r in pq.read_table(out / "orders.parquet").to_pylist()}
    for r in fired:  # the released market order of each fired stop is in the orders table
        assert orders[r["orders"].split(",")[0]]["type"] == "market"


def test_state_survives_a_restart(tmp_path):
    def start(ctx):
        ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99.00", take_profit_price="101.00",
                           client_id="b")
        ctx.submit_trailing_stop(ID, "sell", "0.2", trailing_bps="50", client_id="t")
        ctx.submit_iceberg(ID, "sell", "0.6", "102.00", "0.2", client_id="i")

    rows = book(T0, [("100.00", "1")], [("100.10", "1")]) + [trade(T0 + 1 * MS, "sell", "99.90", "0.4"),
                                                            trade(T0 + 2 * MS, "buy", "100.60", "0.1")]
    session = run(tmp_path / "a", rows, Script(start=start))
    saved = json.loads(json.dumps(session.contingent.state()))
    fresh = run(tmp_path / "b", book(T0, [("100.00", "1")], [("100.10", "1")]), Script())
    fresh.contingent.restore(saved)
    assert fresh.contingent.state() == saved
    assert (fresh.contingent.watch == session.contingent.watch).all()
    assert fresh.ctx.contingent("b")["position"] == "0.400"
    assert fresh.ctx.contingent("t")["trigger_price"] == session.ctx.contingent("t")["trigger_price"]
    # the trailing stop watched 100.60 as its high: 50 bps below, rounded away = 100.09
    assert Decimal(fresh.ctx.contingent("t")["trigger_price"]) == Decimal("100.09")
