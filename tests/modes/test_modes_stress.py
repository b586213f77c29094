"""`tickparity stress`: the matrix on small scenarios, through the CLI and the Python API.

Covers: exit status 3 and the printed rerun command when an invariant breaks, the HTML matrix
and JUnit XML, identical results with --jobs 1 and 2, a worker process that dies (reported,
the rest of the matrix completes) and Ctrl-C (every worker stops).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError
from modes.cli import main
from modes.stress import EXIT_BROKEN, run_stress

DATA = Path(__file__).resolve().parents[1] / "scenarios" / "data"
ROOT = Path(__file__).resolve().parents[2]
MM = str(DATA / "mm.toml")
CALM = str(DATA / "calm.toml")
CRASH = str(DATA / "crash-breaks-limits.toml")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stress")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["stress", "--strategies", MM, "--scenarios", CALM, CRASH, "--jobs", "2", "--out", str(out),
                       "--no-report"])
    return status, buffer.getvalue(), out


def test_cli_exits_3_and_prints_the_rerun_command(cli_run):
    status, printed, out = cli_run
    assert status == EXIT_BROKEN
    assert "FAIL mm x crash-breaks-limits: max_drawdown at 2024-01-01T00:00:2" in printed
    assert "1/2 cells passed" in printed
    rerun = next(line.split("rerun: ", 1)[1] for line in printed.splitlines() if "rerun: " in line)
    argv = shlex.split(rerun)
    assert argv[:2] == ["tickparity", "stress"]
    assert argv[argv.index("--strategies") + 1] == MM and argv[argv.index("--scenarios") + 1] == CRASH


def test_junit_and_html_name_the_broken_invariant(cli_run):
    _status, _printed, out = cli_run
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and suite.get("errors") == "0"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["calm"].find("failure") is None
    failure = cases["crash-breaks-limits"].find("failure")
    assert "max_drawdown at 2024-01-01T00:00:2" in failure.get("message")
    assert "pnl_bounded" in failure.get("message") and "ledger_reconciles" not in failure.get("message")
    html = (out / "stress.html").read_text()
    assert "crash-breaks-limits" in html and "<b>max_drawdown</b> at 2024-01-01T00:00:2" in html
    assert "<script" not in html and "http" not in html.split("</style>")[0]  # self-contained
    cells = json.loads((out / "results.json").read_text())["cells"]
    crash = next(c for c in cells if c["scenario"] == "crash-breaks-limits")
    base = crash["base_figures"]
    assert Decimal(crash["cost"]["pnl"]) == Decimal(crash["figures"]["pnl"]) - Decimal(base["pnl"])
    assert Decimal(crash["cost"]["max_drawdown"]) > 0  # the crash deepens the drawdown vs the unperturbed base
    assert (Path(crash["run_dir"]) / "stress.json").is_file()


def test_cell_report_lists_the_invariants(cli_run):
    from reports import write_report

    _status, _printed, out = cli_run
    cell = out / "cells" / "mm" / "crash-breaks-limits"
    summary = json.loads((cell / "summary.json").read_text())
    broken = {i["name"] for i in summary["invariants"] if not i["ok"]}
    assert broken == {"max_drawdown", "max_position", "max_exposure", "pnl_bounded"}
    report = write_report(cell).read_text()  # what `tickparity stress` does without --no-report
    assert "Scenario invariants" in report and "max_drawdown" in report and "FAIL" in report


def test_results_do_not_depend_on_jobs(cli_run, tmp_path):
    _status, _printed, out = cli_run
    status, cells = run_stress([MM], [CALM, CRASH], tmp_path / "serial", jobs=1, report=False, echo=lambda *_: None)
    parallel = json.loads((out / "results.json").read_text())["cells"]
    assert status == EXIT_BROKEN

    def key(cell):
        return (cell["scenario"], cell["status"], cell["fingerprint"], cell["figures"], cell["cost"],
                [(i["name"], i["status"], i["first_ts"], i["detail"]) for i in cell["invariants"]])

    assert [key(c) for c in cells] == [key(c) for c in parallel]


def test_a_dying_worker_is_reported_and_the_matrix_goes_on(tmp_path):
    lines: list[str] = []
    status, cells = run_stress([MM, str(DATA / "crasher.toml")], [CALM], tmp_path, jobs=2, report=False,
                               echo=lines.append)
    by_strategy = {c["strategy"]: c for c in cells}
    assert by_strategy["mm"]["status"] == "pass"
    assert by_strategy["crasher"]["status"] == "crashed"
    assert "worker process died" in by_strategy["crasher"]["error"]
    assert status == EXIT_BROKEN
    assert any(line.startswith("CRASHED crasher x calm") for line in lines)


def _session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def test_ctrl_c_stops_every_worker(tmp_path):
    slow = tmp_path / "slow.toml"
    slow.write_text('[base]\ndata = "synthetic:5:30m"\n[[invariants]]\nkind = "no_orphan_orders"\n')
    proc = subprocess.Popen([sys.executable, "-m", "modes.cli", "stress", "--strategies", MM, "--scenarios",
                             str(slow), str(DATA / "calm.toml"), "--jobs", "2", "--out", str(tmp_path / "o")],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(_session_processes(proc.pid)) < 3 and time.monotonic() < deadline:  # parent + 2 workers
            time.sleep(0.2)
        assert len(_session_processes(proc.pid)) >= 3
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        assert "interrupted" in err.decode()
        deadline = time.monotonic() + 10
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _session_processes(proc.pid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_sweep_runs_each_grid_point_with_its_parameters(tmp_path):
    import pyarrow.parquet as pq

    short = tmp_path / "short.toml"
    short.write_text('[base]\ndata = "synthetic:5:20s"\n[[invariants]]\nkind = "ledger_reconciles"\n')
    out = tmp_path / "sweep"
    status = main(["sweep", "--strategy", MM, "--grid", 'qty="0.01","0.02"', "--scenarios", str(short),
                   "--jobs", "2", "--out", str(out), "--no-report"])
    assert status == 0
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert [(c["strategy"], c["params"], c["status"]) for c in cells] == [
        ("mm[qty=0.01]", {"qty": "0.01"}, "pass"), ("mm[qty=0.02]", {"qty": "0.02"}, "pass")]
    for cell in cells:
        sizes = {Decimal(row["qty"]) for row in pq.read_table(Path(cell["run_dir"]) / "orders.parquet").to_pylist()}
        assert sizes == {Decimal(cell["params"]["qty"])}
    assert cells[0]["fingerprint"] != cells[1]["fingerprint"]
    from modes.stress import Job, rerun_command

    job = Job(0, MM, "mm[qty=0.02]", str(short), "short", False, None, str(out), False, (("qty", "0.02"),))
    assert shlex.split(rerun_command(job, out))[:6] == ["tickparity", "sweep", "--strategy", MM, "--grid",
                                                         'qty="0.02"']


def test_a_scenario_that_moves_nothing_is_checked_on_the_base_run(tmp_path):
    # basis-premium's basis_blowout moves perpetuals only: on the spot market maker the cell
    # is the unperturbed base run, so no second backtest runs and its invariants are the
    # base run's (ledger, drawdown, no liquidation: skipped without contracts)
    from scenarios import RunRecords, load_scenario

    status, (cell,) = run_stress([MM], [str(DATA / "basis-premium.toml")], tmp_path, jobs=1, report=False,
                                 echo=lambda _line: None)
    base_dir = tmp_path / "cells" / "mm" / "_base-1"
    assert cell["run_dir"] == str(base_dir) and not (tmp_path / "cells" / "mm" / "basis-premium").exists()
    direct = [inv.check(RunRecords(base_dir)).to_json() for inv in
              load_scenario(DATA / "basis-premium.toml").build_invariants()]
    assert [(i["name"], i["status"]) for i in cell["invariants"]] == [(i["name"], i["status"]) for i in direct]
    assert [i["status"] for i in cell["invariants"]] == ["skipped", "pass", "pass"] and status == 0
    assert cell["figures"] == cell["base_figures"]
    assert (Decimal(cell["cost"]["pnl"]), Decimal(cell["cost"]["max_drawdown"]), cell["cost"]["fills"]) == (0, 0, 0)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r.get("same_as_base", False) for r in results["results"]] == [False, True]


@pytest.mark.parametrize(("line", "message"), [
    ("levrage = 20", "[venues.binanceusdm] levrage: unknown key; did you mean 'leverage'?"),
    ('margin_mode = "isolate"', "[venues.binanceusdm] margin_mode = 'isolate': expected 'cross' or 'isolated'"),
])
def test_a_strategy_config_typo_is_a_user_error_before_any_cell(tmp_path, capsys, line, message):
    # it used to run the matrix and report every cell as "could not run" (exit 3)
    config = tmp_path / "perp.toml"
    config.write_text(f"""
[run]
strategy = "{ROOT / 'examples' / 'perp_long.py'}:PerpLong"
data = "synthetic:7:1m"
instruments = ["binanceusdm:BTC/USDT:USDT"]
[venues.binanceusdm]
{line}
""")
    scenario = ROOT / "scenarios" / "library" / "perp-long-crash-2021-05-19.toml"
    out = tmp_path / "stress"
    code = main(["stress", "--strategies", str(config), "--scenarios", str(scenario), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"tickparity: error: {config}: {message}")
    assert not out.exists()


def test_the_venue_defaults_are_told_once_for_the_matrix(tmp_path, capsys):
    """Each cell's backtest printed the venue defaults it fell back on: two lines per cell,
    the same lines N times for an N-cell matrix. The plan prints them once, after every
    config and scenario checked out (a user error stays one line), and the cells not at all."""
    from modes.stress import plan

    config = tmp_path / "mm.toml"
    config.write_text(f"""
[run]
strategy = "{ROOT / 'examples' / 'market_maker.py'}:MarketMaker"
instruments = ["binance:BTC/USDT"]
data = "synthetic:5:1m"
[venues.binance]
balances = {{ USDT = "100000", BTC = "0.5" }}
""")
    jobs = plan([(str(config), ())], [Path(CALM), Path(CRASH)], tmp_path / "out", False)
    assert len(jobs) == 3  # the base run, two scenarios
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("tickparity: warning: [venues.binance] ") for line in err), err
    assert "maker_fee_bps, taker_fee_bps not set" in err[0] and "latency not set" in err[1]


def test_a_grid_number_is_a_decimal_as_param_reads_it_and_reruns_as_written(tmp_path):
    """`--grid half_spread_bps=0.5,1.0` gave the strategy binary floats where `--param
    half_spread_bps=0.5` gives Decimal('0.5'); the rerun command writes the number back as
    TOML (not Decimal('0.5'))."""
    from modes.cli import _parse_param
    from modes.stress import Job, parse_grid, rerun_command

    grid = parse_grid(["half_spread_bps=0.5,1.0", "refresh_ms=100"])
    assert grid == {"half_spread_bps": [Decimal("0.5"), Decimal("1.0")], "refresh_ms": [100]}
    assert all(type(v) is Decimal for v in grid["half_spread_bps"])
    assert grid["half_spread_bps"][0] == _parse_param("half_spread_bps=0.5")[1]
    job = Job(0, MM, "mm[half_spread_bps=1.0]", CALM, "calm", False, None, str(tmp_path), False,
              (("half_spread_bps", Decimal("1.0")),))
    argv = shlex.split(rerun_command(job, tmp_path))
    assert argv[argv.index("--grid") + 1] == "half_spread_bps=1.0"
    assert parse_grid([argv[argv.index("--grid") + 1]]) == {"half_spread_bps": [Decimal("1.0")]}
    with pytest.raises(ConfigError, match="give distinct values"):
        parse_grid(["half_spread_bps=0.5,0.50"])
