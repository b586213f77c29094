"""Pluggable queue-position models: a small numba module a user names in the venue table.

`[venues.X] queue_model = "package.module:name"` names a `QueueModel` object in an
importable module; the shipped names (`risk_averse`, `power:<n>`, `log`, `l3_fifo`) are
the same kind of object, defined in `venues.sim.queue_nb` (docs/models.md). A model is
four `@njit` functions over the order's row of per-order state and its width:

  on_new(st, s, ahead, param)           the order starts to rest (or moved to the back)
  on_depth(st, s, prev, new, param)     the feed set its level from prev to new lots
  on_trade(st, s, qty, param)           a trade of qty lots printed at its price
  filled(st, s, param) -> int           lots of that trade that reached the order

`st` is a float64 array (n_orders x width of the widest model of the run), `s` the
order's row. Column 0 is `ahead` (lots in front of the order): the venue itself caps it
at a snapshot end, zeroes it after a queue fill, and moves it exactly for L3 (`l3=True`)
models. `param` is the model's float parameter (`power:<n>` -> n; 0 for a model named
by path).

How the kernels call them (why not first-class function pointers): the run's distinct
models are one numba type, `QueueModelsType`, whose key is each model's path and the
sha256 of its module's source. The kernels take that object as one argument and call
`q_new / q_depth / q_trade / q_filled (models, index, ...)`, overloads that numba
expands, per model set, into a switch over the models' own functions, compiled into the
loop (direct calls LLVM may inline, no function pointers) and cached on disk per model
set (the key is picklable and equal across processes, unlike a dispatcher's type, and
changes when the model's source does, so an edited model is recompiled, never run
stale). The overloads are not `inline="always"`: numba 0.68's IR inlining of them lost
writes to arrays unpacked from a tuple in the caller (add_order_nb's inst_nact).
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

_HOOKS = ("on_new", "on_depth", "on_trade", "filled")
# the arguments each hook is called with (after st, s), as numba types: checked when a
# model is loaded so a wrong signature is a one-line ConfigError, not a numba traceback
_HOOK_ARGS = {
    "on_new": (types.float64, types.float64),
    "on_depth": (types.int64, types.int64, types.float64),
    "on_trade": (types.int64, types.float64),
    "filled": (types.float64,),
}
_STATE = types.Array(types.float64, 2, "C")


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


_LOADED: dict[str, tuple[QueueModel, str]] = {}


def load_queue_model(path: str, where: str = "queue_model") -> tuple[QueueModel, str]:
    """'package.module:name' -> (the QueueModel, sha256 of the module's source).

    Raises ConfigError (one line, naming `where`) when the module or the attribute is
    missing, the object is no QueueModel, its width is no positive int, a function is no
    `@njit` function or does not compile for its documented arguments.
    """
    if path in _LOADED:
        return _LOADED[path]
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"{where} = {path!r}: expected 'package.module:name' or a shipped model "
                          "('risk_averse', 'power:<n>', 'log', 'l3_fifo')")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{where} = {path!r}: cannot import module {mod_name!r} ({exc})") from None
    model = getattr(module, attr, None)
    if model is None:
        raise ConfigError(f"{where} = {path!r}: module {mod_name!r} has no attribute {attr!r}")
    if not isinstance(model, QueueModel):
        raise ConfigError(f"{where} = {path!r}: expected a venues.sim.models.QueueModel, "
                          f"got {type(model).__name__}")
    if isinstance(model.width, bool) or not isinstance(model.width, int) or model.width < 1:
        raise ConfigError(f"{where} = {path!r}: width = {model.width!r}: expected an int >= 1")
    if model.width > MAX_STATE_WIDTH:
        raise ConfigError(f"{where} = {path!r}: width = {model.width}: more than the {MAX_STATE_WIDTH} "
                          "float64 columns of per-order state the venue keeps")
    for hook in _HOOKS:
        fn = getattr(model, hook)
        if not isinstance(fn, Dispatcher):
            raise ConfigError(f"{where} = {path!r}: {hook} is not an @njit function")
        sig = (_STATE, types.int64, *_HOOK_ARGS[hook])
        try:
            fn.compile(sig)
            cres = fn.overloads[sig]
        except Exception as exc:  # numba's typing errors are many classes; any is the user's
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{where} = {path!r}: {hook}(st, s, {_arg_doc(hook)}) does not compile "
                              f"for those arguments: {first}") from None
        ret = cres.signature.return_type
        if hook == "filled" and not isinstance(ret, types.Integer):
            raise ConfigError(f"{where} = {path!r}: filled must return an int (lots), returns {ret}")
    if not mod_name.startswith("venues.sim."):  # the shipped models are ours (tests/venues/sim)
        _probe_width(model, path, where)
    source = Path(module.__file__).read_bytes() if getattr(module, "__file__", None) else path.encode()
    _LOADED[path] = (model, hashlib.sha256(source).hexdigest())
    return _LOADED[path]


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
    ConfigError naming `where` and the function that went beyond. A branch this life does
    not reach is not checked; any other exception is left to the run."""
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
        except Exception:  # noqa: BLE001 - not a width fault: the run reports it where it happens
            return


def _arg_doc(hook: str) -> str:
    return {"on_new": "ahead, param", "on_depth": "prev, new, param", "on_trade": "qty, param",
            "filled": "param"}[hook]


class QueueModels:
    """The distinct queue models of one run, in index order (a venue's model index is
    its position here). Passed to the kernels as one argument."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = tuple(paths)
        self.models = tuple(load_queue_model(p)[0] for p in self.paths)
        self.key = tuple((p, load_queue_model(p)[1]) for p in self.paths)
        # numba's dispatcher reads `_numba_type_` on its fast (C) path: the kernel is called
        # once per wake-up, and a typeof() in Python per call cost ~5 us (bench_sim core only)
        self._numba_type_ = QueueModelsType(self.key)

    @property
    def width(self) -> int:
        """Per-order state columns: the widest model's."""
        return max(m.width for m in self.models)

    def index(self, path: str) -> int:
        return self.paths.index(path)


class QueueModelsType(types.Type):
    """numba type of a QueueModels: keyed on (path, source digest) of each model."""

    def __init__(self, key: tuple[tuple[str, str], ...]) -> None:
        self.model_key = key
        super().__init__(name="QueueModels(" + ", ".join(f"{p}@{d[:12]}" for p, d in key) + ")")


@typeof_impl.register(QueueModels)
def _typeof_models(val: QueueModels, c: Any) -> QueueModelsType:
    return val._numba_type_


register_model(QueueModelsType)(models.OpaqueModel)


@unbox(QueueModelsType)
def _unbox_models(typ: QueueModelsType, obj: Any, c: Any) -> NativeValue:
    # the functions are compiled in: at run time the object carries nothing
    return NativeValue(c.context.get_constant_null(typ))


def _switch(qm: QueueModelsType, hook: str, args: str, returns: bool):
    """The implementation of one hook for a model set: `if m == i: model_i.hook(...)`."""
    glb: dict[str, Any] = {"_int64": np.int64}
    fns = [getattr(load_queue_model(path)[0], hook) for path, _ in qm.model_key]
    lines = [f"def impl(qm, m, st, s, {args}):"]
    for i, fn in enumerate(fns):
        glb[f"F{i}"] = fn
        stmt = f"return _int64(F{i}(st, s, {args}))" if returns else f"F{i}(st, s, {args})"
        if i < len(fns) - 1:
            lines += [f"    if m == {i}:", f"        {stmt}"] + ([] if returns else ["        return"])
        else:
            lines.append(f"    {stmt}")
    exec("\n".join(lines), glb)  # noqa: S102 - generated from the model list, no user text
    return glb["impl"]


def q_new(qm, m, st, s, ahead, param):  # noqa: ARG001 - typed by the overload below
    """Model m of qm: the order in row s starts resting with `ahead` lots in front."""


def q_depth(qm, m, st, s, prev, new, param):  # noqa: ARG001
    """Model m of qm: the order's level went from prev to new lots."""


def q_trade(qm, m, st, s, qty, param):  # noqa: ARG001
    """Model m of qm: qty lots traded at the order's price."""


def q_filled(qm, m, st, s, param):  # noqa: ARG001
    """Model m of qm: lots of the last trade that reached the order (int)."""


@overload(q_new, jit_options={"_nrt": False})
def _ov_new(qm, m, st, s, ahead, param):
    if isinstance(qm, QueueModelsType):
        return _switch(qm, "on_new", "ahead, param", False)
    return None


@overload(q_depth, jit_options={"_nrt": False})
def _ov_depth(qm, m, st, s, prev, new, param):
    if isinstance(qm, QueueModelsType):
        return _switch(qm, "on_depth", "prev, new, param", False)
    return None


@overload(q_trade, jit_options={"_nrt": False})
def _ov_trade(qm, m, st, s, qty, param):
    if isinstance(qm, QueueModelsType):
        return _switch(qm, "on_trade", "qty, param", False)
    return None


@overload(q_filled, jit_options={"_nrt": False})
def _ov_filled(qm, m, st, s, param):
    if isinstance(qm, QueueModelsType):
        return _switch(qm, "filled", "param", True)
    return None


def run_queue_models(configs: Any) -> QueueModels:
    """The QueueModels of a run: the shipped models (always, in codes.QM_* order, so runs
    that use only those share one compiled kernel) then each user model the venue
    configs name, in first-seen order."""
    from venues.sim.queue_nb import SHIPPED

    paths = list(SHIPPED.values())
    for cfg in configs:
        if cfg.queue_path not in paths:
            paths.append(cfg.queue_path)
    return QueueModels(tuple(paths))
