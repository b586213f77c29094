"""Parity (b): the same strategy and config as a backtest on dataset D and as a testnet
session against the emulator replaying D, the backtest's latency set to what the loopback
path measured.

    python bench/bench_parity.py [--data synthetic:11:30m] [--seconds 30] [--refresh-ms 500]
                                 [--strategy market_maker|twap] [--param NAME=VALUE] [--constant]

Steps: start the emulator on D (wall clock, speed 1, its own latency 0: the real loopback
is the latency); run `tickparity testnet` against it for --seconds; backtest D over the
same market-time window (the emulator maps market time to wall time by a constant shift)
with the venue's depth publishing modelled (`depth_conflation_ms = 100`: the emulator
sends one `@depth@100ms` diff per 100 ms window of its market clock) and the latencies the
session recorded, moved to D's clock (to_dataset_clock): its latency.csv as the `recorded`
order latency and its feed_latency.csv as `latency.feed_file` (each depth window reaches
the backtest's strategy when it reached the session's). `--constant`: the medians of the
round trips and of the rows' feed lag instead. Compare the two order streams. Prints, for
each strategy: the share of identical order requests (side, price, qty, type, in order:
difflib's matching blocks over the longer stream) and the filled quantity of each run and
their difference. Nothing is asserted here (a benchmark); tests/bench/test_bench_parity.py
asserts the thresholds on a short run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VENUE = {"maker_fee_bps": 2, "taker_fee_bps": 10, "queue_model": "risk_averse",
         "latency": {"entry_ns": 0, "response_ns": 0, "feed_ns": 0}}
BALANCES = {"USDT": "10000000", "BTC": "100"}
CONFLATION_MS = 100  # venues/emulator/exchange.py DEPTH_INTERVAL_NS
DAY_NS = 86_400_000_000_000  # the longest order-count window (Binance spot: 1 day): a phase modulo it
STRATEGIES = {
    "market_maker": ("examples/market_maker.py:MarketMaker", {"half_spread_bps": 2, "qty": "0.01"}),
    # quoting at the touch: it fills, and its requests follow its fills (skewed by position)
    "market_maker_touch": ("examples/market_maker.py:MarketMaker", {"half_spread_bps": "0.05", "qty": "0.01"}),
    "twap": ("examples/twap.py:TWAP", {"side": "buy", "quantity": "0.5", "horizon_s": 20, "slices": 10}),
}


def _order_rows(run: Path) -> list[dict]:
    """orders.parquet's requests (no parents), in the order they were made."""
    import pyarrow.parquet as pq

    rows = pq.read_table(run / "orders.parquet").to_pylist()
    rows = [r for r in rows if r["type"] != "parent"]
    rows.sort(key=lambda r: r["created_ts"])
    return rows


def _orders(run: Path) -> list[tuple]:
    return [(r["side"], r["price"], r["qty"], r["type"]) for r in _order_rows(run)]


def first_difference(backtest: Path, session: Path, start_bt: int, start_tn: int) -> str | None:
    """The first request that differs between the two runs, as one line per side: the
    request (side, price, qty, type) or, where the two streams agree, the first whose
    outcome differs (status, filled quantity: a post-only order refused in one run and
    resting in the other). Times in ms after each run's start. None when nothing differs.
    Why: every failing run so far was traced from here to its cause (README "Parity")."""
    a, b = _order_rows(backtest), _order_rows(session)
    key = lambda r: (r["side"], r["price"], r["qty"], r["type"])  # noqa: E731
    matcher = difflib.SequenceMatcher(a=[key(r) for r in a], b=[key(r) for r in b], autojunk=False)

    def show(run: str, r: dict | None, start: int) -> str:
        if r is None:
            return f"  {run}: (none)"
        t = {k: "-" if r[k] is None else f"{(r[k] - start) / 1e6:.2f}"
             for k in ("created_ts", "ack_ts", "first_fill_ts", "done_ts")}
        return (f"  {run}: #{r['client_id'].rsplit('-', 1)[-1]} {r['side']} {r['qty']} @ {r['price']} {r['status']}"
                f" filled {r['filled_qty']}; made {t['created_ts']} ms, acked {t['ack_ts']}, "
                f"first fill {t['first_fill_ts']}, done {t['done_ts']}")

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            return "\n".join([f"first difference (request, {tag}):",
                              show("backtest", a[i1] if i1 < i2 else None, start_bt),
                              show("testnet ", b[j1] if j1 < j2 else None, start_tn)])
        for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
            if (a[i]["status"], a[i]["filled_qty"]) != (b[j]["status"], b[j]["filled_qty"]):
                if a[i]["done_ts"] is None and b[j]["status"] == "cancelled" \
                        and a[i]["filled_qty"] == b[j]["filled_qty"]:
                    continue  # open at the backtest's end: the session's shutdown cancelled it
                return "\n".join(["first difference (outcome):", show("backtest", a[i], start_bt),
                                  show("testnet ", b[j], start_tn)])
    return None


def _filled(run: Path) -> Decimal:
    import pyarrow.parquet as pq

    return sum((Decimal(f["qty"]) for f in pq.read_table(run / "fills.parquet").to_pylist()), Decimal(0))


def _identical(a: list[tuple], b: list[tuple]) -> float:
    """Share of identical requests in order: difflib's matching blocks over the longer stream."""
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(a), len(b), 1)


def to_dataset_clock(session: Path, shift: int, out: Path) -> tuple[Path, Path, Path]:
    """The session's latency.csv, feed_latency.csv and report_latency.csv on the dataset's
    clock.

    The emulator shows market time t as t + shift (its clock starts the data at the moment
    it started), in whole µs (the session asks for them: venues/ccxt/timeunit.py); the
    backtest of D runs on D's time. Order round trips move by
    -shift; a depth diff's venue time E (µs) is its window's end W = the 100 ms grid point
    at or after E - shift, and its feed latency becomes receipt - shift - W, so the
    backtest delivers window W exactly when the session received it. A user-stream report's
    venue time moves by -shift, its latency stays. A session on a real
    venue needs none of this: its latencies are on the venue's clock already."""
    out.mkdir(parents=True, exist_ok=True)
    g = CONFLATION_MS * 1_000_000
    order = _shift_times(session / "latency.csv", out / "latency.csv", shift)
    feed = out / "feed_latency.csv"
    with open(session / "feed_latency.csv", encoding="utf-8") as src, open(feed, "w", encoding="utf-8") as dst:
        dst.write(next(src))
        for line in src:
            ts, lat, stream, inst = line.rstrip("\n").split(",", 3)
            local = int(ts) + int(lat) - shift
            t = int(ts) - shift
            if stream == "book":
                t = -(-t // g) * g
            dst.write(f"{t},{local - t},{stream},{inst}\n")
    report = _shift_times(session / "report_latency.csv", out / "report_latency.csv", shift)
    return order, feed, report


def _shift_times(src_path: Path, dst_path: Path, shift: int) -> Path:
    """A latency file (header, then `ts_ns,...` lines) with its times moved by -shift."""
    with open(src_path, encoding="utf-8") as src, open(dst_path, "w", encoding="utf-8") as dst:
        dst.write(next(src))
        for line in src:
            ts, rest = line.split(",", 1)
            dst.write(f"{int(ts) - shift},{rest}")
    return dst_path


def measure(name: str, data: str, seconds: float, refresh_ms: int, work: Path, recorded: bool = True,
            params: dict | None = None, received_rows: bool = True, emulator: str = "process",
            refusal_windows: bool = True) -> dict:
    """One strategy's parity row (module doc); `params` overrides the strategy's (STRATEGIES);
    `received_rows=False` skips the diagnostic backtest on the rows the session received;
    `emulator="thread"` runs the emulator in this process (EmulatorThread: the rounds before
    session 9) instead of its own (EmulatorProcess)."""
    from decimal import Decimal as D

    from engine.config import resolve
    from engine.types import load_instruments
    from modes.live import run_live
    from replay import open_source
    from venues.emulator import Account, EmulatorProcess, EmulatorSettings, EmulatorThread
    from venues.sim import SimVenueConfig

    load_average = os.getloadavg()[0]  # at the start: the figures are noisy under load
    overrides = params
    strategy, params = STRATEGIES[name]
    params = dict(params) | (overrides or {})
    if name.startswith("market_maker"):
        params.setdefault("refresh_ms", refresh_ms)
    inst_id = "binance:BTC/USDT"
    insts = {inst_id: load_instruments()[inst_id]}
    settings = EmulatorSettings(
        instruments=list(insts.values()),
        venue_configs={"binance": SimVenueConfig.from_table("binance", VENUE | {"balances": BALANCES})},
        accounts=[Account("bench", "bench-key", "bench-secret", free={k: D(v) for k, v in BALANCES.items()})],
        seed=0, speed=1.0, out_dir=work / f"emu-{name}")
    os.environ["TP_BENCH_KEY"], os.environ["TP_BENCH_SECRET"] = "bench-key", "bench-secret"
    # the emulator in its own process (a venue is another machine): in the session's process
    # it read a request only when the session's Python let go of the interpreter lock
    emu_cm = (EmulatorThread(settings, open_source(data, insts, chunk_rows=1 << 15)) if emulator == "thread"
              else EmulatorProcess(settings, data))
    with emu_cm as emu:
        table = VENUE | {"balances": BALANCES, "url": emu.url, "api_key_env": "TP_BENCH_KEY",
                         "secret_env": "TP_BENCH_SECRET"}
        config = resolve({"run": {"strategy": strategy, "data": data, "instruments": [inst_id], "params": params},
                          "venues": {"binance": table}}, {}, base_dir=str(REPO))
        session = run_live(config, "testnet", work / f"testnet-{name}", duration_s=seconds, health=False,
                           write_html=False)
        shift = emu.state()["shift_ns"] if emulator == "process" else \
            emu.call(lambda server: server.exchange.clock.shift_ns)
    (work / f"recorded-{name}").mkdir(parents=True, exist_ok=True)
    (work / f"recorded-{name}" / "shift_ns").write_text(f"{shift}\n")  # for rebacktest
    return compare(name, data, work, session, shift, strategy, params, recorded=recorded,
                   received_rows=received_rows, refusal_windows=refusal_windows) | {"load_average": load_average, "emulator": emulator,
                                                   "seconds": seconds}


def compare(name: str, data: str, work: Path, session: Path, shift: int, strategy: str, params: dict, *,
            recorded: bool = True, received_rows: bool = True, tag: str = "", refusal_windows: bool = True) -> dict:
    """The backtest half of a parity row: backtest `data` over the session's window with the
    session's recorded latencies (module doc) into work/backtest-NAME[TAG] and compare its
    order requests and fills with the session's."""
    from dataclasses import replace

    from engine.config import resolve
    from modes.backtest import run_backtest
    from modes.live.recording import read_journal, read_rows

    inst_id = "binance:BTC/USDT"
    journal = read_journal(session)
    steps = [r for r in journal if "now" in r]
    start = next(r["now"] for r in steps if r.get("start"))
    end = steps[-1]["now"]
    lat = np.loadtxt(session / "latency.csv", delimiter=",", skiprows=1, usecols=(1, 2), ndmin=2)
    entry, response = (int(np.median(lat[:, 0])), int(np.median(lat[:, 1]))) if len(lat) else (0, 0)
    order_file, feed_file, report_file = to_dataset_clock(session, shift, work / f"recorded-{name}{tag}")
    rows = read_rows(session)
    feed = int(np.median(rows["local_ts"] - rows["exch_ts"])) if len(rows) else 0
    # where the session's start (and so its timers, at whole multiples of 100 ms after it)
    # falls after a depth window's end, and how late windows arrived: a decision made
    # within the arrival jitter of a window sees it in one run and not in the other
    diffs = rows[rows["kind"] == 1]
    phase = (start - int(diffs["exch_ts"][0])) % (CONFLATION_MS * 1_000_000) if len(diffs) else 0
    lag_p90 = float(np.percentile(diffs["local_ts"] - diffs["exch_ts"], 90)) if len(diffs) else 0.0
    # the emulator publishes depth as Binance does, one @depth@100ms diff per 100 ms window of
    # its market clock: the backtest of D models that with depth_conflation_ms = 100
    # the session's recorded latencies: each order round trip (latency.csv, the `recorded`
    # order latency model) and each message's feed latency (feed_latency.csv, feed_file),
    # so the backtest sees every depth window when the session did
    # and each user-stream report's latency (report_latency.csv, report_file: the response
    # leg, so a fill reaches the strategy when the session's executionReport did)
    # and the session's request budget (its gateway's order-count limiter: Binance's 50 orders
    # per 10 s, windows on the wall clock, i.e. from -shift on D's clock): the backtest holds
    # or refuses the orders the session's limiter held or refused (venues/sim/budget.py)
    bt_table = VENUE | {"balances": BALANCES, "depth_conflation_ms": CONFLATION_MS,
                        "request_budget": {"phase_ns": -shift % DAY_NS},
                        "latency": {"model": "recorded", "file": str(order_file), "feed_file": str(feed_file),
                                    "refusal_windows": refusal_windows}}
    reports = len(report_file.read_text().splitlines()) > 1  # none when the session sent nothing
    if reports:
        bt_table["latency"]["report_file"] = str(report_file)
    if not recorded:  # the constant model: the loopback's medians
        bt_table["latency"] = {"entry_ns": entry, "response_ns": response, "feed_ns": max(feed, 0)}
    bt_config = resolve({"run": {"strategy": strategy, "data": data, "instruments": [inst_id], "params": params},
                         "venues": {"binance": bt_table}}, {}, base_dir=str(REPO))
    bt_config = replace(bt_config, start_ns=start - shift, end_ns=end - shift)
    backtest = run_backtest(bt_config, work / f"backtest-{name}{tag}", write_html=False)
    # the same comparison over the rows the session received (its market.duckdb): the
    # emulator's 100 ms depth batching and the loopback feed lag taken out
    rec_table = bt_table | {"depth_conflation_ms": 0,  # the recorded rows are the venue's diffs already
                            "request_budget": True,  # on the session's own clock: windows from 0
                            "latency": {"entry_ns": entry, "response_ns": response, "feed_ns": 0}}
    if recorded:  # the rows carry their receipt times; the round trips as recorded (session clock)
        rec_table["latency"] = {"model": "recorded", "file": str(session / "latency.csv"), "feed_ns": 0,
                                "refusal_windows": refusal_windows}
        if reports:
            rec_table["latency"]["report_file"] = str(session / "report_latency.csv")
    rec_config = resolve({"run": {"strategy": strategy, "data": f"duckdb:{session / 'market.duckdb'}",
                                  "instruments": [inst_id], "params": params},
                          "venues": {"binance": rec_table}}, {}, base_dir=str(REPO))
    rec_config = replace(rec_config, start_ns=start, end_ns=end)
    a, b = _orders(backtest), _orders(session)
    on_rows = c = None
    if received_rows:
        on_rows = run_backtest(rec_config, work / f"backtest-rows-{name}{tag}", write_html=False)
        c = _orders(on_rows)
    fa, fb = _filled(backtest), _filled(session)
    return {"strategy": name, "orders_backtest": len(a), "orders_testnet": len(b),
            "first_difference": first_difference(backtest, session, start - shift, start),
            "identical_share": _identical(a, b),
            "identical_share_on_received_rows": None if c is None else _identical(c, b),
            "filled_on_received_rows": None if on_rows is None else str(_filled(on_rows)),
            "filled_backtest": str(fa), "filled_testnet": str(fb),
            # of the larger of the two (n/a when neither filled anything)
            "filled_diff_pct": float(abs(fa - fb) / max(fa, fb) * 100) if max(fa, fb) else None,
            "loopback_entry_ms": entry / 1e6, "loopback_response_ms": response / 1e6, "feed_lag_ms": feed / 1e6,
            "start_after_window_end_ms": phase / 1e6, "depth_lag_p90_ms": lag_p90 / 1e6}


def session_shift(work: Path, name: str) -> int:
    """The emulator's clock shift of a kept session (`--keep` DIR): the file measure() wrote,
    or, for a directory from before it, the largest (the session's venue time of an accepted
    order's REST acknowledgement - the emulator journal's market time of it): a venue time
    is the shifted time floored to its µs, so each difference lies in (shift - 1 µs, shift]."""
    saved = work / f"recorded-{name}" / "shift_ns"
    if saved.exists():
        return int(saved.read_text())
    from venues.emulator import read_journal

    arrived = {e["client_order_id"]: e["ts"] for e in read_journal(work / f"emu-{name}" / "journal.jsonl")
               if e["event"] == "order_new"}
    shifts = [r["report"]["exch_ts"] - arrived[r["report"]["client_id"]]
              for r in read_journal(work / f"testnet-{name}" / "audit.jsonl")
              if r.get("type") == "venue_reply" and r["report"].get("source") == "rest"
              and r["report"].get("status") == 2 and r["report"].get("client_id") in arrived]
    if not shifts:
        raise SystemExit(f"{work}: no acknowledged order to derive the emulator's clock shift from")
    return max(shifts)


def rebacktest(work: Path, name: str, params: dict | None = None, refresh_ms: int = 500, tag: str = "-re",
               data: str | None = None, refusal_windows: bool = True) -> dict:
    """The backtest half again on a kept session (`--keep` DIR): the same comparison with
    today's backtest code, into DIR/backtest-NAME-re (a change to the simulated venue or to
    the recorded models measured on sessions already run). `data`: the dataset the session's
    emulator replayed (default: the one the bench generated, DIR/parity.duckdb)."""
    strategy, base = STRATEGIES[name]
    params = dict(base) | (params or {})
    if name.startswith("market_maker"):
        params.setdefault("refresh_ms", refresh_ms)
    session = work / f"testnet-{name}"
    return compare(name, data or f"duckdb:{work / 'parity.duckdb'}", work, session, session_shift(work, name), strategy,
                   params, received_rows=False, tag=tag, refusal_windows=refusal_windows) | {"load_average": os.getloadavg()[0],
                                                            "emulator": "kept", "seconds": 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="a stored dataset (default: generated, synthetic seed 11, 30 min); "
                        "a synthetic: spec would restart its series at the window's start")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--refresh-ms", type=int, default=500)
    parser.add_argument("--strategy", action="append", choices=sorted(STRATEGIES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a strategy parameter for every strategy run, e.g. half_spread_bps=0.05 "
                             "(a market maker quoting at the touch, so it fills)")
    parser.add_argument("--constant", action="store_true",
                        help="backtest with constant latencies (the loopback's medians) instead of the session's "
                             "recorded order and feed latencies")
    parser.add_argument("--keep", metavar="DIR", help="keep the run directories in DIR")
    parser.add_argument("--emulator", choices=("process", "thread"), default="process",
                        help="the emulator in its own process (default) or on a thread of this one (the "
                             "session shares the interpreter lock with it: the rounds before session 9)")
    parser.add_argument("--no-refusal-windows", action="store_true",
                        help="backtest a refused post-only submit at its entry estimate instead of at the first "
                             "moment of its window the venue refuses it (latency.refusal_windows = false: the "
                             "rule before session 10)")
    parser.add_argument("--rebacktest", metavar="DIR", action="append",
                        help="no session: backtest again the sessions kept in DIR (--keep) and compare "
                             "(repeatable; the dataset: --data, default DIR/parity.duckdb)")
    args = parser.parse_args(argv)
    rows = []
    if args.rebacktest:
        for work in args.rebacktest:
            for name in args.strategy or sorted(STRATEGIES):
                if (Path(work) / f"testnet-{name}").exists():
                    rows.append(rebacktest(Path(work), name, dict(p.split("=", 1) for p in args.param) or None,
                                           args.refresh_ms, data=args.data,
                                           refusal_windows=not args.no_refusal_windows) | {"work": work})
        _print(rows, args, "kept sessions")
        return 0
    with tempfile.TemporaryDirectory(prefix="tickparity-parity-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.data is None:
            import subprocess

            args.data = f"duckdb:{work / 'parity.duckdb'}"
            subprocess.run([sys.executable, "-m", "modes.cli", "data", "generate", "--to", args.data, "--instrument",
                            "binance:BTC/USDT", "--seed", "11", "--duration", "30m"], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL)
        for name in args.strategy or sorted(STRATEGIES):
            rows.append(measure(name, args.data, args.seconds, args.refresh_ms, work, recorded=not args.constant,
                                params=dict(p.split("=", 1) for p in args.param) or None,
                                emulator=args.emulator, refusal_windows=not args.no_refusal_windows))
    _print(rows, args, f"{args.data} vs testnet against the emulator replaying it ({args.seconds:.0f} s, "
                       f"emulator in {'its own process' if args.emulator == 'process' else 'this process'})")
    return 0


def _print(rows: list[dict], args: argparse.Namespace, what: str) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
    print(f"parity: backtest on {what}")
    print(f"{'strategy':<14}{'orders bt/tn':>14}{'identical':>11}{'filled bt':>12}{'filled tn':>12}{'diff':>8}"
          f"{'loopback entry/resp':>22}{'feed lag':>10}{'identical on received rows':>28}"
          f"{'start after window end':>24}{'depth lag p90':>15}{'load':>6}")
    for r in rows:
        diff = "n/a" if r["filled_diff_pct"] is None else f"{r['filled_diff_pct']:.2f}%"
        print(f"{r['strategy']:<14}{r['orders_backtest']:>7}/{r['orders_testnet']:<6}{r['identical_share']:>10.1%}"
              f"{r['filled_backtest']:>12}{r['filled_testnet']:>12}{diff:>8}"
              f"{r['loopback_entry_ms']:>12.2f}/{r['loopback_response_ms']:.2f} ms{r['feed_lag_ms']:>8.2f} ms"
              f"{'-' if r['identical_share_on_received_rows'] is None else format(r['identical_share_on_received_rows'], '.1%'):>27}"
              f"{r['start_after_window_end_ms']:>21.1f} ms{r['depth_lag_p90_ms']:>12.1f} ms{r['load_average']:>6.1f}")
    for r in rows:
        if r["first_difference"]:
            print(f"{r['strategy']}: {r['first_difference']}")


if __name__ == "__main__":
    sys.exit(main())
