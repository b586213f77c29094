"""Atomic publish of run directories (issue 17, docs/run_dir.md "Publishing").

A writer (a forked child) is SIGKILLed at every step of `engine.output.write_run_dir`,
with the atomic exchange and with the two-rename fallback; the run directory must then
be the previous run intact or the new one complete, and the next run recovers leftovers.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from engine.durable import CRASH_ENV, NO_EXCHANGE_ENV
from engine.errors import ConfigError, StorageError
from engine.output import recover_run_dir, write_run_dir
from modes.cli import main

MM = "examples/market_maker.py:MarketMaker"


def _writer(run: int):
    def write(staging: Path) -> None:
        (staging / "fills.parquet").write_bytes(b"x" * 1000 * run)
        (staging / "sub").mkdir()
        (staging / "sub" / "notes.txt").write_text(f"run {run}")
        (staging / "summary.json").write_text(json.dumps({"run": {"id": run}}))

    return write


def _run_of(out: Path) -> int | None:
    """Which run `out` holds, checking it is complete (None: missing)."""
    if not out.exists():
        return None
    run = json.loads((out / "summary.json").read_text())["run"]["id"]
    assert (out / "sub" / "notes.txt").read_text() == f"run {run}"
    assert (out / "fills.parquet").stat().st_size == 1000 * run
    return run


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


def _killed_publish(out: Path, run: int, env: dict[str, str]) -> int:
    """Publish `run` into `out` in a forked child with `env`; returns its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest clean-up, just the publish
        try:
            os.environ.update(env)
            write_run_dir(out, _writer(run))
        finally:
            os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


# (step, exchange available, run in `out` right after the kill, after recovery)
STEPS = [
    ("publish.written", True, 1, 1),
    ("publish.synced", True, 1, 1),
    ("publish.ready", True, 1, 2),  # finished and fsynced: recovery publishes it
    ("publish.exchanged", True, 2, 2),
    ("publish.written", False, 1, 1),
    ("publish.ready", False, 1, 2),
    ("publish.retired", False, None, 2),  # the fallback's one gap: recovered at once
    ("publish.renamed", False, 2, 2),
]


@pytest.mark.parametrize(
    ("step", "exchange", "right_after", "recovered"),
    STEPS,
    ids=[f"{s}-{'exchange' if e else 'fallback'}" for s, e, _a, _r in STEPS],
)
def test_publish_killed_at_each_step(tmp_path, step, exchange, right_after, recovered):
    out = tmp_path / "runs" / "x"
    write_run_dir(out, _writer(1))
    env = {CRASH_ENV: step} if exchange else {CRASH_ENV: step, NO_EXCHANGE_ENV: "1"}
    assert _killed_publish(out, 2, env) == -signal.SIGKILL
    assert _run_of(out) == right_after
    recover_run_dir(out)
    assert _run_of(out) == recovered
    assert _leftovers(out) == []
    # the next run publishes over whatever was recovered
    write_run_dir(out, _writer(3))
    assert _run_of(out) == 3 and _leftovers(out) == []


def test_first_publish_and_refusals(tmp_path):
    out = tmp_path / "new"
    assert _killed_publish(out, 1, {CRASH_ENV: "publish.synced"}) == -signal.SIGKILL
    assert not out.exists()
    assert recover_run_dir(out) == ["deleted the unfinished run .new.partial"]
    write_run_dir(out, _writer(1))
    assert _run_of(out) == 1
    (tmp_path / "notrun").mkdir()
    (tmp_path / "notrun" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a tickparity run"):
        write_run_dir(tmp_path / "notrun", _writer(1))
    assert (tmp_path / "notrun" / "keep.txt").read_text() == "mine"


def test_full_disk_keeps_the_previous_run(tmp_path):
    out = tmp_path / "x"
    write_run_dir(out, _writer(1))

    def full(staging: Path) -> None:
        (staging / "fills.parquet").write_bytes(b"y" * 5000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staging / "orders.parquet"))

    with pytest.raises(
        StorageError, match=r"run directory .*x: disk full .* needs more than 4\.9 KB"
    ):
        write_run_dir(out, full)
    assert _run_of(out) == 1 and _leftovers(out) == []


def test_backtest_recovers_leftovers_of_a_killed_run(tmp_path, request):
    """The backtest publishes through write_run_dir: leftovers of a run killed between
    the two renames of the fallback (no `out`, the old run in .X.old, the new one
    finished) are recovered before the next run writes."""
    root = request.config.rootpath
    out = tmp_path / "bt"
    args = ["backtest", "--strategy", str(root / MM), "--data", "synthetic:11:1m",
            "--out", str(out), "--no-report"]  # fmt: skip
    assert main(args) == 0
    first = (out / "fills.parquet").read_bytes()
    # what the fallback leaves when killed between its renames
    env = {CRASH_ENV: "publish.retired", NO_EXCHANGE_ENV: "1"}
    assert _killed_publish(out, 2, env) == -signal.SIGKILL
    assert not out.exists() and (tmp_path / ".bt.old").is_dir()
    (tmp_path / ".bt.partial").mkdir()  # and an unfinished run
    assert main(args) == 0
    assert (out / "fills.parquet").read_bytes() == first  # same seed, same fills
    assert _leftovers(out) == []
