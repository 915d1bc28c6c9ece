"""A local noisy sampler: the server's simulator and physics in-process, no server and no HTTP.

:func:`local_sampler` returns a :class:`cirq.Sampler` that validates each circuit against an
:class:`~cirq_iqm_ext.IQMDevice` and runs the calibrated simulator of
:mod:`cirq_iqm_ext.simulation` with the noise of a calibration set (:class:`IQMNoiseModel`'s
physics), so a notebook can try a circuit offline with the statistics the embedded server gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import cirq
import numpy as np

from cirq_iqm_ext.calibration import CalibrationSet, builtin_calibration, load_calibration
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.serialization.serialize import SerializationError, serialize_circuit
from cirq_iqm_ext.simulation.noise import IQMNoiseModel
from cirq_iqm_ext.simulation.simulator import CalibratedSimulator


class LocalSampler(cirq.Sampler):
    """Runs circuits locally, validated against a device, with a calibration's noise.

    Build it with :func:`local_sampler`. Circuits must already be native to the device (use
    :func:`cirq_iqm_ext.transpile` first); parameters are resolved per sweep point. A
    ``cirq.wait`` runs as the ``delay`` instruction where the device lists it: every qubit relaxes
    (T1, T2) for its duration.
    """

    def __init__(
        self,
        device: IQMDevice,
        calibration: CalibrationSet | None,
        seed: int | np.random.Generator | None = None,
    ):
        self.device = device
        self.calibration = calibration
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._simulator = CalibratedSimulator(calibration, self._rng)

    def __repr__(self) -> str:
        noise = (
            "noiseless" if self.calibration is None else str(self.calibration.calibration_set_id)
        )
        return f"<LocalSampler {self.device.name} {noise}>"

    def run_sweep(
        self,
        program: cirq.AbstractCircuit,
        params: cirq.Sweepable,
        repetitions: int = 1,
    ) -> Sequence[cirq.Result]:
        """Validates and simulates ``program`` at every point of ``params``.

        Raises:
            CircuitValidationError: The circuit is not native to the device.
            ValueError: ``repetitions`` is not positive.
        """
        if repetitions < 1:
            raise ValueError(f"repetitions must be positive, got {repetitions}")
        results: list[cirq.Result] = []
        for resolver in cirq.to_resolvers(params):
            circuit = cirq.resolve_parameters(program, resolver)
            self.device.validate_circuit(circuit)
            try:
                native = serialize_circuit(circuit, name="local")  # waits become delay
            except SerializationError:
                if not _has_feedback_or_reset(circuit):
                    raise
                # cc_prx / reset the serialiser does not send: Cirq runs the same noise model.
                results.append(self._run_with_cirq(circuit, resolver, repetitions))
                continue
            arrays = self._simulator.run_circuit_arrays(native, repetitions)
            results.append(
                cirq.ResultDict(
                    params=resolver,
                    measurements={k: v.astype(np.int8) for k, v in arrays.items()},
                )
            )
        return results

    def _run_with_cirq(
        self,
        circuit: cirq.AbstractCircuit,
        resolver: cirq.ParamResolver,
        repetitions: int,
    ) -> cirq.Result:
        """Cirq's simulators with :class:`IQMNoiseModel`: a density matrix for small circuits,
        else state-vector trajectories (each repetition its own)."""
        seed = int(self._rng.integers(2**32))
        simulator: cirq.SimulatesSamples
        if self.calibration is None:
            simulator = cirq.Simulator(seed=seed)
        elif len(circuit.all_qubits()) <= _DENSITY_MATRIX_QUBITS:
            simulator = cirq.DensityMatrixSimulator(
                noise=IQMNoiseModel(self.calibration), seed=seed
            )
        else:
            simulator = cirq.Simulator(noise=IQMNoiseModel(self.calibration), seed=seed)
        result = simulator.run(circuit, repetitions=repetitions)
        return cirq.ResultDict(
            params=resolver,
            measurements={k: v.astype(np.int8) for k, v in result.measurements.items()},
        )


#: Cirq fallback: circuits on up to this many qubits use the density-matrix simulator.
_DENSITY_MATRIX_QUBITS = 10


def _has_feedback_or_reset(circuit: cirq.AbstractCircuit) -> bool:
    return any(
        op.classical_controls or isinstance(op.gate, cirq.ResetChannel)
        for op in circuit.all_operations()
    )


def local_sampler(
    device: IQMDevice,
    calibration: CalibrationSet | str | None = None,
    seed: int | np.random.Generator | None = None,
    *,
    noise: bool = True,
) -> LocalSampler:
    """A :class:`cirq.Sampler` that simulates ``device`` with a calibration's noise, no server.

    Args:
        device: The device circuits are validated against.
        calibration: The figures; default the built-in set of the device's architecture (by name).
        seed: Seed of the simulation.
        noise: ``False`` for exact (noiseless) simulation.

    Returns:
        The sampler.

    Raises:
        TypeError: ``device`` is not an ``IQMDevice``.
        ValueError: No calibration given and none is built in for the device's name.
    """
    if not isinstance(device, IQMDevice):
        raise TypeError(
            f"local_sampler needs an IQMDevice (e.g. cirq_iqm_ext.Adonis()), got {device!r}"
        )
    if not noise:
        return LocalSampler(device, None, seed)
    if calibration is None:
        calibration = builtin_calibration(device.name)
    elif isinstance(calibration, str):
        calibration = load_calibration(calibration)
    return LocalSampler(device, calibration, seed)


__all__ = ["LocalSampler", "local_sampler"]
