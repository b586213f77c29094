"""Cheap construction of the engine's frozen records (one per venue report).

Why: a frozen dataclass's generated `__init__` sets each field through
`object.__setattr__`, ~150 ns a field; the session builds an `OrderUpdate` (18 fields) and
a typed venue record per order event, and issue 16's budget for the whole event is 10 us
(bench/PROFILE.md). The builder sets the slots directly: the same object, ~2.5x cheaper.
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
    setters = {f"_set_{name}": cls.__dict__[name].__set__ for name in names}
    source = (f"def build({'' if positional else '*, '}{', '.join(names)}):\n    obj = _new(_cls)\n"
              + "".join(f"    _set_{name}(obj, {name})\n" for name in names) + "    return obj\n")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    return namespace["build"]
