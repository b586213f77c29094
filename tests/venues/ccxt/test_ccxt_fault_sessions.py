"""Point 7: for each fault kind of the emulator, a testnet session (TradingSession over real
ccxt on 127.0.0.1) trades through it: 0 duplicate orders at the venue, 0 lost fills, the
ledger equal to the emulator's ground truth, open orders reconciled, and after the kill
switch 0 open orders (the time it took is printed, not asserted)."""

from __future__ import annotations

import asyncio

import pytest
from emu_helpers import control, make_emulator
from fault_session import trade_through

FAULTS = {
    "none": None,
    "response_lost": {"kind": "response_lost", "count": 2},
    "request_lost": {"kind": "request_lost", "count": 2},
    "truncated_body": {"kind": "truncated_body", "count": 2},
    # the body ends before its Content-Length on submits and cancels: a transport error with
    # no venue code (ccxt: a bare ExchangeError), ambiguous and looked up by client id
    "truncated_transport": {"kind": "truncated_body", "transport": True, "count": 4},
    "http_5xx_before": {"kind": "http_5xx_before", "status": 502, "body": "html", "count": 2},
    "http_5xx_after": {"kind": "http_5xx_after", "status": 503, "body": "html", "count": 2},
    "delay": {"kind": "delay", "delay": 2.0, "count": 1},
    "latency_spike": {"kind": "latency_spike", "duration": "2s", "extra": "300ms"},
    "rate_limit": {"kind": "rate_limit"},
    "clock_skew": {"kind": "clock_skew", "skew_ms": 20000, "count": 2},
    "reject": {"kind": "reject", "code": -2010, "msg": "Account has insufficient balance for requested action.",
               "count": 2},
    "maintenance": {"kind": "maintenance", "duration": "1s", "halt": "1s"},
    "user_drop": {"kind": "user_drop", "events": 4},
    "user_duplicate": {"kind": "user_duplicate", "events": 6},
    "user_reorder": {"kind": "user_reorder", "events": 4},
    "user_delay": {"kind": "user_delay", "events": 3, "delay": "1s"},
    "user_expire": {"kind": "user_expire"},
    "user_silent": {"kind": "user_silent"},
    "ws_disconnect": {"kind": "ws_disconnect", "stream": "user"},
    "stale_market": {"kind": "stale_market", "duration": "1s"},
    "update_id_gap": {"kind": "update_id_gap"},
    "partial_fill_drought": {"kind": "partial_fill_drought", "duration": "2s", "fraction": 0.1},
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    # Binance's fee rule: the buyer pays in base, the seller in quote (10 bps taker, 2 maker)
    with make_emulator(tmp_path_factory.mktemp("emu")) as e:
        yield e


@pytest.fixture(autouse=True)
def clean(emu):
    yield
    control(emu, "faults", {"clear": True})
    control(emu, "limits", {"reset": True})


def test_fault_catalogue_is_covered():
    from venues.emulator import FAULT_KINDS

    assert set(FAULT_KINDS) <= set(FAULTS)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_session_trades_through(emu, tmp_path, kind):
    prefix = "f" + "".join(w[0] for w in kind.split("_")) + str(len(kind))
    res = asyncio.run(asyncio.wait_for(trade_through(emu, prefix, FAULTS[kind], tmp_path), 90))
    print(f"\n{kind}: fired {res.fault_fired}, {res.orders_sent} orders, {len(res.venue_trades)} fills, "
          f"kill -> 0 open in {res.kill_s * 1000:.0f} ms; retries {res.stats.retries}, "
          f"ambiguous {res.stats.ambiguous}, lookups {res.stats.lookups}")
    assert res.orders_sent >= 10 and res.book_updates > 0
    assert res.fault_fired >= (0 if FAULTS[kind] is None else 1), "the fault must have fired"
    assert res.duplicates == {}
    assert res.rejected_but_placed == []  # a refusal has the venue's evidence: it never had the order
    assert res.booked_trades == res.venue_trades  # 0 lost, 0 invented
    assert res.venue_trades, "the session must have traded"
    assert res.ledger == res.venue_balances
    assert res.final_ok, res.final_report
    assert res.open_after_kill == 0
    assert res.limiter.bans == 0  # never a 418 (the 429s are the requests already in flight)


def test_dead_man_switch_cancels_everything_when_the_market_goes_silent(emu, tmp_path):
    """stale_market for 3 s with a 0.5 s dead-man timeout: it fires, the session stops
    submitting and cancels all of its orders; the venue and the ledger still agree."""
    res = asyncio.run(asyncio.wait_for(trade_through(
        emu, "fdm", {"kind": "stale_market", "duration": "3s"}, tmp_path, deadman_s=0.5), 90))
    assert [stream for _, stream in res.deadman] == ["market"]
    assert res.open_after_kill == 0 and res.duplicates == {} and res.ledger == res.venue_balances
    assert res.booked_trades == res.venue_trades and res.final_ok, res.final_report


def test_keys_never_reach_the_run_directory_or_the_console(emu, tmp_path, capfd):
    """Keys from a 0600 secrets file; a session with faults (errors are raised and audited)
    writes its files; neither key appears in any of them nor on the console."""
    import os

    from venues.ccxt.credentials import load_credentials

    acct = emu.account("alice")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[binance]\naccount = "alice"\napi_key = "{acct.api_key}"\nsecret = "{acct.secret}"\n')
    os.chmod(secrets, 0o600)
    creds = load_credentials({"secrets_file": str(secrets)}, "binance")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    res = asyncio.run(asyncio.wait_for(trade_through(
        emu, "fkey", {"kind": "reject", "code": -2015, "msg": "Invalid API-key, IP, or permissions for action.",
                      "status": 401, "count": 2}, run_dir, credentials=creds), 90))
    print(res.final_report, res.stats.events, creds)
    out, err = capfd.readouterr()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files and res.fault_fired >= 1
    for text in [out, err] + [p.read_text(errors="replace") for p in files]:
        assert acct.secret not in text and acct.api_key not in text
