"""Refusal windows of the `recorded` latency (venues/sim/latency.py refusal_windows,
latency_nb.time_requests_nb, core_nb): a submit the session saw refused (no venue time:
its line in latency.csv carries the bounds of its entry) reaches the backtest's venue at
the first moment of its window at which the venue refuses it, every 10 us; at the
window's end when there is none; its answer reaches the strategy when the session's reply
did. Hand-computed times (ns)."""

from __future__ import annotations

import re

import pytest
from sim_helpers import BUY, DELTA, SELL, drain, make_core

from engine.errors import ConfigError
from engine.types import OrderEventKind, OrderType, TimeInForce
from venues.sim import SimVenueConfig, WakeKind
from venues.sim.latency import refusal_windows

LIMIT, GTC, GTX = int(OrderType.LIMIT), int(TimeInForce.GTC), int(TimeInForce.GTX)
ACK, REJECTED = int(OrderEventKind.ACK), int(OrderEventKind.REJECTED)
CANCELLED, CANCEL_REJECTED = int(OrderEventKind.CANCELLED), int(OrderEventKind.CANCEL_REJECTED)
HEADER = "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns\n"
T = 1_000_000  # the decision's time: two submits sent at 1 ms


def _latency_csv(tmp_path, hi: int = 400_000):
    """Submit seq 1 (turn 0) acknowledged with a venue time, entry 50 us; submit seq 2
    (turn 1) refused: estimate 100 us, replied at 450 us (response 350 us: a reply read
    late), bounds [20 us, hi]; a cancel with no bounds."""
    path = tmp_path / "latency.csv"
    path.write_text(HEADER + f"{T},50000,5000,submit,1,sim,,\n"
                             f"{T},100000,350000,submit,2,sim,20000,{hi}\n"
                             f"{T},70000,5000,cancel,3,sim,,\n")
    return path


def _run(path, cross_at: int, *, windows: bool = True, post: bool = True, second: bool = True,
         first_post: bool = True):
    """Bid 9_990, ask 10_010 from 100 ns; an ask at 10_000 appears at `cross_at` and goes
    1 ms later. Order 1 (post-only buy at 9_980) and order 2 (a buy at 10_000: post-only
    unless `post` is False) sent at T. Returns the reports (order, kind, exch_ts, local_ts)."""
    latency = {"model": "recorded", "file": str(path)}
    if not windows:
        latency["refusal_windows"] = False
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5),
                      (cross_at, DELTA, SELL, 10_000, 3), (cross_at + 1_000_000, DELTA, SELL, 10_000, 0),
                      (9_000_000, DELTA, SELL, 10_020, 1)],
                     configs={"sim": SimVenueConfig.from_table("sim", {"latency": latency})})
    drain(core, T)
    core.submit(1, 0, BUY, LIMIT, GTX if first_post else GTC, 9_980, 1, first_post, 0, T)
    if second:
        core.submit(2, 0, BUY, LIMIT, GTX if post else GTC, 10_000, 1, post, 0, T)
    wakes = drain(core, 8_000_000)
    got = [(int(w.record["order_no"]), int(w.record["kind"]), int(w.record["exch_ts"]), int(w.record["local_ts"]))
           for w in wakes if w.kind == WakeKind.ORDER]
    return got


def test_the_windows_are_the_refused_submits_in_turn(tmp_path):
    assert refusal_windows(str(_latency_csv(tmp_path))).tolist() == [[T, 1, 20_000, 400_000, 450_000]]


def test_a_refused_submit_is_refused_at_the_first_crossing_in_its_window(tmp_path):
    """Window [T + max(20 us, the model's least entry 50 us), T + 400 us] = [1.05, 1.4] ms:
    the venue looks at 1.05, 1.06, ... ms; the ask at 10_000 comes at 1.205 ms, so the
    first look that sees it is 1.21 ms: refused there (post_only_would_cross), the answer
    at the session's reply, T + 450 us. Order 1, turn 0, is not in a window: acknowledged
    at T + 50 us, answered 5 us later (the model's response)."""
    got = _run(_latency_csv(tmp_path), cross_at=1_205_000)
    assert got[:2] == [(1, ACK, 1_050_000, 1_055_000), (2, REJECTED, 1_210_000, 1_450_000)]


def test_without_windows_the_estimate_is_the_arrival(tmp_path):
    """latency.refusal_windows = false: order 2 arrives at its estimate, T + 100 us, before
    the ask came down: it rests (acknowledged), as before session 10; answered by the
    model's response leg at 1.1 ms (the records' mean around it: (5 + 350) / 2 = 177.5 us,
    rounded down)."""
    got = _run(_latency_csv(tmp_path), cross_at=1_205_000, windows=False)
    assert [g[:3] for g in got[:2]] == [(1, ACK, 1_050_000), (2, ACK, 1_100_000)]


def test_no_crossing_in_the_window_arrives_at_its_end(tmp_path):
    """The ask comes at 1.5 ms, after the window's end (1.4 ms): order 2 arrives at 1.4 ms
    and rests (the venue cannot reproduce the refusal); its acknowledgement is answered at
    the session's reply time, 1.45 ms."""
    got = _run(_latency_csv(tmp_path), cross_at=1_500_000)
    assert got[:2] == [(1, ACK, 1_050_000, 1_055_000), (2, ACK, 1_400_000, 1_450_000)]


def test_an_order_that_crosses_at_once_is_refused_at_the_windows_start(tmp_path):
    """The ask at 10_000 is there from 0.9 ms: refused at the window's first look, 1.05 ms."""
    got = _run(_latency_csv(tmp_path), cross_at=900_000)
    assert got[:2] == [(1, ACK, 1_050_000, 1_055_000), (2, REJECTED, 1_050_000, 1_450_000)]


def test_only_post_only_orders_take_a_window(tmp_path):
    """Order 2 as a plain limit buy in the same turn: no window (a refusal of another kind
    says nothing about the book); it arrives at the estimate, 1.1 ms."""
    got = _run(_latency_csv(tmp_path), cross_at=1_205_000, post=False)
    assert [g[:3] for g in got[:2]] == [(1, ACK, 1_050_000), (2, ACK, 1_100_000)]


def test_bad_bounds_are_named(tmp_path):
    path = tmp_path / "latency.csv"
    path.write_text(HEADER + f"{T},100000,5000,submit,2,sim,30000,20000\n")
    with pytest.raises(ConfigError, match=re.escape("latency.csv:2: entry_min_ns 30000 and entry_max_ns 20000")):
        SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": str(path)}})
    for line, message in [
            (f"{T},100000,5000,submit,2,sim,30000,", "entry_max_ns '': expected an integer (both bounds or neither)"),
            (f"{T},100000,5000,submit,2,sim,x,40000", "entry_min_ns 'x': expected an integer"),
            (f"{T},100000,5000,cancel,2,sim,0,40000", "entry_min_ns,entry_max_ns on a cancel command"),
            (f"{T},100000,5000,submit,2,sim,0,105001", "entry_max_ns 105001 beyond the round trip"),
            (f"{T},100000,5000,submit,2,sim,0", "7 fields: expected ts_ns,entry_ns,response_ns"),
            (f"{T},100000,5000,sbumit,2,sim,,", "command 'sbumit': expected one of submit, cancel, amend"),
            (f"{T},100000,5000,submit,x,sim,,", "seq 'x': expected a whole number"),
            (f"{T},-1,5000,submit,2,sim,,", "entry_ns -1: negative latency")]:
        path.write_text(HEADER + line + "\n")
        with pytest.raises(ConfigError, match=re.escape(f"latency.csv:2: {message}")):
            SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": str(path)}})
    with pytest.raises(ConfigError, match="latency.refusal_windows = 'yes': expected true or false"):
        SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": str(_latency_csv(tmp_path)),
                                                      "refusal_windows": "yes"}})
    with pytest.raises(ConfigError, match="latency.refusal_windows is only used with latency.model = 'recorded'"):
        SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 5, "refusal_windows": True}})


def test_every_submit_takes_its_turn(tmp_path):
    """Order 1 as a plain limit buy (no window of its own) still takes turn 0 of the send
    time, as the file counts every submit: the post-only order 2, sent second, takes turn
    1's window and is refused at 1.21 ms as above. (A strategy sending a taker and a maker
    order at one moment lost its windows when only post-only submits were counted.)"""
    got = _run(_latency_csv(tmp_path), cross_at=1_205_000, first_post=False)
    assert got[:2] == [(1, ACK, 1_050_000, 1_055_000), (2, REJECTED, 1_210_000, 1_450_000)]


def test_a_cancel_in_the_window_closes_it(tmp_path):
    """A post-only buy at 9_980 (never crossing) with the window [T + 70 us, T + 400 us]
    (70 us: the model's least entry, the cancel's), book rows changing inside it; its cancel
    sent at T + 100 us arrives at T + 170 us, inside the window. One order's requests keep
    their order: the submit is taken there (acknowledged at 1.17 ms, answered by the
    model's response leg, 5 us, not at the session's reply) and the cancel 1 ns after it
    cancels the order (answered 5 us later). Before, the cancel was refused (unknown order) and the
    submit rested at the window's end, an order the strategy had cancelled left live."""
    path = tmp_path / "latency.csv"
    path.write_text(HEADER + f"{T},100000,350000,submit,1,sim,20000,400000\n"
                             f"{T + 100_000},70000,5000,cancel,2,sim,,\n")
    core = make_core([(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5),
                      (1_100_000, DELTA, SELL, 10_005, 2), (1_250_000, DELTA, SELL, 10_005, 0),
                      (9_000_000, DELTA, SELL, 10_020, 1)],
                     configs={"sim": SimVenueConfig.from_table(
                         "sim", {"latency": {"model": "recorded", "file": str(path)}})})
    drain(core, T)
    core.submit(1, 0, BUY, LIMIT, GTX, 9_980, 1, True, 0, T)
    drain(core, T + 100_000)
    core.cancel(1, T + 100_000)
    got = [(int(w.record["kind"]), int(w.record["exch_ts"]), int(w.record["local_ts"]))
           for w in drain(core, 8_000_000) if w.kind == WakeKind.ORDER]
    assert got == [(ACK, 1_170_000, 1_175_000), (CANCELLED, 1_170_001, 1_175_001)]


S = 1_000_000_000
BIG_HI = 10 * S  # a 10 s window: a million 10 us looks


def _big_window(tmp_path, cross_at: int, cancel_at: int | None = None):
    """Order 2 (post-only buy at 10_000) refused in the session with the window
    [T + 20 us, T + 10 s] (the session's reply at T + 100 us + 10.1 s). Inside the window:
    a non-crossing ask at 10_005 (2 s to 2.5 s), a flash of the crossing ask 10_000 shorter
    than a look's step (5.000001 s to 5.000005 s, between the looks at 5.00000 and 5.00001
    s), then the crossing ask from `cross_at`. Returns order 2's reports."""
    path = tmp_path / "latency.csv"
    path.write_text(HEADER + f"{T},50000,5000,submit,1,sim,,\n"
                             f"{T},100000,{BIG_HI + 100_000},submit,2,sim,20000,{BIG_HI}\n"
                             f"{T + 100_000},70000,5000,cancel,3,sim,,\n")
    rows = [(100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5),
            (2 * S + 7, DELTA, SELL, 10_005, 2), (2 * S + 500_000_001, DELTA, SELL, 10_005, 0),
            (5 * S + 1_000, DELTA, SELL, 10_000, 1), (5 * S + 5_000, DELTA, SELL, 10_000, 0),
            (cross_at, DELTA, SELL, 10_000, 3), (cross_at + S, DELTA, SELL, 10_000, 0),
            (12 * S, DELTA, SELL, 10_020, 1)]
    core = make_core(sorted(rows), configs={"sim": SimVenueConfig.from_table(
        "sim", {"latency": {"model": "recorded", "file": str(path)}})})
    drain(core, T)
    core.submit(1, 0, BUY, LIMIT, GTX, 9_980, 1, True, 0, T)
    core.submit(2, 0, BUY, LIMIT, GTX, 10_000, 1, True, 0, T)
    wakes = []
    if cancel_at is not None:
        wakes += drain(core, cancel_at)
        core.cancel(2, cancel_at)
    wakes += drain(core, 11 * S)
    return [(int(w.record["kind"]), int(w.record["exch_ts"]), int(w.record["local_ts"]))
            for w in wakes if w.kind == WakeKind.ORDER and int(w.record["order_no"]) == 2]


def test_a_big_window_gives_the_looks_of_the_10_us_grid(tmp_path):
    """The looks are the grid T + 50 us + k x 10 us (the window's start: the least entry,
    50 us, above the 20 us bound), i.e. every multiple of 10 us. The ask at 10_005 never
    crosses; the flash at 5.000001-5.000005 s falls between two looks and is not seen; the
    crossing ask from 7.000003333 s is seen by the first look at or after it, 7.00001 s:
    refused there, answered at the session's reply, T + 100 us + 10.1 s. The looks jump
    from one change of the book to the next (window_next_look_nb) and give exactly what
    stepping every 10 us gave (a 10 s window took ~1 us per look: 47 s for a third of the
    submits of a session; now a few looks per book change)."""
    reply = T + 100_000 + BIG_HI + 100_000
    assert _big_window(tmp_path, cross_at=7 * S + 3_333) == [(REJECTED, 7 * S + 10_000, reply)]
    # a crossing on a look exactly: refused at that look (the row goes before the look)
    assert _big_window(tmp_path, cross_at=8 * S) == [(REJECTED, 8 * S, reply)]
    # no crossing in the window (it ends at T + 10 s): taken at its end, where it rests
    assert _big_window(tmp_path, cross_at=11 * S + 1) == [(ACK, T + BIG_HI, reply)]


def test_a_cancel_sent_late_in_a_big_window_closes_it_where_it_arrives(tmp_path):
    """The strategy cancels order 2 at 3 s (a request sent long after the look that found no
    crossing): the cancel arrives at 3 s + 70 us (its recorded entry) and closes the window
    there; the submit is taken then (acknowledged) and cancelled 1 ns after it. A look that
    jumped past 3 s would have taken the submit after its cancel. Both answers reach the
    strategy at 5.0011025 s: a venue's responses never overtake its previous one
    (latency_nb: VF_LAST_RESP), and order 1's acknowledgement at 1.05 ms took the mean of
    the response legs recorded around it, (5 us + 10.1 s) / 2 = 5.0000525 s."""
    held = 1_050_000 + (5_000 + BIG_HI + 100_000) // 2
    assert held == 5_001_102_500
    got = _big_window(tmp_path, cross_at=7 * S + 3_333, cancel_at=3 * S)
    assert got == [(ACK, 3 * S + 70_000, held), (CANCELLED, 3 * S + 70_001, held)]
