"""Feed perturbations: hand-computed maps, and properties of the perturbed stream.

Properties (hypothesis): whatever perturbations a scenario composes, the feed stays valid
(local time sorted, no negative quantity, no price <= 0, the book never crossed) unless the
scenario asks for invalid data, and the output does not depend on the source's chunk size.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from replay.book import BookScanner
from replay.synthetic import DEFAULT_START_NS, generate
from scenarios import apply_perturbations
from scenarios.perturbations import (
    DataGap,
    LiquidityDrought,
    PriceShock,
    PumpAndDump,
    SpreadBlowout,
    StaleFeed,
)

S = 1_000_000_000
INST = load_instruments(None)["binance:BTC/USDT"]
ETH = load_instruments(None)["binance:ETH/USDT"]
D, T, SB, SE = (int(EventKind.BOOK_DELTA), int(EventKind.TRADE), int(EventKind.SNAPSHOT_BEGIN),
                int(EventKind.SNAPSHOT_END))


def rows(*spec) -> np.ndarray:
    """(local_ts, kind, side, price, qty[, instrument]) tuples -> events (exch_ts = local_ts)."""
    out = np.zeros(len(spec), dtype=EVENT_DTYPE)
    for i, r in enumerate(spec):
        out[i]["exch_ts"] = out[i]["local_ts"] = r[0]
        out[i]["kind"], out[i]["side"], out[i]["price"], out[i]["qty"] = r[1:5]
        out[i]["instrument"] = r[5] if len(r) > 5 else 0
    return out


def tiny_book() -> np.ndarray:
    """A book 100x5 / 99x3 | 102x4 / 103x1 (mid 101) at t=0, then a few rows."""
    return rows((0, SB, 0, 0, 0), (0, D, 1, 100, 5), (0, D, 1, 99, 3), (0, D, -1, 102, 4),
                (0, D, -1, 103, 1), (0, SE, 0, 0, 0),
                (1 * S, D, 1, 100, 6), (3 * S, T, 1, 102, 2), (3 * S, D, -1, 102, 2),
                (5 * S, D, 1, 98, 7), (7 * S, T, -1, 100, 1))


def run(chunks, perturbations, instruments=(INST,), allow_invalid=False) -> np.ndarray:
    out = list(apply_perturbations(iter(chunks), list(instruments), perturbations, allow_invalid=allow_invalid))
    return np.concatenate(out) if out else np.zeros(0, dtype=EVENT_DTYPE)


def as_tuples(events: np.ndarray) -> list[tuple]:
    return [(int(r["local_ts"]), int(r["kind"]), int(r["side"]), int(r["price"]), int(r["qty"])) for r in events]


def test_price_shock_republishes_the_shifted_thinned_book_and_maps_later_rows():
    # -10 % of the reference mid 101 = -10.1 -> -10 ticks; liquidity x0.5; a step at 2 s, no recovery
    shock = PriceShock(at="2s", fall="1s", move_pct=-10, hold="10s", recover_pct=0, liquidity=0.5, step="1s")
    out = as_tuples(run([tiny_book()], [shock]))
    assert out[:7] == as_tuples(tiny_book()[:7])  # before the shock: untouched
    # at 2 s (start of the fall: level 0 of the path) nothing changes; at 3 s the full move:
    # snapshot of the original book as of then (bid 100 is now 6), shifted -10, qty halved
    # (rounded down, >= 1 lot); then the rows at 3 s mapped the same way
    assert out[7:14] == [(3 * S, SB, 0, 0, 0), (3 * S, D, 1, 90, 3), (3 * S, D, 1, 89, 1), (3 * S, D, -1, 92, 2),
                         (3 * S, D, -1, 93, 1), (3 * S, SE, 0, 0, 0), (3 * S, T, 1, 92, 2)]
    assert out[14:] == [(3 * S, D, -1, 92, 1), (5 * S, D, 1, 88, 3), (7 * S, T, -1, 90, 1)]


def test_spread_blowout_moves_each_side_away_and_pump_scales_trades():
    blow = SpreadBlowout(at="2s", spread_bps=1000, hold="20s")  # 1000 bps of 101 = 10.1 -> 10 ticks: -5 / +5
    pump = PumpAndDump(at="2s", ramp="1s", rise_pct=0.0, collapse="20s", volume=3)
    out = as_tuples(run([tiny_book()], [blow, pump]))
    snap = [r for r in out if r[0] == 2 * S]
    assert snap[:5] == [(2 * S, SB, 0, 0, 0), (2 * S, D, 1, 95, 6), (2 * S, D, 1, 94, 3), (2 * S, D, -1, 107, 4),
                        (2 * S, D, -1, 108, 1)]
    trades = [r for r in out if r[1] == T]
    assert trades == [(3 * S, T, 1, 107, 6), (7 * S, T, -1, 95, 3)]  # buy lifts the ask side; qty x3


def test_crossing_the_book_is_refused_unless_the_scenario_allows_it():
    narrow = SpreadBlowout(at="2s", spread_bps=-1000, hold="20s")  # bids +5, asks -5 ticks: crossed
    with pytest.raises(ConfigError, match="cross the book"):
        run([tiny_book()], [narrow])
    out = run([tiny_book()], [SpreadBlowout(at="2s", spread_bps=-1000, hold="20s")], allow_invalid=True)
    scanner = BookScanner()
    book = out[out["kind"] != T]
    _end, _top, crossed = scanner.scan(book)
    assert crossed.any()


def test_stale_feed_delays_local_time_only_and_keeps_order():
    stale = StaleFeed(at="1s", duration="4s")
    out = run([tiny_book()], [stale])
    src = tiny_book()
    moved = (src["local_ts"] >= 1 * S) & (src["local_ts"] < 5 * S)
    assert sorted(out["exch_ts"].tolist()) == sorted(src["exch_ts"].tolist())  # nothing lost
    assert (out["local_ts"][np.isin(out["exch_ts"], src["exch_ts"][moved])] >= 5 * S).all()
    assert (np.diff(out["local_ts"]) >= 0).all()
    # the delayed rows come first at 5 s, in source order, then the row stamped 5 s
    assert as_tuples(out)[6:10] == [(5 * S, D, 1, 100, 6), (5 * S, T, 1, 102, 2), (5 * S, D, -1, 102, 2),
                                    (5 * S, D, 1, 98, 7)]


@pytest.mark.parametrize("backfill", [False, True])
def test_data_gap_drops_the_window_then_resyncs_the_true_book(backfill):
    gap = DataGap(at="1s", duration="5s", backfill=backfill)
    out = as_tuples(run([tiny_book()], [gap]))
    after = [r for r in out if r[0] == 6 * S]
    # the book at 6 s: bids 100x6, 99x3, 98x7; asks 102x2, 103x1
    assert after[:7] == [(6 * S, SB, 0, 0, 0), (6 * S, D, 1, 100, 6), (6 * S, D, 1, 99, 3), (6 * S, D, 1, 98, 7),
                         (6 * S, D, -1, 102, 2), (6 * S, D, -1, 103, 1), (6 * S, SE, 0, 0, 0)]
    assert after[7:] == ([(6 * S, T, 1, 102, 2)] if backfill else [])
    assert [r for r in out if S <= r[0] < 6 * S] == []


def test_instrument_filter_perturbs_one_instrument_only():
    two = np.concatenate([tiny_book(), tiny_book()])
    two["instrument"][len(tiny_book()):] = 1
    two = two[np.argsort(two["local_ts"], kind="stable")]
    shock = PriceShock(at="2s", fall="1s", move_pct=-10, hold="10s", recover_pct=0, instrument="binance:ETH/USDT",
                       step="1s")
    out = run([two], [shock], instruments=(INST, ETH))
    assert as_tuples(out[out["instrument"] == 0]) == as_tuples(tiny_book())
    assert (out[(out["instrument"] == 1) & (out["kind"] == T)]["price"] == [92, 90]).all()
    assert (np.diff(out["local_ts"]) >= 0).all()


# -- properties on the synthetic generator ------------------------------------------------------

_BASE_CACHE: dict[int, np.ndarray] = {}


def synthetic(seed: int) -> np.ndarray:
    if seed not in _BASE_CACHE:
        _BASE_CACHE[seed] = np.concatenate(list(generate([INST], seed, DEFAULT_START_NS, 40 * S, chunk_rows=1 << 14)))
    return _BASE_CACHE[seed]


def seconds(lo: int, hi: int):
    return st.integers(lo, hi).map(lambda s: f"{s}s")


perturbation = st.one_of(
    st.builds(PriceShock, at=seconds(1, 30), fall=seconds(1, 10), move_pct=st.integers(-99, 300),
              hold=seconds(0, 5), recover=seconds(0, 10), recover_pct=st.integers(0, 100),
              liquidity=st.sampled_from([0, 0.01, 0.5, 1]), spread_bps=st.integers(0, 1000),
              step=st.sampled_from(["250ms", "1s"])),
    st.builds(PumpAndDump, at=seconds(1, 30), ramp=seconds(1, 10), rise_pct=st.integers(0, 300),
              collapse=seconds(1, 10), end_pct=st.integers(-50, 10), volume=st.sampled_from([1, 13.5, 148]),
              spoof_depth=st.sampled_from([1, 5])),
    st.builds(SpreadBlowout, at=seconds(1, 30), spread_bps=st.integers(0, 2000), widen=seconds(0, 5),
              hold=seconds(0, 5), recover=seconds(0, 5), depth=st.sampled_from([0.02, 1])),
    st.builds(LiquidityDrought, at=seconds(1, 30), depth=st.sampled_from([0, 0.02, 0.5]), hold=seconds(1, 10),
              ramp=seconds(0, 5), side=st.sampled_from(["both", "bid", "ask"])),
    st.builds(StaleFeed, at=seconds(1, 30), duration=seconds(1, 15)),
    st.builds(DataGap, at=seconds(1, 30), duration=seconds(1, 15), backfill=st.booleans()),
)


def chunked(events: np.ndarray, size: int):
    return [events[i:i + size] for i in range(0, len(events), size)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2), specs=st.lists(perturbation, min_size=1, max_size=4),
       chunk=st.sampled_from([997, 20_000]))
def test_perturbed_feed_stays_valid_and_chunking_does_not_matter(seed, specs, chunk):
    base = synthetic(seed)
    fresh = copy.deepcopy(specs)
    out = run(chunked(base, chunk), specs)
    assert len(out) > 0
    assert (np.diff(out["local_ts"]) >= 0).all()
    assert (out["qty"] >= 0).all()
    priced = (out["kind"] == D) | (out["kind"] == T)
    assert (out["price"][priced] > 0).all()
    assert (out["exch_ts"] <= out["local_ts"]).all()
    book = out[out["kind"] != T]
    _end, _top, crossed = BookScanner().scan(book)
    assert not crossed.any()
    # same scenario, one chunk: identical rows (perturbations are rebuilt: they hold state)
    again = run([base], fresh)
    assert np.array_equal(again, out)


def test_a_perturbation_after_the_data_ends_is_refused():
    """The tiny book's last row is at 7 s: a shock `at` 30 s would change nothing and the
    cell would pass on an unperturbed run; one at 7 s still acts on that last row."""
    late = PriceShock(at="30s", fall="1s", move_pct=-10, hold="10s", recover_pct=0, liquidity=0.5, step="1s")
    with pytest.raises(ConfigError, match=r"perturbation #2 \(PriceShock\) starts at \+30 s, after the data's "
                                          r"last row at \+7 s: it would change nothing"):
        run([tiny_book()], [StaleFeed(at="1s", duration="1s"), late])
    edge = PriceShock(at="7s", fall="1s", move_pct=-10, hold="10s", recover_pct=0, liquidity=0.5, step="1s")
    assert len(run([tiny_book()], [edge])) >= len(tiny_book())
