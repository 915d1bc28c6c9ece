"""One BLAS thread while a simulation runs.

The simulator's matrix products are small and many; with OpenBLAS's own thread pool on top of the
server's worker threads, the BLAS threads fight the workers (and each other) for the cores and a
job uses several times the CPU for less speed. :func:`single_blas_thread` limits BLAS to one
thread while at least one simulation runs, and restores the previous limit when the last one ends
(the limit is process-wide, so it is counted, not nested per thread).

It uses ``threadpoolctl`` when installed, and otherwise calls the ``*_set_num_threads`` function
of the OpenBLAS library bundled with numpy directly. Where neither is found the limit is not
changed (numpy then runs as configured, e.g. by ``OPENBLAS_NUM_THREADS``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

_lock = threading.Lock()
_users = 0
_restore: Callable[[], None] | None = None


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limits BLAS to one thread for the duration of the block (thread-safe, re-entrant)."""
    global _users, _restore
    with _lock:
        _users += 1
        if _users == 1:
            _restore = _limit_to_one()
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _restore is not None:
                _restore()
                _restore = None


def blas_threads() -> int | None:
    """The BLAS library's current thread limit (``None`` if it cannot be read)."""
    controller = _threadpoolctl()
    if controller is not None:
        limits = [info.get("num_threads") for info in controller.threadpool_info()]
        numbers = [n for n in limits if isinstance(n, int)]
        return max(numbers) if numbers else None
    functions = _openblas_functions()
    return None if functions is None else int(functions[0]())


def _limit_to_one() -> Callable[[], None] | None:
    controller = _threadpoolctl()
    if controller is not None:
        limiter = controller.threadpool_limits(limits=1, user_api="blas")
        return limiter.restore_original_limits
    functions = _openblas_functions()
    if functions is None:
        return None
    get, set_threads = functions
    previous = int(get())
    set_threads(1)
    return lambda: set_threads(previous)


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl  # optional
    except ImportError:
        return None
    return threadpoolctl


@functools.cache
def _openblas_functions() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """``get_num_threads`` and ``set_num_threads`` of numpy's bundled OpenBLAS, if found."""
    folder = os.path.dirname(os.path.dirname(np.__file__))
    for path in glob.glob(os.path.join(folder, "numpy.libs", "*openblas*")):
        try:
            library = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                set_threads = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_threads is not None:
                    return get, set_threads
    return None
