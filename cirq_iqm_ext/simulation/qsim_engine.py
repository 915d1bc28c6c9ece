"""qsim (``qsimcirq``) as an engine: a block's final state, or one noisy trajectory per shot.

A block of a terminal circuit (ops scheduled in moments, as :mod:`.simulator` plans them) is
written straight into qsim's own circuit objects, without building a Cirq circuit first: ``prx``
as its 2x2 matrix, ``cz`` as qsim's CZ. Only ``u`` and ``cz`` ops are supported
(:func:`supports`); the simulator keeps MOVE blocks and dynamic circuits on the numpy engine.

The noise is the simulator's own (:mod:`.noise`: the depolarising remainder of each gate and the
relaxation ``(γ, p_z)`` of every qubit in every moment, read from the same tables the numpy
engine uses), written as qsim channels:

* after each gate, ``depolarize(p)`` as a mixture (identity with ``1 - p``, each non-identity
  Pauli string with ``p / (4**n - 1)``);
* relaxation as one channel per qubit with the Kraus operators ``√(1-p_z)·K0``, ``√p_z·Z·K0`` and
  ``K1`` (amplitude damping ``K0 = diag(1, √(1-γ))``, ``K1 = √γ·|0⟩⟨1|``; ``Z·K1 = K1``), which
  is amplitude damping followed by the phase flip. Consecutive moments in which a qubit is idle
  share one channel: relaxation over ``t1`` then ``t2`` is exactly relaxation over ``t1 + t2``
  (``1-γ`` and ``1-2·p_z`` multiply, and damping commutes with the phase flip); after a qubit's
  last gate its phase flips are dropped, since they commute with the measurement in Z and change
  no outcome.

Every shot is its own trajectory: qsim's trajectory sampler runs the whole noisy circuit once per
call, seeded by the call's seed, and the seeds of one run are distinct, so no two shots share a
noise realisation. qsim runs on one thread (``cpu_threads=1``): the server's simulation workers
are the parallelism, as with BLAS (:mod:`.blas`).

Qubit ``k`` of a block is qsim's qubit ``width - 1 - k``, so qsim's state index (qubit 0 is the
lowest bit) is the simulator's big-endian index.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cirq_iqm_ext.simulation.engines import QsimError, qsim_module
from cirq_iqm_ext.simulation.noise import PAULIS, pauli_strings

#: Largest number of gates qsim fuses into one (qsim's ``max_fused_gate_size``), by block size:
#: small states pay more for fusing than they save.
_FUSED_SMALL, _FUSED_LARGE = 2, 3
_FUSED_LARGE_FROM = 16

_Z = PAULIS[3]


def supports(moments: Sequence[Sequence[Any]]) -> bool:
    """Whether every op is one this engine writes (``u`` or ``cz``; not ``move`` or ``cc``)."""
    return all(op.kind in ("u", "cz") for moment in moments for op in moment)


def _options(qsim: Any, circuit: Any, width: int, seed: int = 0) -> dict[str, Any]:
    fused = _FUSED_LARGE if width >= _FUSED_LARGE_FROM else _FUSED_SMALL
    # One thread: the simulation workers are the parallelism (like BLAS, see .blas).
    return {
        **_GPU_OFF,
        "c": circuit,
        "f": fused,
        "t": 1,
        "r": 1,
        "s": seed,
        "v": 0,
        "z": False,
    }


#: qsim's options for its GPU back ends, off (qsimcirq's defaults).
_GPU_OFF = {"g": False, "gmode": 0, "gsst": 512, "gdb": 16}


def _checked(result: Any, what: str) -> Any:
    """qsim reports a failure as an empty result (and a message on stderr)."""
    if len(result) == 0:
        raise QsimError(
            f"qsim failed to simulate {what}; set CIRQ_IQM_EXT_ENGINE=numpy to avoid it"
        )
    return result


def _floats(matrix: np.ndarray) -> list[float]:
    """A matrix as qsim wants it: row-major, real and imaginary parts interleaved."""
    return np.ascontiguousarray(matrix, dtype=np.complex64).view(np.float32).ravel().tolist()


def final_state(width: int, moments: Sequence[Sequence[Any]], index: Mapping[str, int]) -> Any:
    """The noiseless final state of a block (``complex64``, big-endian index)."""
    qsim = qsim_module()
    assert qsim is not None, "qsim_engine used without qsimcirq"
    circuit = qsim.Circuit()
    circuit.num_qubits = width
    time = 0
    for moment in moments:
        if not moment:
            continue
        for op in moment:
            qubits = [width - 1 - index[q] for q in op.qubits]
            if op.kind == "cz":
                qsim.add_gate(qsim.kCZ, time, qubits, {}, circuit)
            else:
                qsim.add_matrix_gate(time, qubits, _floats(op.matrix), circuit)
        time += 1
    if time == 0:  # qsim needs at least one gate
        qsim.add_matrix_gate(0, [0], _floats(PAULIS[0]), circuit)
    floats = _checked(qsim.qsim_simulate_fullstate(_options(qsim, circuit, width), 0), "a block")
    return np.asarray(floats, dtype=np.float32).view(np.complex64)


def sample_trajectories(
    width: int,
    moments: Sequence[Sequence[Any]],
    index: Mapping[str, int],
    noise: Any,
    shots: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One independent noisy trajectory per shot; returns each shot's outcome (big-endian index).

    ``noise`` has the relaxation tables ``gamma[m, k]`` and ``p_z[m, k]`` of the block's qubits.
    """
    qsim = qsim_module()
    assert qsim is not None, "qsim_engine used without qsimcirq"
    circuit = _noisy_circuit(qsim, width, moments, index, noise)
    options = _options(qsim, circuit, width)
    weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
    out = np.empty(shots, dtype=np.int64)
    sample = qsim.qtrajectory_sample
    for shot, seed in enumerate(distinct_seeds(rng, shots).tolist()):
        options["s"] = seed
        # Bits of qsim's qubits 0 .. width-1, i.e. the lowest bit of the index first.
        out[shot] = int(np.dot(_checked(sample(options), "a trajectory"), weights))
    return out


def distinct_seeds(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct 32-bit seeds (qsim's seed is 32 bits): no two shots share one."""
    seeds = np.unique(rng.integers(0, 2**32, size=count, dtype=np.uint64))
    while len(seeds) < count:
        more = rng.integers(0, 2**32, size=count - len(seeds), dtype=np.uint64)
        seeds = np.unique(np.concatenate([seeds, more]))
    rng.shuffle(seeds)  # unique() sorts; the order of shots should not follow the seeds
    return seeds


def _noisy_circuit(
    qsim: Any,
    width: int,
    moments: Sequence[Sequence[Any]],
    index: Mapping[str, int],
    noise: Any,
) -> Any:
    """The block with its gate noise and merged relaxation, and a final measurement."""
    circuit = qsim.NoisyCircuit()
    circuit.num_qubits = width
    # The last moment with a gate on each qubit, and whether a gate acts on it in each moment.
    busy = np.zeros((len(moments) + 1, width), dtype=bool)
    for m, moment in enumerate(moments):
        for op in moment:
            for q in op.qubits:
                busy[m, index[q]] = True
    last = [max((m for m in range(len(moments)) if busy[m, k]), default=-1) for k in range(width)]
    keep = np.ones(width)  # pending relaxation per qubit: product of (1 - γ)
    coherence = np.ones(width)  # and of (1 - 2 p_z)
    time = 0
    for m, moment in enumerate(moments):
        for op in moment:
            qubits = [width - 1 - index[q] for q in op.qubits]
            if op.kind == "cz":
                qsim.add_gate_channel(qsim.kCZ, time, qubits, {}, circuit)
            else:
                qsim.add_matrix_gate_channel(time, qubits, _floats(op.matrix), circuit)
            if op.depolarizing > 0:
                qsim.add_channel(time + 1, qubits, _depolarizing(op.depolarizing, qubits), circuit)
        keep *= 1 - noise.gamma[m]
        coherence *= 1 - 2 * noise.p_z[m]
        for k in range(width):
            # Relaxation goes in when the idle run ends: before the qubit's next gate, or at
            # the end (without its phase flips once no gate follows).
            if busy[m + 1, k] or m == len(moments) - 1:
                p_z = (1 - coherence[k]) / 2 if m < last[k] else 0.0
                kraus = _relaxation(1 - keep[k], p_z)
                if kraus:
                    qsim.add_channel(time + 2, [width - 1 - k], kraus, circuit)
                keep[k] = coherence[k] = 1.0
        time += 3
    qsim.add_gate_channel(qsim.kMeasurement, time, list(range(width)), {}, circuit)
    return circuit


def _depolarizing(p: float, qubits: list[int]) -> list[tuple[float, list[float], bool]]:
    """``depolarize(p)`` on the qubits as a qsim mixture."""
    return _depolarizing_mixture(p, len(qubits))


@functools.lru_cache(maxsize=1024)
def _depolarizing_mixture(p: float, n: int) -> list[tuple[float, list[float], bool]]:
    # Cached: a circuit has few distinct gate fidelities (qsim copies what it is given).
    strings = 4**n - 1
    out = [(1 - p, _floats(np.eye(2**n)), True)]
    for pauli in pauli_strings(n)[1:]:
        out.append((p / strings, _floats(pauli), True))
    return out


def _relaxation(gamma: float, p_z: float) -> list[tuple[float, list[float], bool]]:
    """Amplitude damping ``gamma`` then a phase flip ``p_z`` as one qsim channel.

    Each Kraus operator comes with a lower bound of its probability (qsim samples those without
    computing a norm): ``(1-p_z)(1-γ)`` and ``p_z(1-γ)`` for the no-jump ones, 0 for the jump.
    """
    if gamma <= 0 and p_z <= 0:
        return []
    if gamma <= 0:
        return [(1 - p_z, _floats(PAULIS[0]), True), (p_z, _floats(_Z), True)]
    k0 = np.diag([1.0, math.sqrt(1 - gamma)]).astype(np.complex128)
    k1 = np.array([[0, math.sqrt(gamma)], [0, 0]], dtype=np.complex128)
    out = [((1 - p_z) * (1 - gamma), _floats(math.sqrt(1 - p_z) * k0), False)]
    if p_z > 0:
        out.append((p_z * (1 - gamma), _floats(math.sqrt(p_z) * (_Z @ k0)), False))
    out.append((0.0, _floats(k1), False))
    return out
