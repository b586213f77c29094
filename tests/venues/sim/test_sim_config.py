"""`[venues.<name>]` parsing: defaults, validation messages, stable hash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ConfigError
from venues.sim import SimVenueConfig
from venues.sim.codes import QM_LOG, QM_POWER, QM_RISK_AVERSE

ISSUE_TABLE = {
    "queue_model": "risk_averse",
    "latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000, "feed_ns": 0},
    "maker_fee_bps": 1.0,
    "taker_fee_bps": 5.0,
}


def test_issue_table_parses_with_defaults():
    cfg = SimVenueConfig.from_table("binance", ISSUE_TABLE)
    assert (cfg.queue_code, cfg.entry_ns, cfg.response_ns, cfg.feed_ns) == (
        QM_RISK_AVERSE, 1_000_000, 1_000_000, 0)
    assert cfg.cancel_entry_ns == cfg.amend_entry_ns == 1_000_000
    assert cfg.maker_fee_bps == Decimal("1.0") and cfg.taker_fee_bps == Decimal("5.0")
    assert cfg.partial_fills is True and cfg.stp == "cancel-new"
    assert cfg.config_hash == SimVenueConfig.from_table("binance", dict(ISSUE_TABLE)).config_hash
    other = SimVenueConfig.from_table("binance", ISSUE_TABLE | {"maker_fee_bps": "-0.5"})
    assert other.maker_fee_bps == Decimal("-0.5")  # a rebate
    assert other.config_hash != cfg.config_hash


def test_queue_models():
    assert SimVenueConfig.from_table("x", {"queue_model": "power:2"}).queue_code == QM_POWER
    assert SimVenueConfig.from_table("x", {"queue_model": "power:0.5"}).queue_param == 0.5
    assert SimVenueConfig.from_table("x", {"queue_model": "log"}).queue_code == QM_LOG


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"x": 1}, r"\[venues.binance\] unknown key 'x'"),
        ({"latency": {"entry": 1}}, r"unknown key 'latency.entry'"),
        ({"latency": {"entry_ns": 1.5}}, r"latency.entry_ns = 1.5: expected an integer"),
        ({"latency": {"entry_ns": -1}}, r"latency.entry_ns = -1"),
        ({"queue_model": "fifo"}, r"queue_model = 'fifo'"),
        ({"queue_model": "power:-1"}, r"positive exponent"),
        ({"queue_model": "power:x"}, r"positive exponent"),
        ({"stp": "cancel"}, r"stp = 'cancel'"),
        ({"partial_fills": "yes"}, r"partial_fills = 'yes'"),
        ({"maker_fee_bps": "abc"}, r"maker_fee_bps = 'abc'"),
        ({"latency": {"model": "empirical"}}, r"needs latency.file"),
        ({"latency": {"model": "gauss"}}, r"latency.model = 'gauss'"),
        ({"latency": {"model": "empirical", "file": "/nonexistent"}}, r"file not found"),
        ({"latency": {"spikes": [[5, 1, 3]]}}, r"latency.spikes item"),
    ],
)
def test_bad_tables_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        SimVenueConfig.from_table("binance", table)


def test_empirical_latency_file(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("# observed one-way ns\n100\n200\n\n300\n")
    cfg = SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(one)}})
    assert cfg.latency_samples.tolist() == [[100, 100], [200, 200], [300, 300]]
    two = tmp_path / "two.csv"
    two.write_text("100,7\n200,8\n")
    cfg = SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(two)}})
    assert cfg.latency_samples.tolist() == [[100, 7], [200, 8]]
    bad = tmp_path / "bad.txt"
    bad.write_text("100\nabc\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2"):
        SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(bad)}})


def _session_latency_files(tmp_path):
    """The three latency files a paper/testnet/live session writes, with the recorder's own
    headers (modes/live/recording.py) and one line each."""
    from modes.live.recording import SessionRecorder

    SessionRecorder(tmp_path, {}, store=False).close()
    for name, line in (("latency.csv", "1000,200,300,submit,1"), ("feed_latency.csv", "1000,50,book,binance:BTC/USDT"),
                       ("report_latency.csv", "1000,70,FILLED,binance")):
        with open(tmp_path / name, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return {n: str(tmp_path / n) for n in ("latency.csv", "feed_latency.csv", "report_latency.csv")}


@pytest.mark.parametrize(("latency", "message"), [
    ({"model": "empirical", "file": "latency.csv"},
     "latency.file = '{latency.csv}': this is a session's latency.csv (order round trips, header "
     "'ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held'), read by latency.model = 'recorded' (latency.file); "
     "latency.model = 'empirical' reads one or two ns columns (entry_ns response_ns)"),
    ({"model": "empirical", "file": "feed_latency.csv"},
     "latency.file = '{feed_latency.csv}': this is a session's feed_latency.csv (feed latencies, header "
     "'ts_ns,feed_ns,stream,instrument'), read by latency.feed_file; latency.model = 'empirical' reads one or two "
     "ns columns (entry_ns response_ns)"),
    ({"model": "recorded", "file": "report_latency.csv"},
     "latency.file = '{report_latency.csv}': this is a session's report_latency.csv (user-stream report latencies, "
     "header 'ts_ns,response_ns,report,venue,stamp_ns'), read by latency.report_file"),
    ({"entry_ns": 1, "feed_file": "latency.csv"},
     "latency.feed_file = '{latency.csv}': this is a session's latency.csv (order round trips, header "
     "'ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held'), read by latency.model = 'recorded' (latency.file)"),
    ({"entry_ns": 1, "report_file": "feed_latency.csv"},
     "latency.report_file = '{feed_latency.csv}': this is a session's feed_latency.csv (feed latencies, header "
     "'ts_ns,feed_ns,stream,instrument'), read by latency.feed_file"),
])
def test_a_session_latency_file_given_to_the_wrong_key_names_the_key_that_reads_it(tmp_path, latency, message):
    """The recorded latency.csv given to `empirical` failed with "latency.csv:1: 'ts_ns,...' is
    not an integer number of ns": the file is recognised by its header and the message says
    which key (or model) reads it."""
    files = _session_latency_files(tmp_path)
    table = {k: files.get(v, v) if isinstance(v, str) else v for k, v in latency.items()}
    with pytest.raises(ConfigError) as err:
        SimVenueConfig.from_table("binance", {"latency": table})
    want = message
    for name, path in files.items():
        want = want.replace("{" + name + "}", path)
    assert str(err.value) == f"[venues.binance] {want}"


def test_each_session_latency_file_is_read_by_its_own_key(tmp_path):
    files = _session_latency_files(tmp_path)
    cfg = SimVenueConfig.from_table("binance", {"latency": {
        "model": "recorded", "file": files["latency.csv"], "feed_file": files["feed_latency.csv"],
        "report_file": files["report_latency.csv"]}})
    assert cfg.latency_samples.tolist() == [[1000, 200, 300]]
    assert cfg.feed_samples.tolist() == [[1000, 50, 0]] and cfg.report_samples.tolist() == [[1000, 70, 1_000_000]]


@pytest.mark.parametrize(("latency", "key"), [
    ({"model": "empirical", "file": "{samples}", "entry_ns": 2_000_000}, "entry_ns = 2000000"),
    ({"model": "empirical", "file": "{samples}", "cancel_entry_ns": 1}, "cancel_entry_ns = 1"),
    ({"model": "recorded", "file": "{latency.csv}", "response_ns": 9_000}, "response_ns = 9000"),
    ({"model": "recorded", "file": "{latency.csv}", "amend_entry_ns": 0}, "amend_entry_ns = 0"),
])
def test_a_constant_model_key_beside_another_model_is_refused(tmp_path, latency, key):
    """The model ignores it: `empirical` with entry_ns = 2 ms ran on its file's latencies
    while summary.json said entry_ns = 2 ms."""
    files = _session_latency_files(tmp_path) | {"samples": str(tmp_path / "samples.txt")}
    (tmp_path / "samples.txt").write_text("100\n200\n")
    table = {k: files[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v for k, v in latency.items()}
    source = "latency.file"
    name = key.split(" ")[0]
    with pytest.raises(ConfigError) as err:
        SimVenueConfig.from_table("binance", {"latency": table})
    assert str(err.value) == (f"[venues.binance] latency.{key} with latency.model = {latency['model']!r}: that model "
                              f"takes its latencies from {source} and ignores latency.{name} (a key of the constant "
                              "model): remove it")


def test_response_ns_beside_empirical_is_kept_for_fault_refusals(tmp_path):
    (tmp_path / "samples.txt").write_text("100\n200\n")
    cfg = SimVenueConfig.from_table("b", {"latency": {"model": "empirical", "file": str(tmp_path / "samples.txt"),
                                                      "response_ns": 7_000}})
    assert cfg.response_ns == 7_000
