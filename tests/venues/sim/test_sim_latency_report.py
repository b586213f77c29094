"""The response leg recorded on the user stream (`latency.report_file`, a session's
report_latency.csv) and the recorded requests of one time taken in turn (latency.csv's
`seq`): hand-computed values (venues/sim/latency.py, parity block)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sim_helpers import BUY, DELTA, SELL, drain, make_core

from engine.errors import ConfigError
from engine.types import OrderEventKind, OrderType, TimeInForce
from venues.sim import SimVenueConfig, WakeKind
from venues.sim.codes import RQ_CANCEL, RQ_QUERY, RQ_SUBMIT
from venues.sim.config import load_recorded_latency
from venues.sim.latency import load_report_latency, recorded_params, recorded_requests_in_turn
from venues.sim.latency_nb import recorded

I64 = np.iinfo(np.int64)
LIMIT, GTC = int(OrderType.LIMIT), int(TimeInForce.GTC)


@pytest.fixture
def report_csv(tmp_path):
    path = tmp_path / "report_latency.csv"
    path.write_text("ts_ns,response_ns,report,venue\n"
                    "1700,30,acknowledged,sim\n"
                    "1700,40,acknowledged,other\n"  # another venue's: not read
                    "2800,-5,cancelled,sim\n"  # a venue clock ahead of ours: 0
                    "2000,170,filled,sim\n")
    return path


def test_the_report_file_is_read_by_venue_in_time_order(report_csv):
    ms = 1_000_000  # the stamp of a file without the column: ccxt's whole ms
    assert load_report_latency(str(report_csv), "sim").tolist() == [[1700, 30, ms], [2000, 170, ms], [2800, 0, ms]]


@pytest.mark.parametrize("line, says", [
    ("1700,30,acknowledged", "report_latency.csv:2: '1700,30,acknowledged': expected "
                             "ts_ns,response_ns,report,venue[,stamp_ns]"),
    ("1700,30,acknowledged,sim,1x", "report_latency.csv:2: stamp_ns = '1x': expected an integer number of ns"),
    ("1700,30,acknowledged,sim,0", "report_latency.csv:2: stamp_ns = '0': expected > 0"),
    ("1700,3x,acknowledged,sim", "report_latency.csv:2: response_ns = '3x': expected an integer number of ns"),
    ("17.5,30,acknowledged,sim", "report_latency.csv:2: ts_ns = '17.5': expected an integer number of ns"),
])
def test_a_bad_report_line_is_named(tmp_path, line, says):
    path = tmp_path / "report_latency.csv"
    path.write_text(f"ts_ns,response_ns,report,venue\n{line}\n")
    with pytest.raises(ConfigError, match=re.escape(says)):
        SimVenueConfig.from_table("sim", {"latency": {"report_file": str(path)}})


def test_the_config_takes_it_as_the_response_leg(report_csv, tmp_path):
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 100, "report_file": str(report_csv)}})
    ms = 1_000_000
    assert (cfg.entry_ns, cfg.response_ns, cfg.report_samples.tolist()) == (
        100, 0, [[1700, 30, ms], [2000, 170, ms], [2800, 0, ms]])
    assert cfg.config_hash != SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 100}}).config_hash
    with pytest.raises(ConfigError, match=r"\[venues.sim\] latency.report_file and latency.response_ns: give one"):
        SimVenueConfig.from_table("sim", {"latency": {"response_ns": 5, "report_file": str(report_csv)}})
    samples = tmp_path / "samples.txt"
    samples.write_text("10 20\n")
    with pytest.raises(ConfigError, match=r"latency.report_file with latency.model = 'empirical'"):
        SimVenueConfig.from_table("sim", {"latency": {"model": "empirical", "file": str(samples),
                                                      "report_file": str(report_csv)}})
    with pytest.raises(ConfigError, match=r"latency.report_file = .*missing.csv'?: file not found"):
        SimVenueConfig.from_table("sim", {"latency": {"report_file": str(tmp_path / "missing.csv")}})
    with pytest.raises(ConfigError, match=r"no report latency record of venue 'elsewhere'"):
        SimVenueConfig.from_table("elsewhere", {"latency": {"report_file": str(report_csv)}})


def test_fills_and_acks_reach_the_strategy_after_the_recorded_report_latency(report_csv):
    """Entry 200 (constant). A buy at 10010 sent at 1500 reaches the venue at 1700 and takes
    the resting ask there: its ack and fill, produced at 1700, come back 30 later (the
    report at 1700), at 1730; a resting buy at 9980 sent at 1900 is acked at 2100 + 70 (the
    report at 2000 is the latest at or before 2100, and 2100 is within its millisecond: the
    session received that report at 2000 + 170) = 2170, and its cancel, sent at 2700, is
    answered at max(2900, 2800 + 0) (the report at 2800) = 2900."""
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 200, "report_file": str(report_csv)}})
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5), (5_000, DELTA, SELL, 10_020, 1)],
                     configs={"sim": cfg})
    drain(core, 1500)
    core.submit(1, 0, BUY, LIMIT, GTC, 10_010, 1, False, 0, 1500)
    first = [w for w in drain(core, 1900) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["exch_ts"]), int(w.record["local_ts"])) for w in first] == [(1700, 1730), (1700, 1730)]
    core.submit(2, 0, BUY, LIMIT, GTC, 9_980, 1, False, 0, 1900)
    acks = [w for w in drain(core, 2700) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["exch_ts"]), int(w.record["local_ts"])) for w in acks] == [(2100, 2170)]
    core.cancel(2, 2700)
    done = [w for w in drain(core, 4000) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["exch_ts"]), int(w.record["local_ts"])) for w in done] == [(2900, 2900)]


MS = 1_000_000


def _three_buys(tmp_path, report_line: str) -> list[tuple[int, int, int]]:
    """Entry 0.4 ms, the response leg from a report_latency.csv of one line: a buy crossing
    the ask sent at 2.6 ms, resting buys sent at 3.0 and 3.7 ms; (order, exch_ts, local_ts)
    of each answer."""
    path = tmp_path / "report_latency.csv"
    path.write_text(f"ts_ns,response_ns,report,venue,stamp_ns\n{report_line}\n")
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 400_000, "report_file": str(path)}})
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5), (50 * MS, DELTA, SELL, 10_020, 1)],
                     configs={"sim": cfg})
    drain(core, 2_600_000)
    core.submit(1, 0, BUY, LIMIT, GTC, 10_010, 1, False, 0, 2_600_000)
    core.submit(2, 0, BUY, LIMIT, GTC, 9_980, 1, False, 0, 3_000_000)
    core.submit(3, 0, BUY, LIMIT, GTC, 9_970, 1, False, 0, 3_700_000)
    return [(int(w.record["order_no"]), int(w.record["exch_ts"]), int(w.record["local_ts"]))
            for w in drain(core, 20 * MS) if w.kind == WakeKind.ORDER]


def test_a_report_within_a_records_millisecond_arrives_when_the_session_received_it(tmp_path):
    """Report venue times in whole ms (a file without stamp_ns: ccxt's default), so a record
    at 3 ms stands for [3, 4) ms: the session received a report stamped 3 ms at 3 + 5 = 8
    ms. Entry 0.4 ms: a buy crossing the ask sent at 2.6 ms is produced at 3.0 ms (ack,
    fill) -> 8 ms; a resting buy sent at 3.0 ms is acked at 3.4 ms, still within the
    record's millisecond -> 8 ms too (the latest at or before 3.4 ms is the same record;
    before the fix 3.4 + 5 = 8.4 ms); one sent at 3.7 ms is acked at 4.1 ms, past it -> 4.1
    + 5 = 9.1 ms (the record's latency)."""
    got = _three_buys(tmp_path, f"{3 * MS},{5 * MS},filled,sim,{MS}")
    assert got == [(1, 3 * MS, 8 * MS), (1, 3 * MS, 8 * MS), (2, 3_400_000, 8 * MS), (3, 4_100_000, 9_100_000)]
    assert _three_buys(tmp_path, f"{3 * MS},{5 * MS},filled,sim") == got  # no column: ms


def test_a_microsecond_report_stands_for_its_microsecond_only(tmp_path):
    """The same case with the record stamped in µs (stamp_ns 1000, a session that asked
    Binance for µs): the record at 3 ms stands for [3 ms, 3 ms + 1 µs). The buy produced at
    3.0 ms is within it -> the receipt, 8 ms; the ack produced at 3.4 ms is past it -> 3.4 +
    5 = 8.4 ms (its own latency, not the receipt of a report 0.4 ms older); the one at
    4.1 ms -> 9.1 ms."""
    got = _three_buys(tmp_path, f"{3 * MS},{5 * MS},filled,sim,1000")
    assert got == [(1, 3 * MS, 8 * MS), (1, 3 * MS, 8 * MS), (2, 3_400_000, 8_400_000), (3, 4_100_000, 9_100_000)]


def test_requests_of_one_time_take_the_recorded_entries_in_turn(tmp_path):
    """Two submits and two cancels recorded at 1000 (seq gives the send order: the file has
    them in reply order); a backtest's requests at 1000 take them in turn per command; a
    third submit at 1000, a lookup, and a request at another time are interpolated."""
    path = tmp_path / "latency.csv"
    path.write_text("ts_ns,entry_ns,response_ns,command,seq\n"
                    "1000,70,5,cancel,1\n"
                    "1000,21,5,submit,4\n"  # the second submit's reply came first
                    "1000,7,5,submit,2\n"
                    "1000,9,5,cancel,3\n"
                    "3000,40,5,submit,5\n")
    turn = recorded_requests_in_turn(str(path))
    assert turn.tolist() == [[1000, RQ_SUBMIT, 7], [1000, RQ_SUBMIT, 21], [1000, RQ_CANCEL, 70],
                             [1000, RQ_CANCEL, 9], [3000, RQ_SUBMIT, 40]]
    p = recorded_params(load_recorded_latency(path), turn)
    state = np.zeros(4, dtype=np.int64)  # [last send time, requests of each kind sent at it]
    entries = [int(recorded.entry(kind, 1000, p, state))
               for kind in (RQ_SUBMIT, RQ_CANCEL, RQ_SUBMIT, RQ_CANCEL, RQ_SUBMIT, RQ_QUERY)]
    # the third submit and the lookup at 1000 are interpolated: the last record of 1000
    # in file order (entry 9) and the next, 40 at 3000, at 1000 itself: 9
    assert entries == [7, 70, 21, 9, 9, 9]
    # at 2000 nothing is recorded: 9 + (40 - 9) * 1000 // 2000 = 24; at 3000 the submit's own
    assert [int(recorded.entry(RQ_SUBMIT, t, p, state)) for t in (2000, 3000, 3000)] == [24, 40, 40]
    # through the venue: the two submits of 1000 arrive at 1007 and 1021
    cfg = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": str(path)}})
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5), (5_000, DELTA, SELL, 10_020, 1)],
                     configs={"sim": cfg})
    drain(core, 1000)
    core.submit(1, 0, BUY, LIMIT, GTC, 9_980, 1, False, 0, 1000)
    core.submit(2, 0, BUY, LIMIT, GTC, 9_970, 1, False, 0, 1000)
    acks = [w for w in drain(core, 2000) if w.kind == WakeKind.ORDER]
    assert [int(w.record["exch_ts"]) for w in acks] == [1007, 1021]


def test_recorded_requests_of_different_orders_overtake_each_other_as_in_the_session(tmp_path):
    """A session's decision at 1000 sent a submit (seq 1, entry 30) and then a cancel of
    another order (seq 2, entry 5): on their own connections the cancel reached the venue
    first, at 1005. The recorded model gives each its own entry and lets the cancel
    overtake: order 1 (resting since 600) is cancelled at 1005 and the submit of order 2
    arrives at 1030 (the per-venue order of the other models would have held the cancel
    until 1030). One order's requests keep their order: at 2000 order 3 is submitted
    (entry 30: 2030) and cancelled at once (entry 5): its cancel arrives with it, at 2030.
    The constant model keeps the venue's order: a cancel after a submit waits for it."""
    path = tmp_path / "latency.csv"
    path.write_text("ts_ns,entry_ns,response_ns,command,seq\n"
                    "400,200,5,submit,1\n"
                    "1000,30,5,submit,2\n"
                    "1000,5,5,cancel,3\n"
                    "2000,30,5,submit,4\n"
                    "2000,5,5,cancel,5\n")
    def run(latency: dict, with_order_3: bool) -> list[tuple[int, int, int]]:
        core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5),
                          (9_000, DELTA, SELL, 10_020, 1)], configs={"sim": SimVenueConfig.from_table("sim", latency)})
        drain(core, 400)
        core.submit(1, 0, BUY, LIMIT, GTC, 9_980, 1, False, 0, 400)
        wakes = drain(core, 1000)
        core.submit(2, 0, BUY, LIMIT, GTC, 9_970, 1, False, 0, 1000)
        core.cancel(1, 1000)
        wakes += drain(core, 2000)
        if with_order_3:
            core.submit(3, 0, BUY, LIMIT, GTC, 9_960, 1, False, 0, 2000)
            core.cancel(3, 2000)
        wakes += drain(core, 8000)
        got = [(int(w.record["order_no"]), int(w.record["kind"]), int(w.record["exch_ts"]))
               for w in wakes if w.kind == WakeKind.ORDER]
        return [g for g in got if g[2] > 600]

    ack, cancelled = int(OrderEventKind.ACK), int(OrderEventKind.CANCELLED)
    assert run({"latency": {"model": "recorded", "file": str(path)}}, True) == [
        (1, cancelled, 1005), (2, ack, 1030), (3, ack, 2030), (3, cancelled, 2030)]
    assert run({"latency": {"entry_ns": 30, "response_ns": 5}}, False) == [(2, ack, 1030), (1, cancelled, 1030)]
