"""Cheap construction of the engine's frozen records (one per venue report).

Why: a frozen dataclass's generated `__init__` sets each field through
`object.__setattr__`, ~150 ns a field; the session builds an `OrderUpdate` (18 fields) and
a typed venue record per order event, and issue 16's budget for the whole event is 10 us
(bench/PROFILE.md). The builder sets the slots directly: the same object, ~2.5x cheaper
(~7x with the twin class of section 1i).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def frozen_builder(cls: type, *, positional: bool = False) -> Callable[..., Any]:
    """A constructor for a frozen, slotted dataclass without `__post_init__` that takes
    every field by keyword (defaults included: none may be left out, a TypeError names
    it) and sets its slots directly: the same object as `cls(...)`
    (tests/engine/test_engine_frozen.py pins it). Any other class is returned as is.

    `positional`: the fields are taken by position instead, in the dataclass's field
    order (a call matches no keyword names: ~2x cheaper for the 18 fields of the
    `OrderUpdate` the session builds per order event; bench/PROFILE.md 1g)."""
    import dataclasses

    if (not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__")
            or "__slots__" not in cls.__dict__):
        return cls
    names = [f.name for f in dataclasses.fields(cls)]
    params = f"{'' if positional else '*, '}{', '.join(names)}"
    twin = _twin(cls)
    if twin is not None:
        # built as its twin (the same slots, not frozen: each field one slot store), then
        # made a `cls` by `__class__` assignment, which CPython allows between classes of
        # the same slots layout: ~3x cheaper than a descriptor call per field (bench/PROFILE.md 1i)
        source = (f"def build({params}):\n    obj = _new(_twin)\n"
                  + "".join(f"    obj.{name} = {name}\n" for name in names)
                  + "    obj.__class__ = _cls\n    return obj\n")
        namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_twin": twin}
    else:
        setters = {f"_set_{name}": cls.__dict__[name].__set__ for name in names}
        source = (f"def build({params}):\n    obj = _new(_cls)\n"
                  + "".join(f"    _set_{name}(obj, {name})\n" for name in names) + "    return obj\n")
        namespace = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    return namespace["build"]


def _twin(cls: type) -> type | None:
    """A plain class with `cls`'s slots (same names, same order, same base `object`), whose
    instances may become `cls` instances by `__class__` assignment; None when `cls` has
    another base or CPython refuses the assignment (a different layout)."""
    if cls.__bases__ != (object,):
        return None
    twin = type(f"_{cls.__name__}Slots", (object,), {"__slots__": tuple(cls.__dict__["__slots__"])})
    try:
        probe = object.__new__(twin)
        probe.__class__ = cls
    except TypeError:
        return None
    return twin
