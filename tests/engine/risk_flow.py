"""Hand-made books and a scripted strategy for the risk tests: backtests through the CLI
whose every price is known, so each limit, state change and kill-switch figure can be
computed by hand.

The book of each instrument is one bid and one ask level (deep enough never to run out),
re-sent every 100 ms so the replay has events to advance on; `moves` change it at given
times. Latencies are constant (entry 1 ms, response 1 ms, feed 0) and fees zero.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from engine.strategy import Strategy
from engine.types import EVENT_DTYPE, EventKind, load_instruments

S = 1_000_000_000
MS = 1_000_000
T0 = 1_704_067_200 * S  # 2024-01-01T00:00:00Z
HERE = Path(__file__).resolve()


def write_store(path: Path, books: dict[str, list[tuple[int, str, str]]], seconds: int = 10,
                start: int = T0) -> str:
    """A DuckDB store: per instrument id, a list of (from_ms, bid, ask) book states (the
    first at 0 ms); each level holds 100 units of base. Returns the data spec."""
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    specs = load_instruments()
    spec = f"duckdb:{path}"
    with open_store(spec, create=True) as store:
        stored = {i: StoredInstrument.of(specs[i]) for i in books}
        with store.begin_import(stored) as tx:
            for index, (inst_id, states) in enumerate(books.items()):
                inst = specs[inst_id]
                depth = inst.qty_to_lots(Decimal(100))
                rows = []
                previous = None
                for t_ms in range(0, seconds * 1000, 100):
                    bid, ask = [(b, a) for (f, b, a) in states if f <= t_ms][-1]
                    ts = start + t_ms * MS
                    b, a = inst.price_to_ticks(Decimal(bid)), inst.price_to_ticks(Decimal(ask))
                    if previous != (b, a):
                        rows.append((ts, EventKind.SNAPSHOT_BEGIN, 0, 0, 0))
                        rows.append((ts, EventKind.BOOK_DELTA, 1, b, depth))
                        rows.append((ts, EventKind.BOOK_DELTA, -1, a, depth))
                        rows.append((ts, EventKind.SNAPSHOT_END, 0, 0, 0))
                        previous = (b, a)
                    else:
                        rows.append((ts, EventKind.BOOK_DELTA, 1, b, depth))
                events = np.zeros(len(rows), dtype=EVENT_DTYPE)
                for k, (ts, kind, side, price, qty) in enumerate(rows):
                    events[k] = (ts, ts, index, kind, side, price, qty, 0)
                events["instrument"] = index
                tx.append(inst_id, events)
    return spec


def run(tmp_path: Path, data: str, steps: list[dict], risk: dict, *, instruments=("binance:BTC/USDT",),
        balances: dict[str, dict[str, str]] | None = None, sample_ms: int = 1000, name: str = "run",
        strategy: str = "Script") -> Path:
    """Run a backtest of `Script(steps)` with the `[risk]` table `risk`; returns the run dir."""
    from modes.cli import main

    venues = sorted({i.split(":")[0] for i in instruments})
    balances = balances or {}
    lines = ["[run]", f'strategy = "{HERE}:{strategy}"', f'data = "{data}"',
             f"instruments = {json.dumps(list(instruments))}", f"sample_ms = {sample_ms}",
             f'out = "{tmp_path / name}"', "", "[run.params]", f"steps = {_toml(steps)}", ""]
    for venue in venues:
        bal = balances.get(venue, {"USDT": "1000000", "BTC": "100", "ETH": "1000"})
        assets = {a for i in instruments if i.startswith(venue + ":") for a in i.split(":")[1].split("/")}
        bal = {a: v for a, v in bal.items() if a in assets}
        lines += [f"[venues.{venue}]", "maker_fee_bps = 0", "taker_fee_bps = 0",
                  "latency = { entry_ns = 1000000, response_ns = 1000000, feed_ns = 0 }",
                  "balances = { " + ", ".join(f'{a} = "{v}"' for a, v in bal.items()) + " }", ""]
    lines.append("[risk]")
    lines += [f"{k} = {_toml(v)}" for k, v in risk.items()]
    config = tmp_path / f"{name}.toml"
    config.write_text("\n".join(lines) + "\n")
    code = main(["backtest", "--config", str(config), "--no-report"])
    assert code == 0, f"backtest exited {code}"
    return tmp_path / name


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str | Decimal):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def orders(run_dir: Path) -> dict[str, dict]:
    return {o["client_id"]: o for o in pq.read_table(run_dir / "orders.parquet").to_pylist()}


def fills(run_dir: Path) -> list[dict]:
    return pq.read_table(run_dir / "fills.parquet").to_pylist()


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def audit(run_dir: Path, type_: str | None = None) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "audit.jsonl").read_text().splitlines()]
    return [r for r in records if type_ is None or r["type"] == type_]


def updates(run_dir: Path) -> list[dict]:
    """The order updates the strategy saw, in order (its ctx.log notes)."""
    return [r for r in audit(run_dir, "note") if r["message"] == "update"]


class Script(Strategy):
    """Runs `steps` at their `at_ms` after the start; logs every order update.

    A step: {at_ms, do, ...}: do = "submit" (instrument, side, qty, price?, type?, tif?, id?,
    reduce_only?), "cancel" (id), "amend" (id, qty?, price?), "kill" (reason, flatten?,
    slippage?), "resume" (why), "reduce" (why), "approve" (id), "refuse" (id),
    "state" (logs ctx.risk_state).
    """

    def __init__(self, steps=None):
        self.steps = list(steps or [])
        self.at: dict[int, list[dict]] = {}

    def on_start(self, ctx):
        for step in self.steps:
            ts = ctx.now + int(step["at_ms"]) * MS
            self.at.setdefault(ts, []).append(step)
        for ts in sorted(self.at):
            ctx.schedule(at_ns=ts)

    def on_timer(self, ctx, ts):
        for step in self.at.pop(ts, []):
            self.do(ctx, step)

    def do(self, ctx, step):
        do = step["do"]
        if do == "submit":
            kwargs = {"type": step.get("type", "limit"), "client_id": step.get("id"),
                      "reduce_only": bool(step.get("reduce_only", False))}
            if "tif" in step:
                kwargs["tif"] = step["tif"]
            ctx.submit(step.get("instrument", "binance:BTC/USDT"), step["side"], str(step["qty"]),
                       None if step.get("price") is None else str(step["price"]), **kwargs)
        elif do == "cancel":
            ctx.cancel(step["id"])
        elif do == "amend":
            ctx.amend(step["id"], qty=step.get("qty"), price=step.get("price"))
        elif do == "kill":
            ctx.kill(step.get("reason", "test"), flatten=bool(step.get("flatten", False)),
                     max_slippage_bps=step.get("slippage"))
        elif do == "resume":
            ctx.resume(step["why"])
        elif do == "reduce":
            ctx.reduce(step["why"])
        elif do == "approve":
            ctx.approve(step["id"], "ok")
        elif do == "refuse":
            ctx.refuse(step["id"], "no")
        ctx.log("state", state=ctx.risk_state, at=step["at_ms"])

    def on_order(self, ctx, update):
        ctx.log("update", client_id=update.client_id, event=update.event.value, status=update.status.value,
                reason=update.reason, filled=update.filled_qty)
