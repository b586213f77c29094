"""`SimCore`: the thin Python layer over the numba simulated venue.

Python validates, pulls feed chunks, grows buffers and converts records; every per-event
step runs inside `core_nb.run_nb`. The kernel drives it with `submit/cancel/amend` and
`run_until(t_bound, wake_book, wake_trade)`, which returns at the first `Wake`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, NamedTuple

import numpy as np

from engine.contingent.watch import TW_NF
from engine.errors import ConfigError, DataError, InstrumentError, OrderError
from engine.types.instrument import Instrument
from engine.types.market import EVENT_DTYPE, EventKind
from engine.types.orders import ORDER_EVENT_DTYPE, OrderEventKind, OrderType, TimeInForce
from venues.sim import codes as C
from venues.sim._cache import ensure_fresh_cache
from venues.sim.config import SimVenueConfig
from venues.sim.core_nb import data_exhausted_nb, exch_catch_up_nb, run_nb
from venues.sim.dormant_nb import wake_all_nb, wake_exchange_nb
from venues.sim.l3_nb import T_NF, l3_rehash_nb
from venues.sim.latency import FEED_FROM_ROW
from venues.sim.models import run_latency_models, run_queue_models
from venues.sim.requests_nb import enqueue_request_nb
from venues.sim.validate_nb import (
    V_BACKWARDS,
    V_INSTRUMENT,
    V_KIND,
    V_NEGATIVE,
    V_OK,
    V_SIDE,
    validate_chunk_nb,
)

_INITIAL_LEVELS = 256
_INITIAL_ORDERS = 64
_INITIAL_RESP = 1024
_INITIAL_BBO = 4096
_INITIAL_L3 = 1024  # power of two
_INITIAL_PEND = 4096  # held book rows per conflating venue (the ring grows when full)
_NO_STP = -1
_ORDER_TYPES = frozenset((int(OrderType.LIMIT), int(OrderType.MARKET)))
_RQ_SUBMIT, _RQ_CANCEL = int(C.RQ_SUBMIT), int(C.RQ_CANCEL)
_TIFS = frozenset(int(t) for t in TimeInForce)
HISTORY_ORDERS = 65_536  # orders whose fills and end SimCore.order_history remembers
_K_FILL = int(OrderEventKind.FILL)
_EV_KIND, _EV_ORDER_NO, _EV_LEAVES = (ORDER_EVENT_DTYPE.names.index(f) for f in ("kind", "order_no", "leaves"))
_JOURNAL_KINDS = frozenset(int(k) for k in (OrderEventKind.FILL, OrderEventKind.CANCELLED,
                                            OrderEventKind.REJECTED, OrderEventKind.EXPIRED))
# an order event's kind, order number and leaves read from the kernel's output row as one
# byte / int64 of its raw bytes (ORDER_EVENT_DTYPE's offsets): `item` on a view is a Python
# int at once, where a field of the structured row is a numpy scalar first (run_until, per row)
_EV_KIND_BYTE = ORDER_EVENT_DTYPE.fields["kind"][1]
_EV_NO_WORD = ORDER_EVENT_DTYPE.fields["order_no"][1] // 8
_EV_LEAVES_WORD = ORDER_EVENT_DTYPE.fields["leaves"][1] // 8
# kernel status codes, state slots and wake kinds as plain Python ints / members, read per
# wake-up (a numpy int64 index or an enum attribute lookup costs more than the dict hit)
_ST_ORDER, _ST_BOUND, _ST_BOOK, _ST_TRADE, _ST_END = (int(C.ST_ORDER), int(C.ST_BOUND), int(C.ST_BOOK),
                                                      int(C.ST_TRADE), int(C.ST_END))
_S_WAKE_TS, _S_WAKE_INST, _S_WAKE_IDX, _S_NOW = (int(C.S_WAKE_TS), int(C.S_WAKE_INST), int(C.S_WAKE_IDX),
                                                 int(C.S_NOW))
_S_NREQ, _VF_DORMANT = int(C.S_NREQ), int(C.VF_DORMANT)
_WK_BOUND, _WK_ORDER, _WK_BOOK = C.WakeKind.BOUND, C.WakeKind.ORDER, C.WakeKind.BOOK
_WK_TRADE, _WK_END, _WK_STARVED = C.WakeKind.TRADE, C.WakeKind.END, C.WakeKind.STARVED


class Wake(NamedTuple):
    """Why and when `run_until` returned; `record` is an ORDER_EVENT_DTYPE np.void for
    ORDER, the EVENT_DTYPE row for TRADE, None otherwise."""

    kind: C.WakeKind
    ts: int
    instrument: int
    record: Any


_new_wake = tuple.__new__  # Wake's fields without NamedTuple's Python-level __new__ (one per wake-up)


_KEPT_ROWS = 1024  # rows per block of `_Kept`


class _Kept:
    """Rows handed out by `run_until` (an order event, a trade), each a view of its own
    slot in a block that is only ever appended to. Why: the kernel reuses its output
    buffers, so a row must outlive them, and `np.void.copy()` of a padded structured row
    costs ~4 us (numpy copies it field by field), an assignment into a block ~0.4 us. A
    full block is left to whoever still holds views of it; a new one is started."""

    __slots__ = ("_dtype", "_block", "_n")

    def __init__(self, dtype: np.dtype) -> None:
        self._dtype = dtype
        self._block = np.zeros(_KEPT_ROWS, dtype=dtype)
        self._n = 0

    def keep(self, row: Any) -> Any:
        n = self._n
        block = self._block
        if n == _KEPT_ROWS:
            block = self._block = np.zeros(_KEPT_ROWS, dtype=self._dtype)
            n = 0
        block[n] = row
        self._n = n + 1
        return block[n]


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _entry_point(dispatcher: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The compiled function numba's dispatcher chose for exactly these argument types, to
    be called directly with the same objects again (positionally, omitted defaults as None),
    or None when there is no overload of exactly these types (the dispatcher then keeps
    choosing, converting or compiling).

    Why: run_until calls `run_nb` once per wake-up (~26k times in the bench's 1M-event
    market maker) with 42 arguments, and the dispatcher types every one of them on each
    call: ~4 us a call, against ~0.5 us through the entry point (bench/PROFILE.md 1g). The
    caller reuses it only while every argument is the same object as when it was resolved
    (an ndarray keeps its dtype, dimensions and layout; `_args` rebuilds its tuple whenever
    a buffer is replaced), so the types are the ones resolved here."""
    try:
        argtypes = tuple(dispatcher.typeof_pyval(a) for a in args)
        kwtypes = {k: dispatcher.typeof_pyval(v) for k, v in kwargs.items()}
        _, folded = dispatcher.fold_argument_types(argtypes, kwtypes)
        compiled = dispatcher.overloads.get(tuple(folded))
    except Exception:  # noqa: BLE001 - numba internals changed: the dispatcher stays the way in
        return None
    return None if compiled is None else compiled.entry_point


def _same_types(new: tuple, old: tuple) -> bool:
    """True when each object of `new` has the numba type of the one at its place in `old`:
    the same object, or ndarrays alike in everything numba's typeof reads (dtype and its
    alignment, dimensions, layout flags, writeable, aligned). Cheap where the objects are
    the same (all but one after a feed chunk is pulled); strict elsewhere (anything else
    differing -> False, and the dispatcher resolves again)."""
    for a, b in zip(new, old, strict=True):
        if a is b:
            continue
        if type(a) is not np.ndarray or type(b) is not np.ndarray:
            return False
        da, db = a.dtype, b.dtype
        if a.ndim != b.ndim or not (da is db or (da == db and da.isalignedstruct == db.isalignedstruct)):
            return False
        fa, fb = a.flags, b.flags
        if (fa.c_contiguous != fb.c_contiguous or fa.f_contiguous != fb.f_contiguous
                or fa.writeable != fb.writeable or fa.aligned != fb.aligned):
            return False
    return True


def _copy_records(rows: np.ndarray) -> np.ndarray:
    """rows.copy() for structured rows. numpy copies a dtype with padding (all of ours)
    field by field, ten times slower than copying the bytes, which this does when it can."""
    if not rows.flags.c_contiguous:
        return rows.copy()
    return rows.view(np.uint8).copy().view(rows.dtype)


def _put_records(dst: np.ndarray, src: np.ndarray) -> None:
    """dst[:] = src for structured rows of one dtype, as bytes when both are contiguous
    (see _copy_records); numpy copes with overlapping views either way."""
    if dst.dtype == src.dtype and dst.flags.c_contiguous and src.flags.c_contiguous:
        dst.view(np.uint8)[:] = src.view(np.uint8)
    else:
        dst[:] = src


class SimCore:
    """Simulated venues for a set of instruments over one feed (see module doc)."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        configs: Mapping[str, SimVenueConfig],
        feed: Iterable[np.ndarray] | None,
        seed: int,
        *,
        lazy_exchange: bool = True,
    ) -> None:
        ensure_fresh_cache()
        if len(instruments) == 0:
            raise ConfigError("simulated venue: no instruments")
        if len(instruments) > 65535:
            raise ConfigError("simulated venue: more than 65535 instruments")
        venues: list[str] = []
        for inst in instruments:
            if inst.venue not in venues:
                venues.append(inst.venue)
        for name in venues:
            if name not in configs:
                raise ConfigError(
                    f"[venues.{name}] missing: instrument(s) on venue {name!r} need a venue table"
                )
            if not isinstance(configs[name], SimVenueConfig):
                raise ConfigError(f"[venues.{name}]: expected a SimVenueConfig")
        self.instruments = tuple(instruments)
        self.venues = tuple(venues)
        self.configs = {name: configs[name] for name in venues}
        self.seed = int(seed)
        # feed=None: push mode, the caller hands rows over with push() (see push)
        self._pushq: deque[np.ndarray] | None = deque() if feed is None else None
        self._push_ended = False
        self._starved = False
        self._feed = _Drain(self._pushq) if self._pushq is not None else iter(feed)
        self._chunks = 0
        self._last_local = np.iinfo(np.int64).min
        ni = len(instruments)
        nv = len(venues)

        self._inst_venue = np.array([venues.index(i.venue) for i in instruments], dtype=np.int64)
        self._xinst = np.zeros((ni, C.XI_NF), dtype=np.int64)
        self._xinst[:, C.XI_CLOCK] = np.iinfo(np.int64).min
        self._assets, self._bal = self._balance_tables()
        self._buf = np.zeros(0, dtype=EVENT_DTYPE)
        self._store: np.ndarray | None = None
        self._S = np.zeros(C.S_NF, dtype=np.int64)
        self._S[C.S_RUN_INST] = -1
        self._S[C.S_NOW] = np.iinfo(np.int64).min
        self._S[C.S_LAZY_OFF] = 0 if lazy_exchange else 1
        self._V = np.zeros((nv, C.VF_NF), dtype=np.int64)
        self._Vf = np.zeros((nv, C.VFF_NF), dtype=np.float64)
        self._qm = run_queue_models(self.configs[name] for name in venues)
        self._lm = run_latency_models(self.configs[name] for name in venues)
        self._LP = self._latency_tables()
        spikes = []
        for v, name in enumerate(venues):
            cfg = self.configs[name]
            self._V[v, C.VF_XCLOCK] = np.iinfo(np.int64).min
            self._V[v, C.VF_LAST_RESP] = np.iinfo(np.int64).min
            self._V[v, C.VF_LAST_ARR] = np.iinfo(np.int64).min
            self._V[v, C.VF_QMODEL] = self._qm.index(cfg.queue_path)
            self._V[v, C.VF_QL3] = 1 if self._qm.models[self._qm.index(cfg.queue_path)].l3 else 0
            self._V[v, C.VF_PARTIAL] = 1 if cfg.partial_fills else 0
            self._V[v, C.VF_STP] = cfg.stp_code
            self._V[v, C.VF_BALANCES] = 1 if cfg.enforce_balances else 0
            self._Vf[v, C.VFF_QPARAM] = cfg.queue_param
            if len(cfg.droughts) > 1:
                raise ConfigError(f"venue {name}: one partial-fill drought at a time, not {len(cfg.droughts)}")
            for start, end, ppm in cfg.droughts:
                self.set_fill_drought(v, start, end, ppm)
            if cfg.depth_conflation_ns:
                # depth conflation: the local book lags the exchange's, so a dormant exchange
                # side could not be rebuilt from it (dormant_nb.py): this venue never sleeps
                self._V[v, C.VF_CONFL] = cfg.depth_conflation_ns
                # a recorded feed latency stamps each book row's publication (latency.RecordedFeed)
                self._V[v, C.VF_CONFL_OFF] = FEED_FROM_ROW if cfg.feed_file else cfg.feed_ns
                self._V[v, C.VF_NOLAZY] = 1
            for start, end, extra in cfg.spikes:
                spikes.append((v, start, end, extra))
        self._Spk = np.array(spikes, dtype=np.int64).reshape(-1, 4)

        self._kx = np.zeros((4 * ni, _INITIAL_LEVELS), dtype=np.int64)
        self._qt = np.zeros((4 * ni, _INITIAL_LEVELS), dtype=np.int64)
        self._cs = np.zeros((4 * ni, _INITIAL_LEVELS), dtype=np.int64)
        self._cnt = np.zeros(4 * ni, dtype=np.int64)
        self._insnap = np.zeros(2 * ni, dtype=np.int64)

        self._O = np.zeros((_INITIAL_ORDERS, C.OF_NF), dtype=np.int64)
        self._Of = np.zeros((_INITIAL_ORDERS, self._qm.width), dtype=np.float64)
        self._act = np.zeros(_INITIAL_ORDERS, dtype=np.int64)
        self._free = np.arange(_INITIAL_ORDERS - 1, -1, -1, dtype=np.int64)
        self._S[C.S_NFREE] = _INITIAL_ORDERS
        self._inst_nact = np.zeros(ni, dtype=np.int64)
        self._olim = np.zeros((ni, 4), dtype=np.int64)
        self._olim[:, [0, 3]] = -1
        self._olim[:, [1, 2]] = np.iinfo(np.int64).max

        self._R = np.zeros((16, C.RQ_NF), dtype=np.int64)
        self._resp = np.zeros(_INITIAL_RESP, dtype=ORDER_EVENT_DTYPE)
        self._resp_seq = np.zeros(_INITIAL_RESP, dtype=np.int64)
        self._bbo = np.zeros(_INITIAL_BBO, dtype=C.BBO_DTYPE)
        self._lastbbo = np.zeros((ni, 4), dtype=np.int64)
        self._trd = np.zeros(_INITIAL_BBO, dtype=C.TRADE_DTYPE)
        self._out = np.zeros(1, dtype=ORDER_EVENT_DTYPE)
        self._kept_events = _Kept(ORDER_EVENT_DTYPE)  # run_until's ORDER records
        self._kept_trades = _Kept(EVENT_DTYPE)  # its TRADE rows
        self._run_exch = np.zeros(1, dtype=np.int64)
        self._l3_keys = np.zeros((2, _INITIAL_L3), dtype=np.uint64)
        self._l3_tab = np.zeros((2, _INITIAL_L3, T_NF), dtype=np.int64)
        self._l3_meta = np.zeros((2, 2), dtype=np.int64)
        self._l3_out = np.zeros(11, dtype=np.int64)
        self._order_inst: dict[int, int] = {}
        self._history: OrderedDict[int, list] = OrderedDict()  # order_history
        self._args_cache: tuple | None = None
        # the local top of book per instrument index, as read since the kernel last ran
        # (`_args` empties it: see local_bbo)
        self._tops: dict[int, tuple[int, int, int, int]] = {}
        # the wake masks / triggers run_until checked last (the same arrays every call)
        self._checked_masks: tuple[Any, Any, Any] = (None, None, None)
        self._out_u8 = self._out.view(np.uint8)  # the kernel's output row as bytes / words
        self._out_i64 = self._out.view(np.int64)
        self._venue_of = self._inst_venue.tolist()  # instrument index -> venue index, Python ints
        # the kind (OrderEventKind value, a Python int) of the last ORDER row run_until handed
        # out: a driver tells a fill without reading the structured row's field (~1 us)
        self.order_kind = -1
        # run_nb's compiled entry point for the arguments it was last called with (see _entry_point)
        self._fast: tuple | None = None
        # depth conflation: each conflating venue's ring of held book rows (None: no venue
        # conflates, and the kernel's conflation code is compiled out)
        self._conflated = np.array([bool(self.configs[i.venue].depth_conflation_ns) for i in instruments])
        self._pq = (np.zeros(nv * _INITIAL_PEND, dtype=EVENT_DTYPE) if self._conflated.any() else None)

    def _latency_tables(self) -> np.ndarray:
        """Each venue's latency model: its index in the run's set, its parameters and its
        state in one int64 array (latency_nb.py), the state seeded from the run seed and
        the venue's index (one independent stream per venue), and its min_entry."""
        parts = []
        off = 0
        for v, name in enumerate(self.venues):
            cfg = self.configs[name]
            index = self._lm.index(cfg.latency_path)
            model = self._lm.models[index]
            params = np.ascontiguousarray(cfg.latency_params, dtype=np.int64)
            i64 = np.iinfo(np.int64)
            state = np.random.default_rng([self.seed, v]).integers(i64.min, i64.max, size=model.state,
                                                                    dtype=np.int64, endpoint=True)
            low = int(model.min_entry(params))
            if low < 0:
                raise ConfigError(f"[venues.{name}] latency.model = {cfg.latency_model!r}: min_entry "
                                  f"returned {low} ns: expected >= 0")
            self._V[v, C.VF_LMODEL] = index
            # a session's recorded round trips: requests of different orders overtake each
            # other as they did in the session (latency_nb.time_requests_nb)
            self._V[v, C.VF_OVERTAKE] = int(cfg.latency_model == "recorded")
            self._V[v, C.VF_LP_OFF] = off
            self._V[v, C.VF_LP_N] = params.size
            self._V[v, C.VF_LS_N] = model.state
            self._V[v, C.VF_EMIN] = low
            parts += [params, state]
            off += params.size + model.state
            if cfg.report_file:  # the response leg recorded on the user stream (latency_nb.response_time_nb)
                report = np.ascontiguousarray(cfg.report_samples, dtype=np.int64).ravel()
                self._V[v, C.VF_RP_OFF] = off
                self._V[v, C.VF_RP_N] = report.size // 3
                parts.append(report)
                off += report.size
            windows = np.ascontiguousarray(cfg.arrival_windows, dtype=np.int64).ravel()
            if windows.size:  # the recorded model's refused submits (latency_nb.time_requests_nb)
                self._V[v, C.VF_AW_OFF] = off
                self._V[v, C.VF_AW_N] = windows.size // 5
                self._V[v, C.VF_AW_TS] = np.iinfo(np.int64).min
                parts.append(windows)
                off += windows.size
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.int64)

    # ------------------------------------------------------------------ balances ----
    def _balance_tables(self) -> tuple[list[tuple[str, str, int]], np.ndarray]:
        """Exact integer balances for the venues that enforce them.

        Each (venue, asset) gets a unit of 10**-E of the asset, E the smallest exponent that
        makes every amount the kernel handles a whole number: the starting balance, a lot
        (base), a tick x lot and its maker and taker fees (quote). Fills of p ticks x q
        lots then move p * q * (units per tick-lot) exactly. Fee digits beyond what int64
        can hold next to the balance (with 100x headroom: `_fee_exponent_cap`) are rounded
        up to the unit, so a fee is charged at most one unit (10**-E) high per fill, never
        low: a venue's balance check stays conservative (venues round fees to the asset's
        precision too). Fills xinst's balance columns; returns ([(venue, asset, E)], bal).
        """
        need: dict[tuple[str, str], list[Decimal]] = {}
        fees: dict[tuple[str, str], list[Decimal]] = {}
        for inst in self.instruments:
            cfg = self.configs[inst.venue]
            if not cfg.enforce_balances:
                continue
            unit = inst.tick_size * inst.lot_size
            maker = inst.maker_fee_bps if inst.maker_fee_bps is not None else cfg.maker_fee_bps
            taker = inst.taker_fee_bps if inst.taker_fee_bps is not None else cfg.taker_fee_bps
            need.setdefault((inst.venue, inst.base), []).append(inst.lot_size)
            need.setdefault((inst.venue, inst.quote), []).append(unit)
            fees.setdefault((inst.venue, inst.quote), []).extend([unit * maker / _BPS, unit * taker / _BPS])
            if cfg.fee_asset == "received":  # a buy's fee in base: lot x rate
                fees.setdefault((inst.venue, inst.base), []).extend(
                    [inst.lot_size * maker / _BPS, inst.lot_size * taker / _BPS])
        for name in self.venues:
            for asset, amount in self.configs[name].balances:
                if self.configs[name].enforce_balances:
                    need.setdefault((name, asset), []).append(amount)
        assets = sorted(need)
        exps = {}
        for key in assets:
            exact = max([0] + [-_exponent(x) for x in need[key]])
            fee = max([0] + [-_exponent(x) for x in fees.get(key, [])])
            exps[key] = max(exact, min(fee, _fee_exponent_cap(need[key])))
        bal = np.zeros((max(1, len(assets)), C.BAL_NF), dtype=np.int64)
        row = {key: k for k, key in enumerate(assets)}
        for name in self.venues:
            for asset, amount in self.configs[name].balances:
                key = (name, asset)
                if key in row:
                    bal[row[key], C.BAL_FREE] = _to_units(amount, exps[key], f"[venues.{name}] "
                                                          f"balances.{asset}")
        for i, inst in enumerate(self.instruments):
            if (inst.venue, inst.quote) not in row:
                continue
            cfg = self.configs[inst.venue]
            eb, eq = exps[(inst.venue, inst.base)], exps[(inst.venue, inst.quote)]
            unit = inst.tick_size * inst.lot_size
            maker = inst.maker_fee_bps if inst.maker_fee_bps is not None else cfg.maker_fee_bps
            taker = inst.taker_fee_bps if inst.taker_fee_bps is not None else cfg.taker_fee_bps
            where = f"instrument {inst.id}"
            x = self._xinst[i]
            x[C.XI_BASE] = row[(inst.venue, inst.base)]
            x[C.XI_QUOTE] = row[(inst.venue, inst.quote)]
            x[C.XI_BMUL] = _to_units(inst.lot_size, eb, where)
            x[C.XI_QMUL] = _to_units(unit, eq, where)
            x[C.XI_FEE_M] = _to_units(unit * maker / _BPS, eq, where, round_up=True)
            x[C.XI_FEE_T] = _to_units(unit * taker / _BPS, eq, where, round_up=True)
            if cfg.fee_asset == "received":  # a buy pays in the base it receives: no fee lock
                x[C.XI_FEE_RECV] = 1
                x[C.XI_BFEE_M] = _to_units(inst.lot_size * maker / _BPS, eb, where, round_up=True)
                x[C.XI_BFEE_T] = _to_units(inst.lot_size * taker / _BPS, eb, where, round_up=True)
            else:
                x[C.XI_FEE_LOCK] = max(0, int(x[C.XI_FEE_M]), int(x[C.XI_FEE_T]))
        return [(v, a, exps[(v, a)]) for v, a in assets], bal

    def set_fill_drought(self, venue: int | str, start_ns: int, end_ns: int, fraction_ppm: int) -> None:
        """A partial-fill drought on `venue` (index or name): during [start_ns, end_ns) of
        exchange time every passive fill the feed drives (queue, trade-through, crossed book)
        is cut to fraction_ppm / 1e6 of its size, at least one lot (matching_nb.drought_nb).
        A new window replaces the venue's previous one (the emulator sets it when its fault
        fires; a backtest from SimVenueConfig.droughts)."""
        v = self.venues.index(venue) if isinstance(venue, str) else int(venue)
        if not 0 < int(fraction_ppm) <= 1_000_000:
            raise ConfigError(f"partial-fill drought on {self.venues[v]}: fraction {fraction_ppm} ppm "
                              "outside (0, 1e6]")
        self._V[v, C.VF_DRY_START] = int(start_ns)
        self._V[v, C.VF_DRY_END] = int(end_ns)
        self._V[v, C.VF_DRY_PPM] = int(fraction_ppm)

    def balances(self, venue: str) -> dict[str, tuple[Decimal, Decimal]]:
        """The venue's exchange-side balances {asset: (free, locked)}, exact, as the venue
        holds them now (orders lock at their arrival, not when we learn of it). Empty for
        a venue that does not enforce balances."""
        out = {}
        for k, (name, asset, e) in enumerate(self._assets):
            if name == venue:
                scale = Decimal(10) ** -e
                out[asset] = (Decimal(int(self._bal[k, C.BAL_FREE])) * scale,
                              Decimal(int(self._bal[k, C.BAL_LOCKED])) * scale)
        return out

    # ------------------------------------------------------------------ requests ----
    def submit(
        self,
        order_no: int,
        instrument: int,
        side: int,
        order_type: int,
        tif: int,
        price: int,
        qty: int,
        post_only: bool,
        gtd_ts: int,
        local_ts: int,
        stp: str | None = None,
        owner: int = 0,
    ) -> None:
        """Send a new order; it reaches the venue at local_ts + entry latency.

        `stp` overrides the venue's self-trade-prevention mode for this order. `owner`
        (int >= 0, default 0 = the one strategy of a backtest) is the account the order
        belongs to: orders of different owners trade with each other, as on a real venue
        (a taker fills against another owner's resting order at that order's price,
        maker/taker as usual), and STP applies only between orders of the same owner
        (venues/sim/codes.py OF_OWNER; the local exchange emulator gives each account
        its own owner).
        """
        inst = self._check_inst(instrument)
        if side not in (1, -1):
            raise OrderError(f"submit order {order_no}: side {side!r} must be 1 or -1")
        if order_type not in _ORDER_TYPES:
            raise OrderError(f"submit order {order_no}: unknown order type {order_type!r}")
        if tif not in _TIFS:
            raise OrderError(f"submit order {order_no}: unknown time in force {tif!r}")
        if stp is None:
            stp_code = _NO_STP
        elif stp in C.STP_NAMES:
            stp_code = C.STP_NAMES[stp]
        else:
            raise OrderError(
                f"submit order {order_no}: stp {stp!r} is not one of {sorted(C.STP_NAMES)}"
            )
        owner = int(owner)
        if owner < 0:
            raise OrderError(f"submit order {order_no}: owner {owner!r} must be >= 0")
        order_no = int(order_no)
        duplicate = order_no in self._order_inst
        if not duplicate:
            self._order_inst[order_no] = inst
        self._enqueue(_RQ_SUBMIT, order_no, inst, int(side), int(order_type), int(tif), int(price), int(qty),
                      1 if post_only else 0, int(gtd_ts), int(local_ts), 2 if duplicate else 0, stp_code, owner)

    def cancel(self, order_no: int, local_ts: int) -> None:
        """Cancel an order; the request queues behind earlier requests of its venue."""
        order_no = int(order_no)
        inst = self._order_inst.get(order_no)
        known = 0 if inst is None else 1
        self._enqueue(_RQ_CANCEL, order_no, inst or 0, 0, 0, 0, 0, 0, 0, 0, int(local_ts), known, _NO_STP, 0)

    def amend(self, order_no: int, price: int, qty: int, local_ts: int) -> None:
        """Amend price and/or total quantity; qty <= filled cancels the order."""
        inst = self._order_inst.get(int(order_no), 0)
        known = 1 if int(order_no) in self._order_inst else 0
        self._push(C.RQ_AMEND, order_no, inst, local_ts, price=price, qty=qty, known=known)

    def query(self, order_no: int, instrument: int, local_ts: int, owner: int = 0) -> None:
        """A lookup (engine.venue.QueryableVenue), queued behind earlier requests of the
        venue with a submit's entry latency; the venue answers at its arrival with STATE
        responses after the response latency (matching_nb.query_nb). `order_no` is an
        order number, `codes.Q_OPEN_ORDERS` (every open order of `owner` at the venue of
        `instrument`) or `codes.Q_BALANCES` (a marker; read `balances` when it arrives)."""
        inst = self._check_inst(instrument)
        self._push(C.RQ_QUERY, order_no, inst, local_ts, owner=int(owner))

    def order_history(self, order_no: int) -> tuple[list[Any], Any]:
        """(fill rows, end row or None) the venue sent for one order (ORDER_EVENT_DTYPE
        records, as produced: before any loss on the way), for answering lookups of
        orders no longer open. Kept for the last `HISTORY_ORDERS` orders that filled or
        ended; older ones are forgotten, as venues archive old orders."""
        entry = self._history.get(int(order_no))
        return (list(entry[0]), entry[1]) if entry is not None else ([], None)

    def _journal(self, rec: Any) -> None:
        """Remember a fill or end row of the kernel's output (`rec`, its kept copy) for
        `order_history`; the fields come from the output row's bytes (see _EV_KIND_BYTE)."""
        kind = self.order_kind = self._out_u8.item(_EV_KIND_BYTE)
        if kind not in _JOURNAL_KINDS:
            return
        no = self._out_i64.item(_EV_NO_WORD)
        history = self._history
        entry = history.get(no)
        if entry is None:
            entry = history[no] = [[], None]
            if len(history) > HISTORY_ORDERS:
                history.popitem(last=False)
        if kind == _K_FILL:
            entry[0].append(rec)
            if self._out_i64.item(_EV_LEAVES_WORD) == 0:
                entry[1] = rec
        else:
            entry[1] = rec

    def _push(self, kind, order_no, inst, local_ts, *, side=0, typ=0, tif=0, price=0, qty=0,
              post=0, gtd=0, known=0, stp=_NO_STP, owner=0) -> None:
        self._enqueue(int(kind), int(order_no), int(inst), int(side), int(typ), int(tif), int(price), int(qty),
                      int(post), int(gtd), int(local_ts), int(known), int(stp), int(owner))

    def _enqueue(self, kind: int, order_no: int, inst: int, side: int, typ: int, tif: int, price: int, qty: int,
                 post: int, gtd: int, local_ts: int, known: int, stp: int, owner: int) -> None:
        """Queue one request row (`_push` with every field given as a Python int: the
        submit and cancel hot paths convert theirs once)."""
        v = self._venue_of[inst]
        if self._V.item(v, _VF_DORMANT):
            wake_exchange_nb(v, self._S, self._V, self._inst_venue, self._xinst, self._kx, self._qt,
                             self._cs, self._cnt, self._insnap)
        if self._S.item(_S_NREQ) == self._R.shape[0]:
            self._R = _grow2(self._R)
            self._args_cache = None
        enqueue_request_nb(self._R, self._S, self._V, v, kind, order_no, inst, side, typ, tif, price, qty, post,
                           gtd, local_ts, known, stp, owner)

    # ------------------------------------------------------------------ push feed ----
    def push(self, rows: np.ndarray) -> None:
        """Append feed rows (EVENT_DTYPE, local_ts non-decreasing, continuing what was pushed).

        Push mode only (constructed with ``feed=None``): a live or wall-clock driver (the
        local exchange emulator, paper mode) owns the clock and hands rows over as they come;
        nothing blocks on a pull. When the kernel needs a row that was not pushed yet,
        `run_until` returns `WakeKind.STARVED`; push more (or `end_feed`) and call it again.
        Rows are validated here, so a bad row raises `DataError` at the caller's push.
        """
        if self._pushq is None:
            raise ConfigError("SimCore.push: this core reads a pull feed; construct it with feed=None")
        if self._push_ended:
            raise DataError("SimCore.push: the feed was ended (end_feed); no rows can follow")
        chunk = self._checked(rows)
        if chunk.shape[0]:
            self._pushq.append(chunk)

    def end_feed(self) -> None:
        """Push mode: no more rows will come; the run can reach `WakeKind.END`."""
        if self._pushq is None:
            raise ConfigError("SimCore.end_feed: this core reads a pull feed")
        self._push_ended = True

    @property
    def data_exhausted(self) -> bool:
        """Every market row has reached the local side and no other will come (a pull feed
        read to its end, or a push feed ended and drained). Known exactly at a BOUND wake:
        the kernel pulls the feed before it to learn whether a later row exists. The
        backtest stops firing timers from then on (docs/backtest.md "When a backtest ends")."""
        return bool(data_exhausted_nb(self._S))

    @property
    def pushed_until(self) -> int:
        """local_ts of the last row validated so far (pushed or pulled); int64 min if none."""
        return int(self._last_local)

    # ------------------------------------------------------------------ the loop ----
    def run_until(self, t_bound: int, wake_book: np.ndarray, wake_trade: np.ndarray,
                  triggers: np.ndarray | None = None) -> Wake:
        """Process everything up to t_bound; return at the first wake-up.

        `triggers` (optional, int64 (n_instruments, TW_NF), engine/contingent/watch.py):
        armed contingent-order thresholds; a local trade or top of book touching one wakes
        as TRADE / BOOK although wake_trade / wake_book is off, and the loop records each
        instrument's last trade price in it. The caller keeps it current.
        In push mode a `WakeKind.STARVED` wake means the next step needs a row that was not
        pushed yet (its `ts` is the local time reached); nothing was lost, push and retry.
        """
        masks = self._checked_masks
        if wake_book is not masks[0] or wake_trade is not masks[1] or triggers is not masks[2]:
            wake_book, wake_trade = self._check_masks(wake_book, wake_trade, triggers)
        t_bound = int(t_bound)
        S = self._S
        while True:
            args = self._args()
            fast = self._fast
            if fast is not None and not (fast[0] is args and fast[1] is wake_book and fast[2] is wake_trade
                                         and fast[3] is triggers and fast[4] is self._pq):
                # a buffer was replaced (a feed chunk pulled, an array grown) or other masks:
                # the entry point still fits if every new object has the old one's numba type
                if _same_types((*args, wake_book, wake_trade, triggers, self._pq), (*fast[0], *fast[1:5])):
                    fast = self._fast = (args, wake_book, wake_trade, triggers, self._pq, fast[5])
                else:
                    fast = self._fast = None
            if fast is not None and _I64_MIN <= t_bound <= _I64_MAX:
                st = fast[5](*args, wake_book, wake_trade, t_bound, self._out, self._run_exch, None, None, None,
                             triggers, self._pq)
            else:
                st = run_nb(*args, wake_book, wake_trade, t_bound, self._out,
                            self._run_exch, trig=triggers, pq=self._pq)
                entry = _entry_point(run_nb, (*args, wake_book, wake_trade, t_bound, self._out, self._run_exch),
                                     {"trig": triggers, "pq": self._pq})
                self._fast = None if entry is None else (args, wake_book, wake_trade, triggers, self._pq, entry)
            if st == _ST_ORDER:
                rec = self._kept_events.keep(self._out[0])
                self._journal(rec)
                return _new_wake(Wake, (_WK_ORDER, S.item(_S_WAKE_TS), S.item(_S_WAKE_INST), rec))
            if st == _ST_BOUND:
                return _new_wake(Wake, (_WK_BOUND, t_bound, -1, None))
            if st == _ST_BOOK:
                return _new_wake(Wake, (_WK_BOOK, S.item(_S_WAKE_TS), S.item(_S_WAKE_INST), None))
            if st == _ST_TRADE:
                row = self._kept_trades.keep(self._buf[S.item(_S_WAKE_IDX)])
                return _new_wake(Wake, (_WK_TRADE, S.item(_S_WAKE_TS), S.item(_S_WAKE_INST), row))
            if st == _ST_END:
                return _new_wake(Wake, (_WK_END, S.item(_S_NOW), -1, None))
            self._serve(st)
            S = self._S
            if self._starved:
                self._starved = False
                return _new_wake(Wake, (_WK_STARVED, S.item(_S_NOW), -1, None))

    def _check_masks(self, wake_book: Any, wake_trade: Any, triggers: Any) -> tuple[np.ndarray, np.ndarray]:
        """run_until's argument checks; the masks as the kernel takes them. Arrays that
        pass as given are remembered, so a driver handing the same arrays to every call
        (the session's) is checked once: an ndarray's dtype, shape and layout stay."""
        ni = len(self.instruments)
        book = _bool_mask(wake_book, ni, "wake_book")
        trade = _bool_mask(wake_trade, ni, "wake_trade")
        if triggers is not None and (type(triggers) is not np.ndarray or triggers.dtype != np.int64
                                     or triggers.shape != (ni, TW_NF) or not triggers.flags.c_contiguous):
            raise ConfigError(f"triggers: expected a C-contiguous int64 array of shape ({ni}, {TW_NF})")
        if book is wake_book and trade is wake_trade:
            self._checked_masks = (wake_book, wake_trade, triggers)
        return book, trade

    def _args(self) -> tuple:
        """The kernel's state arrays, rebuilt only after a buffer was replaced. Whoever
        takes them is about to run a kernel that may move the local book (run_until, the
        compiled loop): the remembered tops of book are forgotten here."""
        if self._tops:
            self._tops.clear()
        if self._args_cache is None:
            self._args_cache = (
                self._buf, self._S, self._V, self._Vf, self._inst_venue, self._xinst, self._bal,
                self._kx, self._qt, self._cs, self._cnt, self._insnap,
                self._O, self._Of, self._act, self._free, self._inst_nact, self._olim,
                self._resp, self._resp_seq, self._LP, self._Spk,
                self._l3_keys, self._l3_tab, self._l3_meta, self._l3_out,
                self._R, self._bbo, self._lastbbo, self._trd, self._qm, self._lm,
            )
        return self._args_cache

    def _serve(self, st: int) -> None:
        self._args_cache = None  # every service below may replace an array
        S = self._S
        if st == C.ST_NEED_DATA:
            self._pull()
        elif st == C.ST_NEED_RESP_SPACE:
            need = int(S[C.S_NRESP] + S[C.S_MAXCNT] + 2 * S[C.S_NACT] + 16)
            size = max(2 * self._resp.shape[0], need)
            self._resp = _grow_to(self._resp, size)
            self._resp_seq = _grow_to(self._resp_seq, size)
        elif st == C.ST_NEED_BOOK_SPACE:
            cap = self._kx.shape[1] * 2
            self._kx = _grow_cols(self._kx, cap)
            self._qt = _grow_cols(self._qt, cap)
            self._cs = _grow_cols(self._cs, cap)
            S[C.S_NEED_BOOK] = 0
        elif st == C.ST_NEED_BBO_SPACE:
            self._bbo = _grow_to(self._bbo, 2 * self._bbo.shape[0])
        elif st == C.ST_NEED_TRADE_SPACE:
            self._trd = _grow_to(self._trd, 2 * self._trd.shape[0])
        elif st == C.ST_NEED_ORDER_SLOTS:
            old = self._O.shape[0]
            new = 2 * old
            self._O = _grow_to(self._O, new)
            self._Of = _grow_to(self._Of, new)
            self._act = _grow_to(self._act, new)
            free = np.zeros(new, dtype=np.int64)
            nfree = int(S[C.S_NFREE])
            free[:nfree] = self._free[:nfree]
            free[nfree : nfree + new - old] = np.arange(new - 1, old - 1, -1)
            self._free = free
            S[C.S_NFREE] = nfree + new - old
        elif st == C.ST_NEED_L3_SPACE:
            cap = self._l3_keys.shape[1] * 4
            keys = np.zeros((2, cap), dtype=np.uint64)
            tab = np.zeros((2, cap, T_NF), dtype=np.int64)
            meta = np.zeros((2, 2), dtype=np.int64)
            l3_rehash_nb(self._l3_keys, self._l3_tab, self._l3_meta, keys, tab, meta)
            self._l3_keys, self._l3_tab, self._l3_meta = keys, tab, meta
            S[C.S_NEED_L3] = 0
        elif st == C.ST_NEED_PEND_SPACE:
            self._grow_pending()
        else:  # pragma: no cover - internal errors
            raise DataError(
                f"simulated venue: internal error (kernel status {st}) at local time "
                f"{int(S[C.S_NOW])}, feed chunk {self._chunks}; please report it with the data"
            )

    def _grow_pending(self) -> None:
        """Double every conflating venue's ring, keeping each one's held rows in order."""
        pq, V = self._pq, self._V
        nv = V.shape[0]
        cap = pq.shape[0] // nv
        new = np.zeros(2 * pq.shape[0], dtype=EVENT_DTYPE)
        for v in range(nv):
            head, tail = int(V[v, C.VF_PHEAD]), int(V[v, C.VF_PTAIL])
            slots = [(v * cap + (k % cap)) for k in range(head, tail)]
            new[v * 2 * cap: v * 2 * cap + len(slots)] = pq[slots]
            V[v, C.VF_PHEAD], V[v, C.VF_PTAIL] = 0, tail - head
        self._pq = new
        self._S[C.S_NEED_PEND] = 0

    def _pull(self) -> None:
        S = self._S
        chunk = None
        for candidate in self._feed:
            # pushed chunks were validated by push()
            chunk = candidate if self._pushq is not None else self._checked(candidate)
            if chunk.shape[0] > 0:
                break
            chunk = None
        nbuf = int(S[C.S_NBUF])
        if chunk is None:
            if self._pushq is not None and not self._push_ended:
                self._starved = True  # push mode: the caller decides what comes next
                return
            S[C.S_FEED_DONE] = 1
            return
        awake = self._V[:, C.VF_DORMANT] == 0
        keep = int(S[C.S_LI])
        if awake.any():
            keep = min(keep, int(self._V[awake, C.VF_XI].min()))
        tail = nbuf - keep
        if tail <= 0:
            buf = chunk  # no copy at all
        else:
            # the unconsumed tail plus the new chunk, in a reused store (a fresh array per
            # chunk would page-fault its whole size in again)
            need = tail + chunk.shape[0]
            store = self._store
            if store is None or store.shape[0] < need:
                store = np.empty(max(need, 2 * chunk.shape[0]), dtype=EVENT_DTYPE)
            _put_records(store[:tail], self._buf[keep:nbuf])  # numpy copes with the overlap
            _put_records(store[tail:need], chunk)
            self._store = store
            buf = store[:need]
        self._buf = buf
        S[C.S_LI] -= keep
        self._V[:, C.VF_XI] -= keep
        self._V[:, C.VF_PULL_HI] -= keep
        self._xinst[:, C.XI_PULLED] -= keep
        self._V[~awake, C.VF_XI] = S[C.S_LI]  # unused while dormant; waking sets it again
        S[C.S_NBUF] = buf.shape[0]

    def _checked(self, chunk: np.ndarray) -> np.ndarray:
        self._chunks += 1
        where = f"feed chunk {self._chunks}"
        if not isinstance(chunk, np.ndarray) or chunk.dtype.names is None:
            raise DataError(f"{where}: expected a numpy structured array in EVENT_DTYPE")
        if chunk.dtype != EVENT_DTYPE:
            missing = [n for n in EVENT_DTYPE.names if n not in chunk.dtype.names]
            if missing:
                raise DataError(f"{where}: missing field(s) {missing}")
            conv = np.zeros(chunk.shape[0], dtype=EVENT_DTYPE)
            for name in EVENT_DTYPE.names:
                conv[name] = chunk[name]
            chunk = conv
        else:
            chunk = np.ascontiguousarray(chunk)
        if chunk.shape[0] == 0:
            return chunk
        code, row, count, future = validate_chunk_nb(chunk, self._last_local,
                                                     len(self.instruments))
        if code != V_OK:
            bad = chunk[row]
            what = {
                V_BACKWARDS: f"local_ts {int(bad['local_ts'])} goes backwards (the feed must be "
                "sorted by local_ts)",
                V_INSTRUMENT: f"instrument {int(bad['instrument'])} out of range "
                f"({len(self.instruments)} instruments)",
                V_NEGATIVE: f"negative price or qty ({int(bad['price'])}, {int(bad['qty'])})",
                V_KIND: f"unknown event kind {int(bad['kind'])}",
                V_SIDE: f"book delta with side {int(bad['side'])} (expected 1 or -1)",
            }[code]
            raise DataError(f"{where} row {row}: {what}; {count} bad row(s) in this chunk")
        if self._pq is not None:
            l3 = (chunk["kind"] >= EventKind.L3_ADD) & (chunk["kind"] <= EventKind.L3_FILL)
            l3 &= self._conflated[chunk["instrument"].astype(np.intp)]
            if l3.any():
                row = int(np.argmax(l3))
                venue = self.instruments[int(chunk["instrument"][row])].venue
                raise ConfigError(f"{where} row {row}: [venues.{venue}] depth_conflation_ms applies to L2 depth; "
                                  "this venue's data has L3 rows (set depth_conflation_ms = 0)")
        local = chunk["local_ts"]
        self._last_local = int(local[-1])
        if future and not self._S[C.S_LAZY_OFF]:
            # rows stamped at the exchange after their local time: waking a dormant
            # exchange side from the local book would no longer be exact (dormant_nb.py)
            self._S[C.S_LAZY_OFF] = 1
            wake_all_nb(self._S, self._V, self._inst_venue, self._xinst, self._kx, self._qt,
                        self._cs, self._cnt, self._insnap)
        return chunk

    # ------------------------------------------------------------------ views -------
    def local_bbo(self, instrument: int) -> tuple[int, int, int, int]:
        """(bid_px, bid_qty, ask_px, ask_qty) of the local book; qty 0 = empty side.

        Remembered per instrument until a kernel runs again (`_args`): only a kernel moves
        the local book, and the session reads it 3-4 times per order event (the strategy's
        best bid and ask, the submit's arrival prices, risk's mid, the equity marks)."""
        if type(instrument) is int:
            top = self._tops.get(instrument)
            if top is not None:
                return top
            if 0 <= instrument < len(self.instruments):  # `_check_inst`'s test, without its call
                top = self._tops[instrument] = self._bbo_of(instrument, 1)
                return top
        inst = self._check_inst(instrument)
        top = self._tops[inst] = self._bbo_of(inst, 1)
        return top

    def exchange_bbo(self, instrument: int) -> tuple[int, int, int, int]:
        """Same for the exchange-side book (feed quantities, before our consumption)."""
        inst = self._check_inst(instrument)
        self._exchange_now(inst)
        return self._bbo_of(inst, 0)

    def _exchange_now(self, inst: int) -> None:
        """A dormant venue's exchange book is rebuilt, as of now + its smallest entry
        latency (as far as an eager exchange side runs ahead), before anyone reads it."""
        v = int(self._inst_venue[inst])
        if self._V[v, C.VF_DORMANT]:
            t = int(self._S[C.S_NOW]) + int(self._V[v, C.VF_EMIN])
            exch_catch_up_nb(*self._args()[:26], self._qm, self._lm, v, t)

    def _bbo_of(self, inst: int, local: int) -> tuple[int, int, int, int]:
        # ndarray.item: a Python int straight away (indexing makes a numpy scalar first);
        # this runs for every order entry, mid and best price the strategy reads
        bb = 4 * inst + 2 * local
        ba = bb + 1
        cnt, kx, qt = self._cnt, self._kx, self._qt
        nb = cnt.item(bb)
        na = cnt.item(ba)
        bid = (kx.item(bb, nb - 1), qt.item(bb, nb - 1)) if nb else (0, 0)
        ask = (-kx.item(ba, na - 1), qt.item(ba, na - 1)) if na else (0, 0)
        return bid[0], bid[1], ask[0], ask[1]

    def local_levels(self, instrument: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best-first (prices, qtys) of up to n levels of one side of the local book."""
        return self._levels(self._check_inst(instrument), side, n, 1)

    def exchange_levels(self, instrument: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        inst = self._check_inst(instrument)
        self._exchange_now(inst)
        return self._levels(inst, side, n, 0)

    def _levels(self, inst: int, side: int, n: int, local: int):
        if side not in (1, -1):
            raise OrderError(f"side {side!r} must be 1 (bids) or -1 (asks)")
        b = 4 * inst + 2 * local + (0 if side > 0 else 1)
        cnt = int(self._cnt[b])
        k = max(0, min(int(n), cnt))
        keys = self._kx[b, cnt - k : cnt][::-1]
        qtys = self._qt[b, cnt - k : cnt][::-1].copy()
        prices = keys.copy() if side > 0 else -keys
        return prices, qtys

    def order_state(self, order_no: int) -> dict[str, Any] | None:
        """The venue's view of a resting order (queue position for reports), or None."""
        for j in range(int(self._S[C.S_NACT])):
            s = int(self._act[j])
            if int(self._O[s, C.OF_NO]) == int(order_no):
                return {
                    "instrument": int(self._O[s, C.OF_INST]),
                    "side": int(self._O[s, C.OF_SIDE]),
                    "price": int(self._O[s, C.OF_PRICE]),
                    "qty": int(self._O[s, C.OF_QTY]),
                    "filled": int(self._O[s, C.OF_FILLED]),
                    "ahead": float(self._Of[s, C.OFF_AHEAD]),
                }
        return None

    def drain_bbo(self) -> np.ndarray:
        """Local top-of-book changes since the last drain (BBO_DTYPE: ts, exch_ts,
        instrument, bid, bid_qty, ask, ask_qty), one per changed book message."""
        n = int(self._S[C.S_NBBO])
        out = _copy_records(self._bbo[:n])
        self._S[C.S_NBBO] = 0
        return out

    def drain_trades(self) -> np.ndarray:
        """Market trades seen on the local side since the last drain (TRADE_DTYPE)."""
        n = int(self._S[C.S_NTR])
        out = _copy_records(self._trd[:n])
        self._S[C.S_NTR] = 0
        return out

    @property
    def events_processed(self) -> int:
        """Feed rows consumed by the local side (for the progress bar)."""
        return int(self._S[C.S_EVENTS])

    @property
    def now(self) -> int:
        """Local time reached."""
        return int(self._S[C.S_NOW])

    def _check_inst(self, instrument: int) -> int:
        i = int(instrument)
        if not 0 <= i < len(self.instruments):
            raise InstrumentError(
                f"instrument index {instrument!r} out of range (0..{len(self.instruments) - 1})"
            )
        return i


_BPS = Decimal(10000)
_UNIT_LIMIT = 2**62  # room for sums of amounts that each fit


def _exponent(value: Decimal) -> int:
    """The decimal exponent of value's last significant digit (0.001 -> -3, 500 -> 2)."""
    if value == 0:
        return 0
    return int(value.normalize().as_tuple().exponent)


def _fee_exponent_cap(amounts: list[Decimal]) -> int:
    """The largest E at which 100x the largest amount still fits in `_UNIT_LIMIT` units of
    10**-E (fee digits beyond it are rounded up; see `_balance_tables`)."""
    largest = max([Decimal(1)] + [abs(a) for a in amounts])
    return int((Decimal(_UNIT_LIMIT) / (100 * largest)).log10().to_integral_value(rounding=ROUND_FLOOR))


def _to_units(value: Decimal, exp: int, where: str, *, round_up: bool = False) -> int:
    scaled = value.scaleb(exp)
    if round_up:
        scaled = scaled.to_integral_value(rounding=ROUND_CEILING)
    if scaled != scaled.to_integral_value():  # pragma: no cover - exp is chosen to avoid it
        raise ConfigError(f"{where}: {value} is not a whole number of 1e-{exp}")
    units = int(scaled)
    if abs(units) >= _UNIT_LIMIT:
        raise ConfigError(
            f"{where}: {value} is too large to simulate exactly in units of 1e-{exp} (the "
            f"asset's finest step: lot, tick x lot and fee); at most {_UNIT_LIMIT // 10**exp}"
        )
    return units


class _Drain:
    """Push mode's feed: iterating pops what was pushed and stops when nothing is left,
    so every pull sees only the rows pushed since the last one."""

    def __init__(self, queue: deque[np.ndarray]) -> None:
        self._queue = queue

    def __iter__(self) -> _Drain:
        return self

    def __next__(self) -> np.ndarray:
        if not self._queue:
            raise StopIteration
        return self._queue.popleft()


def _bool_mask(mask: np.ndarray, n: int, name: str) -> np.ndarray:
    if (type(mask) is np.ndarray and mask.dtype == np.bool_ and mask.shape == (n,)
            and mask.flags.c_contiguous):
        return mask
    arr = np.asarray(mask, dtype=np.bool_)
    if arr.shape != (n,):
        raise ConfigError(f"{name}: expected a bool array of shape ({n},), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _grow_to(arr: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + arr.shape[1:], dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def _grow2(arr: np.ndarray) -> np.ndarray:
    return _grow_to(arr, 2 * arr.shape[0])


def _grow_cols(arr: np.ndarray, cols: int) -> np.ndarray:
    out = np.zeros((arr.shape[0], cols), dtype=arr.dtype)
    out[:, : arr.shape[1]] = arr
    return out
