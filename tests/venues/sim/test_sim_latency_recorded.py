"""The `recorded` latency model: a session's measured round trips (latency.csv), entry
interpolated at the send time, response by the venue's time (hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import BUY, DELTA, SELL, drain, make_core

from engine.errors import ConfigError
from engine.types import OrderType, TimeInForce
from venues.sim import SimVenueConfig, WakeKind
from venues.sim.codes import RQ_SUBMIT
from venues.sim.config import load_recorded_latency
from venues.sim.latency import recorded_params
from venues.sim.latency_nb import muldiv_floor_nb, recorded

I64 = np.iinfo(np.int64)
NO_STATE = np.zeros(4, dtype=np.int64)  # the recorded model's state slots


@pytest.fixture
def latency_csv(tmp_path):
    path = tmp_path / "latency.csv"
    path.write_text("ts_ns,entry_ns,response_ns,command\n1000,100,50,submit\n2000,300,150,cancel\n")
    return path


def test_entry_is_interpolated_at_the_send_time(latency_csv):
    table = load_recorded_latency(latency_csv)
    assert table.tolist() == [[1000, 100, 50], [2000, 300, 150]]
    # before the first record its value, between them linear, after the last its value
    p = recorded_params(table)  # the model's parameters: [n, the rows in order] (latency_nb module doc)
    got = [int(recorded.entry(RQ_SUBMIT, t, p, NO_STATE)) for t in (500, 1000, 1500, 1750, 2000, 9000)]
    assert got == [100, 100, 200, 250, 300, 300]
    assert int(recorded.min_entry(p)) == 100


def test_response_is_held_at_the_mean_between_records(latency_csv):
    # before the first record its value; in [1000, 2000) the mean (50 + 150) // 2; from the last on its value
    p = recorded_params(load_recorded_latency(latency_csv))
    times = (int(I64.min) + 1, 999, 1000, 1999, 2000, int(I64.max) - 1)
    assert [int(recorded.response(0, t, p, NO_STATE)) for t in times] == [50, 50, 100, 100, 150, 150]


def test_entry_interpolation_is_exact_where_the_product_overflows_int64():
    # records an hour apart, entry rising by 1 s: (1e9 * 3.6e12) overflows int64; Python's
    # integers give the exact floor, including for a falling entry (floor of a negative)
    hour = 3_600_000_000_000
    rows = np.array([0, 1_000_000, 5, hour, 1_001_000_000, 5, 2 * hour, 1_000, 5], dtype=np.int64)
    p = recorded_params(rows)
    for t in (1, 7, hour // 3, hour - 1, hour + 1, hour + 12_345_678_901, 2 * hour - 1):
        k = 0 if t < hour else 1
        t0, e0, e1 = rows[3 * k], rows[3 * k + 1], rows[3 * k + 4]
        assert int(recorded.entry(RQ_SUBMIT, t, p, NO_STATE)) == int(e0) + (int(e1) - int(e0)) * (t - int(t0)) // hour
    rng = np.random.default_rng(5)
    for _ in range(2000):
        c = int(rng.integers(1, 2**62))
        b = int(rng.integers(0, c))
        a = int(rng.integers(-(2**40), 2**40))
        assert int(muldiv_floor_nb(a, b, c)) == a * b // c, (a, b, c)


def test_a_backtest_venue_answers_with_the_recorded_latency(latency_csv):
    """A limit buy sent at 1500 reaches the venue at 1500 + 200 = 1700 and its ack comes
    back at 1700 + 100 = 1800; a cancel sent at 2500 reaches it at 2800 and comes back at
    2800 + 150 = 2950 (no constant latency is added; entry_ns / response_ns beside it are refused,
    test_sim_config)."""
    table = {"latency": {"model": "recorded", "file": str(latency_csv)}}
    cfg = SimVenueConfig.from_table("sim", table)
    assert (cfg.entry_ns, cfg.response_ns) == (0, 0)
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5), (5_000, DELTA, SELL, 10_020, 1)],
                     configs={"sim": cfg})
    drain(core, 1500)
    core.submit(1, 0, BUY, int(OrderType.LIMIT), int(TimeInForce.GTC), 9_980, 1, False, 0, 1500)
    acks = [w for w in drain(core, 2500) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["exch_ts"]), int(w.record["local_ts"])) for w in acks] == [(1700, 1800)]
    core.cancel(1, 2500)
    done = [w for w in drain(core, 4000) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["exch_ts"]), int(w.record["local_ts"])) for w in done] == [(2800, 2950)]


def test_a_bad_recorded_file_names_the_line(tmp_path):
    path = tmp_path / "latency.csv"
    # a session writes a round trip when its reply comes: sent at 2000, answered after the
    # one sent at 1000; the file is read back in send-time order
    path.write_text("ts_ns,entry_ns,response_ns\n2000,1,1\n1000,2,2\n")
    assert load_recorded_latency(path).tolist() == [[1000, 2, 2], [2000, 1, 1]]
    path.write_text("ts_ns,entry_ns,response_ns\n2000,1,x\n")
    with pytest.raises(ConfigError, match=r"latency.csv:2: '2000,1,x': expected ts_ns,entry_ns,response_ns"):
        load_recorded_latency(path)
    with pytest.raises(ConfigError, match="needs latency.file"):
        SimVenueConfig.from_table("sim", {"latency": {"model": "recorded"}})
