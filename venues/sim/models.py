"""Pluggable models of the simulated venue: small numba modules a user names in the venue table.

Two kinds (docs/models.md), each an object in an importable module named by
"package.module:name", the shipped models being objects of the same kind:

Queue-position models, `[venues.X] queue_model = "package.module:name"`: a `QueueModel`,
four `@njit` functions over the order's row of per-order state and its width (shipped:
`risk_averse`, `power:<n>`, `log`, `l3_fifo`, in `venues.sim.queue_nb`):

  on_new(st, s, ahead, param)           the order starts to rest (or moved to the back)
  on_depth(st, s, prev, new, param)     the feed set its level from prev to new lots
  on_trade(st, s, qty, param)           a trade of qty lots printed at its price
  filled(st, s, param) -> int           lots of that trade that reached the order

`st` is a float64 array (n_orders x width of the widest model of the run), `s` the
order's row. Column 0 is `ahead` (lots in front of the order): the venue itself caps it
at a snapshot end, zeroes it after a queue fill, and moves it exactly for L3 (`l3=True`)
models. `param` is the model's float parameter (`power:<n>` -> n; 0 for a model named
by path).

Order-latency models, `[venues.X.latency] model = "package.module:name"`: a
`LatencyModel`, the two legs of hftbacktest's order latency (`entry`, `response`) plus the
bound the venue needs to run its exchange side ahead (shipped: `constant`, `empirical`,
`recorded`, in `venues.sim.latency_nb`):

  entry(kind, ts, p, st) -> int         ns from sending a request (codes.RQ_*) at local time ts
                                        to its arrival at the venue
  response(kind, ts, p, st) -> int      ns from the venue producing a response (an
                                        OrderEventKind) at exchange time ts to its receipt
  min_entry(p) -> int                   a lower bound of every entry latency (ns)

`p` is the venue's int64 parameter array (read only), `st` its int64 state of the
model's `state` width, seeded from the run seed (venues.sim.latency_nb module doc).

How the kernels call them (why not first-class function pointers): the run's distinct
models of one kind are one numba type, `ModelSetType`, whose key is each model's path and
the sha256 of its module's source. The kernels take that object as one argument and call
`q_new / q_depth / q_trade / q_filled (models, index, ...)` or `l_entry / l_response
(models, index, ...)`, overloads that numba expands, per model set, into a switch over the
models' own functions, compiled into the loop (direct calls LLVM may inline, no function
pointers) and cached on disk per model set (the key is picklable and equal across
processes, unlike a dispatcher's type, and changes when the model's source does, so an
edited model is recompiled, never run stale). The overloads are not `inline="always"`:
numba 0.68's IR inlining of them lost writes to arrays unpacked from a tuple in the caller
(add_order_nb's inst_nact).
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import types
from numba.core.dispatcher import Dispatcher
from numba.extending import NativeValue, models, overload, register_model, typeof_impl, unbox

from engine.errors import ConfigError

_STATE = types.Array(types.float64, 2, "C")
_I64 = types.Array(types.int64, 1, "C")


@dataclass(frozen=True, eq=False)
class QueueModel:
    """A queue-position model: four `@njit` functions and its per-order state width.

    width: float64 columns of per-order state the model uses (>= 1; column 0 is
    `ahead`, lots). l3: the venue maintains `ahead` exactly from L3 rows (l3_fifo) and an
    L3 execution counts as a trade print for the fill rules. See the module doc and
    docs/models.md for the functions' arguments and units.
    """

    width: int
    on_new: Any
    on_depth: Any
    on_trade: Any
    filled: Any
    l3: bool = False


@dataclass(frozen=True, eq=False)
class LatencyModel:
    """An order-latency model: `entry`, `response` and `min_entry` (`@njit` functions)
    and the int64 slots of per-venue state it keeps (`state`, >= 0). Latencies are ns.
    See the module doc and docs/models.md for the functions' arguments."""

    entry: Any
    response: Any
    min_entry: Any
    state: int = 0


@dataclass(frozen=True)
class _Kind:
    """What one kind of model looks like: its class, its hooks (name -> argument types
    after the fixed ones, argument names as documented), the hooks that return an int,
    the integer field that sizes its state and the doc of the shipped names."""

    cls: type
    hooks: dict
    returns_int: tuple
    size_field: str
    size_min: int
    shipped_doc: str


_QUEUE = _Kind(
    QueueModel,
    {"on_new": ((_STATE, types.int64, types.float64, types.float64), "st, s, ahead, param"),
     "on_depth": ((_STATE, types.int64, types.int64, types.int64, types.float64), "st, s, prev, new, param"),
     "on_trade": ((_STATE, types.int64, types.int64, types.float64), "st, s, qty, param"),
     "filled": ((_STATE, types.int64, types.float64), "st, s, param")},
    ("filled",), "width", 1, "('risk_averse', 'power:<n>', 'log', 'l3_fifo')")
_LATENCY = _Kind(
    LatencyModel,
    {"entry": ((types.int64, types.int64, _I64, _I64), "kind, ts, p, st"),
     "response": ((types.int64, types.int64, _I64, _I64), "kind, ts, p, st"),
     "min_entry": ((_I64,), "p")},
    ("entry", "response", "min_entry"), "state", 0, "('constant', 'empirical', 'recorded')")
_KINDS = {QueueModel: _QUEUE, LatencyModel: _LATENCY}

_LOADED: dict[tuple[str, str], tuple[Any, str]] = {}


def _load(kind: _Kind, path: str, where: str) -> tuple[Any, str]:
    """'package.module:name' -> (the model, sha256 of its module's source); ConfigError
    (one line, naming `where`) on anything a user can get wrong (see load_queue_model)."""
    cached = _LOADED.get((kind.cls.__name__, path))
    if cached is not None:
        return cached
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"{where} = {path!r}: expected 'package.module:name' or a shipped model "
                          f"{kind.shipped_doc}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{where} = {path!r}: cannot import module {mod_name!r} ({exc})") from None
    model = getattr(module, attr, None)
    if model is None:
        raise ConfigError(f"{where} = {path!r}: module {mod_name!r} has no attribute {attr!r}")
    if not isinstance(model, kind.cls):
        raise ConfigError(f"{where} = {path!r}: expected a venues.sim.models.{kind.cls.__name__}, "
                          f"got {type(model).__name__}")
    size = getattr(model, kind.size_field)
    if isinstance(size, bool) or not isinstance(size, int) or size < kind.size_min:
        raise ConfigError(f"{where} = {path!r}: {kind.size_field} = {size!r}: expected an int >= {kind.size_min}")
    if kind is _QUEUE and size > MAX_STATE_WIDTH:
        raise ConfigError(f"{where} = {path!r}: width = {size}: more than the {MAX_STATE_WIDTH} "
                          "float64 columns of per-order state the venue keeps")
    for hook, (sig, doc) in kind.hooks.items():
        fn = getattr(model, hook)
        if not isinstance(fn, Dispatcher):
            raise ConfigError(f"{where} = {path!r}: {hook} is not an @njit function")
        try:
            fn.compile(sig)
            cres = fn.overloads[sig]
        except Exception as exc:  # numba's typing errors are many classes; any is the user's
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{where} = {path!r}: {hook}({doc}) does not compile "
                              f"for those arguments: {first}") from None
        ret = cres.signature.return_type
        if hook in kind.returns_int and not isinstance(ret, types.Integer):
            unit = "lots" if kind is _QUEUE else "ns"
            raise ConfigError(f"{where} = {path!r}: {hook} must return an int ({unit}), returns {ret}")
    if kind is _QUEUE and not mod_name.startswith("venues.sim."):  # the shipped models are ours (tests/venues/sim)
        _probe_width(model, path, where)
    source = Path(module.__file__).read_bytes() if getattr(module, "__file__", None) else path.encode()
    _LOADED[(kind.cls.__name__, path)] = (model, hashlib.sha256(source).hexdigest())
    return _LOADED[(kind.cls.__name__, path)]


def load_queue_model(path: str, where: str = "queue_model") -> tuple[QueueModel, str]:
    """'package.module:name' -> (the QueueModel, sha256 of the module's source).

    Raises ConfigError (one line, naming `where`) when the module or the attribute is
    missing, the object is no QueueModel, its width is no positive int, a function is no
    `@njit` function or does not compile for its documented arguments.
    """
    return _load(_QUEUE, path, where)


def load_latency_model(path: str, where: str = "latency.model") -> tuple[LatencyModel, str]:
    """'package.module:name' -> (the LatencyModel, sha256 of the module's source).

    Raises ConfigError (one line, naming `where`) when the module or the attribute is
    missing, the object is no LatencyModel, its state is no int >= 0, a function is no
    `@njit` function, does not compile for its documented arguments or returns no int.
    """
    return _load(_LATENCY, path, where)


#: the widest per-order state a model may declare: the venue keeps one float64 row of the run's
#: widest model per order (n_orders x width, grown with the orders), so 64 columns is 512
#: bytes an order; a model that needs more is a mistake in its `width`
MAX_STATE_WIDTH = 64


def _probe_width(model: QueueModel, path: str, where: str) -> None:
    """Run the model's four functions, bounds-checked, on a state array exactly `width`
    columns wide (a typical life of an order: rests, the level moves both ways, trades print
    at its price, some fill). Why: the kernels run without bounds checks and the state array
    is as wide as the run's widest model, so a model that reads or writes `st[s, width]` or
    beyond would silently use another model's columns or memory past the array. Raises
    ConfigError naming `where` and the function that went beyond, or the function and the
    exception when the model's own code raises in this life (a division by `ahead`, 0 for
    an order opening a level: it was an "internal error" in the run). A branch this life
    does not reach is not checked."""
    from numba import njit

    st = np.zeros((2, model.width), dtype=np.float64)
    calls = [("on_new", (5.0, 0.0)), ("on_depth", (10, 4, 0.0)), ("on_depth", (4, 12, 0.0)),
             ("on_trade", (3, 0.0)), ("filled", (0.0,)), ("on_trade", (20, 0.0)), ("filled", (0.0,)),
             ("on_new", (0.0, 0.0)), ("on_trade", (1, 0.0)), ("filled", (0.0,))]
    checked: dict[str, Any] = {}
    for hook, args in calls:
        if hook not in checked:
            checked[hook] = njit(boundscheck=True, cache=False)(getattr(model, hook).py_func)
        try:
            checked[hook](st, 1, *args)
        except IndexError:
            raise ConfigError(f"{where} = {path!r}: {hook} indexes st[s, ...] beyond its width = {model.width} "
                              f"(columns 0..{model.width - 1}): raise width or use fewer columns") from None
        except Exception as exc:  # noqa: BLE001 - the model's own code failed on an order's ordinary life
            shown = ", ".join(["st", "s", *(repr(a) for a in args)])
            raise ConfigError(f"{where} = {path!r}: {hook}({shown}) raised {type(exc).__name__}: {exc}") from None


def probe_latency_params(model: LatencyModel, params: np.ndarray, where: str) -> None:
    """Run the model's three functions, bounds-checked, on the venue's own `latency.params`
    for every request kind (RQ_SUBMIT..RQ_QUERY) and every response kind. Why: the kernels
    run without bounds checks, so a model reading `p[3]` from a 1-value `params` gets
    whatever memory follows (a 4,097 ns ack from `params = [1]`, silently). A negative
    `min_entry` is refused here too, and so is an exception the model's code raises on these
    calls (a `ZeroDivisionError` for a request kind: the run's first such request would
    stop it with an "internal error" naming no model). Raises ConfigError naming `where`
    and the call (one line); a branch these calls do not reach is not checked. The state
    `st` is seeded as a run seeds it (seed 0, venue 0), so a model dividing by a draw does
    not fail on an all-zero state the run never has."""
    from numba import njit

    from engine.types.orders import OrderEventKind

    i64 = np.iinfo(np.int64)
    st = np.random.default_rng([0, 0]).integers(i64.min, i64.max, size=model.state, dtype=np.int64, endpoint=True)
    calls: list[tuple[str, tuple[Any, ...], str]] = [("min_entry", (params,), "p")]
    calls += [("entry", (kind, 0, params, st), f"kind={kind}, ts=0, p, st") for kind in (1, 2, 3, 4)]
    calls += [("response", (int(kind), 0, params, st), f"kind={int(kind)} ({kind.name}), ts=0, p, st")
              for kind in OrderEventKind]
    checked: dict[str, Any] = {}
    for hook, args, shown in calls:
        if hook not in checked:
            checked[hook] = njit(boundscheck=True, cache=False)(getattr(model, hook).py_func)
        try:
            got = checked[hook](*args)
        except IndexError:
            raise ConfigError(f"{where} = {[int(x) for x in params]}: {hook} reads p beyond its "
                              f"{len(params)} value(s): give the model every parameter it reads") from None
        except Exception as exc:  # noqa: BLE001 - the model's own code failed on these params
            raise ConfigError(f"{where} = {[int(x) for x in params]}: {hook}({shown}) raised "
                              f"{type(exc).__name__}: {exc}") from None
        if hook == "min_entry" and int(got) < 0:  # a lower bound of every entry: checked with the
            # params here, when the config is read (the run names the config file), not first
            # when the venue is built (that message named no file)
            raise ConfigError(f"{where} = {[int(x) for x in params]}: min_entry returned {int(got)} ns: "
                              "expected >= 0 (a lower bound of every entry latency)")


class ModelSet:
    """The distinct models of one kind of one run, in index order (a venue's model index
    is its position here). Passed to the kernels as one argument."""

    def __init__(self, cls: type, paths: tuple[str, ...]) -> None:
        self.kind = _KINDS[cls]
        self.paths = tuple(paths)
        loaded = [_load(self.kind, p, "model") for p in self.paths]
        self.models = tuple(m for m, _ in loaded)
        self.key = tuple((p, d) for p, (_, d) in zip(self.paths, loaded, strict=True))
        # numba's dispatcher reads `_numba_type_` on its fast (C) path: the kernel is called
        # once per wake-up, and a typeof() in Python per call cost ~5 us (bench_sim core only)
        self._numba_type_ = ModelSetType(cls.__name__, self.key)

    @property
    def width(self) -> int:
        """Queue models: per-order state columns, the widest model's."""
        return max(getattr(m, self.kind.size_field) for m in self.models)

    def index(self, path: str) -> int:
        return self.paths.index(path)


class ModelSetType(types.Type):
    """numba type of a ModelSet: keyed on its kind and (path, source digest) of each model."""

    def __init__(self, kind: str, key: tuple[tuple[str, str], ...]) -> None:
        self.model_kind = kind
        self.model_key = key
        super().__init__(name=f"{kind}s(" + ", ".join(f"{p}@{d[:12]}" for p, d in key) + ")")


@typeof_impl.register(ModelSet)
def _typeof_models(val: ModelSet, c: Any) -> ModelSetType:
    return val._numba_type_


register_model(ModelSetType)(models.OpaqueModel)


@unbox(ModelSetType)
def _unbox_models(typ: ModelSetType, obj: Any, c: Any) -> NativeValue:
    # the functions are compiled in: at run time the object carries nothing
    return NativeValue(c.context.get_constant_null(typ))


def _switch(ms: ModelSetType, kind: _Kind, hook: str, first: str):
    """The implementation of one hook for a model set: `if m == i: return model_i.hook(...)`."""
    args = kind.hooks[hook][1]
    returns = hook in kind.returns_int
    glb: dict[str, Any] = {"_int64": np.int64}
    fns = [getattr(_load(kind, path, "model")[0], hook) for path, _ in ms.model_key]
    lines = [f"def impl({first}, m, {args}):"]  # numba wants the overload's argument names
    for i, fn in enumerate(fns):
        glb[f"F{i}"] = fn
        stmt = f"return _int64(F{i}({args}))" if returns else f"F{i}({args})"
        if i < len(fns) - 1:
            lines += [f"    if m == {i}:", f"        {stmt}"] + ([] if returns else ["        return"])
        else:
            lines.append(f"    {stmt}")
    exec("\n".join(lines), glb)  # noqa: S102 - generated from the model list, no user text
    return glb["impl"]


def _of(ms: Any, kind: _Kind) -> bool:
    return isinstance(ms, ModelSetType) and ms.model_kind == kind.cls.__name__


def q_new(qm, m, st, s, ahead, param):  # noqa: ARG001 - typed by the overload below
    """Model m of qm: the order in row s starts resting with `ahead` lots in front."""


def q_depth(qm, m, st, s, prev, new, param):  # noqa: ARG001
    """Model m of qm: the order's level went from prev to new lots."""


def q_trade(qm, m, st, s, qty, param):  # noqa: ARG001
    """Model m of qm: qty lots traded at the order's price."""


def q_filled(qm, m, st, s, param):  # noqa: ARG001
    """Model m of qm: lots of the last trade that reached the order (int)."""


def l_entry(lm, m, kind, ts, p, st):  # noqa: ARG001
    """Model m of lm: entry latency (ns) of a request of `kind` sent at local time ts."""


def l_response(lm, m, kind, ts, p, st):  # noqa: ARG001
    """Model m of lm: response latency (ns) of a response of `kind` made at exchange time ts."""


@overload(q_new, jit_options={"_nrt": False})
def _ov_new(qm, m, st, s, ahead, param):
    return _switch(qm, _QUEUE, "on_new", "qm") if _of(qm, _QUEUE) else None


@overload(q_depth, jit_options={"_nrt": False})
def _ov_depth(qm, m, st, s, prev, new, param):
    return _switch(qm, _QUEUE, "on_depth", "qm") if _of(qm, _QUEUE) else None


@overload(q_trade, jit_options={"_nrt": False})
def _ov_trade(qm, m, st, s, qty, param):
    return _switch(qm, _QUEUE, "on_trade", "qm") if _of(qm, _QUEUE) else None


@overload(q_filled, jit_options={"_nrt": False})
def _ov_filled(qm, m, st, s, param):
    return _switch(qm, _QUEUE, "filled", "qm") if _of(qm, _QUEUE) else None


@overload(l_entry, jit_options={"_nrt": False})
def _ov_entry(lm, m, kind, ts, p, st):
    return _switch(lm, _LATENCY, "entry", "lm") if _of(lm, _LATENCY) else None


@overload(l_response, jit_options={"_nrt": False})
def _ov_response(lm, m, kind, ts, p, st):
    return _switch(lm, _LATENCY, "response", "lm") if _of(lm, _LATENCY) else None


def run_queue_models(configs: Any) -> ModelSet:
    """The queue models of a run: the shipped models (always, in codes.QM_* order, so runs
    that use only those share one compiled kernel) then each user model the venue
    configs name, in first-seen order."""
    from venues.sim.queue_nb import SHIPPED

    return _run_set(QueueModel, list(SHIPPED.values()), (c.queue_path for c in configs))


def run_latency_models(configs: Any) -> ModelSet:
    """The latency models of a run, as run_queue_models: the shipped ones, then the
    user's (SimVenueConfig.latency_path)."""
    from venues.sim.latency_nb import SHIPPED

    return _run_set(LatencyModel, list(SHIPPED.values()), (c.latency_path for c in configs))


def _run_set(cls: type, paths: list[str], named: Any) -> ModelSet:
    for path in named:
        if path not in paths:
            paths.append(path)
    return ModelSet(cls, tuple(paths))
