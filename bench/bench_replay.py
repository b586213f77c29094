"""Data-layer benchmark: import rows/s per format, replay events/s and peak memory per store.

    python bench/bench_replay.py [--events N] [--keep DIR]
    python -m bench --only replay

1. Import: the real Binance websocket captures (binance-ws), and Tardis / Binance-public
   CSVs written from synthetic data (so their size follows --events), each imported into
   a fresh DuckDB store through the full path (parse, validate, write).
2. Replay: N synthetic events (one instrument, binance:BTC/USDT) written to DuckDB,
   Parquet and chDB; each store is then replayed through `replay.open_source` in its own
   process, which reports events/s and its peak RSS. The yardstick is plain
   `pyarrow.parquet` reading the same rows into numpy in the same chunk size.

Nothing here asserts a time. `--events 50000000` is the "50M events under 1 GB" check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results import Row, RunRecord, add_arguments  # noqa: E402

WS_DATA = REPO / "tests" / "data" / "binance-ws"  # the real captures shipped with the tests
INST = "binance:BTC/USDT"
CHUNK = 1_000_000
SPOT_8DP = """["binance:BTC/USDT"]
venue_symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00000001"
"""
PERP = """["binance:BTC/USD:BTC"]
venue_symbol = "BTCUSD_PERP"
base = "BTC"
quote = "USD"
tick_size = "0.1"
lot_size = "1"
"""


def _rss_mb() -> float:
    """Peak resident set of this process (VmHWM; ru_maxrss survives fork+exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- child processes: one replay each, so peak RSS is per store ----------------------------


def child_replay(spec: str) -> dict:
    import numpy as np

    from engine.types import load_instruments
    from replay import open_source

    inst = load_instruments()[INST]
    base = _rss_mb()
    began = time.perf_counter()
    src = open_source(spec, {INST: inst}, chunk_rows=CHUNK)
    n = 0
    checksum = 0
    for chunk in src:
        n += len(chunk)
        checksum ^= int(np.bitwise_xor.reduce(chunk["price"][::997]))
    elapsed = time.perf_counter() - began
    return {
        "events": n,
        "seconds": elapsed,
        "peak_mb": _rss_mb(),
        "base_mb": base,
        "checksum": checksum,
    }


def child_pyarrow(directory: str) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from engine.types import EVENT_DTYPE

    files = sorted(Path(directory).rglob("*.parquet"))
    base = _rss_mb()
    began = time.perf_counter()
    n = 0
    checksum = 0
    cols = ["exch_ts", "local_ts", "kind", "side", "price", "qty", "order_id"]
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=CHUNK, columns=cols):
            out = np.empty(batch.num_rows, dtype=EVENT_DTYPE)
            for name in cols:
                out[name] = batch.column(name).to_numpy()
            out["instrument"] = 0
            n += len(out)
            checksum ^= int(np.bitwise_xor.reduce(out["price"][::997]))
    elapsed = time.perf_counter() - began
    return {
        "events": n,
        "seconds": elapsed,
        "peak_mb": _rss_mb(),
        "base_mb": base,
        "checksum": checksum,
    }


def _spawn(kind: str, arg: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, arg],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {kind} {arg} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- import benchmarks ---------------------------------------------------------------------


def _fmt_prices(ticks, step_digits: int) -> list[str]:
    scale = 10**step_digits
    return [f"{t // scale}.{t % scale:0{step_digits}d}" for t in ticks.tolist()]


def write_tardis(events, inst, directory: Path) -> list[Path]:
    from engine.types import EventKind

    book = events[(events["kind"] == EventKind.BOOK_DELTA)]
    trades = events[events["kind"] == EventKind.TRADE]
    px_digits = -inst.tick_size.as_tuple().exponent
    qty_digits = -inst.lot_size.as_tuple().exponent
    book_path = directory / "binance_incremental_book_L2_BTCUSDT.csv"
    with open(book_path, "w") as fh:
        fh.write("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n")
        prices = _fmt_prices(book["price"], px_digits)
        qtys = _fmt_prices(book["qty"], qty_digits)
        first_snapshot = int(
            (book["exch_ts"] == book["exch_ts"][0]).sum()
        )  # the opening snapshot rows
        for i in range(len(book)):
            fh.write(
                f"binance,BTCUSDT,{book['exch_ts'][i] // 1000},{book['local_ts'][i] // 1000},"
                f"{'true' if i < first_snapshot else 'false'},{'bid' if book['side'][i] > 0 else 'ask'},"
                f"{prices[i]},{qtys[i]}\n"
            )
    trades_path = directory / "binance_trades_BTCUSDT.csv"
    with open(trades_path, "w") as fh:
        fh.write("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
        prices = _fmt_prices(trades["price"], px_digits)
        qtys = _fmt_prices(trades["qty"], qty_digits)
        for i in range(len(trades)):
            fh.write(
                f"binance,BTCUSDT,{trades['exch_ts'][i] // 1000},{trades['local_ts'][i] // 1000},"
                f"{trades['order_id'][i]},{'buy' if trades['side'][i] > 0 else 'sell'},{prices[i]},{qtys[i]}\n"
            )
    return [book_path, trades_path]


def write_binance_public(events, inst, directory: Path) -> list[Path]:
    from engine.types import EventKind

    trades = events[events["kind"] == EventKind.TRADE]
    px_digits = -inst.tick_size.as_tuple().exponent
    qty_digits = -inst.lot_size.as_tuple().exponent
    path = directory / "BTCUSDT-trades-2024-01-01.csv"
    prices = _fmt_prices(trades["price"], px_digits)
    qtys = _fmt_prices(trades["qty"], qty_digits)
    # public dumps are ms-stamped and ordered by trade id: make ms stamps non-decreasing
    ms = trades["exch_ts"] // 1_000_000
    with open(path, "w") as fh:
        for i in range(len(trades)):
            maker = "True" if trades["side"][i] < 0 else "False"
            fh.write(f"{trades['order_id'][i]},{prices[i]},{qtys[i]},0,{ms[i]},{maker},True\n")
    return [path]


def bench_imports(work: Path, events, inst) -> list[tuple[str, int, float]]:
    import shutil

    from engine.types import load_instruments
    from replay.importers import import_files

    shutil.rmtree(work, ignore_errors=True)  # fresh stores every run (also with --keep)
    work.mkdir(parents=True)
    results = []
    quiet = lambda _t: None  # noqa: E731
    if WS_DATA.is_dir():
        toml = work / "ws_instruments.toml"
        toml.write_text(SPOT_8DP + "\n" + PERP)
        insts = load_instruments(toml)
        files = [
            str(WS_DATA / "spot_btcusdt_20240808.gz"),
            str(WS_DATA / "cm_btcusd_perp_20240808.gz"),
        ]
        began = time.perf_counter()
        _r, rows = import_files(
            "binance-ws",
            files,
            f"duckdb:{work / 'imp_ws.duckdb'}",
            insts,
            correct_skew=True,
            say=quiet,
        )
        results.append(("binance-ws (real captures, 2 files)", rows, time.perf_counter() - began))
    else:
        print(f"note: {WS_DATA} not found; binance-ws import not measured")
    insts = load_instruments()
    tardis_dir = work / "tardis"
    tardis_dir.mkdir()
    tardis_files = write_tardis(events, inst, tardis_dir)
    began = time.perf_counter()
    _r, rows = import_files(
        "tardis",
        [str(p) for p in tardis_files],
        f"duckdb:{work / 'imp_tardis.duckdb'}",
        insts,
        say=quiet,
    )
    results.append(("tardis (incremental_book_L2 + trades CSV)", rows, time.perf_counter() - began))
    pub_dir = work / "public"
    pub_dir.mkdir()
    pub_files = write_binance_public(events, inst, pub_dir)
    began = time.perf_counter()
    _r, rows = import_files(
        "binance-public",
        [str(p) for p in pub_files],
        f"duckdb:{work / 'imp_pub.duckdb'}",
        insts,
        say=quiet,
    )
    results.append(("binance-public (trades CSV, no header)", rows, time.perf_counter() - began))
    return results


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_replay", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=10_000_000,
        help="synthetic events to replay (default 10,000,000)",
    )
    parser.add_argument(
        "--import-events",
        type=int,
        default=500_000,
        help="synthetic events behind the CSV import files",
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the stores")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        kind, arg = args.child
        result = child_replay(arg) if kind == "replay" else child_pyarrow(arg)
        print(json.dumps(result))
        return 0
    record = RunRecord("bench_replay", sys.argv[1:] if argv is None else argv, vars(args))

    import numpy as np

    from engine.types import load_instruments
    from replay.schema import StoredInstrument
    from replay.stores import open_store
    from replay.synthetic import DEFAULT_START_NS, generate

    inst = load_instruments()[INST]
    tmp = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_replay_")
        work = Path(tmp.name)
    print(f"bench_replay: work dir {work}, {os.cpu_count()} cpus, python {sys.version.split()[0]}")

    # import benchmarks on a small synthetic sample
    sample = np.concatenate(
        list(
            generate(
                [inst],
                7,
                DEFAULT_START_NS,
                max(1, args.import_events // 1320) * 10**9,
                chunk_rows=1 << 18,
            )
        )
    )
    print("\nimport (parse + validate + write to DuckDB):")
    for name, rows, seconds in bench_imports(work / "imports", sample, inst):
        print(f"  {name:<45} {rows:>10,} rows  {seconds:6.2f} s  {rows / seconds:>12,.0f} rows/s")
        record.add(Row(f"import {name}", rows / seconds, "rows/s", detail={"rows": rows, "seconds": seconds}))
    del sample

    # stores with N events
    # generate a little more time than needed and stop at exactly N events
    duration_ns = max(1, args.events // 900) * 10**9
    specs = {
        "duckdb": f"duckdb:{work / 'replay.duckdb'}",
        "parquet": f"parquet:{work / 'replay_parquet'}",
        "chdb": f"chdb:{work / 'replay_chdb'}",
    }
    print(f"\nwriting {args.events:,} synthetic events of {INST} to each store:")
    spec_of = {INST: StoredInstrument.of(inst)}
    total = 0
    for name, spec in specs.items():
        began = time.perf_counter()
        gen_seconds = 0.0
        with open_store(spec, create=True) as store:
            if store.count(INST, None, None):
                print(f"  {name:<8} already filled (--keep): reused")
                total = store.count(INST, None, None)
                continue
            with store.begin_import(spec_of) as tx:
                total = 0
                it = generate([inst], 7, DEFAULT_START_NS, duration_ns, chunk_rows=1 << 20)
                while True:
                    g0 = time.perf_counter()
                    chunk = next(it, None)
                    gen_seconds += time.perf_counter() - g0
                    if chunk is None:
                        break
                    chunk = chunk[: args.events - total]
                    tx.append(INST, chunk)
                    total += len(chunk)
                    if total >= args.events:
                        break
        seconds = time.perf_counter() - began
        print(
            f"  {name:<8} {total:>12,} events  {seconds:6.1f} s  (generator {gen_seconds:.1f} s, "
            f"store {total / max(seconds - gen_seconds, 1e-9):,.0f} rows/s)"
        )

    print(
        f"\nreplay through open_source (chunks of {CHUNK:,}; one process each; peak RSS of that process):"
    )
    rows = []
    for name, spec in specs.items():
        r = _spawn("replay", spec)
        rows.append((f"open_source {name}", r))
    r = _spawn("pyarrow", str(work / "replay_parquet"))
    rows.append(("plain pyarrow.parquet (yardstick)", r))
    for label, r in rows:
        rate = r["events"] / r["seconds"] if r["seconds"] else 0.0
        print(
            f"  {label:<36} {r['events']:>12,} events  {r['seconds']:6.2f} s  {rate:>12,.0f} ev/s  "
            f"peak {r['peak_mb']:7.0f} MB (after imports {r['base_mb']:.0f} MB)"
        )
        record.add(Row(f"replay {label}", rate, "ev/s", detail={"events": r["events"], "seconds": r["seconds"],
                                                               "peak_mb": r["peak_mb"], "base_mb": r["base_mb"]}))
    sums = {r["checksum"] for _l, r in rows}
    print(
        "  same rows everywhere:"
        if len(sums) == 1
        else "  WARNING: stores returned different rows:",
        sums,
    )
    if tmp is not None:
        tmp.cleanup()
    record.extra["same_rows_everywhere"] = len(sums) == 1
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
