"""`tickparity stress --via emulator` (modes.stress_emulator): the same scenario file run as a
testnet session (real ccxt over 127.0.0.1) against the in-process exchange emulator, which
replays the perturbed base data with the scenario's venue faults as its fault plan. Issue 12's
acceptance: every invariant of a venue-fault scenario passes or fails as in the backtest.
Bounded: one 20-second scenario (a dip, two rejects, a maintenance), loopback only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import ConfigError
from modes.stress import Job, rerun_command, run_stress

DATA = Path(__file__).resolve().parents[1] / "scenarios" / "data"
SCENARIO = DATA / "emulator-maintenance.toml"
STRATEGY = DATA / "mm-emulator.toml"


def _statuses(cells) -> dict[str, str]:
    (cell,) = cells
    assert cell["status"] in ("pass", "fail"), cell["error"]
    return {i["name"]: i["status"] for i in cell["invariants"]}


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    out = tmp_path_factory.mktemp("via")
    _, backtest = run_stress([str(STRATEGY)], [str(SCENARIO)], out / "backtest", jobs=1, report=False,
                             echo=lambda _line: None)
    _, emulator = run_stress([str(STRATEGY)], [str(SCENARIO)], out / "emulator", report=False,
                             echo=lambda _line: None, via="emulator")
    return out, backtest, emulator


def test_every_invariant_passes_or_fails_as_in_the_backtest(both_ways):
    _out, backtest, emulator = both_ways
    expected = _statuses(backtest)
    assert set(expected) == {"max_drawdown", "pnl_bounded", "max_position", "no_orphan_orders",
                             "ledger_reconciles", "no_order_while_down", "no_ban"}
    assert _statuses(emulator) == expected


def test_the_emulator_acted_out_the_scenarios_faults_and_feed(both_ways):
    out, _backtest, emulator = both_ways
    (cell,) = emulator
    run = Path(cell["run_dir"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["mode"] == "testnet" and summary["invariants"]
    journal = [json.loads(line) for line in (run.parent / f"{run.name}.emulator" / "journal.jsonl").open()]
    faults = [e for e in journal if e["event"] == "fault"]
    assert [f["kind"] for f in faults if f["kind"] == "reject"] == ["reject", "reject"]
    phases = [e["phase"] for e in journal if e["event"] == "maintenance"]
    assert phases == ["cancel_only", "halt", "resume"]
    # the session's own orders met the faults: the two rejects (-2010) reached its order table
    orders = [json.loads(line) for line in (run / "audit.jsonl").open() if '"venue_reply"' in line]
    assert any("-2010" in json.dumps(o) for o in orders)
    # no base run via the emulator: no cost of the disaster; a failed cell's rerun line keeps --via
    assert cell["cost"] is None
    job = Job(0, str(STRATEGY), "mm-emulator", str(SCENARIO), "emulator-maintenance", False, None, "o", False,
              (), "emulator")
    assert rerun_command(job, out).split()[-6:-4] == ["--via", "emulator"]


def test_a_kind_the_emulator_lacks_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"venue-outage\.toml \[\[perturbations\]\] #1: --via emulator: the "
                                          r"exchange emulator does not implement the venue fault 'outage'"):
        run_stress([str(STRATEGY)], [str(DATA / "venue-outage.toml")], tmp_path, via="emulator")
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_the_cli_refuses_it_in_one_line(tmp_path, capsys):
    from modes.cli import main

    code = main(["stress", "--strategies", str(STRATEGY), "--scenarios", str(DATA / "venue-outage.toml"),
                 "--via", "emulator", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "does not implement the venue fault 'outage'" in err


def test_a_run_the_emulator_cannot_serve_is_refused_before_anything_runs(tmp_path):
    """A futures strategy config (binanceusdm): refused in planning, like an unsupported
    fault kind, not reported as a broken cell after the matrix ran."""
    perp = Path(__file__).resolve().parents[2] / "examples" / "perp_long.toml"
    with pytest.raises(ConfigError, match=r"perp_long\.toml: --via emulator: the emulator is one Binance spot venue"):
        run_stress([str(perp)], [str(SCENARIO)], tmp_path, via="emulator")
    assert not any(tmp_path.iterdir())
