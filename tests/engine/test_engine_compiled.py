"""Compiled strategies: the numba fast path and the Python adapter give the same run.

The parity test is the proof behind README "Compiled strategies": one compiled market maker, one
synthetic feed, run once through the numba loop + session replay (the default for a
`CompiledStrategy`) and once as a plain `Strategy` through `modes.backtest._drive`
(`CompiledStrategy.fast_path = False`); every output file must be byte-for-byte equal.
"""

import hashlib
from decimal import Decimal

import numpy as np
import pyarrow.parquet as pq
import pytest
from numba import njit

from engine import compiled as cc
from engine.compiled import CompiledAdapter, CompiledStrategy, as_strategy
from engine.errors import StrategyError
from engine.risk import RiskConfig
from engine.strategy import Strategy
from engine.types import load_instruments
from modes.cli import main

EXAMPLE = "examples/compiled_market_maker.py:CompiledTouchQuoter"
RISK = """
[risk]
max_order_notional = 50000
max_position = 0.03
price_band_bps = 200
max_orders_per_second = 25
"""


def _config(tmp_path, root, risk: str = RISK, data: str = "synthetic:5:2m") -> str:
    path = tmp_path / "run.toml"
    path.write_text(f"""
[run]
strategy = "{root / EXAMPLE.split(':')[0]}:{EXAMPLE.split(':')[1]}"
data = "{data}"
seed = 3
[run.params]
qty = "0.01"
every_ms = 100
[venues.binance]
queue_model = "risk_averse"
latency = {{ entry_ns = 1000000, response_ns = 1000000, feed_ns = 0 }}
maker_fee_bps = -0.5
taker_fee_bps = 7.0
balances = {{ USDT = "1000000", BTC = "10" }}
{risk}
""")
    return str(path)


def _run(config: str, out) -> None:
    assert main(["backtest", "--config", config, "--out", str(out), "--no-report"]) == 0


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    root = request.config.rootpath
    tmp = tmp_path_factory.mktemp("compiled")
    config = _config(tmp, root)
    _run(config, tmp / "fast")
    mp = pytest.MonkeyPatch()
    # the loop's order rows (engine.order_state_nb) start with room for one timer's actions
    # and double on CS_NEED_ROWS: the outputs must not change
    mp.setattr("modes.backtest_compiled.ORDER_ROWS", 65)
    try:
        _run(config, tmp / "fast2")
    finally:
        mp.undo()
    mp.setattr(CompiledStrategy, "bulk_books", False)  # the fast path booked one event at a time
    try:
        _run(config, tmp / "per_event")
    finally:
        mp.undo()
    mp.setattr(CompiledStrategy, "fast_path", False)
    try:
        _run(config, tmp / "python")
    finally:
        mp.undo()
    return tmp


OUTPUTS = ("orders.parquet", "fills.parquet", "equity.parquet", "inventory.parquet", "bbo.parquet",
           "trades.parquet", "audit.jsonl")


@pytest.mark.parametrize("name", OUTPUTS)
def test_fast_path_equals_python_adapter(runs, name):
    fast, python = runs / "fast" / name, runs / "python" / name
    if name.endswith(".parquet"):
        assert pq.read_table(fast).equals(pq.read_table(python))
    assert _sha(fast) == _sha(python)
    assert _sha(runs / "per_event" / name) == _sha(python)


def test_fast_path_booked_in_bulk_and_summaries_agree(runs):
    import json

    def summary(name):
        run = json.loads((runs / name / "summary.json").read_text())["run"]
        for key in ("id", "wall_seconds", "events_per_second", "compiled_bookkeeping"):
            run.pop(key, None)
        return run

    fast = json.loads((runs / "fast" / "summary.json").read_text())["run"]
    assert fast["compiled_bookkeeping"] == "bulk"
    per_event = json.loads((runs / "per_event" / "summary.json").read_text())["run"]
    assert per_event["compiled_bookkeeping"] == "per event: CompiledStrategy.bulk_books is False"
    assert summary("fast") == summary("per_event") == summary("python")  # ledger, risk refusals, audit head
    assert main(["audit", "verify", str(runs / "fast" / "audit.jsonl")]) == 0


def test_parity_run_trades_and_hits_risk_limits(runs):
    orders = pq.read_table(runs / "fast" / "orders.parquet").to_pylist()
    fills = pq.read_table(runs / "fast" / "fills.parquet").to_pylist()
    reasons = {o["reason"] for o in orders if o["status"] == "rejected"}
    assert len(fills) > 50
    assert "max_position" in reasons  # the compiled path refused, like the Python one
    position = Decimal(0)
    for fill in fills:
        position += Decimal(fill["qty"]) * (1 if fill["side"] == "buy" else -1)
        assert abs(position) <= Decimal("0.03")


def test_fast_path_is_deterministic(runs):
    """Run twice (the second with order rows grown from 65 while it ran): the same bytes."""
    assert pq.read_metadata(runs / "fast2" / "orders.parquet").num_rows > 4 * 65
    for name in ("orders.parquet", "fills.parquet", "audit.jsonl"):
        assert _sha(runs / "fast" / name) == _sha(runs / "fast2" / name)


@njit(cache=True)
def _greedy_nb(ctx, params, state):
    # buys at the ask every wake: only risk stops it
    if cc.best_ask_qty(ctx, 0) > 0:
        cc.submit(ctx, 0, cc.BUY, params[0], cc.best_ask(ctx, 0), cc.IOC, False)


class _Greedy(CompiledStrategy):
    timer_nb = _greedy_nb
    every_ns = 50_000_000

    def setup(self, instruments):
        return np.array([instruments[0].qty_to_lots(Decimal("0.01"))], dtype=np.int64)


def test_risk_is_enforced_inside_the_numba_loop():
    from modes.backtest_compiled import run_on_core
    from replay import open_source
    from venues.sim import SimCore, SimVenueConfig

    inst = load_instruments(None)["binance:BTC/USDT"]
    chunks = [c for c in open_source("synthetic:3:1m", {inst.id: inst}, seed=3) if len(c)]
    cfg = SimVenueConfig.from_table("binance", {"latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000}})
    core = SimCore([inst], {"binance": cfg}, chunks, seed=1)
    counts = run_on_core(core, _Greedy(), start_ts=int(chunks[0]["local_ts"][0]),
                         risk_config=RiskConfig.from_table({"max_position": "0.05"}))
    assert counts["submits"] > 100
    assert counts["filled lots"] <= 5_000  # 0.05 BTC in lots of 0.00001
    assert counts["risk rejects"] >= counts["submits"] - 5


def test_the_loop_decides_with_the_sessions_risk_state_and_rate_window():
    """One implementation, one state: the numba loop takes the RiskEngine's state (reducing:
    every buy from a flat position refused as risk_reducing, counted in no window) and its
    order-rate window, and hands the window back advanced (2 per second allowed)."""
    from engine.risk import RiskEngine, RiskState
    from modes.backtest_compiled import run_on_core
    from replay import open_source
    from venues.sim import SimCore, SimVenueConfig

    inst = load_instruments(None)["binance:BTC/USDT"]
    cfg = SimVenueConfig.from_table("binance", {"latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000}})

    def run(risk):
        chunks = [c for c in open_source("synthetic:3:10s", {inst.id: inst}, seed=3) if len(c)]
        core = SimCore([inst], {"binance": cfg}, chunks, seed=1)
        return run_on_core(core, _Greedy(), start_ts=int(chunks[0]["local_ts"][0]), risk=risk)

    reducing = RiskEngine(RiskConfig.from_table({"max_orders_per_second": 2}))
    reducing.state, reducing.state_reason = RiskState.REDUCING, "max_daily_loss"
    counts = run(reducing)
    assert counts["submits"] > 100 and counts["risk rejects"] == counts["submits"]
    assert reducing.recent_submits() == []  # refused before the rate check: nothing counted
    active = RiskEngine(RiskConfig.from_table({"max_orders_per_second": 2}))
    counts = run(active)
    window = active.recent_submits()
    # a submit every 50 ms, two per rolling second pass: the last two that passed are held
    assert len(window) == 2 and 0 < window[1] - window[0] < 1_000_000_000
    assert counts["submits"] - counts["risk rejects"] <= 2 * 11


def test_adapter_is_a_strategy_and_checks_its_class():
    adapter = as_strategy(_Greedy)
    assert isinstance(adapter, Strategy) and isinstance(adapter, CompiledAdapter)
    with pytest.raises(StrategyError):
        as_strategy(Strategy)

    class NoFunction(CompiledStrategy):
        pass

    with pytest.raises(StrategyError, match="timer_nb"):
        as_strategy(NoFunction)


FAULTY_COMPILED = """\
import numpy as np
from numba import njit

from engine.compiled import CompiledStrategy


@njit
def faulty_nb(ctx, params, state):
    state[0] += 1.0
    if state[0] >= 3.0:
        state[1] = np.int64(1) // ctx[0][2]  # no open orders: divides by 0


class Faulty(CompiledStrategy):
    timer_nb = faulty_nb
    state_size = 2
    fast_path = FAST
"""


@pytest.mark.parametrize("fast", [True, False])
def test_an_exception_in_compiled_user_code_names_timer_nb(tmp_path, capsys, monkeypatch, fast):
    # numba leaves no Python frame in the user's file: the error names the function's def line
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_c.py").write_text(FAULTY_COMPILED.replace("FAST", str(fast)))
    code = main(["backtest", "--strategy", "my_c.py:Faulty", "--data", "synthetic:1:10s", "--out", "runs/x",
                 "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert "strategy error in " in err and "Faulty.timer_nb (my_c.py:7): ZeroDivisionError" in err
    assert "internal error" not in err


def test_run_the_bulk_pass_does_not_cover_is_booked_per_event(tmp_path, request):
    """Equity in a reporting currency (a depeg's quote marks) is outside engine/bulk.py: the
    fast path books that run one event at a time, says so, and still equals the Python path."""
    import json

    from engine.config import load_config_file, resolve
    from engine.ledger import QuoteMarks
    from modes.backtest import run_backtest

    config_path = _config(tmp_path, request.config.rootpath, data="synthetic:5:20s")
    config = resolve(load_config_file(config_path), {}, base_dir=str(tmp_path))

    def marks():
        return QuoteMarks("USD", {"USDT": [(0, Decimal(1)), (10 * 10**9, Decimal("0.9"))]})

    fast = run_backtest(config, tmp_path / "fast", write_html=False, quote_marks=marks())
    mp = pytest.MonkeyPatch()
    mp.setattr(CompiledStrategy, "fast_path", False)
    try:
        python = run_backtest(config, tmp_path / "python", write_html=False, quote_marks=marks())
    finally:
        mp.undo()
    run = json.loads((fast / "summary.json").read_text())["run"]
    assert run["compiled_bookkeeping"] == "per event: equity in a reporting currency (quote marks)"
    assert run["fills"] > 10
    for name in OUTPUTS:
        assert _sha(fast / name) == _sha(python / name), name


def test_function_addresses_are_remembered_per_dispatcher_and_signature(runs):
    """After a compiled run, numba's unboxing of a first-class function goes through the
    remembered lookups (venues/sim/compiled_nb.py): a dispatcher's addresses are numba's
    own at the first lookup, then the same ones without asking numba again; anything else
    goes to numba's own function."""
    from numba.core import types
    from numba.experimental import function_type as F

    from venues.sim import compiled_nb as K

    assert K._compiled_sigs  # the module fixture ran the compiled loop

    @njit
    def plus_one(x):
        return x + 1

    sig = types.int64(types.int64)
    for name in ("_get_wrapper_address", "_get_jit_address"):
        remembered = getattr(F, name)
        assert remembered._tickparity_memo
        original, found = remembered.__defaults__
        assert len(found) >= 1  # the strategy's timer_nb, from the runs
        first = remembered(plus_one, sig)  # compiles plus_one for int64
        assert first > 0 and first == original(plus_one, sig)
        assert found[plus_one] == {sig: first}
        assert remembered(plus_one, sig) == first
        other = object()

        def outcome(lookup, other=other):
            try:
                return lookup(other, sig)
            except NotImplementedError as exc:  # numba's answer for an object it cannot call
                return str(exc)

        assert outcome(remembered) == outcome(original)
    assert plus_one(41) == 42
