"""Benchmark (A/B): the smart order router against "all to the best-priced venue" and "all to
one venue", on the same multi-venue synthetic data.

    .venv/bin/python bench/bench_router.py [--seeds 3] [--minutes 5] [--quantity 3] [--quick]

Each run buys `quantity` BTC with an aggressive TWAP (20 slices over the run, IOC capped
10 bps through the touch) on binance, okx and bybit BTC/USDT (one latent price; venue profiles
and fees below). Three policies execute the same parent on the same data and seed:

- router:     SmartOrderRouter (price after taker fee and latency, depth, balances)
- best_price: every slice to the venue with the best displayed touch (price only)
- one_venue:  every slice to binance

Prints, per seed and as means, from the report's summary.json: the parent's implementation
shortfall (bps of paper notional at the arrival mid; delay + impact + fees + opportunity cost
of what did not fill, valued at the end mid; lower is better), the fill ratio, and the cost of
the filled part alone (delay + impact + fees over the filled notional, bps). When policies fill
different fractions, the opportunity term follows the market's drift, so read the three together.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Row, RunRecord, add_arguments  # noqa: E402
from engine import Strategy  # noqa: E402
from engine.execution import TWAP, SmartOrderRouter  # noqa: E402

VENUES = {  # taker/maker bps: base spot tiers (binance with its BNB-fee discount, 7.5)
    "binance": {"taker_fee_bps": 7.5, "maker_fee_bps": 7.5, "latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000}},
    "okx": {"taker_fee_bps": 10.0, "maker_fee_bps": 8.0, "latency": {"entry_ns": 3_000_000, "response_ns": 3_000_000}},
    "bybit": {"taker_fee_bps": 10.0, "maker_fee_bps": 10.0, "latency": {"entry_ns": 2_000_000, "response_ns": 2_000_000}},
}
INSTRUMENTS = ["binance:BTC/USDT", "okx:BTC/USDT", "bybit:BTC/USDT"]
POLICIES = ("router", "best_price", "one_venue")


class RouterAB(Strategy):
    """Starts one aggressive TWAP at the first timer with the policy under test."""

    def __init__(self, policy: str = "router", quantity: Decimal = Decimal("3"), horizon_s: int = 240,
                 slices: int = 20) -> None:
        self.policy, self.quantity = policy, Decimal(str(quantity))
        self.horizon_s, self.slices = horizon_s, slices
        self.algo = None

    def on_start(self, ctx) -> None:
        ctx.schedule(at_ns=ctx.now)

    def on_timer(self, ctx, ts: int) -> None:
        if self.algo is not None:
            return
        router = None
        if self.policy == "router":
            router = SmartOrderRouter()
        elif self.policy == "best_price":
            router = SmartOrderRouter(policy="best_price")
        self.algo = ctx.execute(TWAP(INSTRUMENTS[0], "buy", self.quantity, parent_id="ab-1",
                                     horizon_s=self.horizon_s, slices=self.slices, router=router))


def run_one(policy: str, seed: int, minutes: float, quantity: str, out: Path) -> tuple[float, float, float]:
    """(implementation shortfall bps, fill ratio, cost of the filled part in bps)."""
    from engine.config import resolve
    from modes.backtest import run_backtest

    venues = {name: dict(table, balances={"USDT": "10000000", "BTC": "0"}) for name, table in VENUES.items()}
    config = resolve({"run": {
        "strategy": f"{Path(__file__).resolve()}:RouterAB", "data": f"synthetic:{seed}:{int(minutes * 60)}s",
        "instruments": INSTRUMENTS, "seed": seed,
        "params": {"policy": policy, "quantity": quantity, "horizon_s": int(minutes * 60 * 0.8)}},
        "venues": venues}, {})
    run = run_backtest(config, out / f"{policy}-{seed}", write_html=True)
    summary = json.loads((run / "summary.json").read_text())
    parents = summary.get("parents", {})
    block = parents.get("implementation_shortfall") or {}
    fill = parents.get("fill_ratio") or 0.0
    filled_notional = block.get("paper_notional", 0.0) * fill
    cost = block.get("delay", 0.0) + block.get("impact", 0.0) + block.get("fees", 0.0)
    return (block.get("total_bps", float("nan")), fill,
            cost / filled_notional * 1e4 if filled_notional else float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--quantity", default="3")
    parser.add_argument("--quick", action="store_true", help="one seed, 2 minutes")
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = RunRecord("bench_router", sys.argv[1:] if argv is None else argv, vars(args))
    seeds = 1 if args.quick else args.seeds
    minutes = 2.0 if args.quick else args.minutes
    results: dict[str, list[tuple[float, float, float]]] = {p: [] for p in POLICIES}
    with tempfile.TemporaryDirectory(prefix="tp-bench-router-") as tmp:
        for seed in range(1, seeds + 1):
            for policy in POLICIES:
                total, fill, cost = run_one(policy, seed, minutes, args.quantity, Path(tmp))
                results[policy].append((total, fill, cost))
                print(f"seed {seed} {policy:<10} implementation shortfall {total:8.3f} bps  fill ratio "
                      f"{fill:6.1%}  cost of the filled part {cost:7.3f} bps", flush=True)
    print(f"\nrouter A/B: buy {args.quantity} BTC, TWAP 20 slices, {seeds} seed(s) x {minutes:g} min, "
          "3 venues (lower is better)")
    print(f"{'policy':<12}{'IS (bps)':>10}{'fill ratio':>12}{'filled cost (bps)':>19}")
    for policy, values in results.items():
        n = len(values)
        print(f"{policy:<12}{sum(v[0] for v in values) / n:>10.3f}{sum(v[1] for v in values) / n:>12.1%}"
              f"{sum(v[2] for v in values) / n:>19.3f}")
        detail = {"seeds": seeds, "minutes": minutes, "quantity": args.quantity}
        record.add(Row(f"router {policy}: implementation shortfall", sum(v[0] for v in values) / n, "bps",
                       better="lower", detail=detail))
        record.add(Row(f"router {policy}: fill ratio", sum(v[1] for v in values) / n, "ratio", detail=detail))
        record.add(Row(f"router {policy}: cost of the filled part", sum(v[2] for v in values) / n, "bps",
                       better="lower", detail=detail))
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
