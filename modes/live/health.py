"""Console health of a running session (rich): feed lag, order round trip, open orders, PnL.

Why these four: they are what tells an operator at a glance that the session sees the
market in time (feed lag = local receipt time - venue time of the latest row, per
instrument), that the venue answers (round trip of the last orders, p50 and max), that
nothing is left working unexpectedly (open orders) and what it has made (PnL = equity now
- equity at the first sample, in the quote asset). Figures only; no decision reads them.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from engine.types import EventKind, Instrument
from engine.types.orders import TERMINAL_STATUSES, OrderStatus


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
        self._orders_seen = 0  # how many of the OMS's orders the refusal watch has taken in
        self._unsettled: dict[int, None] = {}  # their order numbers not yet in a final state
        self.refused_reasons: set[str] = set()  # reasons already told on the console

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
        self.refusals(session.oms.by_no)
        if self._live is not None:
            marks = session.marks()
            self.pnl = str(session.ledger.realized_pnl() + session.ledger.unrealized_pnl(marks) - session.ledger.fees())
            self._live.update(self.table())

    def refusals(self, by_no: Mapping[int, Any]) -> None:
        """Tell the console the first refusal of each reason as it happens, one line
        (`modes.console.warn`: shown on a terminal and in a log alike): which order, the
        reason and its meaning. Later refusals of a reason are counted in the line the
        command prints at the end (modes.console.run_refusals). Why: a refused order is a
        `rejected` update, never an error, so a testnet futures order beyond the margin
        left nothing on the console for the whole session.

        Looks only at orders placed since the last call (`by_no` is insertion-ordered)
        and at those not yet final, so a call costs the open orders, not the run's."""
        from modes.console import refusal_meaning, warn

        new = len(by_no) - self._orders_seen
        if new > 0:
            for no in reversed(list(itertools.islice(reversed(by_no), new))):
                self._unsettled[no] = None
            self._orders_seen = len(by_no)
        for no in list(self._unsettled):
            order = by_no.get(no)
            if order is None:  # no longer kept by the OMS: nothing to tell
                del self._unsettled[no]
                continue
            if order.status not in TERMINAL_STATUSES:
                continue
            del self._unsettled[no]
            reason = order.reason or "unknown"
            if order.status == OrderStatus.REJECTED and reason not in self.refused_reasons:
                self.refused_reasons.add(reason)
                meaning = refusal_meaning(reason)
                warn(f"order {order.client_id} ({order.instrument.id}) refused: {reason}"
                     f"{': ' + meaning if meaning else ''} (later {reason} refusals are counted at the end)")

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
