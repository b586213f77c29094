"""`python -m bench` (`make bench`): every benchmark, one after the other.

    python -m bench [--events N | --quick] [--only sim|replay|report|emulator|router|risk|contingent|parity|live|conflation|latency|profile|memory]

Runs the race with hftbacktest (`bench/bench_sim.py`, options passed through) and, when
they exist, the replay, report, emulator and router A/B benchmarks (`bench/bench_replay.py`,
`bench/bench_report.py`, `bench/bench_emulator.py`, `bench/bench_router.py`,
`bench/bench_contingent.py`, `bench/bench_parity.py`,
`bench/bench_live.py`, `bench/bench_conflation.py`, `bench/bench_latency.py`), the per-order-event profile of the session
(`bench/profile_session.py`) and the peak memory of `tickparity backtest`
(`bench/bench_memory.py`) in their own processes with their default settings (with
`--quick`, smaller sizes). Each writes its results file (bench/results.py,
`bench/results/<UTC>-<sha>-<bench>.json`; bench/README.md "Results files"; not yet
bench_parity.py and bench_live.py). Nothing here asserts a time: a slow machine prints
slow numbers, it never fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OTHERS = ("bench_replay.py", "bench_report.py", "bench_emulator.py", "bench_router.py", "bench_risk.py", "bench_contingent.py", "bench_parity.py",
          "bench_live.py", "bench_conflation.py", "bench_latency.py", "profile_session.py", "bench_memory.py")
ONLY_NAME = {"profile_session.py": "profile"}  # --only names that are not the file's bench_<name>.py
# what `--quick` means for the other benchmarks (their own options)
QUICK_ARGS = {"bench_replay.py": ["--events", "1000000"], "bench_report.py": ["--fills", "100000"],
              "bench_emulator.py": ["--orders", "400", "--seconds", "3"], "bench_router.py": ["--quick"],
              "bench_risk.py": ["--quick"], "bench_contingent.py": ["--quick"],
              "bench_parity.py": ["--seconds", "5"], "bench_live.py": ["--ticks", "5000", "--orders", "100"],
              "bench_conflation.py": ["--events", "200000", "--repeat", "1"],
              "bench_latency.py": ["--events", "300000", "--repeat", "1"],
              "profile_session.py": ["--events", "300000"], "bench_memory.py": ["--quick"]}


def _run_script(name: str, quick: bool) -> int:
    path = HERE / name
    if not path.is_file():
        print(f"note: {path.relative_to(REPO)} does not exist yet; skipped")
        return 0
    args = QUICK_ARGS.get(name, []) if quick else []
    print(f"\n=== {path.relative_to(REPO)} {' '.join(args)} ===", flush=True)
    return subprocess.run([sys.executable, str(path), *args], cwd=REPO).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("sim", "replay", "report", "emulator", "router", "risk", "contingent", "parity",
                                           "live", "conflation", "latency", "profile", "memory"), help="run one benchmark")
    args, rest = parser.parse_known_args(argv)
    failures = 0
    if args.only in (None, "sim"):
        sys.path.insert(0, str(REPO))
        from bench import bench_sim

        print("=== bench/bench_sim.py: the race with hftbacktest ===", flush=True)
        failures += bench_sim.main(rest) != 0
    for name in OTHERS:
        if args.only in (None, ONLY_NAME.get(name, name.removeprefix("bench_").removesuffix(".py"))):
            code = _run_script(name, "--quick" in rest)
            if code != 0:
                print(f"note: {name} exited with status {code}")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
