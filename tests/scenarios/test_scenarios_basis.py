"""basis_blowout (scenarios.perturbations.BasisBlowout) on a perpetual/spot pair: the
perpetual's book and mark move by the basis and converge back, spot does not move (pinned
row by row against the unperturbed feed); the library's Black Thursday basis scenario is
survived by the example cash-and-carry, and the carry with its perpetual leg funded thin is
liquidated by the mirror premium on purpose (`no_liquidation` catches it)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.config import load_config_file, resolve
from engine.types import EventKind
from modes.backtest import run_backtest
from replay import open_source
from replay.book import BookScanner
from scenarios import LIBRARY_DIR, RunRecords, apply_perturbations, load_scenario
from scenarios.feed import mid_ticks, round_ticks, scan_rows

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
LIBRARY = LIBRARY_DIR / "black-thursday-2020-perp-basis.toml"
M = 60_000_000_000


def _rows(config, transform=None):
    from modes.backtest import resolve_run

    instruments = resolve_run(config).instruments
    chunks = open_source(config.data, instruments, start_ns=config.start_ns, end_ns=config.end_ns,
                         chunk_rows=1 << 14, seed=config.seed)
    if transform is not None:
        chunks = apply_perturbations(chunks, list(instruments.values()), transform)
    return list(instruments.values()), np.concatenate(list(chunks))


def test_the_perpetual_and_its_mark_move_by_the_basis_and_spot_does_not():
    scenario = load_scenario(LIBRARY)
    config = scenario.run_config(resolve(load_config_file(ROOT / "examples" / "basis_carry.toml"), {},
                                         base_dir=str(ROOT / "examples")))
    insts, before = _rows(config)
    spot, perp = (k for k, _ in enumerate(insts))
    assert insts[perp].type == "swap" and insts[spot].type == "spot"
    _, after = _rows(config, scenario._feed_perturbations())
    t0 = int(before["local_ts"][0])
    # the reference mid: the perpetual's original book when the blow-out starts (4 min)
    scanners = [BookScanner() for _ in insts]
    scan_rows(scanners, before[before["local_ts"] < t0 + 4 * M])
    ref = mid_ticks(scanners[perp])
    shift = round_ticks(ref * Fraction(-10, 100))  # -10 % of the mid, in ticks
    assert shift < 0 and abs(shift / ref + 0.10) < 1e-4
    mark = int(EventKind.MARK_PRICE)

    def marks(rows, lo, hi):
        m = rows[(rows["instrument"] == perp) & (rows["kind"] == mark)
                 & (rows["local_ts"] >= lo) & (rows["local_ts"] < hi)]
        return m["price"].astype(np.int64)

    # held at the full basis from 9 min to 11 min: every mark exactly `shift` ticks lower
    held_before, held_after = marks(before, t0 + 9 * M, t0 + 11 * M), marks(after, t0 + 9 * M, t0 + 11 * M)
    assert len(held_before) > 100 and np.array_equal(held_after - held_before, np.full(len(held_before), shift))
    # converged after 14 min, untouched before 4 min
    for lo, hi in ((t0, t0 + 4 * M), (t0 + 14 * M + 1, t0 + 20 * M)):
        assert np.array_equal(marks(after, lo, hi), marks(before, lo, hi))
    # spot: the same rows, untouched
    spot_rows = lambda rows: rows[rows["instrument"] == spot][["exch_ts", "kind", "side", "price", "qty"]]  # noqa: E731
    assert np.array_equal(spot_rows(after), spot_rows(before))


def _cell(scenario: Path, strategy: Path, out: Path):
    sc = load_scenario(scenario)
    config = sc.run_config(resolve(load_config_file(strategy), {}, base_dir=str(strategy.parent)))
    run = RunRecords(run_backtest(config, out, write_html=False, feed_transform=sc.feed_transform()))
    return run, {r.name: r for r in (inv.check(run) for inv in sc.build_invariants())}


def test_the_example_carry_survives_the_black_thursday_basis(tmp_path):
    _run, results = _cell(LIBRARY, ROOT / "examples" / "basis_carry.toml", tmp_path / "carry")
    assert {n: r.status for n, r in results.items() if r.status != "skipped"} == {
        "no_liquidation": "pass", "max_drawdown": "pass", "pnl_bounded": "pass", "no_orphan_orders": "pass",
        "ledger_reconciles": "pass"}


@pytest.mark.parametrize(("strategy", "liquidated"), [("basis_carry_thin.toml", True),
                                                      ("../../../examples/basis_carry.toml", False)])
def test_a_thinly_funded_carry_is_liquidated_by_a_premium(tmp_path, strategy, liquidated):
    run, results = _cell(DATA / "basis-premium.toml", DATA / strategy, tmp_path / "cell")
    inv = results["no_liquidation"]
    assert inv.status == ("fail" if liquidated else "pass")
    assert results["ledger_reconciles"].status == "pass"
    if liquidated:
        # the short is liquidated while the premium widens (4 to 9 min), not before
        t0 = run.equity[0][0]
        assert t0 + 4 * M < inv.violations[0].ts < t0 + 9 * M
