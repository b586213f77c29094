"""Warm-up and numba cache bookkeeping."""

from __future__ import annotations

from venues.sim import warmup
from venues.sim._cache import _NB_MODULES, ensure_fresh_cache, source_hash


def test_warmup_is_idempotent():
    warmup()
    warmup()


def test_cache_stamp_covers_every_kernel_module():
    from pathlib import Path

    import venues.sim as pkg

    here = Path(pkg.__file__).parent
    kernels = {p.stem for p in here.glob("*_nb.py")}
    assert kernels == set(_NB_MODULES)  # a new kernel module must be listed for the stamp
    assert source_hash() == source_hash()
    ensure_fresh_cache()  # once per process; a second call is free
