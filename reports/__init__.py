"""Execution-quality metrics (TCA) and the self-contained HTML report of a run.

Public API: ``write_report(run_dir, out=None) -> Path`` (see reports.report) and the
``report`` command in modes.report_cmd. Formulas and summary.json keys: docs/report.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reports.compare import Comparison

__all__ = ["write_report", "compare_runs"]


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Metrics -> run_dir/summary.json sections + report.html; returns the HTML path."""
    from reports.report import write_report as _write_report

    return _write_report(run_dir, out)


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None) -> Comparison:
    """Compare two runs' headline figures; see reports.compare.compare_runs."""
    from reports.compare import compare_runs as _compare_runs

    return _compare_runs(run_a, run_b, out)
