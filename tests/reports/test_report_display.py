"""How figures are shown (docs/report.md, "How figures are shown"): zero without colour,
parts that add up as shown, labels that say what a figure is, plots without fake values,
and where `report compare` writes. Expected values are worked out by hand."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from modes.cli import main as tickparity_main
from reports import compare_runs, write_report
from reports import format as fmt
from reports.metrics import compute
from reports.plots import latency_figure
from reports.report import decomposition_rows, make_plots, pnl_texts, shortfall_rows, tiles
from reports.rundir import load_run


def _shown(text: str) -> Decimal:
    value = fmt.shown_value(text)
    assert value is not None, text
    return value


# --------------------------------------------------------------------------- zero and dust


@pytest.mark.parametrize(("value", "digits", "text"), [
    (1.4e-12, 4, "0"), (-1.4e-12, 4, "0"), (-0.004, 2, "0"), (0.0, 2, "0"), (-0.0, 2, "0"),
    (0.005, 2, "0"), (0.0051, 2, "0.01"), (-3076.9, 1, "-3,076.9"), (Decimal("-0.00004"), 4, "0"),
])
def test_values_that_round_to_zero_show_as_0(value, digits, text) -> None:
    assert fmt.num(value, digits) == text
    if text == "0":
        assert fmt.tone(value, digits=digits) == ""
        assert fmt.tone(value, cost=False, digits=digits) == ""


def test_bps_dust_is_0_and_neutral() -> None:
    assert fmt.bps(1.4e-12) == "0" and fmt.tone(1.4e-12) == ""
    assert fmt.bps(-0.00004) == "0" and fmt.tone(-0.00004) == ""
    assert fmt.bps(0.00006) == "0.0001" and fmt.tone(0.00006) == "bad"
    assert fmt.bps(-0.99999999999) == "-1.00"  # digits follow the value as shown
    assert fmt.money("-0.001") == "0" and fmt.pct(1e-9) == "0 %" and fmt.signed(-1e-9) == "0"


ZERO_COLOURED = re.compile(r'class="[^"]*\b(?:good|bad)\b[^"]*">\s*(?:<span class="n">)?[+-]?0(?:\.0+)?(?:\s|&nbsp;| )*(?:bps|%)?\s*<')


def test_no_coloured_zero_anywhere_in_a_report_with_float_dust(runkit, tmp_path: Path) -> None:
    """Order fees 0.1 + 0.2 - 0.3 sum to 5.55e-17 in floats: the IS fee component is float dust."""
    k = runkit
    tables = k.hand_run_tables()
    tables["orders"][0]["fees"] = "0.1"
    tables["orders"][1]["fees"] = "0.2"
    tables["orders"][2]["fees"] = "-0.3"
    run = k.write_run(tmp_path / "run", **tables)
    m = compute(load_run(run))
    assert m.sections["execution"]["implementation_shortfall"]["fees"] == pytest.approx(0, abs=1e-15)
    assert m.sections["execution"]["implementation_shortfall"]["fees"] != 0  # really dust
    cols, rows = shortfall_rows(m.sections)
    fees = next(r for r in rows if r["name"] == "fees")["cells"][0]
    assert (fees["money"], fees["tone"]) == ("0", "")
    html = write_report(run).read_text()
    assert not ZERO_COLOURED.search(html), ZERO_COLOURED.search(html).group(0)
    assert "-0.0" not in (run / "summary.json").read_text()


# --------------------------------------------------------------------------- parts add up


def test_net_pnl_parts_add_up_at_the_precision_shown() -> None:
    """The demo run's figures: at 2 decimals -53.78 - 0.05 + 82.29 = 28.46, not 28.47; at
    3: 28.465 vs 28.466; 4: 28.4660 vs 28.4659; 5: 28.46593 vs 28.46594; at 6 decimals
    -53.778949 - 0.047538 + 82.292424 = 28.465937 = the net shown."""
    p = {"net": "28.465937220565", "realized": "-53.7789488", "unrealized": "-0.0475381",
         "fees_net": "-82.292424120565", "fees_paid": "0", "rebates": "82.292424120565",
         "equity_start": "100000", "equity_end": "100028.465937220565"}
    t = pnl_texts(p)
    assert t["digits"] == 6
    assert (t["net"], t["realized"], t["unrealized"], t["fee_effect"]) == ("28.465937", "-53.778949", "-0.047538", "82.292424")
    assert _shown(t["realized"]) + _shown(t["unrealized"]) + _shown(t["fee_effect"]) == _shown(t["net"])
    assert _shown(t["fees_paid"]) - _shown(t["rebates"]) == _shown(t["fees_net"])
    assert _shown(t["equity_end"]) - _shown(t["equity_start"]) == _shown(t["net"])
    assert not t["has_revaluation"]
    tile = tiles({"pnl": {**p, "currency": "USDT", "max_drawdown": 1.0, "max_drawdown_pct": 0.001, "sharpe": None,
                          "sortino": None, "ratios_reason": "x", "sampling_interval_ns": 60 * 10**9, "periods": 59,
                          "turnover_ratio": 16.4}, **_minimal_sections()})[0]
    assert tile["label"] == "Net PnL USDT" and tile["parts"] == ["28.465937"]
    assert tile["hint"] == "realized -53.778949 · unrealized -0.047538 · rebates − fees 82.292424"


def test_the_equity_change_beyond_the_trading_is_the_starting_inventorys_revaluation() -> None:
    # equity moved by 10.00 but realized + unrealized - fees make 9.50: net PnL 9.50, and the
    # 0.50 is the revaluation of what the account held at the start, shown apart
    p = {"net": "9.5", "realized": "8", "unrealized": "2", "fees_net": "0.5", "fees_paid": "0.5", "rebates": "0",
         "equity_start": "1000", "equity_end": "1010", "equity_change": "10", "inventory_revaluation": "0.5"}
    t = pnl_texts(p)
    assert t["has_revaluation"] and (t["net"], t["revaluation"], t["equity_change"]) == ("9.50", "0.50", "10.00")
    assert _shown(t["realized"]) + _shown(t["unrealized"]) - _shown(t["fees_net"]) == _shown(t["net"])
    assert _shown(t["net"]) + _shown(t["revaluation"]) == _shown(t["equity_change"])
    assert _shown(t["equity_end"]) - _shown(t["equity_start"]) == _shown(t["equity_change"])


def test_additive_gives_the_smallest_precision_at_which_parts_add_up() -> None:
    # 1.005 + 1.005 = 2.01: at 2 decimals (half-even) 1.00 + 1.00 != 2.01, at 3 they add up
    assert fmt.additive("2.01", ["1.005", "1.005"], 2) == ("2.010", ["1.005", "1.005"])
    # floats with no exact sum: capped at 2 more decimals, then the total is the shown parts' sum
    total, parts = fmt.additive(0.3, [0.1004999, 0.1004999, 0.0990002], 2, extra=0)
    assert parts == ["0.10", "0.10", "0.10"] and total == "0.30"


def test_shortfall_table_columns_add_up_as_shown(parent_run: Path) -> None:
    m = compute(load_run(parent_run)).sections
    cols, rows = shortfall_rows(m)
    assert cols == ["orders", "parents"]
    by_name = {r["name"]: r["cells"] for r in rows}
    for c in range(2):
        for unit in ("money", "bps"):
            parts = sum(_shown(by_name[name][c][unit]) for name in ("delay", "impact", "opportunity", "fees"))
            assert parts == _shown(by_name["total"][c][unit]), (c, unit)
    # parents by hand: delay 3 + impact 3 + opportunity 2 + fees 0.306 (P1), impact 2 + fees 0.194 (P2)
    assert by_name["total"][1]["money"] == "10.50"


def test_decomposition_rows_add_up_as_shown(hand_run: Path) -> None:
    m = compute(load_run(hand_run)).sections
    horizons = list(m["markouts"]["horizons_ns"])
    rows = decomposition_rows(m["markouts"], horizons)
    for i in range(0, len(rows), 3):
        eff, imp, real = rows[i], rows[i + 1], rows[i + 2]
        for e, p, r in zip(eff["cells"], imp["cells"], real["cells"], strict=True):
            if r["text"] != fmt.DASH:
                assert _shown(e["text"]) + _shown(p["text"]) == _shown(r["text"])
    # maker at 30 s by hand: eff 2(101-102)/102 = -196.0784 -> -196.08; realized 2(101-98)/102
    # = 588.2353 -> 588.24; impact (by definition realized - effective) shown as 588.24 + 196.08
    # = 784.32 (784.3137 rounded alone: one unit of the last decimal, see docs/report.md)
    maker = {r["label"]: r["cells"][horizons.index("30s")]["text"] for r in rows if r["label"].endswith("maker")}
    assert maker == {"effective spread, maker": "-196.08", "+ price impact, maker": "784.32",
                     "= realized spread, maker": "588.24"}


def test_shares_of_a_whole_add_up_to_100() -> None:
    assert fmt.shares([1 / 3, 1 / 3, 1 / 3]) == ["33.4 %", "33.3 %", "33.3 %"]
    assert fmt.shares([0.12345, 0.45678, 0.41977]) == ["12.3 %", "45.7 %", "42.0 %"]
    assert fmt.shares([0.5, None, 0.5]) == ["50.0 %", fmt.DASH, "50.0 %"]


# --------------------------------------------------------------------------- labels


def _minimal_sections() -> dict:
    block = {"count": 0, "paper_notional": 0.0, "total": 0.0, "total_bps": None}
    mk = {"effective_spread_bps": None}
    return {
        "headline": {"fills": 0, "orders": 0, "maker_share": None, "maker_notional_share": None, "notional": 0.0,
                     "fill_ratio": None, "cancel_to_fill_ratio": None, "arrival_slippage_bps": None,
                     "vwap_slippage_bps": None, "effective_spread_bps": None, "markout_1s_bps": None,
                     "markout_60s_bps": None, "submit_to_ack_p50_ns": None, "submit_to_ack_p99_ns": None,
                     "tick_to_order_p99_ns": None},
        "execution": {"implementation_shortfall": block}, "parents": {"count": 0},
        "markouts": {"maker": mk, "taker": mk},
    }


def test_shortfall_tiles_say_whose_figure_they_show(parent_run: Path) -> None:
    m = compute(load_run(parent_run)).sections
    by_label = {t["label"]: t for t in tiles(m)}
    orders, parents = by_label["Impl. shortfall, orders"], by_label["Impl. shortfall, parents"]
    assert orders["parts"] == [f"{fmt.bps(m['execution']['implementation_shortfall']['total_bps'])}\u00a0bps"]
    # parents by hand: (8.306 + 2.194) / (400 + 196) x 1e4 = 176.17 bps
    assert parents["parts"] == ["176.17\u00a0bps"]
    assert parents["hint"] == "10.50 over 2 parents"


def test_maker_share_is_labelled_by_count_and_by_notional(hand_run: Path) -> None:
    m = compute(load_run(hand_run)).sections
    by_label = {t["label"]: t for t in tiles(m)}
    # 1 maker fill of 3; 101 of 391 notional
    assert "maker 33.3 % of fills" in by_label["Fills"]["hint"]
    assert "maker 25.8 % of notional" in by_label["Traded notional USDT"]["hint"]
    html = write_report(hand_run).read_text()
    assert "maker % of fills" in html and "maker % of notional" in html
    assert "(33.3 % of fills)" in html and "(25.8 % of notional)" in html


def test_sharpe_tile_says_na_and_why_for_a_short_run(hand_run: Path) -> None:
    m = compute(load_run(hand_run)).sections
    tile = next(t for t in tiles(m) if t["label"] == "Sharpe / Sortino")
    assert tile["parts"] == ["n/a"]
    assert tile["hint"] == ("sample too short: 1,000 returns over 16.7 min; annualised ratios need "
                            ">= 30 returns over >= 1 day")
    assert "Sharpe and Sortino: n/a (sample too short: 1,000 returns over 16.7 min" in write_report(hand_run).read_text()


def test_histogram_mean_is_the_weighted_figure_of_the_tables(hand_run: Path) -> None:
    metrics = compute(load_run(hand_run))
    svgs, _ = make_plots(metrics)
    arrival = metrics.sections["execution"]["arrival_slippage_bps"]
    eff = metrics.sections["markouts"]["all"]["effective_spread_bps"]
    # by hand: arrival (100 x 101 + 136.05 x 290) / 391; the plain mean (100 + 136.05) / 2 would differ
    assert arrival == pytest.approx((100 * 101 + (98 - 290 / 3) / 98 * 1e4 * 290) / 391)
    assert f"weighted mean={fmt.bps(arrival)}" in svgs["slippage"]
    assert f"weighted mean={fmt.bps(eff)}" in svgs["slippage"]
    assert "mean (unweighted)" not in svgs["slippage"]


# --------------------------------------------------------------------------- latency plot


def _latency(values: list[int]) -> dict:
    block = dict(zip(("p50", "p90", "p99", "p99_9", "max"), values, strict=True))
    empty = {"count": 0, "p50": None, "p90": None, "p99": None, "p99_9": None, "max": None}
    return {"submit_to_ack_ns": {"count": 5, **dict(zip(block, [2_000_000] * 5, strict=True))},
            "cancel_to_ack_ns": empty, "tick_to_order_ns": {"count": 5, **block}}


def test_zero_latency_is_drawn_on_a_linear_axis_never_at_a_fake_value() -> None:
    svg = latency_figure(_latency([0, 0, 0, 0, 0]))
    assert "linear scale" in svg and "log scale" not in svg
    assert "p50 0 ns · p99 0 ns · max 0 ns" in svg
    assert "10^{-3}" not in svg and "10^{−3}" not in svg and "0.001" not in svg
    svg = latency_figure(_latency([20_000, 30_000, 50_000, 50_000, 50_000]))
    assert "log scale" in svg
    assert "p50 20.0 µs · p99 50.0 µs · max 50.0 µs" in svg


# --------------------------------------------------------------------------- compare


def test_compare_writes_under_runs_by_default(hand_run: Path, parent_run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    comparison = compare_runs(hand_run, parent_run)
    assert comparison.html == Path("runs") / "compare-hand-vs-parents.html"
    assert (work / "runs" / "compare-hand-vs-parents.html").is_file()
    assert list(work.glob("*.html")) == []  # nothing loose in the working directory
    (work / "runs" / "compare-hand-vs-parents.html").unlink()
    assert tickparity_main(["report", "compare", str(hand_run), str(parent_run)]) == 0
    assert "runs/compare-hand-vs-parents.html" in capsys.readouterr().out
    assert (work / "runs" / "compare-hand-vs-parents.html").is_file()


def test_compare_deltas_that_round_to_nothing_are_0() -> None:
    from reports.compare import _show_delta

    assert _show_delta("arrival_slippage_bps", 1e-13) == "0"
    assert _show_delta("net_pnl", -1e-9) == "0"
    assert _show_delta("fill_ratio", 1e-9) == "0 pp"
    assert _show_delta("fill_ratio", 0.0125) == "+1.2 pp"  # half-even: 1.25 -> 1.2
    assert _show_delta("submit_to_ack_p50_ns", 0) == "0 ns"
    assert _show_delta("arrival_slippage_bps", -2.5) == "-2.50"


# --------------------------------------------------------------------------- reason


def test_synthetic_run_writes_null_reason(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from reports.synthetic import write_synthetic_run

    run = write_synthetic_run(tmp_path / "syn", fills=500, seed=1, duration_s=600)
    reasons = pq.read_table(run / "orders.parquet", columns=["status", "reason"]).to_pylist()
    assert all(r["reason"] != "" for r in reasons)
    assert any(r["reason"] is None for r in reasons)


def test_summary_json_has_no_nan_and_no_minus_zero(hand_run: Path) -> None:
    write_report(hand_run)
    text = (hand_run / "summary.json").read_text()
    assert "NaN" not in text and "-0.0" not in text
    summary = json.loads(text)
    assert summary["report"]["schema_version"] == 2
    assert np.isfinite(summary["headline"]["effective_spread_bps"])


def test_figures_round_half_even_whatever_the_thread_decimal_context():
    """ccxt sets the thread's decimal context to ROUND_HALF_UP; the report must not follow it."""
    import decimal

    from reports import format as fmt

    with decimal.localcontext() as ctx:
        ctx.rounding = decimal.ROUND_HALF_UP
        assert fmt.num(1.25, 1) == "1.2"
        assert fmt.num(decimal.Decimal("2.345"), 2) == "2.34"
        assert fmt.signed(decimal.Decimal("0.125"), 2) == "+0.12"


def test_compare_does_not_call_an_unmodelled_0_ns_latency_better() -> None:
    """Issue 9: a run with 0 ns latency (nothing modelled) is not 'better' than one with 5 ms."""
    from reports.compare import rows

    table = {r.key: r for r in rows({"submit_to_ack_p99_ns": 10_000_000, "net_pnl": 1.0},
                                    {"submit_to_ack_p99_ns": 0, "net_pnl": 2.0})}
    assert table["submit_to_ack_p99_ns"].verdict == "n/a (0 ns: latency not modelled)"
    assert table["net_pnl"].verdict == "better"  # other rows keep their verdicts
    both = {r.key: r for r in rows({"submit_to_ack_p99_ns": 10_000_000}, {"submit_to_ack_p99_ns": 5_000_000})}
    assert both["submit_to_ack_p99_ns"].verdict == "better"
