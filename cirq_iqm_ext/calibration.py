"""Calibration sets: the figures of merit a quantum computer was last calibrated to.

A :class:`CalibrationSet` holds, per qubit, the relaxation and dephasing times (T1, T2), the ``prx``
gate's average fidelity and duration and the asymmetric readout errors, and, per coupler, the ``cz``
(and, on star architectures, ``move``) gate's average fidelity and duration, plus the duration of a
measurement. The server serves these figures (PROTOCOL.md §4.2 and §4.3), checks circuit durations
against T2 and builds its noise model from them (:mod:`cirq_iqm_ext.simulation.noise`).

Every built-in architecture ships a set in ``cirq_iqm_ext/data/calibration/``;
:func:`load_calibration` also reads a user's JSON file of the same format::

    {"calibration_set_id": "…uuid…", "name": "Adonis", "measure_duration": 1.5e-6,
     "qubits": {"QB1": {"t1": 4.4e-5, "t2": 2.9e-5, "prx_fidelity": 0.9991, "prx_duration": 3.2e-8,
                        "readout_error_0_to_1": 0.018, "readout_error_1_to_0": 0.035}, …},
     "couplers": {"QB1,QB3": {"cz_fidelity": 0.992, "cz_duration": 6.0e-8}, …}}

Times are in seconds; fidelities are average gate fidelities in [0, 1]. A computational resonator
(e.g. Deneb's ``COMP_R``) has T1 and T2 but no ``prx`` or readout figures. Nothing here does HTTP or
needs Cirq.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from cirq_iqm_ext.catalogue import BUILTIN_CALIBRATIONS, builtin_calibration_data, resolve
from cirq_iqm_ext.errors import CalibrationError
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification

#: Default implementation names reported in the dynamic architecture (as IQM's servers name them).
DEFAULT_IMPLEMENTATIONS: dict[str, str] = {
    "prx": "drag_gaussian",
    "cz": "tgss",
    "measure": "constant",
    "move": "tgss_crf",
    "delay": "wait",  # iqm-pulse's name; it needs no calibration
    # iqm-pulse's names, which client 36 knows: a conditional prx, and a reset made of a
    # measurement and a conditional prx (it inherits the calibration of both).
    "cc_prx": "prx_composite",
    "reset": "reset_conditional",
}

_QUBIT_FIELDS = (
    "t1",
    "t2",
    "prx_fidelity",
    "prx_duration",
    "readout_error_0_to_1",
    "readout_error_1_to_0",
)
_COUPLER_FIELDS = ("cz_fidelity", "cz_duration", "move_fidelity", "move_duration")


@dataclass(frozen=True)
class QubitCalibration:
    """Figures of one qubit (or computational resonator).

    Attributes:
        t1: Energy relaxation time in seconds.
        t2: Dephasing time (Hahn echo / Ramsey) in seconds, at most ``2 * t1``.
        prx_fidelity: Average gate fidelity of ``prx`` (``None``: not calibrated, e.g. a resonator).
        prx_duration: Duration of ``prx`` in seconds.
        readout_error_0_to_1: Probability of reading 1 when the qubit is in 0.
        readout_error_1_to_0: Probability of reading 0 when the qubit is in 1.
    """

    t1: float
    t2: float
    prx_fidelity: float | None = None
    prx_duration: float | None = None
    readout_error_0_to_1: float | None = None
    readout_error_1_to_0: float | None = None

    @property
    def measurable(self) -> bool:
        """Whether readout is calibrated."""
        return self.readout_error_0_to_1 is not None and self.readout_error_1_to_0 is not None


@dataclass(frozen=True)
class CouplerCalibration:
    """Figures of the two-qubit gates on one coupler (a pair of qubits, listed in locus order).

    Attributes:
        cz_fidelity: Average gate fidelity of ``cz`` (``None``: not calibrated).
        cz_duration: Duration of ``cz`` in seconds.
        move_fidelity: Average gate fidelity of ``move`` (star architectures only).
        move_duration: Duration of ``move`` in seconds.
    """

    cz_fidelity: float | None = None
    cz_duration: float | None = None
    move_fidelity: float | None = None
    move_duration: float | None = None

    def gate(self, name: str) -> tuple[float, float] | None:
        """``(fidelity, duration)`` of ``cz`` or ``move``, or ``None`` when not calibrated."""
        fidelity = getattr(self, f"{name}_fidelity", None)
        duration = getattr(self, f"{name}_duration", None)
        if fidelity is None or duration is None:
            return None
        return fidelity, duration


def _check_probability(value: Any, what: str, *, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(f"{what} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise CalibrationError(f"{what} must be in [{low}, {high}], got {value!r}")
    return float(value)


def _check_time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(f"{what} must be a finite number of seconds, got {value!r}")
    if value <= 0:
        raise CalibrationError(f"{what} must be positive, got {value!r}")
    if value > 1.0:
        raise CalibrationError(f"{what} is in seconds and looks far too long: {value!r}")
    return float(value)


@dataclass(frozen=True)
class CalibrationSet:
    """One calibration set of a quantum computer.

    Attributes:
        calibration_set_id: Its id, as jobs and the endpoints name it.
        name: Name of the architecture it belongs to (informative).
        qubits: Qubit (or resonator) name -> figures.
        couplers: Locus (two names, in the architecture's order) -> figures.
        measure_duration: Duration of a measurement in seconds.
    """

    calibration_set_id: UUID
    name: str
    qubits: Mapping[str, QubitCalibration]
    couplers: Mapping[tuple[str, str], CouplerCalibration]
    measure_duration: float = 1.5e-6
    _undirected: dict[frozenset[str], CouplerCalibration] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for qubit, figures in self.qubits.items():
            if figures.t2 > 2 * figures.t1 * (1 + 1e-9):
                raise CalibrationError(
                    f"{qubit}: T2 ({figures.t2:g} s) cannot exceed 2 * T1 ({figures.t1:g} s)"
                )
        undirected = {}
        for locus, coupler in self.couplers.items():
            unknown = [q for q in locus if q not in self.qubits]
            if unknown:
                raise CalibrationError(
                    f"coupler {','.join(locus)} names qubit(s) {unknown} without figures"
                )
            undirected[frozenset(locus)] = coupler
        object.__setattr__(self, "_undirected", undirected)

    # Lookups ------------------------------------------------------------------------------------

    def qubit(self, name: str) -> QubitCalibration:
        """The figures of one qubit.

        Raises:
            KeyError: The set has no figures for ``name``.
        """
        return self.qubits[name]

    def coupler(self, a: str, b: str) -> CouplerCalibration | None:
        """The figures of the coupler between ``a`` and ``b`` (either order), or ``None``."""
        return self._undirected.get(frozenset((a, b)))

    def gate(self, name: str, locus: tuple[str, ...]) -> tuple[float, float] | None:
        """``(fidelity, duration)`` of a gate on a locus, or ``None`` if it is not calibrated.

        ``measure`` reports fidelity 1 here: readout errors are separate figures. ``barrier`` takes
        no time.
        """
        if name == "barrier":
            return 1.0, 0.0
        if name == "measure":
            if all(q in self.qubits and self.qubits[q].measurable for q in locus):
                return 1.0, self.measure_duration
            return None
        if name == "prx" and len(locus) == 1:
            figures = self.qubits.get(locus[0])
            if figures is None or figures.prx_fidelity is None or figures.prx_duration is None:
                return None
            return figures.prx_fidelity, figures.prx_duration
        if name in ("cz", "move") and len(locus) == 2:
            coupler = self.coupler(*locus)
            return None if coupler is None else coupler.gate(name)
        if name == "cc_prx" and len(locus) == 1:
            # A prx pulse or an identity as long, so the prx figures; it needs a readout to feed.
            figures = self.qubits.get(locus[0])
            if figures is None or not figures.measurable:
                return None
            return self.gate("prx", locus)
        if name == "reset" and locus:
            # A measurement, then a cc_prx flipping the qubit back to |0> when it read 1.
            pulses = [self.gate("cc_prx", (q,)) for q in locus]
            if any(p is None for p in pulses):
                return None
            fidelity = math.prod(p[0] for p in pulses if p is not None)
            longest = max(p[1] for p in pulses if p is not None)
            return fidelity, self.measure_duration + longest
        return None

    def min_t2(self, qubits: Iterable[str]) -> tuple[float, str] | None:
        """The shortest T2 among ``qubits`` and the qubit that has it (``None`` if none known)."""
        known = [(self.qubits[q].t2, q) for q in qubits if q in self.qubits]
        return min(known) if known else None

    # Serialisation ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationSet:
        """Parses the JSON format described in the module docstring.

        Raises:
            CalibrationError: A missing, unknown or out-of-range field.
        """
        if not isinstance(data, Mapping):
            raise CalibrationError(
                f"A calibration set must be a JSON object, got {type(data).__name__}"
            )
        raw_id = data.get("calibration_set_id")
        try:
            set_id = UUID(str(raw_id)) if raw_id is not None else uuid4()
        except ValueError:
            raise CalibrationError(f"calibration_set_id must be a UUID, got {raw_id!r}") from None
        raw_qubits = data.get("qubits")
        if not isinstance(raw_qubits, Mapping) or not raw_qubits:
            raise CalibrationError('A calibration set needs a non-empty object "qubits"')
        qubits: dict[str, QubitCalibration] = {}
        for name, figures in raw_qubits.items():
            qubits[str(name)] = _parse_qubit(str(name), figures)
        raw_couplers = data.get("couplers", {})
        if not isinstance(raw_couplers, Mapping):
            raise CalibrationError('"couplers" must be an object keyed by "QBa,QBb"')
        couplers: dict[tuple[str, str], CouplerCalibration] = {}
        for key, figures in raw_couplers.items():
            locus = tuple(str(key).split(","))
            if len(locus) != 2 or not all(locus):
                raise CalibrationError(f'coupler key {key!r} must be two names joined by ","')
            couplers[(locus[0], locus[1])] = _parse_coupler(str(key), figures)
        measure_duration = _check_time(data.get("measure_duration", 1.5e-6), "measure_duration")
        name = data.get("name", "custom")
        if not isinstance(name, str):
            raise CalibrationError(f"name must be a string, got {name!r}")
        return cls(set_id, name, qubits, couplers, measure_duration)

    def to_dict(self) -> dict[str, Any]:
        """The JSON format of :meth:`from_dict` (fields that are ``None`` left out)."""
        return {
            "calibration_set_id": str(self.calibration_set_id),
            "name": self.name,
            "measure_duration": self.measure_duration,
            "qubits": {
                name: {k: getattr(q, k) for k in _QUBIT_FIELDS if getattr(q, k) is not None}
                for name, q in self.qubits.items()
            },
            "couplers": {
                ",".join(locus): {
                    k: getattr(c, k) for k in _COUPLER_FIELDS if getattr(c, k) is not None
                }
                for locus, c in self.couplers.items()
            },
        }

    def with_id(self, calibration_set_id: UUID) -> CalibrationSet:
        """A copy under another id."""
        return CalibrationSet(
            calibration_set_id, self.name, self.qubits, self.couplers, self.measure_duration
        )

    # Protocol payloads --------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """The body of ``GET calibration/metrics/{id}`` (PROTOCOL.md §4.3); values are strings."""
        metrics: dict[str, dict[str, str]] = {}

        def put(key: str, value: float | None, unit: str) -> None:
            if value is not None:
                metrics[key] = {"value": repr(float(value)), "unit": unit}

        for name, q in self.qubits.items():
            put(f"{name}.t1_time", q.t1, "s")
            put(f"{name}.t2_time", q.t2, "s")
            put(f"{name}.prx.fidelity", q.prx_fidelity, "")
            put(f"{name}.prx.duration", q.prx_duration, "s")
            put(f"{name}.readout.error_0_to_1", q.readout_error_0_to_1, "")
            put(f"{name}.readout.error_1_to_0", q.readout_error_1_to_0, "")
            if q.measurable:
                put(f"{name}.measure.duration", self.measure_duration, "s")
        for locus, c in self.couplers.items():
            joined = ",".join(locus)
            put(f"{joined}.cz.fidelity", c.cz_fidelity, "")
            put(f"{joined}.cz.duration", c.cz_duration, "s")
            put(f"{joined}.move.fidelity", c.move_fidelity, "")
            put(f"{joined}.move.duration", c.move_duration, "s")
        return {"calibration_set_id": str(self.calibration_set_id), "metrics": metrics}

    def dynamic_architecture(
        self, architecture: QuantumArchitectureSpecification
    ) -> dict[str, Any]:
        """The body of ``GET api/v1/calibration/{id}/gates`` (PROTOCOL.md §4.2).

        Lists only the loci of ``architecture`` that this set calibrates. ``delay``, when the
        architecture lists it, needs no calibration: it appears with implementation ``wait`` on
        every qubit. Official clients (iqm-client 36) check a delay's components against the QPU,
        not these loci, but their Qiskit adapter reads each gate's first locus (so the list must
        not be empty) and puts delay on qubits only, which is why resonators are left out here.
        """
        gates: dict[str, Any] = {}
        resonators = list(architecture.computational_resonators)
        for op_name, loci in architecture.operations.items():
            if op_name == "barrier":
                continue  # not a calibrated gate
            if op_name == "delay":
                qubit_loci = [[q] for q in architecture.qubits if q not in resonators]
                gates[op_name] = {
                    "implementations": {DEFAULT_IMPLEMENTATIONS["delay"]: {"loci": qubit_loci}},
                    "default_implementation": DEFAULT_IMPLEMENTATIONS["delay"],
                    "override_default_implementation": {},
                }
                continue
            calibrated = [list(locus) for locus in loci if self.gate(op_name, locus) is not None]
            if not calibrated:
                continue
            implementation = DEFAULT_IMPLEMENTATIONS.get(op_name, "default")
            gates[op_name] = {
                "implementations": {implementation: {"loci": calibrated}},
                "default_implementation": implementation,
                "override_default_implementation": {},
            }
        return {
            "calibration_set_id": str(self.calibration_set_id),
            "qubits": [q for q in architecture.qubits if q not in resonators],
            "computational_resonators": resonators,
            "gates": gates,
        }


def _parse_qubit(name: str, figures: Any) -> QubitCalibration:
    if not isinstance(figures, Mapping):
        raise CalibrationError(f"qubit {name}: figures must be an object")
    unknown = sorted(set(figures) - set(_QUBIT_FIELDS))
    if unknown:
        raise CalibrationError(f"qubit {name}: unknown field(s) {unknown}; known: {_QUBIT_FIELDS}")
    for required in ("t1", "t2"):
        if required not in figures:
            raise CalibrationError(f'qubit {name}: missing "{required}"')
    values: dict[str, float | None] = {}
    for key in _QUBIT_FIELDS:
        value = figures.get(key)
        if value is None:
            values[key] = None
        elif key in ("t1", "t2", "prx_duration"):
            values[key] = _check_time(value, f"qubit {name}: {key}")
        elif key == "prx_fidelity":
            values[key] = _check_probability(value, f"qubit {name}: {key}", low=0.5)
        else:
            values[key] = _check_probability(value, f"qubit {name}: {key}", high=0.5)
    if (values["prx_fidelity"] is None) != (values["prx_duration"] is None):
        raise CalibrationError(f"qubit {name}: give both prx_fidelity and prx_duration, or neither")
    if (values["readout_error_0_to_1"] is None) != (values["readout_error_1_to_0"] is None):
        raise CalibrationError(f"qubit {name}: give both readout errors, or neither")
    return QubitCalibration(**values)  # type: ignore[arg-type]


def _parse_coupler(key: str, figures: Any) -> CouplerCalibration:
    if not isinstance(figures, Mapping):
        raise CalibrationError(f"coupler {key}: figures must be an object")
    unknown = sorted(set(figures) - set(_COUPLER_FIELDS))
    if unknown:
        raise CalibrationError(
            f"coupler {key}: unknown field(s) {unknown}; known: {_COUPLER_FIELDS}"
        )
    values: dict[str, float | None] = {}
    for gate in ("cz", "move"):
        fidelity, duration = (
            figures.get(f"{gate}_fidelity"),
            figures.get(f"{gate}_duration"),
        )
        if (fidelity is None) != (duration is None):
            raise CalibrationError(f"coupler {key}: give both {gate}_fidelity and {gate}_duration")
        values[f"{gate}_fidelity"] = (
            None
            if fidelity is None
            else _check_probability(fidelity, f"coupler {key}: fidelity", low=0.25)
        )
        values[f"{gate}_duration"] = (
            None if duration is None else _check_time(duration, f"coupler {key}: {gate}_duration")
        )
    return CouplerCalibration(**values)


# Built-in sets ----------------------------------------------------------------------------------


def builtin_calibration(name: str) -> CalibrationSet:
    """The shipped calibration set of a built-in architecture (case-insensitive name).

    Raises:
        ValueError: No built-in set has that name.
    """
    return CalibrationSet.from_dict(builtin_calibration_data(name))


def load_calibration(spec: str | Path | Mapping[str, Any] | CalibrationSet) -> CalibrationSet:
    """Resolves a built-in name, a JSON file path, a parsed dict or a set.

    Raises:
        CalibrationError: Unknown name, unreadable file or malformed content (the message says
            which; a ``ValueError`` too).
    """
    return resolve(
        spec,
        CalibrationSet,
        CalibrationSet.from_dict,
        what="calibration",
        builtin_names=BUILTIN_CALIBRATIONS,
        builtin=builtin_calibration,
        errors=(CalibrationError,),
    )


def generate_calibration(
    architecture: QuantumArchitectureSpecification,
    *,
    seed: int = 0,
    calibration_set_id: UUID | None = None,
    t1_range: tuple[float, float] = (30e-6, 60e-6),
    t2_range: tuple[float, float] = (20e-6, 40e-6),
    prx_fidelity_range: tuple[float, float] = (0.9985, 0.9995),
    cz_fidelity_range: tuple[float, float] = (0.99, 0.995),
    readout_error_range: tuple[float, float] = (0.01, 0.04),
    prx_duration: float = 32e-9,
    cz_duration_range: tuple[float, float] = (40e-9, 80e-9),
    measure_duration: float = 1.5e-6,
) -> CalibrationSet:
    """Draws a plausible calibration set for any architecture, reproducibly from ``seed``.

    Used to create the shipped data files once, and for user architectures that come without a
    calibration. Readout of 1 errs more than readout of 0 (relaxation during the measurement).

    Returns:
        A set calibrating every locus of ``architecture``.
    """
    rng = np.random.default_rng(seed)
    resonators = set(architecture.computational_resonators)

    def draw(bounds: tuple[float, float], digits: int) -> float:
        return round(float(rng.uniform(*bounds)), digits)

    qubits: dict[str, QubitCalibration] = {}
    for name in architecture.qubits:
        t1 = draw(t1_range, 7)
        t2 = min(draw(t2_range, 7), 2 * t1)
        if name in resonators:
            qubits[name] = QubitCalibration(t1=t1, t2=t2)
            continue
        low, high = readout_error_range
        e01 = draw((low, (low + high) / 2), 4)
        e10 = draw(((low + high) / 2, high), 4)
        qubits[name] = QubitCalibration(
            t1=t1,
            t2=t2,
            prx_fidelity=draw(prx_fidelity_range, 5),
            prx_duration=prx_duration,
            readout_error_0_to_1=e01,
            readout_error_1_to_0=e10,
        )
    couplers: dict[tuple[str, str], CouplerCalibration] = {}
    has_move = "move" in architecture.operations
    for locus in architecture.operations.get("cz", architecture.qubit_connectivity):
        a, b = locus
        couplers[(a, b)] = CouplerCalibration(
            cz_fidelity=draw(cz_fidelity_range, 5),
            cz_duration=round(draw(cz_duration_range, 11) * 1e9) / 1e9,
            move_fidelity=draw((0.99, 0.996), 5) if has_move else None,
            move_duration=round(draw((60e-9, 90e-9), 11) * 1e9) / 1e9 if has_move else None,
        )
    return CalibrationSet(
        calibration_set_id or UUID(bytes=rng.bytes(16), version=4),
        architecture.name,
        qubits,
        couplers,
        measure_duration,
    )


__all__ = [
    "BUILTIN_CALIBRATIONS",
    "CalibrationError",
    "CalibrationSet",
    "CouplerCalibration",
    "QubitCalibration",
    "builtin_calibration",
    "generate_calibration",
    "load_calibration",
]
