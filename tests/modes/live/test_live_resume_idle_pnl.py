"""A resumed session that trades nothing reports a net PnL of 0 (docs/report.md "PnL").

Session 1 (testnet against the emulator, a market that never moves: bid 60000.00 / ask
60000.10) buys 0.01 BTC at 60000.10 with a bracket's entry and stops cleanly: its stop-loss
stays armed in contingent.json with the position (0.01 BTC, cost 600.001 USDT). Session 2
resumes it and trades nothing. Its ledger restores the position at the old cost basis, so
its unrealized PnL at the mid (60000.05) is -0.0005 USDT from the first step on: a loss
session 1 already reported, which the headline used to count again as session 2's net PnL.
The net PnL counts from the session's start: realized + unrealized - fees, less the
unrealized PnL of the positions it started with (0 unless it resumed one)."""

from __future__ import annotations

import json
from decimal import Decimal

from emu_helpers import make_emulator, still_market
from live_helpers import ROOT, session_config

from modes.live import run_live
from reports.metrics import compute
from reports.rundir import load_run

STRATEGY = str(ROOT / "tests" / "modes" / "live" / "contingent_strategies.py") + ":ArmOnce"


def test_an_idle_resumed_session_has_zero_net_pnl(tmp_path, alice_env):
    source = still_market(600, bid=6_000_000, ask=6_000_010)
    with make_emulator(tmp_path / "emu", stepped=False, source=source, ids=("binance:BTC/USDT",)) as emu:
        config = session_config(emu, strategy=STRATEGY, venue={"maker_fee_bps": 0, "taker_fee_bps": 0})
        run1 = run_live(config, "testnet", tmp_path / "run1", duration_s=4, health=False, write_html=False)
        saved = json.loads((run1 / "contingent.json").read_text())
        assert saved["positions"] == {"binance:BTC/USDT": [1000, 6_000_010_000]}  # 1000 lots x 6000010 ticks
        run2 = run_live(config, "testnet", tmp_path / "run2", duration_s=3, health=False, write_html=False,
                        resume=run1)
    audit = [json.loads(x) for x in (run2 / "audit.jsonl").read_text().splitlines() if x.endswith("}")]
    (restored,) = [r for r in audit if r.get("action") == "contingent_restored"]
    assert restored["positions"] == {"binance:BTC/USDT": "0.01"}
    assert not [r for r in audit if r.get("type") == "fill"]
    pnl = compute(load_run(run2)).sections["pnl"]
    # by hand: the restored 0.01 BTC at its old cost 600.001 is worth 600.0005 at the mid all
    # along: unrealized -0.0005 at the start and at the end, so the session made nothing
    assert Decimal(pnl["unrealized"]) == Decimal("-0.0005")
    assert Decimal(pnl["opening_unrealized"]) == Decimal("-0.0005")
    assert Decimal(pnl["net"]) == 0
    assert Decimal(pnl["inventory_revaluation"]) == 0
    assert compute(load_run(run2)).sections["headline"]["net_pnl"] in ("0", "0.0000")
