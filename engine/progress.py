"""One progress bar for all long work (replay, import, stress runs), and `stage` for a
long step that has nothing to count (numba compiling the kernels, the first data).

Why a wrapper: every command shows the same columns (count, rate, ETA) and stays quiet
when stderr is not a terminal (CI logs), unless TICKPARITY_PROGRESS=1 forces it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressBar:
    """Handle returned by `progress()`; `advance(n)` counts n more units done."""

    def __init__(self, bar: Progress | None, task: int | None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)


def _enabled() -> bool:
    forced = os.environ.get("TICKPARITY_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false", "no")
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "events") -> Iterator[ProgressBar]:
    """Show `description` with count, rate (unit/s) and ETA while the block runs."""
    if not _enabled():
        yield ProgressBar(None, None)
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total, rate="")
        handle = _RateBar(bar, task, unit)
        yield handle


class _RateBar(ProgressBar):
    """Adds a human rate column (rich's speed is None until enough samples exist)."""

    def __init__(self, bar: Progress, task: int, unit: str) -> None:
        super().__init__(bar, task)
        self._unit = unit

    def advance(self, n: int = 1) -> None:
        bar, task = self._bar, self._task
        assert bar is not None and task is not None
        bar.advance(task, n)
        speed = bar.tasks[task].speed
        if speed:
            bar.update(task, rate=f"{speed:,.0f} {self._unit}/s")


@contextmanager
def stage(prefix: str, description: str) -> Iterator[None]:
    """Say that a long step with nothing to count runs, and how long it took.

    Why: `tickparity emulator` on a cold numba cache spent about a minute compiling the
    venue's kernels and printed nothing meanwhile, so a user could not tell a slow start
    from a hung one. On a terminal (or TICKPARITY_PROGRESS=1) a spinner with the time
    elapsed shows while the step runs; otherwise (a log file, CI) a line says it started.
    Either way one line says it ended and how long it took, on stderr as
    `PREFIX: DESCRIPTION ... done in 47.5 s`. Silent above the warning log level
    (`--log-level error`), like modes.console.warn."""
    if not logging.getLogger("tickparity").isEnabledFor(logging.WARNING):
        yield
        return
    t0 = time.perf_counter()
    if _enabled():
        spinner = Progress(SpinnerColumn(), TextColumn(f"[bold]{prefix}:[/bold] {description}"),
                           TimeElapsedColumn(), transient=True)
        with spinner:
            spinner.add_task(description, total=None)
            yield
    else:
        print(f"{prefix}: {description} ...", file=sys.stderr, flush=True)
        yield
    print(f"{prefix}: {description} ... done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
