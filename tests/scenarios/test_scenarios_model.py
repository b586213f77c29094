"""Scenario files: the loader's errors name the file and key; base data rules; user kinds by
import path; the shipped library is complete and calibrated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import resolve
from engine.errors import ConfigError
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from scenarios import LIBRARY_DIR, RunRecords, load_scenario
from scenarios.invariants import BUILTIN_INVARIANTS
from scenarios.model import PERTURBATION_KINDS

DATA = Path(__file__).parent / "data"
INST = load_instruments(None)["binance:BTC/USDT"]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("[scenario]\nnme = 'x'\n", r"\[scenario\]: unknown key\(s\) \['nme'\]"),
    ("[extra]\n", r"unknown key\(s\) \['extra'\]"),
    ("[[perturbations]]\nkind = 'price_shock'\nat = '1m'\nfall = '1s'\nmove_pct = -5\nfal = '2s'\n",
     r"\[\[perturbations\]\] #1 \(price_shock\): .*'fal'.*accepted keys: .*'fall'"),
    ("[[perturbations]]\nkind = 'price_shock'\nat = '1 minute'\nfall = '1s'\nmove_pct = -5\n",
     r"#1 \(price_shock\): at = '1 minute': expected a duration"),
    ("[[perturbations]]\nkind = 'price_shock'\nat = '1m'\nfall = '1s'\nmove_pct = -120\n",
     r"move_pct = -120: must be >= -99.99"),
    ("[[perturbations]]\nkind = 'partial_fill_drought'\nafter = '1m'\nduration = '5m'\nfraction = 2\n",
     r"#1 \(partial_fill_drought\): partial_fill_drought fraction = 2: expected 0 < fraction <= 1"),
    ("[[perturbations]]\nkind = 'maintenance'\nafter = '1m'\nduraton = '5m'\n",
     r"#1 \(maintenance\): maintenance \(maintenance\): unknown key\(s\) \['duraton'\]"),
    ("[[perturbations]]\nkind = 'clock_skew'\n",
     r"'clock_skew' is a fault of the shared vocabulary .* that the simulated venue does not model"),
    ("[[perturbations]]\nkind = 'outage'\nafter = '1m'\nduration = '5m'\nreply = 'maybe'\n",
     r"#1 \(outage\): outage reply = 'maybe': expected one of \['timeout', '5xx', 'reset'\]"),
    ("[[invariants]]\nkind = 'kill_switch_within'\n", r"kill_switch_within: set the condition"),
    ("[[invariants]]\nkind = 'max_drawdown'\n", r"max_drawdown: set limit"),
    ("[[invariants]]\nkind = 'nope'\n", r"unknown kind 'nope'"),
    ("[base]\ndata = 'run'\nfrom = '2024-01-01'\n", r"from/to need a data source"),
    ("[[invariants]]\nkind = 'missing.py:Nope'\n", r"kind 'missing.py:Nope': strategy file not found"),
])
def test_loader_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


def test_base_data_wins_unless_the_scenario_uses_the_runs(tmp_path):
    config = resolve({"run": {"strategy": "x.py:X", "data": "duckdb:data/demo.duckdb", "from": "2024-01-01T00:00:00Z"}},
                     {})
    own = load_scenario(write(tmp_path, "[base]\ndata = 'synthetic:3:2m'\n", "a.toml")).run_config(config)
    assert (own.data, own.start_ns, own.end_ns) == ("synthetic:3:2m", None, None)
    runs = load_scenario(write(tmp_path, "[base]\ndata = 'run'\n", "b.toml")).run_config(config)
    assert runs is config
    assert load_scenario(write(tmp_path, "", "c.toml")).base.uses_run_data  # the default


def test_user_perturbation_and_invariant_by_import_path(tmp_path):
    (tmp_path / "custom.py").write_text((DATA / "custom.py").read_text())
    path = write(tmp_path, "[[perturbations]]\nkind = 'custom.py:TickUp'\nticks = 7\nat_ns = 5\n"
                           "[[invariants]]\nkind = 'custom.py:AtMostFills'\nlimit = 0\n")
    scenario = load_scenario(path)
    events = np.zeros(4, dtype=EVENT_DTYPE)
    events["local_ts"] = events["exch_ts"] = [0, 0, 10, 20]
    events["kind"] = [EventKind.BOOK_DELTA, EventKind.BOOK_DELTA, EventKind.TRADE, EventKind.BOOK_DELTA]
    events["side"] = [1, -1, 1, 1]
    events["price"] = [100, 102, 102, 99]
    events["qty"] = [1, 1, 1, 2]
    out = np.concatenate(list(scenario.feed_transform()([events], {INST.id: INST})))
    # at 5 ns: a snapshot of the book shifted +7, then the later rows shifted too
    assert out["price"][out["kind"] == EventKind.TRADE].tolist() == [109]
    assert out["price"][-1] == 106
    (invariant,) = scenario.build_invariants()
    assert invariant.name == "custom.py:AtMostFills"
    not_a_subclass = write(tmp_path, "[[invariants]]\nkind = 'custom.py:TickUp'\nticks = 1\nat_ns = 1\n", "bad.toml")
    with pytest.raises(ConfigError, match="must subclass scenarios.invariants.Invariant"):
        load_scenario(not_a_subclass)
    assert RunRecords  # the records API the invariant receives is public


def test_library_is_calibrated_and_loads():
    files = sorted(LIBRARY_DIR.glob("*.toml"))
    assert len(files) >= 12
    names = set()
    for file in files:
        scenario = load_scenario(file)
        names.add(scenario.name)
        cal = scenario.calibration
        assert cal["event"] and cal["date"] and cal["figures"] and cal["sources"], file
        assert all("[S" in f for f in cal["figures"]), file  # every figure cites its source
        assert scenario.perturbations and scenario.invariants
        assert {c.kind for c in scenario.perturbations} <= set(PERTURBATION_KINDS)
        assert {c.kind for c in scenario.invariants} <= set(BUILTIN_INVARIANTS)
        assert scenario.base.data.startswith("synthetic:")
    assert len(names) == len(files)
