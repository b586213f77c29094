"""The report's risk section: refusals by reason and kill-switch timing, from a backtest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reports import write_report
from reports.risk import risk_section

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
import risk_flow as rf  # noqa: E402


def test_the_report_shows_refusals_by_reason_and_the_kill_timing(tmp_path):
    data = rf.write_store(tmp_path / "d.duckdb", {"binance:BTC/USDT": [(0, "10000.00", "10001.00")]}, seconds=3)
    steps = [{"at_ms": 100, "do": "submit", "side": "buy", "qty": "0.1", "price": "9990", "id": "rest"},
             {"at_ms": 200, "do": "submit", "side": "buy", "qty": "2", "price": "9990", "id": "big"},
             {"at_ms": 300, "do": "submit", "side": "buy", "qty": "3", "price": "9990", "id": "bigger"},
             {"at_ms": 1000, "do": "kill", "reason": "desk says stop"},
             {"at_ms": 1500, "do": "submit", "side": "buy", "qty": "0.1", "price": "9990", "id": "late"}]
    run = rf.run(tmp_path, data, steps, {"max_order_notional": 15000})
    write_report(run)
    summary = json.loads((run / "summary.json").read_text())
    risk = summary["risk"]
    assert risk["refusals"] == {"max_order_notional": 2, "kill_switch": 1}  # 2 x 9990 = 19980 > 15000
    assert risk["refusals_total"] == 3 and risk["state"] == "halted"
    (kill,) = risk["kills"]
    assert (kill["reason"], kill["cancels"], kill["cancel_ack_ns"]) == ("desk says stop", 1, 2_000_000)
    html = (run / "report.html").read_text()
    assert 'id="risk"' in html and "max_order_notional" in html and "desk says stop" in html
    assert "2.00 ms" in html  # trigger -> last cancel acknowledged
    assert risk["rejected_orders"] == {"max_order_notional": 2, "kill_switch": 1}  # the orders card's table
    assert "rejected: reason" in html


def test_without_run_risk_the_section_counts_rejected_orders(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"status": ["rejected", "rejected", "filled", "rejected"],
                             "reason": ["price_band", "min_qty", None, "price_band"]}), tmp_path / "orders.parquet")
    section = risk_section(tmp_path, {"run": {}})
    assert section["refusals"] == {"price_band": 2}  # min_qty is a local check, not risk
    assert section["source"].startswith("orders.parquet")


def test_every_rejected_order_is_listed_by_reason_whatever_refused_it(tmp_path):
    """A request_budget or balance refusal is not risk's: the risk table leaves it out, and
    the report used to show such orders only as a 'rejected' count. `rejected_orders`
    counts every rejected order by reason (most first, then by name), with its meaning."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"status": ["rejected", "rejected", "filled", "rejected", "rejected", "cancelled"],
                             "reason": ["request_budget", "price_band", None, "request_budget",
                                        "insufficient_balance", "user_cancel"]}), tmp_path / "orders.parquet")
    section = risk_section(tmp_path, {"run": {"risk": {"refusals": {"price_band": 1}}}})
    assert section["refusals"] == {"price_band": 1}
    assert list(section["rejected_orders"].items()) == [
        ("request_budget", 2), ("insufficient_balance", 1), ("price_band", 1)]
    assert section["meanings"]["request_budget"].startswith("the venue's request budget")
