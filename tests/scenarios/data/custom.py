"""A user's own perturbation and invariant, loaded by import path from a scenario file."""

from scenarios import BookMap, BookPerturbation, Invariant, InvariantResult, Violation


class TickUp(BookPerturbation):
    """Shifts the whole book up by `ticks` from `at_ns` after the start."""

    def __init__(self, ticks: int, at_ns: int) -> None:
        self.ticks = ticks
        self.at_ns = at_ns

    def bind(self, t0, instruments) -> None:
        super().bind(t0, instruments)
        self.start_ts = t0 + self.at_ns

    def change_times(self) -> list[int]:
        return [self.start_ts]

    def book_map(self, t, index, ref_mid) -> BookMap:
        return BookMap(self.ticks, self.ticks)


class AtMostFills(Invariant):
    """No more than `limit` fills."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, run) -> InvariantResult:
        fills = sorted(run.fills, key=lambda f: f["ts"])
        bad = [Violation(int(fills[self.limit]["ts"]), f"fill #{self.limit + 1}")] if len(fills) > self.limit else []
        return self.result(bad, f"{len(fills)} fills")
