"""Console health of a running session (rich): feed lag, order round trip, open orders, PnL.

Why these four: they are what tells an operator at a glance that the session sees the
market in time (feed lag = local receipt time - venue time of the latest row, per
instrument), that the venue answers (round trip of the last orders, p50 and max), that
nothing is left working unexpectedly (open orders) and what it has made (PnL = equity now
- equity at the first sample, in the quote asset). Figures only; no decision reads them.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from engine.types import EventKind, Instrument


class Health:
    """Collects the figures; `live()` shows them with rich when the console is a terminal."""

    def __init__(self, instruments: Mapping[str, Instrument], enabled: bool | None = None) -> None:
        self.ids = list(instruments)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.lag_ns = np.zeros(len(self.ids), dtype=np.int64)
        self.books_seen: set[int] = set()
        self.rtts: deque[int] = deque(maxlen=200)
        self.rows_total = 0
        self.errors = 0
        self.last_error = ""
        self.open_orders = 0
        self.pnl = "0"
        self._live: Any = None

    def rows(self, rows: np.ndarray) -> None:
        self.rows_total += len(rows)
        idx = rows["instrument"].astype(np.intp)
        self.lag_ns[idx] = rows["local_ts"] - rows["exch_ts"]
        self.books_seen.update(int(i) for i in np.unique(idx[rows["kind"] == EventKind.SNAPSHOT_END]))

    def round_trip(self, ns: int) -> None:
        self.rtts.append(int(ns))

    def error(self, what: str) -> None:
        self.errors += 1
        self.last_error = what

    def update(self, built: Any, venues: Mapping[str, Any]) -> None:
        session = built.session
        self.open_orders = sum(1 for _ in session.oms.open_nos)
        if self._live is not None:
            marks = session.marks()
            self.pnl = str(session.ledger.realized_pnl() + session.ledger.unrealized_pnl(marks) - session.ledger.fees())
            self._live.update(self.table())

    def table(self) -> Any:
        from rich.table import Table

        t = Table(title="tickparity session", show_header=True)
        t.add_column("figure")
        t.add_column("value", justify="right")
        for i, inst in enumerate(self.ids):
            t.add_row(f"feed lag {inst}", f"{self.lag_ns[i] / 1e6:.1f} ms")
        if self.rtts:
            arr = np.array(self.rtts)
            t.add_row("order round trip p50 / max", f"{np.median(arr) / 1e6:.1f} / {arr.max() / 1e6:.1f} ms")
        else:
            t.add_row("order round trip", "-")
        t.add_row("open orders", str(self.open_orders))
        t.add_row("PnL (net of fees)", self.pnl)
        t.add_row("rows received", str(self.rows_total))
        t.add_row("venue errors", f"{self.errors}{' (' + self.last_error + ')' if self.last_error else ''}")
        return t

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        from rich.console import Console
        from rich.live import Live

        with Live(self.table(), console=Console(stderr=True), refresh_per_second=2) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def final(self, summary: dict[str, Any]) -> None:
        """Nothing here: the CLI prints the run's headline."""
