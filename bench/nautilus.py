"""NautilusTrader as an optional peer of the race's market maker (issue 16).

    make bench-nautilus                          # creates .venv-nautilus (Python 3.12), runs the race with it
    python -m bench.bench_sim --quick --cases mm --nautilus yes

NautilusTrader needs Python >= 3.12 and pins its own numpy/pandas/pyarrow, so it lives in
its own virtualenv (`.venv-nautilus` at the repository root, or the interpreter named by
$TICKPARITY_NAUTILUS_PYTHON) and runs there as a child process: `bench/nautilus_peer.py`
gets the very feed rows of the race (saved as .npy) and the race's settings, and prints
its timings and order counts as JSON. Without that venv the row says "not measured" and
why; `--nautilus yes` makes a missing peer an error instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-nautilus"
PEER = Path(__file__).resolve().parent / "nautilus_peer.py"
VERSION = "1.231.0"  # the version the figure (48.8 k ev/s) was measured with; make bench-nautilus installs it
TIMEOUT_S = 3600


def peer_python() -> Path | None:
    """The NautilusTrader venv's interpreter, or None when there is none."""
    named = os.environ.get("TICKPARITY_NAUTILUS_PYTHON")
    if named:
        return Path(named)
    candidate = VENV / "bin" / "python"
    return candidate if candidate.exists() else None


def run_peer(feed: np.ndarray, work: Path, *, required: bool = False, repeat: int = 1) -> dict[str, Any]:
    """Run the market maker on NautilusTrader; returns {"result": bench_sim.Result or None,
    "reason": why not measured, "version", "raw": the child's JSON}. Raises RuntimeError
    when `required` and it could not be measured."""
    from bench.bench_sim import (
        ENTRY_NS,
        MAKER_BPS,
        ORDER_QTY,
        STEP_NS,
        TAKER_BPS,
        Result,
        bench_instrument,
    )
    from engine.types import EventKind

    python = peer_python()
    if python is None:
        return _not_measured(f"no NautilusTrader venv: {VENV.relative_to(REPO)} does not exist; "
                             "`make bench-nautilus` creates it (Python 3.12, nautilus_trader "
                             f"{VERSION})", required)
    if not python.exists():
        return _not_measured(f"TICKPARITY_NAUTILUS_PYTHON={python} does not exist", required)
    inst = bench_instrument()
    work.mkdir(parents=True, exist_ok=True)
    feed_path, settings_path = work / "nautilus_feed.npy", work / "nautilus_settings.json"
    np.save(feed_path, feed)
    settings_path.write_text(json.dumps({
        "tick": str(inst.tick_size), "lot": str(inst.lot_size), "qty": ORDER_QTY, "step_ns": STEP_NS,
        "entry_ns": ENTRY_NS, "maker_fee": str(MAKER_BPS / 10_000), "taker_fee": str(TAKER_BPS / 10_000),
        "kinds": {"BOOK_DELTA": int(EventKind.BOOK_DELTA), "TRADE": int(EventKind.TRADE)}}))
    print(f"  NautilusTrader: building {len(feed):,} data objects and running {repeat}x "
          f"in {python} ...", flush=True)
    try:
        proc = subprocess.run([str(python), "-W", "ignore", str(PEER), str(feed_path), str(settings_path),
                               "--repeat", str(repeat)], cwd=REPO, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _not_measured(f"the NautilusTrader run failed: {exc}", required)
    finally:
        feed_path.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return _not_measured(f"the NautilusTrader run exited with {proc.returncode}: {tail}", required)
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    best = min(raw["runs"], key=lambda r: r["cpu"])
    for i, run in enumerate(raw["runs"]):
        print(f"  run {i + 1}/{len(raw['runs'])} market maker  nautilus_trader      wall {run['wall']:7.3f} s "
              f"{raw['events'] / run['wall'] / 1e3:8.1f} k/s   cpu {run['cpu']:7.3f} s "
              f"{raw['events'] / run['cpu'] / 1e3:8.1f} k/s", flush=True)
    result = Result("nautilus_trader", "market maker", int(raw["events"]), best["wall"], best["cpu"],
                    {k: float(v) for k, v in raw["counts"].items()})
    return {"result": result, "reason": None, "version": raw["version"], "raw": raw}


def _not_measured(reason: str, required: bool) -> dict[str, Any]:
    if required:
        raise RuntimeError(f"NautilusTrader not measured: {reason}")
    return {"result": None, "reason": reason, "version": None, "raw": None}
