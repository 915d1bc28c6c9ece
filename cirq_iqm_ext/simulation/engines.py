"""Which engine simulates a block: the numpy engine or qsim, by name or by measured cost.

Two engines evolve the blocks of a terminal circuit (dynamic circuits always use the numpy
engine's branch tree):

* ``numpy``: the hand-written engine of :mod:`.simulator` and :mod:`.trajectories` (state
  vectors, exact density matrices, batches of trajectories). Always present.
* ``qsim``: Google's qsim (``qsimcirq``, the optional extra ``cirq-iqm-ext[qsim]``), state
  vectors and one quantum trajectory per shot (:mod:`.qsim_engine`).

The choice is ``auto`` (the default: qsim where the cost model says it is faster and it can run
the block, numpy otherwise), ``numpy`` or ``qsim`` (qsim wherever it can run the block). It is a
constructor argument of :class:`~cirq_iqm_ext.simulation.simulator.CalibratedSimulator`, and the
environment variable :data:`ENGINE_ENV` sets the default. Both engines compute the same physics
(the noise of :mod:`.noise`), so the choice changes speed, never the distribution of results.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

from cirq_iqm_ext.errors import IQMError

#: The engine names a simulator accepts.
ENGINES = ("auto", "numpy", "qsim")
#: Environment variable with the default engine (one of :data:`ENGINES`).
ENGINE_ENV = "CIRQ_IQM_EXT_ENGINE"
#: What to install for the qsim engine.
QSIM_EXTRA = 'pip install "cirq-iqm-ext[qsim]"'

#: Noiseless blocks of at least this many qubits go to qsim in ``auto``. Written straight into
#: qsim's circuit objects (no Cirq translation), qsim was faster at every size measured, from
#: 2 qubits (100 Bell circuits x 1000 shots: 16 ms against 22 ms) to 20 (6x); single qubits stay
#: on numpy, where there is nothing to gain.
QSIM_MIN_PURE_QUBITS = 2


class EngineError(IQMError, ValueError):
    """An unknown engine name, or the qsim engine asked for without qsimcirq installed."""


class QsimError(IQMError, RuntimeError):
    """qsim failed on a block it was given (it reports no reason but on stderr)."""


def resolve_engine(requested: str | None) -> str:
    """The engine to use: ``requested``, else :data:`ENGINE_ENV`, else ``auto``.

    Raises:
        EngineError: An unknown name, or ``qsim`` without qsimcirq.
    """
    name = requested if requested is not None else os.environ.get(ENGINE_ENV) or "auto"
    name = name.strip().lower()
    if name not in ENGINES:
        source = "engine" if requested is not None else ENGINE_ENV
        raise EngineError(
            f"{source}={name!r} is not a simulation engine; use one of {', '.join(ENGINES)}"
        )
    if name == "qsim" and qsim_module() is None:
        raise EngineError(f"engine 'qsim' needs qsimcirq, which is not installed: {QSIM_EXTRA}")
    return name


@functools.cache
def qsim_module() -> Any | None:
    """qsim's compiled module (the instruction set qsimcirq chose), or ``None`` without it.

    Cached; :func:`forget_qsim` clears the cache (tests make qsim unavailable that way).
    """
    try:
        qsimcirq = importlib.import_module("qsimcirq")  # optional extra
    except ImportError:
        return None
    return getattr(qsimcirq, "qsim", None)


def forget_qsim() -> None:
    """Clears the cached qsim import, so the next :func:`qsim_module` looks again."""
    qsim_module.cache_clear()


def qsim_trajectories_are_cheaper(
    width: int, shots: int, gates: int, moments: int, numpy_cost: float
) -> bool:
    """Whether one qsim trajectory per shot costs less than ``numpy_cost`` seconds.

    The model: a fixed cost per trajectory (qsim copies the noisy circuit and fuses its gates
    for every trajectory), a cost per operation (gates, their noise channels, relaxation
    channels) and a cost per amplitude and pass. Constants measured with one thread
    (``tests/benchmarks/bench_engine.py`` prints the costs it compares).
    """
    return qsim_trajectory_cost(width, shots, gates, moments) < numpy_cost


def qsim_trajectory_cost(width: int, shots: int, gates: int, moments: int) -> float:
    """Estimated seconds for ``shots`` qsim trajectories (the model of
    :func:`qsim_trajectories_are_cheaper`)."""
    operations = 2 * gates + moments * width  # gates, their depolarising channels, relaxation
    passes = gates + moments
    per_trajectory = (
        _QSIM_TRAJ_S + _QSIM_OP_S * operations + _QSIM_AMPLITUDE_S * passes * 2.0**width
    )
    return shots * per_trajectory


#: Measured costs of a qsim trajectory (see :func:`qsim_trajectory_cost`).
_QSIM_TRAJ_S, _QSIM_OP_S, _QSIM_AMPLITUDE_S = 1e-4, 1.2e-6, 9e-11
