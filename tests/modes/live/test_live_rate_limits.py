"""A venue's rate limits in a testnet session (run_live) over real ccxt against the emulator:
a 429 at startup is said once and waited out (not silence, not a flood of retries), and a
418 ban during the session refuses the strategy's orders `ip_banned` without sending them,
told once on the console and in the audit log, while the session goes on."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from emu_helpers import control, get_json, make_emulator
from live_helpers import RESTER, session_config

from modes.live import run_live

PESTER = '''
from decimal import Decimal
from engine import Strategy


class Pester(Strategy):
    """A bid far below the market every 200 ms, whatever the venue's health (the older ones
    cancelled): it would hammer a banned venue if the session let it."""

    def on_start(self, ctx):
        ctx.schedule(every_ns=200_000_000)

    def on_timer(self, ctx, ts):
        inst = ctx.instruments[0]
        book = ctx.book(inst)
        if book.best_bid is None:
            return
        for cid in ctx.open_orders(inst)[:-2]:
            ctx.cancel(cid)
        ctx.submit(inst, "buy", Decimal("0.001"), ctx.instrument(inst).round_price(book.best_bid * Decimal("0.8")))
'''


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with make_emulator(tmp_path_factory.mktemp("limits-live"), stepped=False, speed=1.0,
                       ids=("binance:BTC/USDT",)) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean(emu):
    yield
    control(emu, "faults", {"clear": True})
    control(emu, "limits", {"ban_after": 3, "ban_s": 120, "ban_grace_ms": 200, "reset": True})


def _config(emu, tmp_path):
    (tmp_path / "pester.py").write_text(PESTER)
    return session_config(emu, strategy=f"{tmp_path / 'pester.py'}:Pester", base_dir=tmp_path)


def test_a_429_at_startup_is_said_once_and_waited_out(emu, alice_env, tmp_path, capfd):
    """The venue answers the session's first call (exchangeInfo) 429 with Retry-After 2 s:
    one console line says so and how long, the session waits it out (no request meanwhile:
    the fault's hold sees one 429), then starts and trades."""
    control(emu, "faults", {"kind": "rate_limit", "retry_after": "2s", "endpoint": "GET /api/v3/exchangeInfo"})
    t0 = time.monotonic()
    out = run_live(_config(emu, tmp_path), "testnet", tmp_path / "run", duration_s=2, health=False, write_html=False)
    err = capfd.readouterr().err
    told = [line for line in err.splitlines() if "rate-limited" in line]
    assert len(told) == 1, err
    assert "[venues.binance] rate-limited by the venue (HTTP 429) at startup: waiting 2 s" in told[0]
    head = json.loads((out / "session.jsonl").read_text().splitlines()[0])
    assert head["start"] and time.monotonic() - t0 >= 2.0
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["orders"] > 0 and summary["stopped_by"] is None
    (fault,) = [f for f in get_json(emu, "/emulator/faults") if f["kind"] == "rate_limit"]
    assert fault["fired"] == 1


def test_a_418_ban_refuses_orders_ip_banned_without_sending_them(emu, alice_env, tmp_path, capfd):
    """Mid-session another process on the IP earns a 6 s ban (the emulator's ban_after 0).
    The session's next order request is answered 418: rejected ip_banned; every order the
    strategy sends while the ban holds is refused ip_banned before it leaves (evidence
    `local`), so only the requests already on their way met the 418. Said once on the
    console; each refusal is in the audit log with its reason; the session runs on and ends
    normally (its cancels go out once the ban is over)."""
    import ccxt

    control(emu, "limits", {"ban_after": 0, "ban_s": 6, "ban_grace_ms": 0})  # its first 429 bans
    out = tmp_path / "run"
    result: dict = {}

    def session():
        try:
            result["dir"] = run_live(_config(emu, tmp_path), "testnet", out, duration_s=5, health=False,
                                     write_html=False)
        except BaseException as exc:  # reported below
            result["error"] = exc

    def orders_at_the_venue() -> int:
        return sum(e["event"] == "order_new" and e.get("account") == "alice" for e in get_json(emu, "/emulator/journal"))

    before = orders_at_the_venue()
    thread = threading.Thread(target=session)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and orders_at_the_venue() < before + 3:  # the session trades
            time.sleep(0.1)
        # the neighbour's 429 (a 1 s hold, the minute's weight left alone) bans the IP for 6 s
        control(emu, "faults", {"kind": "rate_limit", "retry_after": "1s", "endpoint": "GET /api/v3/time"})
        neighbour = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
        with pytest.raises(ccxt.DDoSProtection):
            neighbour.fetch_time()
    finally:
        thread.join(90)
    assert "error" not in result, result.get("error")
    err = capfd.readouterr().err
    banned_lines = [line for line in err.splitlines() if "banned this IP" in line]
    assert len(banned_lines) == 1, err
    assert "[venues.binance] the venue banned this IP (HTTP 418)" in banned_lines[0]
    assert sum("refused: ip_banned" in line for line in err.splitlines()) == 1  # the first refusal, told once
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    banned = [r for r in audit if r["type"] == "response" and r.get("reason") == "ip_banned"]
    answered = [r for r in banned if "local" not in (r.get("evidence") or {})]
    held = [r for r in banned if "local" in (r.get("evidence") or {})]
    assert answered and len(answered) <= 3  # only what was already on its way met the 418
    assert len(held) >= 5  # the rest never left (a submit every 200 ms for seconds)
    assert all(r["evidence"]["http_status"] == 418 for r in banned)
    assert any(r.get("action") == "venue_health" and r["state"] == "down" and "HTTP 418" in r["reason"] for r in audit)
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["stopped_by"] is None and summary["open_orders"] == []


def test_paper_book_snapshots_wait_out_a_429_instead_of_earning_a_ban(emu, tmp_path, capfd):
    """Paper mode has no gateway, but its book watch fetches REST depth snapshots through
    ccxt.pro like a testnet session's. The venue answers the first snapshot 429 with a 2 s
    hold and bans the IP on the next violation (the emulator's ban_after 1): ccxt.pro
    retries a failed snapshot at once, so unpaced the retry is the second violation and the
    IP is banned (no book: the session cannot start). Paced by the gateway's mechanism
    (`limit_book_snapshots`), the retry waits out the hold: one 429 met, no ban, the
    session starts after the hold and trades; the hold is said once."""
    from modes.live.driver import LiveDriver

    control(emu, "limits", {"ban_after": 1, "ban_s": 30, "reset": True})
    control(emu, "faults", {"kind": "rate_limit", "retry_after": "2s", "endpoint": "GET /api/v3/depth"})
    t0 = time.monotonic()
    driver = LiveDriver(_config(emu, tmp_path), "paper", tmp_path / "run", duration_s=1, health=False,
                        write_html=False)
    out = driver.run()
    assert time.monotonic() - t0 >= 2.0  # the snapshot waited for the hold's end
    banned = emu.call(lambda server: {ip: until for ip, until in server.limiter._banned_until.items()
                                      if until > time.time()})
    assert banned == {}
    limiter = driver.book_limiters["binance"]
    assert limiter.throttled == 1 and limiter.bans == 0 and limiter.waits >= 1  # one 429 met, then waited
    told = [line for line in capfd.readouterr().err.splitlines() if "rate-limited" in line]
    assert len(told) == 1 and "[venues.binance] rate-limited by the venue (HTTP 429)" in told[0], told
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["mode"] == "paper" and summary["orders"] > 0 and summary["stopped_by"] is None


RECANCEL = '''
from decimal import Decimal
from engine import Strategy


class Recancel(Strategy):
    """One bid far below the market; once it rests, cancel it again on every 50 ms timer
    until it is gone (a strategy that re-cancels until it sees the order end)."""

    def on_start(self, ctx):
        self.cid = ctx.submit(ctx.instruments[0], "buy", Decimal("0.001"), Decimal("30000.00"))
        self.acked = False
        ctx.schedule(every_ns=50_000_000)

    def on_order(self, ctx, update):
        if update.status == "acknowledged":
            self.acked = True

    def on_timer(self, ctx, ts):
        if self.acked and ctx.order(self.cid).status not in ("cancelled", "filled"):
            ctx.cancel(self.cid)
'''


@pytest.mark.parametrize("hold", ["429", "418"])
def test_repeated_cancels_of_one_order_during_a_hold_send_one_cancel(emu, alice_env, tmp_path, hold):
    """The venue holds the session's cancels: a 429 with a 2 s Retry-After on the first
    DELETE (429), or that 429 turning into a 3 s ban on the retry (418: the emulator's
    ban_after 0 and ban_grace_ms 0; the cancel that met the 418 is refused ip_banned). The strategy cancels its
    order again every 50 ms meanwhile: one cancel waits per order, the others are no-ops
    audited `cancel_coalesced`, and once the venue allows, one cancel goes out and is
    confirmed: no queued cancel refused -2011, no lookup after it (issue #11: each was a
    request queued behind the first)."""
    if hold == "418":
        control(emu, "limits", {"ban_after": 0, "ban_s": 3, "ban_grace_ms": 0, "reset": True})
        control(emu, "faults", {"kind": "rate_limit", "retry_after": "1s", "endpoint": "DELETE /api/v3/order"})
    else:
        control(emu, "faults", {"kind": "rate_limit", "retry_after": "2s", "endpoint": "DELETE /api/v3/order"})
    (tmp_path / "recancel.py").write_text(RECANCEL)
    config = session_config(emu, strategy=f"{tmp_path / 'recancel.py'}:Recancel", base_dir=tmp_path)
    out = run_live(config, "testnet", tmp_path / "run", duration_s=6, health=False, write_html=False)
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    (cid,) = {r["client_id"] for r in audit if r["type"] == "request" and r.get("action") == "submit"}
    sent = [r for r in audit if r["type"] == "request" and r.get("action") == "cancel" and r["client_id"] == cid]
    coalesced = [r for r in audit if r.get("action") == "cancel_coalesced" and r["client_id"] == cid]
    answers = [r for r in audit if r["type"] == "response" and r.get("command") == "cancel" and r["client_id"] == cid]
    assert len(coalesced) >= 10  # the strategy kept cancelling while the venue held it
    if hold == "429":
        assert len(sent) == 1 and [a["outcome"] for a in answers] == ["confirmed"], answers
    else:  # the cancel that met the ban was refused ip_banned; the next one waited the ban out
        assert len(sent) == 2, sent
        assert [(a["outcome"], a.get("reason")) for a in answers] == [("rejected", "ip_banned"), ("confirmed", None)], answers
    assert not any(r["type"] == "request" and r.get("action") == "lookup" for r in audit)
    journal = get_json(emu, "/emulator/journal")
    (venue_id,) = [e["order_id"] for e in journal if e["event"] == "order_new" and e.get("client_order_id") == cid]
    assert sum(e["event"] == "cancel_request" and e["order_id"] == venue_id for e in journal) == 1
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert [(o["client_id"], o["status"]) for o in orders] == [(cid, "cancelled")]


QUOTER = '''
from decimal import Decimal
from engine import Strategy


class Quoter(Strategy):
    """A post-only bid and ask 4 USDT around the last trade, re-quoted on a 250 ms timer once
    the trade price moved 2 USDT from the one the quotes were made at (the older ones
    cancelled), whatever became of them: its requests follow the trades alone (not the
    book: the book a session shows a strategy leaves its own orders out, the recorded rows
    a backtest reads hold them; not its fills). The market trades through the quotes often.
    Whatever the venue's health (a strategy that keeps submitting through a 429's or a 418's
    hold), or with `pause` only while it is "up" (as the example market maker: nothing is
    sent in the hold)."""

    def __init__(self, pause=False):
        self.pause = pause

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        self.quotes = {"buy": None, "sell": None}
        self.last = self.at = None
        ctx.subscribe(self.inst, book=False, trades=True)
        ctx.schedule(every_ns=250_000_000)

    def on_trade(self, ctx, trade):
        self.last = trade.price

    def on_timer(self, ctx, ts):
        if self.last is None or (self.pause and ctx.venue_health(ctx.instrument(self.inst).venue) != "up"):
            return
        if self.at is not None and abs(self.last - self.at) < 2:
            return
        self.at = self.last
        for side, price in (("buy", self.last - 4), ("sell", self.last + 4)):
            cid = self.quotes[side]
            order = ctx.order(cid) if cid else None
            if order is not None and order.is_open:
                ctx.cancel(cid)
            self.quotes[side] = ctx.submit(self.inst, side, Decimal("0.001"), price, post_only=True)

    def on_stop(self, ctx):
        for cid in ctx.open_orders(self.inst):
            ctx.cancel(cid)
'''


def _hold_session(emu, tmp_path, hold: str, pause: bool = False) -> Path:
    """A testnet session of QUOTER (9 s) during which the venue holds the session's requests
    once it trades: a 429 with a 3 s Retry-After on its next order (hold "429"), or a 4 s
    ban another process on the IP earned (hold "418": the emulator's ban_after 0)."""
    import ccxt

    (tmp_path / "quoter.py").write_text(QUOTER)
    config = session_config(emu, strategy=f"{tmp_path / 'quoter.py'}:Quoter", params={"pause": pause},
                            base_dir=tmp_path)
    if hold == "418":
        control(emu, "limits", {"ban_after": 0, "ban_s": 4, "ban_grace_ms": 0, "reset": True})
    out = tmp_path / f"run-{hold}"
    result: dict = {}

    def session():
        try:
            result["dir"] = run_live(config, "testnet", out, duration_s=9, health=False, write_html=False)
        except BaseException as exc:  # reported below
            result["error"] = exc

    def orders_at_the_venue() -> int:
        return sum(e["event"] == "order_new" and e.get("account") == "alice" for e in get_json(emu, "/emulator/journal"))

    before = orders_at_the_venue()
    thread = threading.Thread(target=session)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and orders_at_the_venue() < before + 10:  # the session trades
            time.sleep(0.05)
        if hold == "429":
            control(emu, "faults", {"kind": "rate_limit", "retry_after": "3s", "endpoint": "POST /api/v3/order"})
        else:
            control(emu, "faults", {"kind": "rate_limit", "retry_after": "1s", "endpoint": "GET /api/v3/time"})
            neighbour = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
            with pytest.raises(ccxt.DDoSProtection):
                neighbour.fetch_time()
    finally:
        thread.join(90)
    assert "error" not in result, result.get("error")
    return out


def _backtest_the_session(run: Path, tmp_path: Path, latency: Path, tag: str, pause: bool = False) -> Path:
    """`tickparity backtest` of QUOTER on the session's recorded market rows, with its
    latency files (the `recorded` model, `report_file`) and `--session-window`."""
    from modes.cli import main

    config = tmp_path / f"bt-{tag}.toml"
    config.write_text(f'''[run]
strategy = "{tmp_path / 'quoter.py'}:Quoter"
instruments = ["binance:BTC/USDT"]
params = {{ pause = {str(pause).lower()} }}
[venues.binance]
balances = {{ USDT = "10000000", BTC = "100" }}
latency = {{ model = "recorded", file = "{latency}", report_file = "{run / 'report_latency.csv'}" }}
''')
    out = tmp_path / f"bt-{tag}"
    assert main(["backtest", "--config", str(config), "--data", f"duckdb:{run / 'market.duckdb'}",
                 "--session-window", str(run), "--out", str(out), "--no-report"]) == 0
    return out


def _orders_and_fills(run: Path) -> tuple[list[tuple], dict[tuple, tuple], Decimal]:
    """The run's order requests (side, price, qty, type) in the order they were made; its
    refusals a venue's hold caused, {(made at, side, price, qty): (reason, refused at)} (a
    backtest of a session's window runs on the session's clock: the same times to the ns);
    and its filled quantity."""
    orders = sorted(pq.read_table(run / "orders.parquet").to_pylist(), key=lambda r: r["created_ts"])
    return ([(o["side"], o["price"], o["qty"], o["type"]) for o in orders],
            {(o["created_ts"], o["side"], o["price"], o["qty"]): (o["reason"], o["done_ts"])
             for o in orders if o["reason"] in ("rate_limited", "ip_banned")},
            sum((Decimal(f["qty"]) for f in pq.read_table(run / "fills.parquet").to_pylist()), Decimal(0)))


def _made_until(run: Path, until: int) -> list[tuple]:
    """The run's order requests (made at, side, price, qty, type) made at or before `until` ns."""
    orders = sorted(pq.read_table(run / "orders.parquet").to_pylist(), key=lambda r: r["created_ts"])
    return [(o["created_ts"], o["side"], o["price"], o["qty"], o["type"]) for o in orders if o["created_ts"] <= until]


def _identical(a: list[tuple], b: list[tuple]) -> float:
    """bench_parity's share of identical requests in order (difflib's matching blocks)."""
    import difflib

    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(a), len(b), 1)


@pytest.mark.parametrize(("hold", "pause"), [("429", False), ("418", False), ("429", True)])
def test_a_backtest_of_a_rate_limited_period_decides_as_the_session(emu, alice_env, tmp_path, hold, pause):
    """Issue #11: a testnet session whose venue held its requests (a 429's Retry-After, or a
    418 ban) while the strategy kept submitting, then the same strategy backtested on the
    session's recorded market rows with its latency files and --session-window. The
    session refused its orders there itself (`rate_limited` / `ip_banned`, never sent) and
    the ones already on their way met the venue's 429 / 418; its cancels waited the hold
    out, the strategy's repeated cancels coalesced. latency.csv records each refusal the
    hold caused (`held`), and the backtest's venue refuses the same request with the same
    reason when the session's refusal came. With `pause` the strategy sends nothing while
    the venue is not "up" (as the example market maker): the session's health changes are
    latency.csv `health` lines, and the backtest's venue takes them.

    Every refusal the hold caused in the session is the backtest's: the same order (made at
    the same time to the ns, side, price, qty), the same reason, refused at the same time to
    the ns, and no other; every request made up to the hold's last refusal is the session's
    (time, side, price, qty, type); later ones are printed, not asserted: a fill that differs
    (below) moves the quotes made after it (clean-clone runs: 100% and 94% identical).
    The filled quantity meets the README's parity target, within 1%, or one order's (0.001).
    Why not fill for fill: the received rows' book is the venue's
    published 100 ms depth windows while the venue matched on its own continuous book, so a
    resting order's fill, or a post-only order's refusal, can differ as in any period
    backtested on its received rows, the more so just after a hold, when the orders that
    waited it out reach a market that moved meanwhile (17 backtests of this test's sessions:
    the filled quantity equal in 15, one fill apart in 2). Run twice,
    the backtest's outputs are identical; with the file stripped of its `held` and `health`
    lines (as recorded before them) none of the hold's refusals is reproduced."""
    run = _hold_session(emu, tmp_path, hold, pause)
    lines = (run / "latency.csv").read_text().splitlines()
    reason = "rate_limited" if hold == "429" else "ip_banned"
    local = [line for line in lines[1:] if line.endswith(f",{reason}-local")]
    answered = [line for line in lines[1:] if line.endswith(f",{reason}") and ",health," not in line]
    health = [line.split(",")[8] for line in lines[1:] if ",health," in line]
    assert health[:2] == ["rate_limited" if hold == "429" else "down", "up"], lines
    if pause:  # only what was on its way when the 429 came, and nothing refused by the session
        assert answered and not local, lines
    else:
        assert local and answered, lines  # the submits it refused itself; what met the hold
    requests, session_refusals, session_filled = _orders_and_fills(run)
    refused = [line for line in local + answered if line.split(",")[3] == "submit"]
    assert len(session_refusals) == len(refused) and {r[0] for r in session_refusals.values()} == {reason}
    tag = f"{hold}{'-pause' if pause else ''}"
    backtest = _backtest_the_session(run, tmp_path, run / "latency.csv", tag, pause)
    bt_requests, refusals, filled = _orders_and_fills(backtest)
    assert refusals == session_refusals
    # every decision up to the hold's last refusal is the session's, to the ns; after it a fill
    # that differs (below) moves the quotes made later, so the rest is only printed
    until = max(made for made, *_ in session_refusals)
    assert _made_until(backtest, until) == _made_until(run, until)
    assert abs(filled - session_filled) <= max(Decimal("0.01") * max(filled, session_filled), Decimal("0.001"))
    again = _backtest_the_session(run, tmp_path, run / "latency.csv", f"{tag}-again", pause)
    for name in ("orders.parquet", "fills.parquet", "summary.json"):
        a, b = (again / name).read_bytes(), (backtest / name).read_bytes()
        if name == "summary.json":  # its wall-clock figures and the run's name differ
            a, b = (json.loads(x)["run"] for x in (a, b))
            for key in ("id", "wall_seconds", "events_per_second"):
                a.pop(key), b.pop(key)
        assert a == b, name
    # the same session's file without the hold's lines (a recorder before `held`): diverges
    before = tmp_path / f"latency-before-{tag}.csv"
    before.write_text("\n".join(line for line in lines if not line.endswith(("-local", f",{reason}"))
                                and ",health," not in line) + "\n")
    old_requests, old_refusals, old_filled = _orders_and_fills(
        _backtest_the_session(run, tmp_path, before, f"{tag}-before", pause))
    print(f"hold {tag}: session {len(requests)} orders, {len(session_refusals)} refused for the hold, filled "
          f"{session_filled}; backtest {len(bt_requests)} ({_identical(bt_requests, requests):.0%} identical), "
          f"{len(refusals)}, {filled}; without held and health lines {len(old_requests)} "
          f"({_identical(old_requests, requests):.0%}), {len(old_refusals)}, {old_filled}")
    assert not old_refusals


def test_a_session_that_leaves_orders_open_exits_4(emu, alice_env, tmp_path, capsys):
    """The trial's end: a 40 s 429 holds `DELETE /api/v3/order` when the session stops, so
    its order is still open at the venue after the shutdown's 10 s: listed on the console
    and in summary.json `open_orders`, and the exit status is 4 (was 0), so a script
    running sessions can tell (modes.live_cmd.OPEN_ORDERS_LEFT)."""
    from live_helpers import write_session_toml

    from modes.cli import main
    from modes.live_cmd import OPEN_ORDERS_LEFT

    (tmp_path / "rester.py").write_text(RESTER)
    toml = write_session_toml(tmp_path / "run.toml", emu, params="")
    toml.write_text(toml.read_text().replace(
        f'"{Path(__file__).resolve().parents[3] / "examples" / "market_maker.py"}:MarketMaker"',
        f'"{tmp_path / "rester.py"}:Rester"'))
    control(emu, "faults", {"kind": "rate_limit", "retry_after": "40s", "endpoint": "DELETE /api/v3/order"})
    code = main(["testnet", "--config", str(toml), "--duration", "3", "--no-report", "--no-health",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["run"]
    assert len(summary["open_orders"]) == 1, (out.out, out.err)
    assert "order(s) still open at the venue after 10 s" in out.err
    assert f"exit status 4: 1 order(s) left open at the venue (summary.json open_orders): " \
           f"{summary['open_orders'][0]}" in out.out
    assert code == OPEN_ORDERS_LEFT == 4


QUIET = '''
from engine import Strategy


class Quiet(Strategy):
    """Sends nothing: the session's only requests to the venue are its reconciliations."""

    def on_start(self, ctx):
        pass
'''


def test_a_reconciliation_that_meets_a_ban_is_deferred_to_its_end_not_an_error(emu, alice_env, tmp_path):
    """Issue #11: a ban can begin without our limiter knowing (the venue answered the request
    that started it 429, or another process on the IP earned it), so a reconciliation's
    first request may be the one answered 418. That is not a failed reconciliation: it is
    deferred to the ban's end as any other during a ban (docs/live.md "Rate limits"), then
    done; the summary's errors stay empty. Before: `reconcile (periodic): GiveUp: open
    orders of BTC/USDT: {... 'http_status': 418 ...}` in the errors, as in the trial."""
    import ccxt

    (tmp_path / "quiet.py").write_text(QUIET)
    config = session_config(emu, strategy=f"{tmp_path / 'quiet.py'}:Quiet", base_dir=tmp_path)
    control(emu, "limits", {"ban_after": 0, "ban_s": 3, "ban_grace_ms": 0})  # its first 429 bans
    out = tmp_path / "run"
    result: dict = {}

    def session():
        try:
            result["dir"] = run_live(config, "testnet", out, duration_s=9, health=False, write_html=False,
                                     reconcile_s=1.0)
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=session)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                (out / "audit.jsonl").exists() and '"type":"start"' in (out / "audit.jsonl").read_text()):
            time.sleep(0.05)
        control(emu, "faults", {"kind": "rate_limit", "retry_after": "1s", "endpoint": "GET /api/v3/time"})
        neighbour = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
        with pytest.raises(ccxt.DDoSProtection):
            neighbour.fetch_time()  # the IP is banned for 3 s from now; the session does not know
    finally:
        thread.join(90)
    assert "error" not in result, result.get("error")
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert not [e for e in summary["errors"] if e.startswith("reconcile")], summary["errors"]
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    reconciles = [r for r in audit if r["type"] == "reconcile" and r["at"] == "periodic"]
    assert reconciles and all(r["ok"] for r in reconciles)  # done once the ban was over
