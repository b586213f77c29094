"""Contracts (perpetuals, futures) in testnet and live sessions, through ccxt's unified
derivatives calls (docs/derivatives.md "Live modes").

What the venue decides is the venue's: its leverage and margin mode are set at start from
the `[venues.X]` table (`set_leverage`, `set_margin_mode`); its mark prices come from the
mark-price stream (`watch_mark_price`) as MARK_PRICE rows, recorded with the market rows so
a replay sees them at the same step; its funding payments are read at each reconciliation
(`fetch_funding_history`) and booked once per payment; its liquidations arrive on the user
stream as fills of the venue's own orders (`venues.ccxt.venue.LIQUIDATION_PREFIX`), or at
the next reconciliation from `fetch_my_liquidations` when the stream lost them, and are
booked as `liquidation-N` fills (the lots of each venue order once); its delivery of a dated
future (the `DELIVERED_SETTELMENT` income, at the venue's published delivery price) is
booked as the backtest books a delivery (`book_venue_delivery`); and its positions (`fetch_positions`) are compared with
the ledger's at every reconciliation (engine.reconcile: a difference seen twice closes the
gate, as a balance difference does).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from engine.errors import ConfigError, DataError, TickparityError
from engine.margin import MarginSettings
from engine.types import EVENT_DTYPE, EventKind, Instrument

NS_PER_MS = 1_000_000


def margin_settings(config: Any, venues: Any) -> dict[str, MarginSettings]:
    """Each venue's leverage and margin mode from its `[venues.X]` table."""
    return {name: MarginSettings.from_table(name, config.venues.get(name, {})) for name in venues}


class OpenPositionRefused(TickparityError):
    """A testnet/live session found a contract position at the venue that it does not take
    over (`open_positions = "refuse"`, or it cannot be adopted exactly): it stops before
    its first order (exit 2)."""


async def configure(ccxt_venues: dict[str, Any], settings: dict[str, MarginSettings]) -> list[str]:
    """Set every contract's leverage and margin mode at the venue (before any order);
    returns one line per setting for the session's journal. A margin mode the venue cannot
    change because a position is open (Binance -4048) is the user's to settle: a
    ConfigError naming the venue table."""
    from venues.ccxt.gateway import GiveUp

    done: list[str] = []
    for name, venue in ccxt_venues.items():
        margin = settings.get(name) or MarginSettings()
        for inst in venue.instruments.values():
            if inst.contract:
                try:
                    done += await venue.gateway.configure_contract(inst, margin.leverage_of(inst), margin.margin_mode)
                except GiveUp as exc:
                    if "-4048" not in str(exc):
                        raise
                    raise ConfigError(
                        f"[venues.{name}] margin_mode = {margin.margin_mode!r}: the account holds a {inst.symbol} "
                        "position (or open orders) in the other margin mode, which Binance cannot change "
                        "(-4048); set margin_mode to the account's or close the position first") from None
    return done


def _plain(value: Decimal) -> str:
    """A venue's decimal text without its padding zeros ('1.00000000' -> '1')."""
    return format(value.normalize(), "f")


def adopt_open_positions(session: Any, record: dict[str, Any]) -> list[str]:
    """The start reconciliation's rule for contract positions already at the venue
    (docs/derivatives.md "A position already open at start"): a position the ledger does
    not hold is adopted (`MarginBook.adopt_position`: its quantity at the venue's entry
    price, with its isolated margin; audited `position_adopted`) when the venue table's
    `open_positions` is "adopt" (default) and it can be taken over exactly; otherwise the
    session refuses to start (OpenPositionRefused, before any order). Runs from the
    recorded answer, so a replay adopts the same. Returns one line per adopted position."""
    book = session.ledger.derivatives
    done: list[str] = []
    for inst_id, qty_text in sorted(record.get("pos", {}).items()):
        inst = session.instrument(inst_id)
        qty = Decimal(qty_text)
        if not qty or session.ledger.position(inst_id) == qty:
            continue
        entry_text, isolated_text = record.get("entry", {}).get(inst_id, ["0", "0"])
        entry, isolated = Decimal(entry_text), Decimal(isolated_text)
        what = f"{inst_id}: {_plain(qty)} contracts at {_plain(entry)} held at the venue when the session started"
        if book.settings_of(inst.venue).open_positions == "refuse":
            raise OpenPositionRefused(f"{what}; [venues.{inst.venue}] open_positions = 'refuse': close it first, "
                                      "or set open_positions = 'adopt' to start from it")
        why = book.adopt_position(inst, inst.qty_to_lots(qty), entry, isolated if book.is_isolated(inst) else None)
        if why is not None:
            raise OpenPositionRefused(f"{what} cannot be adopted: {why}; close it first")
        session.audit.write(session.clock.now(), "decision", action="position_adopted", instrument=inst_id,
                            qty=_plain(qty), entry_price=_plain(entry),
                            isolated_margin=_plain(isolated) if book.is_isolated(inst) else None)
        done.append(f"{inst_id} {_plain(qty)} @ {_plain(entry)}")
    return done


def mark_row(inst: Instrument, index: int, mark: Any, exch_ms: int | None, local_ts: int) -> np.ndarray:
    """One MARK_PRICE row (price in ticks, half-even to the tick as the importers round
    a venue's finer mark: replay.importers.contracts.mark_ticks, docs/derivatives.md)."""
    from replay.importers.contracts import mark_ticks

    ticks = mark_ticks(inst, mark if isinstance(mark, str) else repr(float(mark)))
    if ticks is None:
        raise DataError(f"{inst.id}: mark price {mark!r} from the feed is not a positive price")
    row = np.zeros(1, dtype=EVENT_DTYPE)
    row["kind"] = EventKind.MARK_PRICE
    row["instrument"] = index
    row["price"] = ticks
    row["local_ts"] = local_ts
    row["exch_ts"] = exch_ms * NS_PER_MS if exch_ms else local_ts
    return row


def funding_row(inst: Instrument, index: int, funding_ns: int, rate: str, mark: str, local_ts: int) -> np.ndarray:
    """One FUNDING_RATE row settled at `funding_ns` (exch_ts), encoded as the importers
    encode one (replay.importers.contracts.funding_columns: the sign in `side`, the rate in
    1e-12 units in `price`, the settlement's mark in ticks in `qty`)."""
    from replay.importers.contracts import funding_columns, mark_ticks

    encoded = funding_columns(rate)
    if encoded is None:
        raise DataError(f"{inst.id}: funding rate {rate!r} from the feed is not a number")
    row = np.zeros(1, dtype=EVENT_DTYPE)
    row["kind"] = EventKind.FUNDING_RATE
    row["instrument"] = index
    row["side"], row["price"] = encoded
    row["qty"] = mark_ticks(inst, mark) or 0
    row["local_ts"] = local_ts
    row["exch_ts"] = funding_ns
    return row


async def watch_marks(exchange: Any, inst: Instrument, index: int, emit: Callable[[np.ndarray], None],
                      now: Callable[[], int], on_error: Callable[[str, BaseException], None]) -> None:
    """Forever: the venue's mark price of `inst` (ccxt.pro watch_mark_price) as MARK_PRICE
    rows, one per new mark (a repeated timestamp is not emitted twice), and its funding
    settlements as FUNDING_RATE rows: Binance's message carries the rate `r` due at the next
    funding time `T`; once a message's time reaches `T`, the settlement at `T` is emitted at
    the rate and mark of the last message before it (replay.importers.contracts.
    FundingFromMarks, the binance-ws importer's rule). Paper mode's simulated venue settles
    them (venues.sim.derivatives.ContractVenue); testnet/live record them and book the
    venue's own payments instead (fetch_funding_history)."""
    from replay.importers.contracts import FundingFromMarks
    from venues.ccxt.venue import watch_loop

    last: list[Any] = [None]
    funding = FundingFromMarks()

    def handle(ticker: dict[str, Any]) -> None:
        info = ticker.get("info") or {}
        mark = info.get("p") or ticker.get("markPrice")
        stamp = ticker.get("timestamp")
        if mark is None or (stamp is not None and stamp == last[0]):
            return
        last[0] = stamp
        local = now()
        rows = []
        if stamp is not None:
            rate = info.get("r")
            nxt = info.get("T")
            settled = funding.update(int(stamp) * NS_PER_MS, str(mark), None if rate in (None, "") else str(rate),
                                     int(nxt) * NS_PER_MS if nxt not in (None, "", 0) else None)
            if settled is not None:
                rows.append(funding_row(inst, index, settled[0], settled[1], settled[2], local))
        rows.append(mark_row(inst, index, mark, stamp, local))
        emit(np.concatenate(rows))

    await watch_loop(lambda: exchange.watch_mark_price(inst.symbol), handle, on_error, f"marks {inst.id}")


async def fetch(ccxt_venues: dict[str, Any]) -> dict[str, Any]:
    """The reconciliation's contract part: positions (with their entry price and isolated
    wallet), funding payments and liquidations per venue, as JSON for the step record
    ({"pos": {inst: qty}, "entry": {inst: [price, wallet]}, "fund": [[inst, id, amount, ms]],
    "liq": [...]})."""
    pos: dict[str, str] = {}
    entry: dict[str, list[str]] = {}  # entry price and isolated wallet: what a start adopts
    fund: list[list[Any]] = []
    liq: list[list[Any]] = []
    dlv: list[list[Any]] = []
    for venue in ccxt_venues.values():
        if not any(i.contract for i in venue.instruments.values()):
            continue
        for inst_id, qty in (await venue.gateway.positions()).items():
            pos[inst_id] = str(qty)
            entry[inst_id] = list(venue.gateway.position_info.get(inst_id, ("0", "0")))
        for inst_id, income_id, amount, ms in await venue.gateway.funding_since():
            fund.append([inst_id, income_id, str(amount), ms])
        # asked after the positions: a liquidation that flattened a position is listed here
        for inst_id, oid, side, price, qty, ms in await venue.gateway.liquidations():
            liq.append([inst_id, oid, side, str(price), str(qty), ms])
        # and so is a dated future's delivery settlement
        for inst_id, income_id, amount, ms, price in await venue.gateway.deliveries():
            dlv.append([inst_id, income_id, str(amount), ms, price])
    return {"pos": pos, "entry": entry, "fund": fund, "liq": liq, "dlv": dlv}


def apply(session: Any, record: dict[str, Any]) -> dict[str, Decimal] | None:
    """Book the recorded funding payments not booked yet (session.on_venue_funding) and
    return the venue's positions for the reconciler (None: no contract part)."""
    if "pos" not in record:
        return None
    from engine.types.venue_reports import VenueLiquidation

    for inst_id, oid, side, price, qty, ms in record.get("liq", ()):
        # a liquidation the user stream did not bring (lost events): booked from the query
        inst = session.instrument(inst_id)
        session.on_venue_liquidation(VenueLiquidation(
            instrument=inst_id, venue_order_id=str(oid), side=int(side),
            price=int((Decimal(price) / inst.tick_size).to_integral_value()), filled=inst.qty_to_lots(Decimal(qty)),
            fee=Decimal(0), exch_ts=int(ms) * NS_PER_MS, local_ts=session.clock.now(), source="query"))
    for inst_id, income_id, amount, ms in record.get("fund", ()):
        session.on_venue_funding(inst_id, Decimal(amount), int(ms) * NS_PER_MS, str(income_id))
    for inst_id, income_id, amount, ms, price in record.get("dlv", ()):
        book_venue_delivery(session, inst_id, str(income_id), Decimal(amount), int(ms) * NS_PER_MS, price)
    return {k: Decimal(v) for k, v in record["pos"].items()}


def book_venue_delivery(session: Any, instrument_id: str, income_id: str, amount: Decimal, exch_ts: int,
                        price: str | None) -> str | None:
    """A dated future the venue delivered (its `DELIVERED_SETTELMENT` income `income_id`,
    `amount` in the settle asset, at delivery `price`, venue text): booked once, exactly as
    the backtest books a delivery: `MarginBook.delivery` closes the ledger's whole position
    at the delivery price, no fee, and `TradingSession.on_liquidation` books it as the fill
    of a `delivery-N` order (reason `delivery`), cancels the contract's open orders and
    tells the strategy. Audited as a `response` record `venue_delivery` (income id, the
    venue's amount, the price, the quantity held) before the delivery's fill; a warning
    when the ledger's realized PnL of the close differs from the venue's amount (the
    reconciliation then reports the wallets' difference). Returns the order's client id;
    None when booked already, when the ledger held nothing, or while the venue has not
    published the price (asked again at the next reconciliation)."""
    book = session.ledger.derivatives
    key = f"delivery:{instrument_id}:{income_id}"
    if key in book.venue_trades or price is None:
        return None
    inst = session.instrument(instrument_id)
    ticks = int((Decimal(price) / inst.tick_size).to_integral_value())
    close = book.delivery(inst, ticks, book.mark_of(inst.id))
    book.venue_trades.add(key)
    pos = book.positions.get(inst.id)
    before = pos.realized if pos is not None else Decimal(0)
    session.audit.write(session.clock.now(), "response", event="venue_delivery", instrument=inst.id,
                        income_id=income_id, amount=_plain(amount), price=_plain(Decimal(price)),
                        exch_ts=int(exch_ts), held=_plain(inst.lots_to_qty(close.lots * -close.side)) if close else "0")
    if close is None:
        return None
    client_id = session.on_liquidation(close, exch_ts)
    booked = book.positions[inst.id].realized - before
    if booked != amount:
        from modes.console import warn

        warn(f"{inst.id}: the venue's delivery settlement {_plain(amount)} {inst.settle} differs from the "
             f"ledger's {_plain(booked)} at {price} (the reconciliation compares the wallets)")
    return client_id
