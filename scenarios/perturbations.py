"""The built-in feed perturbations (the `kind` of a `[[perturbations]]` table).

Times in a scenario file are offsets from the first replayed event (`at = "5m"`); durations
use the replay units (`250ms`, `30s`, `10m`, `1h`). Moves are percentages of the mid of the
*original* book when the perturbation starts (its reference mid), so the same file works on
any instrument and price level. Every shape is a piecewise-linear `Path` sampled every
`step` (default 250 ms): the feed shows a new book at each step, as a real crash walks
through the book in jumps rather than gliding. The calibration of each library scenario
(which real event, which figures) is in its TOML file and in docs/scenarios.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from engine.config import parse_decimal
from engine.errors import ConfigError
from engine.types import EventKind, Instrument
from replay.book import BookScanner
from replay.schema import parse_compound_duration
from scenarios.feed import (
    IDENTITY,
    BookMap,
    BookPerturbation,
    Holding,
    Path,
    StreamPerturbation,
    release,
    round_ticks,
    scan_rows,
    snapshot_rows,
    to_ppm,
    window_mask,
)

_TRADE = int(EventKind.TRADE)
DEFAULT_STEP = "250ms"


def duration(name: str, value: object, *, zero: bool = True) -> int:
    """A duration key -> ns: replay units, compounds allowed ('30s', '5m30s', '1h2m');
    `zero` allows 0 (written '0' or '0s')."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} = {value!r}: expected a duration string such as '30s'")
    text = value.strip()
    if zero and text in ("0", "0s", "0ms", "0m"):
        return 0
    try:
        return parse_compound_duration(text)
    except ConfigError:
        raise ConfigError(f"{name} = {value!r}: expected a duration such as '250ms', '30s', '5m30s', '1h'") from None


def decimal_value(name: str, value: object, *, low: Decimal | None = None,
                  high: Decimal | None = None) -> Decimal:
    """A number key (TOML int/float/decimal string) -> the Decimal of its decimal text, bounded."""
    if not isinstance(value, int | float | str | Decimal):
        raise ConfigError(f"{name} = {value!r}: expected a number")
    dec = parse_decimal(value, name, floats=True)
    if low is not None and dec < low:
        raise ConfigError(f"{name} = {value}: must be >= {low}")
    if high is not None and dec > high:
        raise ConfigError(f"{name} = {value}: must be <= {high}")
    return dec


def number(name: str, value: object, *, low: Decimal | None = None, high: Decimal | None = None) -> Fraction:
    """A number key as an exact Fraction (shapes are computed in exact rationals)."""
    return Fraction(decimal_value(name, value, low=low, high=high))


class _Timed(BookPerturbation):
    """Shared set-up: instrument, start offset and the step of the book-map grid."""

    def __init__(self, instrument: str, at: str, step: str) -> None:
        self.instrument = instrument
        self.at = duration("at", at, zero=False)
        self.step = duration("step", step, zero=False)
        self.paths: dict[str, Path] = {}

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        super().bind(t0, instruments)
        self.start_ts = t0 + self.at
        self.paths = {name: path.shifted(t0) for name, path in self.relative_paths().items()}

    def relative_paths(self) -> dict[str, Path]:
        raise NotImplementedError

    def change_times(self) -> list[int]:
        times = {self.start_ts}
        for path in self.paths.values():
            times.update(path.change_times(self.step))
        return sorted(t for t in times if t >= self.start_ts)

    def value(self, name: str, t: int) -> Fraction:
        return self.paths[name].at(t)

    @staticmethod
    def shifts(ref_mid: int, move: Fraction, spread_bps: Fraction) -> tuple[int, int]:
        """(bid shift, ask shift) in ticks: the mid moves by `move` (a fraction), the spread
        widens by `spread_bps` of the reference mid, half on each side."""
        centre = round_ticks(ref_mid * move)
        widen = max(0, round_ticks(ref_mid * spread_bps / 10_000))
        return centre - widen // 2, centre + (widen - widen // 2)


class PriceShock(_Timed):
    """Flash crash (or squeeze): the mid moves by `move_pct` over `fall`, holds for `hold`,
    then retraces `recover_pct` % of the move over `recover` (100 = V-shaped, 0 = L-shaped).
    Liquidity is withdrawn with the move: depth falls to `liquidity` (x multiplier) and the
    spread widens by `spread_bps` at the trough, both back to normal over
    `liquidity_recover` (default: `recover`) after the hold."""

    def __init__(self, *, at: str, fall: str, move_pct: float, instrument: str = "*", hold: str = "0s",
                 recover: str = "0s", recover_pct: float = 100, liquidity: float = 1,
                 spread_bps: float = 0, liquidity_recover: str | None = None,
                 step: str = DEFAULT_STEP) -> None:
        super().__init__(instrument, at, step)
        self.fall = duration("fall", fall, zero=False)
        self.move = number("move_pct", move_pct, low=Decimal("-99.99"), high=Decimal(1000)) / 100
        self.hold = duration("hold", hold)
        self.recover = duration("recover", recover)
        self.recover_frac = number("recover_pct", recover_pct, low=Decimal(0), high=Decimal(100)) / 100
        self.liquidity = number("liquidity", liquidity, low=Decimal(0), high=Decimal(1))
        self.spread_bps = number("spread_bps", spread_bps, low=Decimal(0))
        self.liquidity_recover = self.recover if liquidity_recover is None else duration(
            "liquidity_recover", liquidity_recover)

    def relative_paths(self) -> dict[str, Path]:
        a, f, h = self.at, self.at + self.fall, self.at + self.fall + self.hold
        residual = self.move * (1 - self.recover_frac)
        back = h + self.liquidity_recover
        return {
            "move": Path([(a, 0), (f, self.move), (h, self.move), (h + self.recover, residual)]),
            "depth": Path([(a, 1), (f, self.liquidity), (h, self.liquidity), (back, 1)]),
            "spread": Path([(a, 0), (f, self.spread_bps), (h, self.spread_bps), (back, 0)]),
        }

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        bid, ask = self.shifts(ref_mid, self.value("move", t), self.value("spread", t))
        depth = to_ppm(self.value("depth", t))
        return BookMap(bid, ask, depth, depth)


class PumpAndDump(_Timed):
    """Pump-and-dump: the mid ramps up `rise_pct` over `ramp` with trade volume x`volume` and
    spoofed bid depth x`spoof_depth` (a wall that is pulled when the dump starts), holds for
    `hold`, then collapses over `collapse` to `end_pct` from the start (below the open when
    negative). Volume stays surged until the collapse ends."""

    def __init__(self, *, at: str, ramp: str, rise_pct: float, collapse: str, instrument: str = "*",
                 hold: str = "0s", end_pct: float = 0, volume: float = 1, spoof_depth: float = 1,
                 step: str = DEFAULT_STEP) -> None:
        super().__init__(instrument, at, step)
        self.ramp = duration("ramp", ramp, zero=False)
        self.rise = number("rise_pct", rise_pct, low=Decimal(0), high=Decimal(1000)) / 100
        self.hold = duration("hold", hold)
        self.collapse = duration("collapse", collapse, zero=False)
        self.end = number("end_pct", end_pct, low=Decimal("-99.99"), high=Decimal(1000)) / 100
        self.volume = number("volume", volume, low=Decimal(0))
        self.spoof = number("spoof_depth", spoof_depth, low=Decimal(0))

    def relative_paths(self) -> dict[str, Path]:
        a, r = self.at, self.at + self.ramp
        h = r + self.hold
        e = h + self.collapse
        return {
            "move": Path([(a, 0), (r, self.rise), (h, self.rise), (e, self.end)]),
            "spoof": Path([(a, 1), (a, self.spoof), (h, self.spoof), (h, 1)]),
            "volume": Path([(a, 1), (a, self.volume), (e, self.volume), (e, 1)]),
        }

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        shift = round_ticks(ref_mid * self.value("move", t))
        return BookMap(shift, shift, to_ppm(self.value("spoof", t)), IDENTITY.ask_depth_ppm,
                       to_ppm(self.value("volume", t)))


class SpreadBlowout(_Timed):
    """The spread widens by `spread_bps` of the mid over `widen`, holds for `hold`, narrows back
    over `recover`; the levels inside the new spread are gone (bids shift down, asks up).
    `depth` (x multiplier) thins the book at the peak as well."""

    def __init__(self, *, at: str, spread_bps: float, widen: str = "0s", hold: str = "0s",
                 recover: str = "0s", depth: float = 1, instrument: str = "*",
                 step: str = DEFAULT_STEP) -> None:
        super().__init__(instrument, at, step)
        self.spread_bps = number("spread_bps", spread_bps)
        self.widen = duration("widen", widen)
        self.hold = duration("hold", hold)
        self.recover = duration("recover", recover)
        self.depth = number("depth", depth, low=Decimal(0), high=Decimal(1))

    def relative_paths(self) -> dict[str, Path]:
        a, w = self.at, self.at + self.widen
        h = w + self.hold
        e = h + self.recover
        return {"spread": Path([(a, 0), (w, self.spread_bps), (h, self.spread_bps), (e, 0)]),
                "depth": Path([(a, 1), (w, self.depth), (h, self.depth), (e, 1)])}

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        spread = self.value("spread", t)
        widen = round_ticks(ref_mid * spread / 10_000)  # may be negative: narrows, and can cross
        depth = to_ppm(self.value("depth", t))
        return BookMap(-(widen // 2), widen - widen // 2, depth, depth)


class LiquidityDrought(_Timed):
    """Depth x`depth` (e.g. 0.02 = 2 % of normal size at every level) reached over `ramp`, held
    for `hold`, back over `recover`; `side` = "both", "bid" or "ask"."""

    def __init__(self, *, at: str, depth: float, hold: str, ramp: str = "0s", recover: str = "0s",
                 side: str = "both", instrument: str = "*", step: str = DEFAULT_STEP) -> None:
        super().__init__(instrument, at, step)
        if side not in ("both", "bid", "ask"):
            raise ConfigError(f"side = {side!r}: expected 'both', 'bid' or 'ask'")
        self.side = side
        self.depth = number("depth", depth, low=Decimal(0), high=Decimal(1))
        self.ramp = duration("ramp", ramp)
        self.hold = duration("hold", hold, zero=False)
        self.recover = duration("recover", recover)

    def relative_paths(self) -> dict[str, Path]:
        a, r = self.at, self.at + self.ramp
        h = r + self.hold
        return {"depth": Path([(a, 1), (r, self.depth), (h, self.depth), (h + self.recover, 1)])}

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        depth = to_ppm(self.value("depth", t))
        return BookMap(0, 0, depth if self.side != "ask" else IDENTITY.bid_depth_ppm,
                       depth if self.side != "bid" else IDENTITY.ask_depth_ppm)


class Depeg(_Timed):
    """A stablecoin quote asset loses its peg: its value in the reporting currency `currency`
    falls to `low` (e.g. 0.8774, USDC on 2023-03-11) over `fall`, holds for `hold`, then goes
    to `recover_to` (default 1) over `recover`. Books quoted in the asset move the other
    way, as BTC/USDC rose while USDC fell: the mid in the asset is the price in the
    reporting currency over the mark, a shift of 1/mark - 1. The run's equity is reported in
    `currency` with the asset marked on the same path (engine.ledger.QuoteMarks,
    `Scenario.quote_marks`), so cash held in the asset loses value and PnL moves."""

    def __init__(self, *, at: str, fall: str, low: float, asset: str = "USDT", currency: str = "USD",
                 hold: str = "0s", recover: str = "0s", recover_to: float = 1, step: str = DEFAULT_STEP) -> None:
        super().__init__("*", at, step)
        if not isinstance(asset, str) or not asset or not isinstance(currency, str) or not currency:
            raise ConfigError("asset and currency must be asset names, e.g. asset = 'USDC', currency = 'USD'")
        self.asset, self.currency = asset, currency
        self.fall = duration("fall", fall, zero=False)
        self.low_dec = decimal_value("low", low, low=Decimal("0.0001"), high=Decimal(10))
        self.low = Fraction(self.low_dec)
        self.hold = duration("hold", hold)
        self.recover = duration("recover", recover)
        self.recover_dec = decimal_value("recover_to", recover_to, low=Decimal("0.0001"), high=Decimal(10))

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        super().bind(t0, instruments)
        self.indices = [k for k, i in enumerate(instruments) if i.quote == self.asset]

    def mark_points(self) -> list[tuple[int, Decimal]]:
        """The asset's mark (offsets from the run's start, exact decimals) for QuoteMarks."""
        a, f = self.at, self.at + self.fall
        h = f + self.hold
        return [(a, Decimal(1)), (f, self.low_dec), (h, self.low_dec), (h + self.recover, self.recover_dec)]

    def relative_paths(self) -> dict[str, Path]:
        return {"mark": Path([(t, Fraction(m)) for t, m in self.mark_points()])}

    def book_map(self, t: int, index: int, ref_mid: int) -> BookMap:
        shift = round_ticks(ref_mid * (1 / self.value("mark", t) - 1))
        return BookMap(shift, shift)


class CrossVenueDislocation(PriceShock):
    """One venue's price breaks away from the others' (a thin venue's wick: Binance.US BTC/USD
    -87.5 % on 2021-10-21 while Bitstamp moved -2.3 %): a price shock (every key of
    `price_shock`) on `venue`'s instruments only, so the same asset trades at two prices
    across the run's venues until it recovers. `venue` defaults to the venue of the run's
    first instrument (so a library file runs on any strategy)."""

    def __init__(self, *, at: str, fall: str, move_pct: float, venue: str | None = None, **keys: Any) -> None:
        if "instrument" in keys:
            raise ConfigError("cross_venue_dislocation takes venue, not instrument")
        super().__init__(at=at, fall=fall, move_pct=move_pct, **keys)
        self.venue = venue

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        super().bind(t0, instruments)
        venues = sorted({i.venue for i in instruments})
        if self.venue is None:
            self.venue = instruments[0].venue
        if self.venue not in venues:
            raise ConfigError(f"cross_venue_dislocation: venue {self.venue!r} is not a venue of the run ({venues})")
        self.indices = [k for k, i in enumerate(instruments) if i.venue == self.venue]


class BasisBlowout(PriceShock):
    """Basis blow-out on a perpetual/spot pair: the perpetual's book **and its mark** move
    `basis_pct` away from where they were (spot does not move) over `widen`, hold for
    `hold`, then converge back over `converge` (the basis returns to what the data has).
    Black Thursday 2020-03-12/13: BitMEX XBTUSD ~$400 under spot at the low (about -10 %).

    It applies to the run's perpetuals (`type = "swap"`; `instrument` narrows it to one);
    the mark moves with the book (scenarios.feed moves MARK_PRICE rows by the mean of the bid
    and ask shifts), so unrealized PnL, margin and liquidations see the basis. On a run
    without a perpetual it moves nothing (a spot strategy's cell equals its base run)."""

    def __init__(self, *, at: str, widen: str, basis_pct: float, hold: str = "0s", converge: str = "0s",
                 instrument: str = "*", liquidity: float = 1, spread_bps: float = 0,
                 step: str = DEFAULT_STEP) -> None:
        super().__init__(at=at, fall=widen, move_pct=basis_pct, instrument=instrument, hold=hold,
                         recover=converge, recover_pct=100, liquidity=liquidity, spread_bps=spread_bps,
                         step=step)

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        super().bind(t0, instruments)
        self.indices = [k for k in self.indices if instruments[k].type == "swap"]


class _Window(StreamPerturbation):
    def __init__(self, instrument: str, at: str, duration_: str) -> None:
        self.instrument = instrument
        self.at = duration("at", at, zero=False)
        self.duration = duration("duration", duration_, zero=False)

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        super().bind(t0, instruments)
        self.n = len(instruments)
        self.start_ts = t0 + self.at
        self.end_ts = self.start_ts + self.duration


class StaleFeed(_Window):
    """A frozen feed: from `at` for `duration` our process receives nothing for the
    instrument while the venue keeps trading (matching still sees every row at its venue
    time); the backlog arrives in one burst at the end, as when a stuck websocket recovers.
    Rows keep their exch_ts; their local_ts becomes the end of the window."""

    def __init__(self, *, at: str, duration: str, instrument: str = "*") -> None:
        super().__init__(instrument, at, duration)

    def apply(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        holding = Holding(self.end_ts)
        for chunk in chunks:
            if holding.released or not len(chunk):
                yield chunk
                continue
            mask = window_mask(chunk, self.indices, self.start_ts, self.end_ts, self.n)
            if mask.any():
                late = chunk[mask].copy()
                late["local_ts"] = self.end_ts
                holding.hold(late)
                chunk = chunk[~mask]
            out = release(chunk, holding, holding.take)
            if len(out):
                yield out
        if not holding.released:
            rest = holding.take()
            if len(rest):
                yield rest


class DataGap(_Window):
    """A gap in the data: from `at` for `duration` the instrument's rows are missing (neither
    the venue nor our process sees them); at the end a snapshot of the true book
    resynchronises both sides. With `backfill = true` the gap's trades are delivered late
    (local_ts = end of the gap, venue time unchanged) after the snapshot, as an exchange
    back-fills its trade history after an outage (2021-05-19)."""

    def __init__(self, *, at: str, duration: str, instrument: str = "*", backfill: bool = False) -> None:
        super().__init__(instrument, at, duration)
        if not isinstance(backfill, bool):
            raise ConfigError(f"backfill = {backfill!r}: expected true or false")
        self.backfill = backfill

    def apply(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        holding = Holding(self.end_ts)
        scanners = [BookScanner() for _ in range(self.n)]

        def resync() -> np.ndarray:
            parts = [snapshot_rows(scanners[i], i, self.end_ts) for i in self.indices]
            trades = holding.take()
            if len(trades):
                parts.append(trades)
            return np.concatenate(parts)

        for chunk in chunks:
            if holding.released or not len(chunk):
                yield chunk
                continue
            before = chunk[chunk["local_ts"] < self.end_ts]
            scan_rows(scanners, before, self.indices)
            mask = window_mask(chunk, self.indices, self.start_ts, self.end_ts, self.n)
            if mask.any():
                if self.backfill:
                    late = chunk[mask & (chunk["kind"] == _TRADE)].copy()
                    late["local_ts"] = self.end_ts
                    holding.hold(late)
                chunk = chunk[~mask]
            out = release(chunk, holding, resync)
            if len(out):
                yield out


BUILTIN_PERTURBATIONS: dict[str, type] = {
    "price_shock": PriceShock,
    "pump_and_dump": PumpAndDump,
    "spread_blowout": SpreadBlowout,
    "liquidity_drought": LiquidityDrought,
    "stale_feed": StaleFeed,
    "data_gap": DataGap,
    "depeg": Depeg,
    "cross_venue_dislocation": CrossVenueDislocation,
    "basis_blowout": BasisBlowout,
}

# Kinds of the scenario language that need work not built yet (docs/scenarios.md, "Not yet").
PLANNED_PERTURBATIONS: dict[str, str] = {}
