"""Bench results as one JSON file per run, so that speed can be compared across commits.

    python -m bench.bench_sim --quick            # writes bench/results/<UTC time>-<sha>.json
    python -m bench.bench_sim --quick --json out.json
    python -m bench.compare OLD.json NEW.json    # rows side by side, change in %

A file holds what produced the figures (`build`: tickparity's git commit and dirty flag,
Python / numpy / numba / pyarrow versions, from `engine.output.build_info`, plus the peers'
versions), the machine (`machine`: cores, CPU model, load average at the start and at the
end of the run: on a shared machine the absolute rates move with it, the ratios of one run
much less), the options of the run and its rows. A row is one measured figure:

    {"name": "market maker: tickparity compiled nb", "figure": 13.5e6, "unit": "ev/s",
     "better": "higher", "peer": "hftbacktest roivec", "peer_figure": 11.7e6,
     "ratio": 1.15, "detail": {...}}

`name` is the key `bench.compare` matches rows by; `ratio` is figure / peer_figure in the
direction where > 1 means ours is ahead (for a "lower is better" unit such as µs, peer /
figure). A row that could not be measured has `figure` None and says why in `note`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = "tickparity-bench/1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One measured figure (see the module docstring for the fields)."""

    name: str
    figure: float | None
    unit: str
    better: str = "higher"  # "higher" (rates) or "lower" (times, memory)
    peer: str | None = None
    peer_figure: float | None = None
    ratio: float | None = None
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"Row {self.name!r}: better must be 'higher' or 'lower', not {self.better!r}")
        if self.ratio is None and self.figure and self.peer_figure:
            self.ratio = (self.figure / self.peer_figure if self.better == "higher"
                          else self.peer_figure / self.figure)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """Cores, CPU model, memory and the load average now (1, 5, 15 minutes)."""
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    return {"cores": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gb": round(mem_gb, 1) if mem_gb else None,
            "platform": platform.platform(), "load_average": list(os.getloadavg())}


class RunRecord:
    """Collects one bench run's rows and writes them (`write`) with the run's facts."""

    def __init__(self, bench: str, argv: list[str] | None = None, options: dict[str, Any] | None = None) -> None:
        from engine.output import build_info

        self.bench = bench
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.options = dict(options or {})
        self.started = datetime.now(UTC)
        self.t0 = time.perf_counter()
        self.build = build_info() | {"hftbacktest": _version("hftbacktest")}
        self.machine = machine_facts()
        self.rows: list[Row] = []
        self.extra: dict[str, Any] = {}

    def add(self, row: Row) -> Row:
        if any(r.name == row.name for r in self.rows):
            raise ValueError(f"bench row {row.name!r} recorded twice")
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        machine = dict(self.machine)
        machine["load_average_end"] = list(os.getloadavg())
        return {"schema": SCHEMA, "bench": self.bench, "started_utc": self.started.isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - self.t0, 3), "argv": self.argv,
                "options": self.options, "build": self.build, "machine": machine,
                "rows": [asdict(r) for r in self.rows], **self.extra}

    def default_path(self) -> Path:
        """bench/results/<UTC start, compact>-<short git sha>[-dirty]-<bench>.json (the bench's
        name last: `python -m bench` starts several benches in one second on a fast run, and
        each must keep its own file)."""
        sha = (self.build.get("git_commit") or "nogit")[:10]
        dirty = "-dirty" if self.build.get("git_dirty") else ""
        return RESULTS_DIR / f"{self.started.strftime('%Y%m%dT%H%M%SZ')}-{sha}{dirty}-{self.bench}.json"

    def add_latencies(self, name: str, times_ns: Any, **detail: Any) -> None:
        """Rows `<name> p50` and `<name> p99` (µs, lower is better) of per-call times in ns;
        `detail` holds n, p99.9 and max too (numpy percentiles, linear interpolation)."""
        import numpy as np

        us = np.asarray(times_ns, dtype=np.float64) / 1000
        if len(us) == 0:
            self.add(Row(f"{name} p50", None, "us", better="lower", note="no calls timed"))
            return
        facts = {"n": int(len(us)), "p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
                 "p99_9_us": float(np.percentile(us, 99.9)), "max_us": float(us.max()), **detail}
        self.add(Row(f"{name} p50", facts["p50_us"], "us", better="lower", detail=facts))
        self.add(Row(f"{name} p99", facts["p99_us"], "us", better="lower", detail=facts))

    def finish(self, args: Any) -> Path | None:
        """Write the file unless `--no-json` (`args.json`: the path, else default_path) and
        print where; every bench script ends with this (see `add_arguments`)."""
        if getattr(args, "no_json", False):
            return None
        path = self.write(getattr(args, "json", None))
        print(f"results: {path}", flush=True)
        return path

    def write(self, path: str | Path | None = None) -> Path:
        out = Path(path) if path else self.default_path()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, default=str) + "\n")
        tmp.replace(out)
        return out


def add_arguments(parser: Any) -> None:
    """`--json PATH` / `--no-json`, the results-file options every bench script takes."""
    parser.add_argument("--json", metavar="PATH", help="results file (default bench/results/<UTC>-<sha>-<bench>.json)")
    parser.add_argument("--no-json", action="store_true", help="write no results file")


def load(path: str | Path) -> dict[str, Any]:
    """Read a results file; raises ValueError naming the file when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"{p}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("rows"), list):
        raise ValueError(f"{p}: not a tickparity bench results file (schema {SCHEMA!r} expected)")
    for i, row in enumerate(data["rows"]):
        missing = {"name", "figure", "unit"} - set(row)
        if missing:
            raise ValueError(f"{p}: rows[{i}] lacks {sorted(missing)}")
    return data
