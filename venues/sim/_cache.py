"""Keep numba's on-disk cache of the venue kernels in step with their sources.

numba checks only the timestamp of the file that defines a cached function, not of the
functions it calls or the constants it inlines, so an edited `matching_nb.py` would keep
running a stale `core_nb.run_nb`. Before the first kernel call we hash every source the
kernels are built from; when the hash changed we delete this package's cache entries.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import numba

_NB_MODULES = ("book_nb", "queue_nb", "latency_nb", "l3_nb", "matching_nb", "dormant_nb", "core_nb",
               "validate_nb", "requests_nb", "compiled_nb")
_CONSTANT_MODULES = ("venues.sim.codes", "venues.sim.models", "engine.types.orders", "engine.types.market",
                     "engine.compiled", "engine.risk_nb",  # these two: inlined into compiled_nb
                     "engine.contingent.watch")  # trigger columns, inlined into core_nb
_STAMP = "tickparity_sim.stamp"
_checked = False


def source_hash() -> str:
    digest = hashlib.sha256(numba.__version__.encode())
    names = [f"venues.sim.{m}" for m in _NB_MODULES] + list(_CONSTANT_MODULES)
    for name in names:
        module = importlib.import_module(name)
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def ensure_fresh_cache() -> None:
    """Drop cached kernels built from other sources (once per process)."""
    global _checked
    if _checked:
        return
    _checked = True
    stamp_value = source_hash()
    dirs: set[str] = set()
    for name in _NB_MODULES:
        module = importlib.import_module(f"venues.sim.{name}")
        for obj in vars(module).values():
            path = getattr(getattr(obj, "_cache", None), "_cache_path", None)
            if isinstance(path, str):
                dirs.add(path)
    for d in sorted(dirs):
        folder = Path(d)
        stamp = folder / _STAMP
        try:
            if stamp.is_file() and stamp.read_text() == stamp_value:
                continue
            for stem in _NB_MODULES:
                for pattern in (f"{stem}.*.nbi", f"{stem}.*.nbc"):
                    for file in folder.glob(pattern):
                        file.unlink(missing_ok=True)
            folder.mkdir(parents=True, exist_ok=True)
            stamp.write_text(stamp_value)
        except OSError:  # read-only install: numba will compile in memory
            continue
