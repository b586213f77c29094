"""Queue models a user names in the venue table ('package.module:name', docs/models.md):
hand-computed fills, one-line config errors, and the shipped models' fills pinned."""

from __future__ import annotations

import pytest
from sim_helpers import BUY, DELTA, SELL, TRADE, drain, make_core

from engine.errors import ConfigError
from engine.types.orders import OrderEventKind, OrderType, TimeInForce
from venues.sim import SimVenueConfig, WakeKind

LIMIT, GTC = OrderType.LIMIT, TimeInForce.GTC

# a bid level of 30 lots at 99; our buy of 3 at 99 rests at t=5; then sells print at 99
# and the level is cut to 1 lot at t=15
ROWS = [(0, DELTA, BUY, 99, 30), (10, TRADE, SELL, 99, 2), (15, DELTA, BUY, 99, 1),
        (20, TRADE, SELL, 99, 4), (30, TRADE, SELL, 99, 1), (40, TRADE, SELL, 99, 5)]


def fills(wakes):
    """(exchange time, order_no, lots) of each fill."""
    return [(int(w.record["exch_ts"]), int(w.record["order_no"]), int(w.record["qty"])) for w in wakes
            if w.kind == WakeKind.ORDER and int(w.record["kind"]) == OrderEventKind.FILL]


def _run(model: str):
    core = make_core(ROWS, queue_model=model)
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 3, False, 0, 5)
    return core, fills(drain(core))


def test_user_queue_model_fills_after_five_lots_traded():
    # after_five ignores the visible queue and level changes: ahead starts at 5 lots.
    # t=10: 2 traded -> ahead 3. t=15: the level cut moves nothing. t=20: 4 traded ->
    # ahead -1: 1 lot reached the order -> fill 1, ahead 0. t=30: 1 traded -> fill 1.
    # t=40: 5 traded, 1 lot left -> fill 1.
    core, got = _run("sim_user_models:after_five")
    assert got == [(20, 1, 1), (30, 1, 1), (40, 1, 1)]


def test_the_same_feed_under_risk_averse():
    # risk_averse: ahead 30; t=10: 28; t=15: min(28, 1) = 1; t=20: 1 - 4 = -3: 3 lots
    # reached the order, which has 3 -> one fill of 3
    core, got = _run("risk_averse")
    assert got == [(20, 1, 3)]


def test_user_model_state_is_its_own_width():
    core = make_core(ROWS, queue_model="sim_user_models:after_five")
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 30, False, 0, 5)  # big: stays open
    drain(core, 35)
    assert core._Of.shape[1] == 3  # the widest model of the run (shipped ones: 2)
    s = int(core._act[0])
    # column 1: one level change seen; column 2: 2 + 4 + 1 lots traded at the price
    assert core._Of[s, 1] == 1.0 and core._Of[s, 2] == 7.0


def test_two_venues_two_models_in_one_run():
    from sim_helpers import instrument

    insts = [instrument("a"), instrument("b")]
    rows = [(t, k, sd, p, q, i) for i in (0, 1) for (t, k, sd, p, q) in ROWS]
    rows.sort(key=lambda r: (r[0], r[5]))
    configs = {"a": SimVenueConfig.from_table("a", {"queue_model": "sim_user_models:after_five",
                                                    "latency": {"entry_ns": 0, "response_ns": 0}}),
               "b": SimVenueConfig.from_table("b", {"queue_model": "risk_averse",
                                                    "latency": {"entry_ns": 0, "response_ns": 0}})}
    core = make_core(rows, instruments=insts, configs=configs)
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 3, False, 0, 5)
    core.submit(2, 1, BUY, LIMIT, GTC, 99, 3, False, 0, 5)
    got = fills(drain(core))
    assert got == [(20, 1, 1), (20, 2, 3), (30, 1, 1), (40, 1, 1)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_module_xyz:model", r"queue_model = 'no_such_module_xyz:model': cannot import module"),
        ("sim_user_models:missing", r"queue_model = 'sim_user_models:missing': module 'sim_user_models' "
                                    r"has no attribute 'missing'"),
        ("sim_user_models:wrong_signature", r"queue_model = 'sim_user_models:wrong_signature': "
                                            r"on_trade\(st, s, qty, param\) does not compile"),
        ("sim_user_models:width_not_int", r"width = 2.5: expected an int >= 1"),
        ("sim_user_models:not_a_model", r"expected a venues.sim.models.QueueModel, got dict"),
        ("sim_user_models:too_narrow", r"'sim_user_models:too_narrow': on_new indexes st\[s, ...\] beyond its "
                                       r"width = 2 \(columns 0..1\)"),
        ("sim_user_models:reads_beyond", r"filled indexes st\[s, ...\] beyond its width = 3"),
        ("sim_user_models:too_wide", r"width = 1000000: more than the 64 float64 columns"),
        # the model's own code raising on an ordinary order life: an "internal error" in the run before
        ("sim_user_models:divides_by_ahead", r"'sim_user_models:divides_by_ahead': on_new\(st, s, 0.0, 0.0\) raised "
                                             r"ZeroDivisionError: division by zero$"),
        ("fifo", r"queue_model = 'fifo': expected 'risk_averse'"),
    ],
)
def test_bad_queue_model_is_one_line_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message) as err:
        SimVenueConfig.from_table("binance", {"queue_model": value})
    assert str(err.value).startswith("[venues.binance] queue_model = ")
    assert "\n" not in str(err.value)


# the fills of the shipped models on the real capture, recorded with the closed-list
# kernels (QM_* codes, before models were pluggable): (fills, lots, sha256 of the records)
PINNED = {
    "risk_averse": (379, 26740000, "e3cd5196d2d3da1b1e11c277d61308c0954f8765df60333a3bfb2a41cf1ecde1"),
    "power:2": (379, 26740000, "e3cd5196d2d3da1b1e11c277d61308c0954f8765df60333a3bfb2a41cf1ecde1"),
    "log": (376, 26740000, "b1102faeb21d33caf53701ce4ae06bdffdc352b0c14627b150744e5592243563"),
}


def test_shipped_models_fill_as_before_on_real_data(tmp_path):
    from realdata_fills import CAPTURE, capture_events, fills_digest

    assert CAPTURE.is_file(), f"{CAPTURE}: the shipped Binance capture (tests/data) is missing"
    insts, ev = capture_events(tmp_path)
    for model, expected in PINNED.items():
        assert fills_digest(insts, ev, model) == expected, model


def test_a_user_model_loop_is_cached_across_processes():
    """cache=True works per model set: a second process loads the loop this one compiled
    (or loaded), it does not compile it again."""
    import subprocess
    import sys
    from pathlib import Path

    _run("sim_user_models:after_five")  # compiled (or loaded) and written to numba's cache here
    here = Path(__file__).resolve().parent
    code = (
        f"import sys; sys.path.insert(0, {str(here)!r})\n"
        "from test_sim_user_models import _run\n"
        "from venues.sim.core_nb import run_nb\n"
        "core, got = _run('sim_user_models:after_five')\n"
        "hits = sum(run_nb.stats.cache_hits.values()); misses = sum(run_nb.stats.cache_misses.values())\n"
        "print(got, hits, misses)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         cwd=here.parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    hits, misses = (int(x) for x in out.stdout.split("]")[-1].split())
    assert hits >= 1 and misses == 0, out.stdout  # loaded, not compiled
    assert out.stdout.startswith("[(20, 1, 1), (30, 1, 1), (40, 1, 1)]")


def test_compiled_loop_runs_a_user_model_like_the_python_path(tmp_path, request):
    """The same user model in the compiled-strategy loop (compiled_nb) and through the Python
    adapter: identical orders and fills (engine/test_engine_compiled's parity, for a model
    named by path)."""
    import pyarrow.parquet as pq
    from sim_helpers import compiled_and_plain, same_files

    fast, python = compiled_and_plain(tmp_path, request.config.rootpath, 'queue_model = "sim_user_models:after_five"\n'
                                      "latency = { entry_ns = 1000000, response_ns = 1000000, feed_ns = 0 }\n")
    same_files(fast, python)
    assert pq.read_table(fast / "fills.parquet").num_rows > 10


def test_config_hash_covers_the_user_models_source():
    from venues.sim.models import load_queue_model

    cfg = SimVenueConfig.from_table("binance", {"queue_model": "sim_user_models:after_five"})
    shipped = SimVenueConfig.from_table("binance", {"queue_model": "risk_averse"})
    assert cfg.queue_code == -1 and shipped.queue_code == 0
    digest = load_queue_model("sim_user_models:after_five")[1]
    import hashlib
    from pathlib import Path

    assert digest == hashlib.sha256((Path(__file__).parent / "sim_user_models.py").read_bytes()).hexdigest()
    assert cfg.config_hash != shipped.config_hash
