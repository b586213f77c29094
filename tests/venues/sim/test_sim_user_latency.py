"""Latency models a user names in the venue table ('package.module:name', docs/models.md
"Latency models"): the page's example run through `tickparity backtest` with hand-computed
request and ack times, one-line config errors, the numba cache across processes, and the
compiled-strategy loop running the same models as the plain path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sim_helpers import BUY, DELTA, SELL, compiled_and_plain, drain, events, make_core, same_files

from engine.errors import ConfigError
from engine.types import EventKind, load_instruments
from engine.types.orders import OrderEventKind, OrderType, TimeInForce
from replay.schema import StoredInstrument
from replay.stores import open_store
from venues.sim import SimVenueConfig, WakeKind

ROOT = Path(__file__).resolve().parents[3]
BTC = "binance:BTC/USDT"
T = 10**18
MS = 1_000_000
MODULE = "doc_ack_and_fill"  # the docs' `mylat`, under a name no other test uses


def doc_blocks() -> tuple[str, str]:
    """The latency example of docs/models.md: (its Python module, its TOML table)."""
    text = (ROOT / "docs" / "models.md").read_text()
    part = text[text.index("## Latency models"):]
    toml = re.search(r"```toml\n(.*?)```", part, re.S).group(1)
    example = part[part.index("### Example"):]
    python = re.search(r"```python\n(.*?)```", example, re.S).group(1)
    return python, toml.replace('"mylat:', f'"{MODULE}:')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    python, toml = doc_blocks()
    (tmp_path / f"{MODULE}.py").write_text(python)
    monkeypatch.syspath_prepend(str(tmp_path))
    return toml


STRATEGY = '''
from engine import Strategy


class AckThenCancel(Strategy):
    """At `at_ns`: a buy far below the book (rests; cancelled as soon as its ack arrives)
    and a buy at the best ask (takes on arrival)."""

    def __init__(self, at_ns: int = 0):
        self.at_ns, self.rest = int(at_ns), None

    def on_start(self, ctx):
        ctx.schedule(at_ns=self.at_ns)

    def on_timer(self, ctx, ts):
        inst = ctx.instruments[0]
        self.rest = ctx.submit(inst, "buy", "0.001", "59990.00", client_id="rest")
        ctx.submit(inst, "buy", "0.001", "60002.00", client_id="take")

    def on_order(self, ctx, update):
        if update.client_id == self.rest and update.event == "acknowledged":
            ctx.cancel(self.rest)
'''


def write_store(tmp_path: Path) -> str:
    """BTC/USDT: bid 60000.00 / ask 60002.00 (1 BTC each) at T, a trade at T + 500 ms."""
    ev = events([(T + ms * MS, kind, side, price, qty) for ms, kind, side, price, qty in [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0), (0, DELTA, BUY, 6_000_000, 1000), (0, DELTA, SELL, 6_000_200, 1000),
        (0, EventKind.SNAPSHOT_END, 0, 0, 0), (500, EventKind.TRADE, BUY, 6_000_200, 1)]])
    spec = f"duckdb:{tmp_path / 'd.duckdb'}"
    with open_store(spec, create=True) as st, st.begin_import({BTC: StoredInstrument.of(load_instruments()[BTC])}) as tx:
        tx.append(BTC, ev)
    return spec


def test_the_docs_example_through_the_cli(tmp_path, user_module):
    """Hand-computed from the docs' params (submit 2 ms, cancel 1 ms in; ack 1.5 ms, fill
    report 4 ms back), both orders sent at t = T + 100 ms:
    rest: at the venue t + 2, ack t + 3.5; cancelled then, cancel at the venue t + 4.5,
          its reply t + 6.
    take: at the venue t + 2 (after rest: requests keep their order), filled there;
          ack t + 3.5, fill report t + 6."""
    from modes.cli import main

    (tmp_path / "ack_then_cancel.py").write_text(STRATEGY)
    t = T + 100 * MS
    config = tmp_path / "run.toml"
    config.write_text(f"""
[run]
strategy = "{tmp_path / 'ack_then_cancel.py'}:AckThenCancel"
data = "{write_store(tmp_path)}"
instruments = ["{BTC}"]
[run.params]
at_ns = {t}
[venues.binance]
profile = "zero-cost"
{user_module}""")
    out = tmp_path / "run"
    assert main(["backtest", "--config", str(config), "--no-report", "--out", str(out)]) == 0
    orders = {r["client_id"]: r for r in pq.read_table(out / "orders.parquet").to_pylist()}
    rest, take = orders["rest"], orders["take"]
    assert (rest["created_ts"], rest["ack_ts"], rest["cancel_req_ts"], rest["done_ts"]) == (
        t, t + 3_500_000, t + 3_500_000, t + 6_000_000)
    assert rest["status"] == "cancelled"
    assert (take["created_ts"], take["ack_ts"], take["first_fill_ts"], take["status"]) == (
        t, t + 3_500_000, t + 6_000_000, "filled")
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], f["exch_ts"], f["ts"], f["price"]) for f in fills] == [
        ("take", t + 2_000_000, t + 6_000_000, "60002.00")]


LIMIT, GTC = int(OrderType.LIMIT), int(TimeInForce.GTC)
BOOK = [(0, DELTA, BUY, 99, 10), (0, DELTA, SELL, 101, 10)]


def _core_run(model: str, params: list[int], seed: int = 7):
    """SimCore alone: a resting buy at t=100 and a taker buy at t=100, the rest cancelled
    at t=200; returns (kind, exch_ts, local_ts) of every response."""
    core = make_core(BOOK, seed=seed, latency={"model": model, "params": params})
    drain(core, 100)
    core.submit(1, 0, BUY, LIMIT, GTC, 90, 1, False, 0, 100)
    core.submit(2, 0, BUY, LIMIT, GTC, 101, 1, False, 0, 100)
    got = drain(core, 200)
    core.cancel(1, 200)
    got += drain(core)
    return [(OrderEventKind(int(w.record["kind"])).name, int(w.record["exch_ts"]), int(w.record["local_ts"]))
            for w in got if w.kind == WakeKind.ORDER]


def test_the_docs_example_on_the_venue_core(user_module):
    # entry 20 (cancel 10), ack 15, fill report 40; the fill reaches us 40 after the venue
    # made it, and the cancel's reply (made at 210) keeps its own latency: 225
    got = _core_run(f"{MODULE}:ack_and_fill", [20, 10, 15, 40])
    assert got == [("ACK", 120, 135), ("ACK", 120, 135), ("FILL", 120, 160), ("CANCELLED", 210, 225)]


def test_responses_and_requests_never_overtake(user_module):
    # a fill report slower than the cancel's reply: the reply waits for it (one stream)
    got = _core_run(f"{MODULE}:ack_and_fill", [20, 10, 15, 200])
    assert got == [("ACK", 120, 135), ("ACK", 120, 135), ("FILL", 120, 320), ("CANCELLED", 210, 320)]


JITTER = '''
from numba import njit

from venues.sim.latency_nb import rand_below_nb
from venues.sim.models import LatencyModel


@njit(cache=True)
def jitter_entry(kind, ts, p, st):
    return p[0] + rand_below_nb(st, 0, p[1] + 1)


@njit(cache=True)
def fixed_response(kind, ts, p, st):
    return p[2]


@njit(cache=True)
def lowest(p):
    return p[0]


jitter = LatencyModel(entry=jitter_entry, response=fixed_response, min_entry=lowest, state=1)


@njit(cache=True)
def short_entry(kind, ts, p):
    return p[0]


wrong_signature = LatencyModel(entry=short_entry, response=fixed_response, min_entry=lowest)


@njit(cache=True)
def float_response(kind, ts, p, st):
    return 1.5


float_latency = LatencyModel(entry=jitter_entry, response=float_response, min_entry=lowest)


def plain_entry(kind, ts, p, st):
    return 1


not_njit = LatencyModel(entry=plain_entry, response=fixed_response, min_entry=lowest)
negative_state = LatencyModel(entry=jitter_entry, response=fixed_response, min_entry=lowest, state=-1)
not_a_model = {"entry": 1}


@njit(cache=True)
def below_zero(p):
    return -1


negative_bound = LatencyModel(entry=jitter_entry, response=fixed_response, min_entry=below_zero)


@njit(cache=True)
def divide_entry(kind, ts, p, st):
    return p[0] // (kind - 1)


divides = LatencyModel(entry=divide_entry, response=fixed_response, min_entry=lowest)


@njit(cache=True)
def by_draw(kind, ts, p, st):
    return p[0] // (st[0] | 1)


draws = LatencyModel(entry=by_draw, response=by_draw, min_entry=lowest, state=1)
'''


@pytest.fixture
def jitter_module(tmp_path, monkeypatch):
    (tmp_path / "user_jitter_latency.py").write_text(JITTER)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_random_model_is_seeded_by_the_run(jitter_module):
    # entry uniform in [100, 150], one splitmix64 stream per venue seeded from the run seed
    a, b, c = (_core_run("user_jitter_latency:jitter", [100, 50, 5], seed) for seed in (1, 1, 2))
    assert a == b and a != c
    for kind, exch, local in a:
        assert local - exch == 5
        assert (200 if kind == "CANCELLED" else 100) + 100 <= exch <= (200 if kind == "CANCELLED" else 100) + 150


@pytest.mark.parametrize(
    ("latency", "message"),
    [
        ({"model": "no_such_module_xyz:m"}, r"latency.model = 'no_such_module_xyz:m': cannot import module"),
        ({"model": "user_jitter_latency:missing"},
         r"latency.model = 'user_jitter_latency:missing': module 'user_jitter_latency' has no attribute 'missing'"),
        ({"model": "user_jitter_latency:wrong_signature"},
         r"latency.model = 'user_jitter_latency:wrong_signature': entry\(kind, ts, p, st\) does not compile"),
        ({"model": "user_jitter_latency:float_latency"}, r"response must return an int \(ns\), returns float64"),
        ({"model": "user_jitter_latency:not_njit"}, r"entry is not an @njit function"),
        ({"model": "user_jitter_latency:negative_state"}, r"state = -1: expected an int >= 0"),
        ({"model": "user_jitter_latency:not_a_model"}, r"expected a venues.sim.models.LatencyModel, got dict"),
        ({"model": "gauss"}, r"latency.model = 'gauss': expected 'constant', 'empirical', 'recorded' or "
                             r"'package.module:name'"),
        ({"model": "user_jitter_latency:jitter", "params": [1, "2"]}, r"latency.params = \[1, '2'\]: expected a list"),
        ({"model": "user_jitter_latency:jitter", "params": [2**63]}, r"must fit in int64"),
        ({"model": "constant", "params": [1]}, r"latency.params is only used with a latency.model named by path"),
        # the model's own code failing on its params: it was an "internal error" at the first submit
        ({"model": "user_jitter_latency:divides", "params": [5]},
         r"latency.params = \[5\]: entry\(kind=1, ts=0, p, st\) raised ZeroDivisionError: integer division by zero$"),
    ],
)
def test_bad_latency_model_is_one_line_naming_the_key(jitter_module, latency, message):
    with pytest.raises(ConfigError, match=message) as err:
        SimVenueConfig.from_table("binance", {"latency": latency})
    assert str(err.value).startswith("[venues.binance] latency.")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("params", "hook"), [([1], "min_entry"), ([2 * MS, MS, 1500000], "response")])
def test_params_shorter_than_the_model_reads_are_refused(user_module, params, hook):
    # the docs' model reads p[0..3]; the kernels run without bounds checks, so params = [1]
    # used to run with whatever memory followed the array (a 4,097 ns ack)
    with pytest.raises(ConfigError) as err:
        SimVenueConfig.from_table("binance", {"latency": {"model": f"{MODULE}:ack_and_fill", "params": params}})
    assert str(err.value) == (f"[venues.binance] latency.params = {params}: {hook} reads p beyond its "
                              f"{len(params)} value(s): give the model every parameter it reads")
    ok = SimVenueConfig.from_table("binance", {"latency": {"model": f"{MODULE}:ack_and_fill",
                                                           "params": [2 * MS, MS, 1500000, 4 * MS]}})
    assert list(ok.latency_params) == [2 * MS, MS, 1500000, 4 * MS]


@pytest.mark.parametrize(("latency", "message"), [
    # refused when the config is read (it used to be refused only when the venue was built,
    # in a message that named no config file)
    ('model = "user_jitter_latency:negative_bound"\nparams = [1, 1, 1]',
     "latency.params = [1, 1, 1]: min_entry returned -1 ns: expected >= 0 (a lower bound of every entry latency)"),
    # TOML reads 1.5 as a Decimal: the message shows the number the user wrote
    ('model = "user_jitter_latency:jitter"\nparams = [1.5]', "latency.params = [1.5]: expected a list of integers"),
])
def test_a_latency_params_error_names_the_config_file_and_key(tmp_path, jitter_module, capsys, latency, message):
    from modes.cli import main

    config = tmp_path / "run.toml"
    config.write_text(f"""
[run]
strategy = "{ROOT / 'examples' / 'twap.py'}:TWAP"
data = "synthetic:7:1m"
instruments = ["{BTC}"]
[venues.binance.latency]
{latency}
""")
    assert main(["backtest", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"tickparity: error: {config}: [venues.binance] {message}"
    assert not (tmp_path / "run").exists()


def test_a_negative_min_entry_is_refused_by_the_venue_core_too(jitter_module):
    # a SimVenueConfig built without from_table (the API) still meets the venue's own check
    from dataclasses import replace

    cfg = SimVenueConfig.from_table("sim", {"latency": {"model": "user_jitter_latency:jitter", "params": [1, 1, 1]}})
    bad = replace(cfg, latency_model="user_jitter_latency:negative_bound",
                  latency_path="user_jitter_latency:negative_bound")
    with pytest.raises(ConfigError, match=r"\[venues.sim\] latency.model = 'user_jitter_latency:negative_bound': "
                                          r"min_entry returned -1 ns: expected >= 0"):
        make_core(BOOK, configs={"sim": bad})


def test_config_hash_covers_the_models_source_and_params(jitter_module):
    one = SimVenueConfig.from_table("b", {"latency": {"model": "user_jitter_latency:jitter", "params": [1, 2, 3]}})
    two = SimVenueConfig.from_table("b", {"latency": {"model": "user_jitter_latency:jitter", "params": [1, 2, 4]}})
    shipped = SimVenueConfig.from_table("b", {"latency": {"entry_ns": 1, "response_ns": 3}})
    assert len({one.config_hash, two.config_hash, shipped.config_hash}) == 3


def test_a_user_latency_loop_is_cached_across_processes(tmp_path, user_module):
    """cache=True works per model set: a second process loads the loop this one compiled
    (or loaded), it does not compile it again."""
    want = _core_run(f"{MODULE}:ack_and_fill", [20, 10, 15, 40])
    here = Path(__file__).resolve().parent
    code = (
        f"import sys; sys.path[:0] = [{str(here)!r}, {str(tmp_path)!r}]\n"
        "from test_sim_user_latency import _core_run, MODULE\n"
        "from venues.sim.core_nb import run_nb\n"
        "got = _core_run(MODULE + ':ack_and_fill', [20, 10, 15, 40])\n"
        "hits = sum(run_nb.stats.cache_hits.values()); misses = sum(run_nb.stats.cache_misses.values())\n"
        "print(repr(got)); print(hits, misses)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    got, counts = out.stdout.strip().splitlines()[-2:]
    hits, misses = (int(x) for x in counts.split())
    assert hits >= 1 and misses == 0, out.stdout  # loaded, not compiled
    assert got == repr(want)


@pytest.mark.parametrize("latency", ["user", "empirical"])
def test_compiled_loop_runs_any_latency_model_like_the_python_path(tmp_path, request, user_module, latency):
    """The compiled-strategy loop (compiled_nb) and the Python adapter over the same latency
    model: identical orders and fills (engine/test_engine_compiled's parity). `empirical`
    draws from its seeded stream in both: the compiled path once refused it."""
    table = user_module
    if latency == "empirical":
        samples = tmp_path / "lat.txt"
        samples.write_text("\n".join(f"{k * 100_000},{k * 70_000}" for k in range(3, 30)))
        table = f'[venues.binance.latency]\nmodel = "empirical"\nfile = "{samples}"\n'
    fast, python = compiled_and_plain(tmp_path, request.config.rootpath, table)
    same_files(fast, python)
    assert pq.read_table(fast / "fills.parquet").num_rows > 10


def test_the_probe_runs_the_model_on_a_seeded_state(jitter_module):
    # a model dividing by a draw of its state is not refused for a zero state the run never has
    cfg = SimVenueConfig.from_table("b", {"latency": {"model": "user_jitter_latency:draws", "params": [10**9, 1, 1]}})
    assert list(cfg.latency_params) == [10**9, 1, 1]
