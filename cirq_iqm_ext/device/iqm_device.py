"""The IQM device model: which qubits exist, which are coupled, and what may run where.

:class:`IQMDevice` is built from a :class:`~cirq_iqm_ext.QuantumArchitectureSpecification`
(static or dynamic form) and does one job, validation; everything descriptive (qubits, graph,
gateset, loci per operation) sits on its :class:`IQMDeviceMetadata`. The native operations are

* ``prx``: ``cirq.PhasedXPowGate``, ``cirq.XPowGate``, ``cirq.YPowGate``;
* ``cz``: ``cirq.CZ`` (a ``CZPowGate`` with exponent exactly 1), on a coupled pair in either order;
* ``measure``: ``cirq.MeasurementGate`` on any set of measurable qubits;
* ``move``: :class:`~cirq_iqm_ext.IQMMoveGate` on a calibrated (qubit, resonator) locus of a
  star architecture (Deneb), where circuits must also obey the MOVE-sandwich rules (STAR_MOVE.md §5)
  in the device's ``move_gate_validation`` mode;
* ``delay``: ``cirq.WaitGate`` on any components, when the architecture lists ``delay`` (a CoCoS v1
  server has none: a wait is then refused, never dropped);
* ``barrier``: :class:`~cirq_iqm_ext.IQMBarrierGate` on any components;
* ``reset``: ``cirq.ResetChannel`` on the qubits the architecture lists for it;
* ``cc_prx``: a classically controlled X, Y, ``rx``, ``ry`` or ``PhasedXPowGate`` conditioned on
  the latest single-qubit measurement of one key (see :mod:`~cirq_iqm_ext.device.dynamic`), on the
  qubits listed for it and in the measured qubit's feedback group.

A device whose architecture lists ``reset`` or ``cc_prx`` runs dynamic circuits, so it also allows
measurements mid-circuit (unless told otherwise).

Besides those, gates that map one to one onto native pulses are accepted: ``cirq.ZPowGate`` (a
virtual Z: a frame change folded into the phases of later ``prx`` pulses, free and exact) and
``cirq.PhasedXZGate`` (one ``prx`` plus a virtual Z). Global phase operations are accepted and
ignored. Which gate is which instruction is the table of :mod:`~cirq_iqm_ext.device.native_gates`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import cirq
import networkx as nx

from cirq_iqm_ext.catalogue import BUILTIN_ARCHITECTURES, builtin_architecture
from cirq_iqm_ext.device.dynamic import controlled_pulse
from cirq_iqm_ext.device.native_gates import (
    IGNORED_GATE_TYPES,
    NativeOperation,
    gateset_families,
    instruction_name,
    is_virtual,
    native_operation,
    operation_instruction_name,
)
from cirq_iqm_ext.errors import CircuitValidationError, DeviceValidationError
from cirq_iqm_ext.wire.models import QuantumArchitectureSpecification, parse_uuid
from cirq_iqm_ext.wire.qubits import natural_key
from cirq_iqm_ext.wire.validation import (
    MoveSandwichTracker,
    architecture_resonators,
    check_move_gate_validation,
)

#: At most this many violations are spelled out in one error; the rest are counted.
MAX_REPORTED_VIOLATIONS = 20


class IQMDeviceMetadata(cirq.DeviceMetadata):
    """What an IQM device offers: qubits, the undirected coupling graph, gateset and loci.

    Args:
        qubits: The device qubits (``cirq.NamedQubit("QB1")``...), natural order.
        nx_graph: Undirected coupling graph over ``qubits``.
        architecture_name: Name of the architecture, e.g. ``"Apollo"``.
        loci: Operation name (``prx``, ``cz``, ``measure``, ...) -> allowed loci as qubit tuples.
        calibration_set_id: The calibration set the architecture belongs to, when known.
        resonators: Computational resonators among ``qubits`` (star architectures).
    """

    def __init__(
        self,
        qubits: Iterable[cirq.NamedQubit],
        nx_graph: nx.Graph,
        *,
        architecture_name: str,
        loci: Mapping[str, tuple[tuple[cirq.NamedQubit, ...], ...]],
        calibration_set_id: UUID | None = None,
        resonators: Iterable[cirq.NamedQubit] = (),
    ):
        super().__init__(qubits, nx_graph)
        self.architecture_name = architecture_name
        self.loci: dict[str, tuple[tuple[cirq.NamedQubit, ...], ...]] = dict(loci)
        self.calibration_set_id = calibration_set_id
        self.resonators: tuple[cirq.NamedQubit, ...] = tuple(resonators)
        # The gates of the native-gate table (a device runs those its loci list).
        self.gateset = cirq.Gateset(
            *gateset_families(), name=f"{architecture_name}Gateset", unroll_circuit_op=False
        )
        self.operation_names: tuple[str, ...] = tuple(self.loci)


class IQMDevice(cirq.Device):
    """An IQM quantum computer as Cirq sees it: validation against its architecture.

    Build one with :meth:`from_architecture`, or use a built-in offline device from
    :mod:`cirq_iqm_ext.device.builtin` (``Adonis()``, ``Apollo()``, ``Garnet()``, ``Aphrodite()``,
    ``Deneb()``).

    Args:
        architecture: The architecture (qubits, couplings, loci per operation).
        calibration_set_id: The calibration set the architecture belongs to, when known; defaults
            to the architecture's own.
        mid_circuit_measurement: Whether operations may follow a measurement on the same qubit;
            ``None`` (default): when the architecture lists ``reset`` or ``cc_prx`` (a machine that
            runs dynamic circuits).
        move_gate_validation: How :meth:`validate_circuit` checks MOVE sandwiches on star
            architectures: ``"strict"`` (default, what v1 servers enforce), ``"allow_prx"`` or
            ``"none"`` (STAR_MOVE.md §4).
        feedback_groups: Groups of qubit names within which a measured bit can be fed forward
            (``cc_prx``); ``None`` (default): one group of all qubits.

    Raises:
        TypeError: ``architecture`` is not a parsed architecture.
        ValueError: Unknown ``move_gate_validation``.
    """

    def __init__(
        self,
        architecture: QuantumArchitectureSpecification,
        calibration_set_id: UUID | str | None = None,
        *,
        mid_circuit_measurement: bool | None = None,
        move_gate_validation: str = "strict",
        feedback_groups: Iterable[Iterable[str]] | None = None,
    ):
        if not isinstance(architecture, QuantumArchitectureSpecification):
            raise TypeError(
                "IQMDevice needs a QuantumArchitectureSpecification, got "
                f"{type(architecture).__name__}; use IQMDevice.from_architecture for dicts"
            )
        self._architecture = architecture
        cal_id = parse_uuid(calibration_set_id, "calibration_set_id")
        if cal_id is None:
            cal_id = architecture.calibration_set_id
        dynamic = "reset" in architecture.operations or "cc_prx" in architecture.operations
        self._mid_explicit = mid_circuit_measurement is not None and (
            bool(mid_circuit_measurement) != dynamic
        )
        self._mid_circuit_measurement = (
            dynamic if mid_circuit_measurement is None else bool(mid_circuit_measurement)
        )
        self._feedback_groups: tuple[frozenset[str], ...] | None = (
            None
            if feedback_groups is None
            else tuple(sorted((frozenset(g) for g in feedback_groups), key=sorted))
        )
        self._move_gate_validation = check_move_gate_validation(move_gate_validation)

        names = sorted(architecture.qubits, key=natural_key)
        self._qubit_names: tuple[str, ...] = tuple(names)
        self._by_name = {n: cirq.NamedQubit(n) for n in names}
        qubits = [self._by_name[n] for n in names]
        resonator_names = set(architecture_resonators(architecture))
        resonators = [self._by_name[n] for n in names if n in resonator_names]

        graph = nx.Graph()
        graph.add_nodes_from(qubits)
        for a, b in architecture.qubit_connectivity:
            graph.add_edge(self._by_name[a], self._by_name[b])
        loci = {
            op: tuple(tuple(self._by_name[q] for q in locus) for locus in op_loci)
            for op, op_loci in architecture.operations.items()
        }
        self._metadata = IQMDeviceMetadata(
            qubits,
            graph,
            architecture_name=architecture.name,
            loci=loci,
            calibration_set_id=cal_id,
            resonators=resonators,
        )
        # Sets for fast checks; cz is symmetric, so both orders of each locus are allowed.
        self._prx_qubits = frozenset(q for locus in loci.get("prx", ()) for q in locus)
        self._measurable = frozenset(q for locus in loci.get("measure", ()) for q in locus)
        self._cz_pairs = frozenset(frozenset(locus) for locus in loci.get("cz", ()))
        self._move_loci = frozenset(loci.get("move", ()))
        self._resonator_set = frozenset(resonators)
        self._supports_delay = "delay" in architecture.operations
        self._reset_qubits = frozenset(q for locus in loci.get("reset", ()) for q in locus)
        self._cc_prx_qubits = frozenset(q for locus in loci.get("cc_prx", ()) for q in locus)

    # ----------------------------------------------------------------------------------- building

    @classmethod
    def from_architecture(
        cls,
        spec: QuantumArchitectureSpecification | Mapping[str, Any],
        calibration_set_id: UUID | str | None = None,
        *,
        mid_circuit_measurement: bool | None = None,
        move_gate_validation: str = "strict",
        feedback_groups: Iterable[Iterable[str]] | None = None,
    ) -> IQMDevice:
        """Builds a device from an architecture.

        Args:
            spec: A parsed architecture, or its JSON form (static wrapped/inner, or dynamic).
            calibration_set_id: The calibration set the architecture belongs to, when known.
            mid_circuit_measurement: Whether operations may follow a measurement on a qubit
                (default: when the architecture runs dynamic circuits).
            move_gate_validation: MOVE-sandwich validation mode (see the class docstring).
            feedback_groups: Qubit groups for feed-forward (see the class docstring).

        Returns:
            The device.

        Raises:
            cirq_iqm_ext.errors.ModelValidationError: ``spec`` is a malformed dict.
        """
        if not isinstance(spec, QuantumArchitectureSpecification):
            spec = QuantumArchitectureSpecification.from_dict(spec)
        return cls(
            spec,
            calibration_set_id,
            mid_circuit_measurement=mid_circuit_measurement,
            move_gate_validation=move_gate_validation,
            feedback_groups=feedback_groups,
        )

    # ------------------------------------------------------------------------------- description

    @property
    def metadata(self) -> IQMDeviceMetadata:
        """Qubits, coupling graph, gateset and loci of the device."""
        return self._metadata

    @property
    def architecture(self) -> QuantumArchitectureSpecification:
        """The architecture the device was built from."""
        return self._architecture

    @property
    def name(self) -> str:
        """The architecture name, e.g. ``"Apollo"``."""
        return self._architecture.name

    @property
    def calibration_set_id(self) -> UUID | None:
        """The calibration set the device describes, when known."""
        return self._metadata.calibration_set_id

    @property
    def mid_circuit_measurement(self) -> bool:
        """Whether operations may follow a measurement on the same qubit."""
        return self._mid_circuit_measurement

    @property
    def move_gate_validation(self) -> str:
        """The MOVE-sandwich validation mode: ``"strict"``, ``"allow_prx"`` or ``"none"``."""
        return self._move_gate_validation

    @property
    def qubits(self) -> tuple[cirq.NamedQubit, ...]:
        """All device qubits (and resonators), in natural order (QB2 before QB10)."""
        return tuple(self._by_name[n] for n in self._qubit_names)

    @property
    def qubit_names(self) -> tuple[str, ...]:
        """Names of all device qubits, in natural order."""
        return self._qubit_names

    @property
    def resonators(self) -> tuple[cirq.NamedQubit, ...]:
        """Computational resonators (star architectures such as Deneb); empty otherwise."""
        return self._metadata.resonators

    @property
    def measurable_qubits(self) -> frozenset[cirq.NamedQubit]:
        """Qubits a ``measure`` may act on."""
        return self._measurable

    @property
    def cz_pairs(self) -> tuple[tuple[cirq.NamedQubit, cirq.NamedQubit], ...]:
        """Loci of ``cz`` in architecture order (each allowed in either order)."""
        return tuple((a, b) for a, b in self._metadata.loci.get("cz", ()))

    @property
    def move_loci(self) -> tuple[tuple[cirq.NamedQubit, cirq.NamedQubit], ...]:
        """Calibrated ``move`` loci, each ``(qubit, resonator)`` (directed)."""
        return tuple((a, b) for a, b in self._metadata.loci.get("move", ()))

    def qubit(self, name: str) -> cirq.NamedQubit:
        """The device qubit called ``name``.

        Raises:
            ValueError: The device has no such qubit.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"Qubit not on device {self.name!r}: {name!r}") from None

    @property
    def feedback_groups(self) -> tuple[frozenset[str], ...] | None:
        """Qubit-name groups within which a measured bit can be fed forward (``None``: all one)."""
        return self._feedback_groups

    def same_feedback_group(self, a: cirq.Qid, b: cirq.Qid) -> bool:
        """Whether a bit measured on ``a`` can control a pulse on ``b``."""
        if self._feedback_groups is None:
            return True
        na, nb = _name(a), _name(b)
        return any(na in group and nb in group for group in self._feedback_groups)

    @property
    def supports_delay(self) -> bool:
        """Whether the server executes waits (``cirq.WaitGate`` as the ``delay`` instruction)."""
        return self._supports_delay

    def loci(self, operation: str) -> tuple[tuple[cirq.NamedQubit, ...], ...]:
        """Allowed loci of ``operation`` (``prx``, ``cz``, ``measure``, ...); empty if
        unsupported."""
        return self._metadata.loci.get(operation, ())

    # -------------------------------------------------------------------------------- validation

    def _operation_violations(self, op: cirq.Operation) -> list[str]:
        """Reasons why ``op`` on its own cannot run here (empty when it can)."""
        op = op.untagged
        gate = op.gate
        if isinstance(gate, IGNORED_GATE_TYPES):
            return []
        unknown = [q for q in op.qubits if q not in self._metadata.qubit_set]
        if unknown:
            return [f"qubit not on device: {q!r}" for q in unknown]
        if op.classical_controls:
            return self._controlled_violations(op)
        if gate is None:
            return [
                f"unsupported operation type {type(op).__name__} (decompose or transpile first)"
            ]
        if is_virtual(gate):
            return self._pulse_violations(op, gate)  # a frame change of the qubit's prx pulses
        native = native_operation(gate)
        if native is None:
            return [f"unsupported gate {gate!r} (transpile first)"]
        return self._native_violations(native, op, gate)

    def _native_violations(
        self, native: NativeOperation, op: cirq.Operation, gate: cirq.Gate
    ) -> list[str]:
        """The locus and parameter checks of one entry of the native-gate table."""
        match native.name:
            case "prx":
                return self._pulse_violations(op, gate)
            case "cz":
                return self._cz_violations(native, op, gate)
            case "measure":
                bad = [q for q in op.qubits if q not in self._measurable]
                return [f"measure is not allowed on {q!r}" for q in bad]
            case "move":
                return self._move_violations(op.qubits)
            case "delay":
                assert isinstance(gate, cirq.WaitGate)
                return self._wait_violations(gate)
            case "reset":
                bad = [q for q in op.qubits if q not in self._reset_qubits]
                return [f"reset is not allowed on {q!r}" for q in bad] or self._dynamic_violations()
            case "barrier":
                return []
        return [f"unsupported gate {gate!r} (transpile first)"]  # pragma: no cover - new entry

    def _pulse_violations(self, op: cirq.Operation, gate: cirq.Gate) -> list[str]:
        shift = getattr(gate, "global_shift", 0)
        if shift != 0 and cirq.is_parameterized(shift):
            return ["unresolved symbol in the global shift"]
        bad = [q for q in op.qubits if q not in self._prx_qubits]
        return [f"prx is not allowed on {q!r}" for q in bad]

    def _cz_violations(
        self, native: NativeOperation, op: cirq.Operation, gate: cirq.Gate
    ) -> list[str]:
        exponent = getattr(gate, "exponent", None)
        if cirq.is_parameterized(exponent):
            return [f"unresolved symbol where a number is needed: CZ exponent {exponent!r}"]
        if not native.accepts(gate):
            return [
                (
                    f"unsupported gate {gate!r}: only cz with exponent exactly 1 is native "
                    "(transpile first)"
                )
            ]
        if frozenset(op.qubits) not in self._cz_pairs:
            return [f"qubit pair {op.qubits!r} is not coupled for cz"]
        return []

    def _dynamic_violations(self) -> list[str]:
        if self._mid_circuit_measurement:
            return []
        return [
            f"device {self.name!r} runs no dynamic circuits (mid-circuit measurement is off); a "
            "CoCoS v1 server has none: use the IQM Server API (api='iqm-server')"
        ]

    def _controlled_violations(self, op: cirq.Operation) -> list[str]:
        try:
            pulse, _ = controlled_pulse(op)
        except CircuitValidationError as error:
            return [str(error).split(": ", 1)[-1] + " (transpile first)"]
        (qubit,) = pulse.qubits
        if qubit not in self._cc_prx_qubits:
            return [f"cc_prx is not allowed on {qubit!r}"]
        return self._dynamic_violations()

    def _wait_violations(self, gate: cirq.WaitGate) -> list[str]:
        if not self._supports_delay:
            return [
                f"waits are not supported: the architecture of {self.name!r} lists no delay "
                "instruction (a CoCoS v1 server has none, and a wait is never dropped silently); "
                "run on a server that executes delay (the IQM Server API, api='iqm-server'), or "
                "remove the wait"
            ]
        nanos = gate.duration.total_nanos()
        if not cirq.is_parameterized(nanos) and nanos < 0:
            return [f"a wait cannot be negative, got {gate.duration}"]
        return []

    def _move_violations(self, qubits: tuple[cirq.Qid, ...]) -> list[str]:
        # V1 and V2 of STAR_MOVE.md §5 (same messages), then the calibrated-locus check.
        if not self._move_loci:
            return ["MOVE instruction is not supported by the given device architecture."]
        qubit, resonator = qubits
        if qubit in self._resonator_set or resonator not in self._resonator_set:
            names = tuple(_name(q) for q in qubits)
            return [
                f"MOVE instructions are only allowed between qubit and resonator, not {names!r}."
            ]
        if (qubit, resonator) not in self._move_loci:
            return [f"move is not calibrated on {qubits!r}"]
        return []

    def validate_operation(self, operation: cirq.Operation) -> None:
        """Checks that ``operation`` is native and acts on an allowed locus.

        Raises:
            DeviceValidationError: The gate is not native, a qubit is not on the device, the pair is
                not coupled, or a number (CZ exponent) is an unresolved symbol.
        """
        reasons = self._operation_violations(operation)
        if reasons:
            lines = [f"{operation!r}: {r}" for r in reasons]
            raise DeviceValidationError(
                f"Operation not valid on device {self.name!r}: " + "; ".join(lines), lines
            )

    def validate_circuit(self, circuit: cirq.AbstractCircuit) -> None:
        """Checks every operation and the measurement rules; reports all violations at once.

        Besides each operation's own checks: (unless the device allows mid-circuit measurement)
        nothing may act on a qubit after its measurement; a classically controlled pulse must
        follow a single-qubit measurement of its key, in the same feedback group. A key may be
        measured more than once (Cirq's repeated keys).

        Raises:
            DeviceValidationError: Listing each violation with its moment index and operation.
        """
        violations: list[str] = []
        latest: dict[cirq.MeasurementKey, tuple[cirq.Qid, ...]] = {}
        measured: dict[cirq.Qid, int] = {}
        for index, moment in enumerate(circuit):
            for op in moment:
                reasons = self._operation_violations(op)
                if op.classical_controls and not reasons:
                    reasons = self._feedback_violations(op, latest)
                gate = op.untagged.gate
                if isinstance(gate, IGNORED_GATE_TYPES):
                    continue
                # A barrier or a virtual Z after a measurement sends nothing that acts.
                if not self._mid_circuit_measurement and not (
                    is_virtual(gate) or instruction_name(gate) == "barrier"
                ):
                    for q in op.qubits:
                        if q in measured:
                            reasons.append(
                                f"operation on {q!r} after its measurement in moment {measured[q]}"
                            )
                if isinstance(gate, cirq.MeasurementGate):
                    latest[gate.mkey] = op.qubits
                    for q in op.qubits:
                        measured.setdefault(q, index)
                # The operation's repr is only built for a violation (it is slow on big circuits).
                violations.extend(f"moment {index}: {op!r}: {reason}" for reason in reasons)
        if not violations and self._resonator_set and self._move_gate_validation != "none":
            violations.extend(self._sandwich_violations(circuit))
        if violations:
            shown = violations[:MAX_REPORTED_VIOLATIONS]
            more = len(violations) - len(shown)
            message = (
                f"Circuit not valid on device {self.name!r} ({len(violations)} violation"
                f"{'s' if len(violations) != 1 else ''}):\n  " + "\n  ".join(shown)
            )
            if more:
                message += f"\n  ... and {more} more"
            raise DeviceValidationError(message, violations)

    def _feedback_violations(
        self, op: cirq.Operation, latest: Mapping[cirq.MeasurementKey, tuple[cirq.Qid, ...]]
    ) -> list[str]:
        """A controlled pulse needs an earlier single-qubit measurement of its key nearby."""
        pulse, key = controlled_pulse(op)
        source = latest.get(key)
        if source is None:
            return [
                f"conditioned on {str(key)!r}, which no earlier measurement sets; measure it "
                "before the gate that depends on it"
            ]
        if len(source) != 1:
            return [
                f"conditioned on {str(key)!r}, a measurement of {len(source)} qubits; IQM feeds "
                "forward the bit of a single-qubit measurement"
            ]
        if not self.same_feedback_group(source[0], pulse.qubits[0]):
            return [
                f"{source[0]!r} and {pulse.qubits[0]!r} are in different feedback groups: a bit "
                "measured on one cannot control a pulse on the other"
            ]
        return []

    def _sandwich_violations(self, circuit: cirq.AbstractCircuit) -> list[str]:
        """The first MOVE-sandwich violation (STAR_MOVE.md §5) as a one-item list, or ``[]``."""
        tracker = MoveSandwichTracker(
            (r.name for r in self._resonator_set),
            move_supported=bool(self._move_loci),
            mode=self._move_gate_validation,
        )
        for index, moment in enumerate(circuit):
            for op in moment:
                name = operation_instruction_name(op)
                if name is None:
                    continue
                message = tracker.step(name, tuple(_name(q) for q in op.qubits))
                if message is not None:
                    return [f"moment {index}: {op!r}: {message}"]
        message = tracker.finish()
        return [] if message is None else [f"end of circuit: {message}"]

    # ------------------------------------------------------------------------ protocols and dunder

    def _key(self) -> tuple[Any, ...]:
        ops = tuple(
            sorted(
                (name, tuple(sorted(loci))) for name, loci in self._architecture.operations.items()
            )
        )
        return (
            self._architecture.name,
            self._qubit_names,
            tuple(sorted(tuple(sorted(p)) for p in self._architecture.qubit_connectivity)),
            ops,
            self.calibration_set_id,
            self._mid_circuit_measurement,
            self._move_gate_validation,
            self._feedback_groups,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IQMDevice):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _builtin_name(self) -> str | None:
        if self.name.lower() not in BUILTIN_ARCHITECTURES:
            return None
        builtin = builtin_architecture(self.name)
        if builtin.name != self.name or builtin.to_dict() != self._architecture.to_dict():
            return None
        return self.name

    def __repr__(self) -> str:
        extra = ""
        if self.calibration_set_id is not None:
            extra += f", calibration_set_id={str(self.calibration_set_id)!r}"
        if self._mid_explicit:
            extra += f", mid_circuit_measurement={self._mid_circuit_measurement}"
        if self._move_gate_validation != "strict":
            extra += f", move_gate_validation={self._move_gate_validation!r}"
        if self._feedback_groups is not None:
            groups = [sorted(g) for g in self._feedback_groups]
            extra += f", feedback_groups={groups!r}"
        # The built-in factories take only a calibration set id.
        plain = (
            not self._mid_explicit
            and self._move_gate_validation == "strict"
            and self._feedback_groups is None
        )
        builtin = self._builtin_name() if plain else None
        if builtin is not None:
            return f"cirq_iqm_ext.{builtin}({extra.removeprefix(', ')})"
        return f"cirq_iqm_ext.IQMDevice.from_architecture({self._architecture.to_dict()!r}{extra})"

    def __str__(self) -> str:
        graph = self._metadata.nx_graph
        header = (
            f"IQMDevice {self.name!r}: {len(self._qubit_names)} qubits, "
            f"{graph.number_of_edges()} couplings"
        )
        lines = [header]
        width = max((len(n) for n in self._qubit_names), default=0)
        for name in self._qubit_names:
            q = self._by_name[name]
            neighbours = sorted(graph.neighbors(q))
            if not neighbours:
                lines.append(f"  {name:>{width}}")
                continue
            # One line per qubit: the qubit, a bond, and its neighbours ("QB3 ── QB1 QB2 QB4 QB5").
            lines.append(f"  {name:>{width}} ── " + " ".join(n.name for n in neighbours))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from cirq_iqm_ext.ui.display import device_text  # local: display is for humans only

        p.text(repr(self) if cycle else device_text(self))

    def _repr_html_(self) -> str:
        from cirq_iqm_ext.ui.display import device_html

        return device_html(self)

    def plot(self, metrics: Any = None, ax: Any = None, figure_metric: str = "fidelity") -> Any:
        """Draws the coupling map with matplotlib, coloured by calibration figures when given.

        Args:
            metrics: A ``CalibrationSet``, the body of ``GET calibration/metrics/{id}``, or its
                ``metrics`` object; ``None`` draws neutral colours.
            ax: Axes to draw on (default: a new figure).
            figure_metric: ``"fidelity"`` (prx / cz), ``"readout"``, ``"t1"`` or ``"t2"``.

        Returns:
            The ``matplotlib`` axes.
        """
        from cirq_iqm_ext.ui.display import plot_device

        return plot_device(self, metrics, ax=ax, figure_metric=figure_metric)

    @classmethod
    def _json_namespace_(cls) -> str:
        return "cirq_iqm_ext"

    def _json_dict_(self) -> dict[str, Any]:
        return {
            "architecture": self._architecture.to_dict()["quantum_architecture"],
            "calibration_set_id": (
                None if self.calibration_set_id is None else str(self.calibration_set_id)
            ),
            "mid_circuit_measurement": self._mid_circuit_measurement,
            "move_gate_validation": self._move_gate_validation,
            "feedback_groups": (
                None
                if self._feedback_groups is None
                else [sorted(g) for g in self._feedback_groups]
            ),
        }

    @classmethod
    def _from_json_dict_(
        cls,
        architecture: Mapping[str, Any],
        calibration_set_id: str | None = None,
        mid_circuit_measurement: bool | None = None,
        move_gate_validation: str = "strict",
        feedback_groups: list[list[str]] | None = None,
        **kwargs: Any,
    ) -> IQMDevice:
        return cls.from_architecture(
            dict(architecture),
            calibration_set_id,
            mid_circuit_measurement=mid_circuit_measurement,
            move_gate_validation=move_gate_validation,
            feedback_groups=feedback_groups,
        )


def _name(qubit: cirq.Qid) -> str:
    return qubit.name if isinstance(qubit, cirq.NamedQubit) else str(qubit)
