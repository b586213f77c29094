"""Report sections for execution algorithms (schedule vs executed) and routing per venue."""

import json
from decimal import Decimal

from engine.config import resolve
from modes.backtest import run_backtest
from reports import write_report
from reports.execution import routing_quality, schedule_vs_executed

T0 = 1_704_067_200_000_000_000
S = 1_000_000_000


def test_twap_schedule_vs_executed_by_hand(tmp_path):
    """TWAP 0.5 BTC in 4 slices over 60 s, aggressive: targets 0.125/0.25/0.375/0.5 at
    T0 + 0/15/30/45 s; each IOC slice fills within a few ms, so the executed quantity before
    the next checkpoint equals the target and nothing is behind."""
    config = resolve({"run": {"strategy": "examples/algo_execution.py:AlgoExecution", "data": "synthetic:3:90s",
                              "params": {"algo": "twap", "quantity": "0.5",
                                         "options": {"horizon_s": 60, "slices": 4}}},
                      "venues": {"binance": {"balances": {"USDT": "1000000", "BTC": "0"}}}}, {})
    out = run_backtest(config, tmp_path / "twap", write_html=False)
    section = schedule_vs_executed(out)
    assert section["count"] == 1
    (parent,) = section["parents"]
    assert parent["algo"] == "twap" and parent["plans"] == 1
    rows = parent["checkpoints"]
    assert [r["ts"] for r in rows] == [T0, T0 + 15 * S, T0 + 30 * S, T0 + 45 * S, T0 + 60 * S]
    assert [r["target"] for r in rows] == ["0.125", "0.25", "0.375", "0.5", "0.5"]
    assert [r["executed"] for r in rows] == ["0.125", "0.25", "0.375", "0.5", "0.5"]
    assert parent["max_behind"] == "0"
    html = write_report(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithms"]["parents"][0]["parent_id"] == "exec-1"
    text = html.read_text()
    assert 'id="algorithms"' in text and "schedule (target)" in text


def test_routing_quality_per_venue(tmp_path):
    """A routed TWAP over binance and okx: shares routed add up to 1, each venue's sent equals
    the sum of its audited splits, fill ratio = filled / sent."""
    config = resolve({"run": {
        "strategy": "tests/engine/routing_flow.py:RoutedTWAP", "data": "synthetic:4:90s",
        "instruments": ["binance:BTC/USDT", "okx:BTC/USDT"], "params": {"side": "buy", "quantity": "1"}},
        "venues": {"binance": {"taker_fee_bps": 10.0, "balances": {"USDT": "1000000"}},
                   "okx": {"taker_fee_bps": 5.0, "balances": {"USDT": "1000000"}}}}, {})
    out = run_backtest(config, tmp_path / "routed", write_html=False)
    records = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    routes = [r for r in records if r.get("action") == "route"]
    section = routing_quality(out)
    assert section["decisions"] == len(routes)
    venues = section["venues"]
    assert set(venues) == {"binance", "okx"}
    for name, v in venues.items():
        sent = sum(Decimal(s["qty"]) for r in routes for s in r["splits"] if s["venue"] == name)
        assert Decimal(v["sent"]) == sent
        assert v["fill_ratio"] == (float(Decimal(v["filled"]) / sent) if sent else None)
    assert abs(sum(v["share_routed"] for v in venues.values()) - 1) < 1e-12
    assert any(Decimal(v["sent"]) > 0 for v in venues.values())
    assert abs(sum(v["share_available"] for v in venues.values()) - 1) < 1e-12
    write_report(out)
    assert 'id="routing"' in (out / "report.html").read_text()
