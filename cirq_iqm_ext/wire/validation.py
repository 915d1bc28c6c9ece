"""Checks a run request against a quantum architecture, with the same messages on both sides.

The client calls :func:`validate_run_request` before it sends a job, and the project's server calls
it when it receives one, so a user sees the same message whichever side finds the problem, e.g.
``circuit 0 ("bell"), instruction 3: ('QB1', 'QB2') is not an allowed locus for cz``.

On star architectures (a computational resonator, e.g. Deneb) the MOVE-sandwich rules V1-V6 of
STAR_MOVE.md §5 are checked too, by :class:`MoveSandwichTracker`, which the Cirq device reuses so
that both levels report the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.wire.models import (
    ANYWHERE_OPERATIONS,
    INSTRUCTION_SPECS,
    Circuit,
    Instruction,
    QuantumArchitectureSpecification,
    RunRequest,
)

#: At most this many violations are spelled out in one error; the rest are counted.
MAX_REPORTED_VIOLATIONS = 10

#: Values of ``move_gate_validation`` (STAR_MOVE.md §6); v1 jobs are always ``"strict"``.
MOVE_GATE_VALIDATION_MODES = ("strict", "allow_prx", "none")


def check_move_gate_validation(mode: str) -> str:
    """Returns ``mode`` if it is a valid ``move_gate_validation`` value.

    Raises:
        ValueError: ``mode`` is not one of :data:`MOVE_GATE_VALIDATION_MODES`.
    """
    if mode not in MOVE_GATE_VALIDATION_MODES:
        raise ValueError(
            f"move_gate_validation must be one of {MOVE_GATE_VALIDATION_MODES}, got {mode!r}"
        )
    return mode


#: Operations of dynamic circuits (PROTOCOL_IQM_SERVER.md §3.3): an architecture that lists one
#: of them runs circuits whose later operations depend on mid-circuit measurements.
DYNAMIC_OPERATIONS = frozenset({"cc_prx", "reset"})


def allows_dynamic_circuits(architecture: QuantumArchitectureSpecification) -> bool:
    """Whether ``architecture`` runs dynamic circuits: it lists ``cc_prx`` or ``reset``.

    Such a server also measures mid-circuit (a ``cc_prx`` needs an earlier measurement), so
    validation against it allows operations after a measurement and repeated measurements.
    """
    return any(name in architecture.operations for name in DYNAMIC_OPERATIONS)


def architecture_resonators(
    architecture: QuantumArchitectureSpecification,
) -> tuple[str, ...]:
    """The computational resonators of ``architecture``, in its qubit order.

    Declared ones (the dynamic form's ``computational_resonators``) plus, for the static v1 form
    where resonators are listed among ``qubits`` under opaque names, every component that appears in
    a two-qubit locus but has neither a ``prx`` nor a ``measure`` locus (STAR_MOVE.md §1).
    """
    declared = set(architecture.computational_resonators)
    single = {q for name in ("prx", "measure") for locus in architecture.loci(name) for q in locus}
    paired = {q for locus in architecture.loci("cz") + architecture.loci("move") for q in locus}
    if single:
        declared |= paired - single
    return tuple(q for q in architecture.qubits if q in declared)


def _delay_unsupported(architecture_name: str) -> str:
    # A wait is never dropped silently: a circuit that relies on it would give wrong results.
    return (
        f"delay (a wait) is not supported by {architecture_name}: this server does not execute "
        "waits; a CoCoS v1 server has no delay instruction — use the IQM Server API profile "
        '(api="iqm-server") of a server that lists delay, or remove the wait'
    )


def _dynamic_unsupported(name: str, architecture_name: str) -> str:
    what = {
        "reset": "reset (to |0>)",
        "cc_prx": "cc_prx (a classically controlled prx)",
    }[name]
    return (
        f"{what} is not supported by {architecture_name}: this server runs no dynamic circuits "
        '(a CoCoS v1 server has none) — use the IQM Server API profile (api="iqm-server") of '
        f"a server that lists {name}, or remove it"
    )


def _set_repr(names: Iterable[str]) -> str:
    # A deterministic set repr (Python's depends on string hashing).
    return "{" + ", ".join(repr(n) for n in sorted(names)) + "}"


class MoveSandwichTracker:
    """Walks a circuit's instructions and checks the MOVE-sandwich rules V1-V6 of STAR_MOVE.md §5.

    Feed every instruction in order to :meth:`step`, then call :meth:`finish`; each returns the
    message of the rule broken, or ``None``. After the first message the circuit is invalid and the
    tracker's state is no longer meaningful.

    Args:
        resonators: Names of the computational resonators.
        move_supported: Whether the architecture has a ``move`` operation at all (V1).
        mode: ``move_gate_validation``: ``"strict"``, ``"allow_prx"`` or ``"none"`` (no checks).

    Raises:
        ValueError: Unknown ``mode``.
    """

    def __init__(
        self, resonators: Iterable[str], *, move_supported: bool = True, mode: str = "strict"
    ):
        self.resonators = frozenset(resonators)
        self.move_supported = move_supported
        self.mode = check_move_gate_validation(mode)
        self.occupation: dict[str, str] = {}  # resonator -> the qubit whose state it holds
        self.moved: set[str] = set()  # parked qubits

    def step(self, name: str, locus: tuple[str, ...]) -> str | None:
        """Checks one instruction and updates the state."""
        if self.mode == "none":
            return None
        if name == "move":
            if not self.move_supported:
                return "MOVE instruction is not supported by the given device architecture."
            if len(locus) != 2 or locus[0] in self.resonators or locus[1] not in self.resonators:
                return (
                    "MOVE instructions are only allowed between qubit and resonator, "
                    f"not {locus!r}."
                )
            qubit, resonator = locus
            occupant = self.occupation.get(resonator)
            if occupant is None:
                if qubit in self.moved:
                    return (
                        f"MOVE instruction {locus!r}: state of {qubit} is in another resonator: "
                        f"{self.occupation!r}."
                    )
                self.occupation[resonator] = qubit
                self.moved.add(qubit)
            elif occupant != qubit:
                return (
                    f"MOVE instruction {locus!r} to an already occupied resonator: "
                    f"{self.occupation!r}."
                )
            else:
                del self.occupation[resonator]
                self.moved.discard(qubit)
            return None
        # A cc_prx is a prx pulse (or an identity as long): allow_prx lets it act on a parked qubit.
        pulse = name in ("prx", "cc_prx")
        if not self.moved or name == "barrier" or (pulse and self.mode == "allow_prx"):
            return None
        parked = self.moved.intersection(locus)
        if parked:
            return (
                f"Instruction {name} acts on {locus!r} while the state(s) of {_set_repr(parked)} "
                f"are in a resonator. Current resonator occupation: {self.occupation!r}."
            )
        return None

    def finish(self) -> str | None:
        """Checks V6: no qubit state may be left in a resonator."""
        if self.mode == "none" or not self.occupation:
            return None
        return f"Circuit ends while qubit state(s) are still in a resonator: {self.occupation!r}."


class _ArchitectureIndex:
    """Loci of an architecture as sets, built once per architecture for fast membership tests."""

    def __init__(self, architecture: QuantumArchitectureSpecification):
        self.qubits = frozenset(architecture.qubits)
        self.operations = frozenset(architecture.operations)
        self.loci: dict[str, frozenset[tuple[str, ...]]] = {}
        for name, loci in architecture.operations.items():
            spec = INSTRUCTION_SPECS.get(name)
            allowed = set(loci)
            if spec is not None and spec.arity == 2 and not spec.directed:
                allowed |= {tuple(reversed(locus)) for locus in loci}
            self.loci[name] = frozenset(allowed)
        self.measurable = frozenset(q for locus in self.loci.get("measure", ()) for q in locus)
        self.resettable = frozenset(q for locus in self.loci.get("reset", ()) for q in locus)
        self.resonators = architecture_resonators(architecture)
        self.move_supported = "move" in self.operations


_INDEX_CACHE: dict[int, tuple[QuantumArchitectureSpecification, _ArchitectureIndex]] = {}


def _index_for(architecture: QuantumArchitectureSpecification) -> _ArchitectureIndex:
    cached = _INDEX_CACHE.get(id(architecture))
    if cached is not None and cached[0] is architecture:
        return cached[1]
    index = _ArchitectureIndex(architecture)
    if len(_INDEX_CACHE) > 64:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[id(architecture)] = (architecture, index)
    return index


def circuit_violations(
    circuit: Circuit,
    circuit_index: int,
    architecture: QuantumArchitectureSpecification,
    qubit_mapping: Mapping[str, str] | None = None,
    *,
    allow_mid_circuit_measurement: bool = False,
    move_gate_validation: str = "strict",
    feedback_groups: Sequence[frozenset[str]] | None = None,
) -> list[str]:
    """Lists every way ``circuit`` breaks the rules of PROTOCOL.md §3.2 on ``architecture``.

    ``barrier`` and ``delay`` need only existing components, ``delay`` only where the architecture
    lists it (a server that executes waits). Unlike a barrier, a delay after a qubit's measurement
    breaks the terminal-measurement rule like any other operation.

    Dynamic circuits (PROTOCOL_IQM_SERVER.md §3.3, where the architecture lists them): ``reset``
    needs each component among the reset loci; ``cc_prx`` a calibrated locus and a
    ``feedback_key`` naming an earlier ``measure`` with that ``feedback_key`` whose locus contains
    the ``feedback_qubit``, in a feedback group shared with the cc_prx qubit. ``feedback_key``s
    are unique per circuit, apart from the ``key``s.

    On an architecture with computational resonators, a circuit that passes those checks is also
    walked for the MOVE-sandwich rules (STAR_MOVE.md §5); the first one broken is reported.

    Args:
        circuit: The circuit to check.
        circuit_index: Its position in the batch, used in the messages.
        architecture: What the quantum computer allows.
        qubit_mapping: Logical -> physical names; ``None`` means the circuit uses physical names.
        allow_mid_circuit_measurement: Allow operations after a measurement on the same qubit and
            more than one measurement of a qubit.
        move_gate_validation: ``"strict"`` (v1 jobs), ``"allow_prx"`` or ``"none"``.
        feedback_groups: Groups of physical qubits that can feed measurement results to each
            other's ``cc_prx``; ``None``: no restriction.

    Returns:
        One message per violation, in instruction order; empty when the circuit is valid.

    Raises:
        ValueError: Unknown ``move_gate_validation``.
    """
    check_move_gate_validation(move_gate_validation)
    index = _index_for(architecture)
    prefix = f'circuit {circuit_index} ("{circuit.name}")'
    walk = _CircuitWalk(index, architecture.name, qubit_mapping, feedback_groups)
    violations: list[str] = []
    for position, instruction in enumerate(circuit.instructions):
        where = f"{prefix}, instruction {position}"
        violations.extend(f"{where}: {m}" for m in walk.check(instruction))
        if not allow_mid_circuit_measurement:
            violations.extend(f"{where}: {m}" for m in walk.after_measurement(instruction))
        walk.record(instruction)
    if not violations and index.resonators and move_gate_validation != "none":
        violations.extend(
            _sandwich_violations(circuit, prefix, index, qubit_mapping, move_gate_validation)
        )
    return violations


class _CircuitWalk:
    """The state of one walk through a circuit: keys seen, feedback sources, measured qubits."""

    def __init__(
        self,
        index: _ArchitectureIndex,
        architecture_name: str,
        qubit_mapping: Mapping[str, str] | None,
        feedback_groups: Sequence[frozenset[str]] | None,
    ) -> None:
        self.index = index
        self.architecture_name = architecture_name
        self.qubit_mapping = qubit_mapping
        self.feedback_groups = feedback_groups
        self.keys: set[str] = set()
        # feedback_key -> the (physical) locus of the measure that produced it
        self.feedback: dict[str, tuple[str, ...]] = {}
        self.measured: set[str] = set()
        self._skip_terminal_check = False

    def locus(self, instruction: Instruction) -> tuple[str, ...]:
        """The instruction's physical locus."""
        if self.qubit_mapping is None:
            return instruction.qubits
        return tuple(self.qubit_mapping.get(q, q) for q in instruction.qubits)

    def check(self, instruction: Instruction) -> list[str]:
        """What is wrong with the instruction itself, given what came before it."""
        locus = self.locus(instruction)
        unavailable = self._unavailable(instruction.name, locus)
        # An instruction that cannot run at all is reported once, with nothing else about it.
        self._skip_terminal_check = unavailable is not None
        if unavailable is not None:
            return [unavailable]
        found = self._by_kind(instruction, locus)
        if instruction.name == "cc_prx":
            message = self._cc_prx(instruction, locus)
            if message is not None:
                found.append(message)
        return found

    def _unavailable(self, name: str, locus: tuple[str, ...]) -> str | None:
        index, arch = self.index, self.architecture_name
        unknown = [q for q in locus if q not in index.qubits]
        if unknown:
            return f"qubit(s) {unknown} do not exist on {arch}"
        if name == "delay" and name not in index.operations:
            return _delay_unsupported(arch)
        if name in DYNAMIC_OPERATIONS and name not in index.operations:
            return _dynamic_unsupported(name, arch)
        if name != "barrier" and name not in index.operations:
            return f"{name} is not supported by {arch}"
        return None

    def _by_kind(self, instruction: Instruction, locus: tuple[str, ...]) -> list[str]:
        name, index = instruction.name, self.index
        if name == "measure":
            return self._measure(instruction, locus)
        if name == "reset":
            stuck = [q for q in locus if q not in index.resettable]
            return [_cannot_reset(stuck, index)] if stuck else []
        if name not in ANYWHERE_OPERATIONS and locus not in index.loci[name]:
            return [f"{locus} is not an allowed locus for {name}"]
        return []

    def _measure(self, instruction: Instruction, locus: tuple[str, ...]) -> list[str]:
        found = []
        not_measurable = [q for q in locus if q not in self.index.measurable]
        if not_measurable:
            found.append(f"qubit(s) {not_measurable} cannot be measured")
        key = instruction.args["key"]
        if key in self.keys:
            found.append(f"measurement key {key!r} is used more than once")
        self.keys.add(key)
        feedback_key = instruction.args.get("feedback_key")
        if feedback_key is not None and "cc_prx" not in self.index.operations:
            found.append(
                f"feedback_key {feedback_key!r} feeds a cc_prx, "
                f"{_dynamic_unsupported('cc_prx', self.architecture_name)}"
            )
        elif feedback_key is not None:
            if feedback_key in self.feedback:
                found.append(f"feedback key {feedback_key!r} is used more than once")
            self.feedback[feedback_key] = locus
        return found

    def _cc_prx(self, instruction: Instruction, locus: tuple[str, ...]) -> str | None:
        args = instruction.args
        message = _feedback_violation(args, locus, self.feedback, self.qubit_mapping)
        if message is None and self.feedback_groups is not None:
            message = _feedback_group_violation(
                locus[0], self.qubit_mapping, args, self.feedback_groups
            )
        return message

    def after_measurement(self, instruction: Instruction) -> list[str]:
        """The terminal-measurement rule: nothing but barriers after a qubit's measurement."""
        name = instruction.name
        if self._skip_terminal_check or name == "barrier":
            return []
        after = [q for q in self.locus(instruction) if q in self.measured]
        if not after:
            return []
        what = "measured again" if name == "measure" else f"acted on by {name}"
        return [
            f"qubit(s) {after} are {what} after their measurement; this "
            "architecture allows only terminal measurements"
        ]

    def record(self, instruction: Instruction) -> None:
        """Notes a measurement once every check of the instruction is done."""
        if instruction.name == "measure" and not self._skip_terminal_check:
            self.measured.update(self.locus(instruction))


def _cannot_reset(components: list[str], index: _ArchitectureIndex) -> str:
    resonators = [q for q in components if q in index.resonators]
    message = f"qubit(s) {components} cannot be reset"
    if resonators:
        message += (
            f": {', '.join(resonators)} is a computational resonator, and only qubits can be "
            "reset; move the state back to its qubit first"
        )
    else:
        message += "; reset them only where the architecture lists reset"
    return message


def _feedback_violation(
    args: Mapping[str, object],
    locus: tuple[str, ...],
    feedback: Mapping[str, tuple[str, ...]],
    qubit_mapping: Mapping[str, str] | None,
) -> str | None:
    """Why a cc_prx's feedback reference is invalid, or ``None`` (PROTOCOL_IQM_SERVER.md §3.3)."""
    key = str(args["feedback_key"])
    named = str(args["feedback_qubit"])
    qubit = qubit_mapping.get(named, named) if qubit_mapping is not None else named
    source = feedback.get(key)
    if source is None:
        return (
            f"cc_prx on {locus[0]} uses feedback_key {key!r} with feedback_qubit {named!r}, but "
            f"no earlier measure has feedback_key {key!r}; measure {named} first with "
            f'args {{"key": ..., "feedback_key": {key!r}}}'
        )
    if qubit not in source:
        return (
            f"cc_prx on {locus[0]} uses feedback_key {key!r} with feedback_qubit {named!r}, but "
            f"the measure with feedback_key {key!r} acts on {source}, not on {named}; name one "
            "of its qubits as feedback_qubit"
        )
    return None


def _feedback_group_violation(
    target: str,
    qubit_mapping: Mapping[str, str] | None,
    args: Mapping[str, object],
    feedback_groups: Sequence[frozenset[str]],
) -> str | None:
    named = str(args["feedback_qubit"])
    source = qubit_mapping.get(named, named) if qubit_mapping is not None else named
    if any(target in group and source in group for group in feedback_groups):
        return None
    return (
        f"cc_prx on {target} cannot receive feedback from {source}: no feedback group of this "
        "quantum computer contains both (get_feedback_groups() lists them); use a feedback "
        "qubit in the same group"
    )


def _sandwich_violations(
    circuit: Circuit,
    prefix: str,
    index: _ArchitectureIndex,
    qubit_mapping: Mapping[str, str] | None,
    mode: str,
) -> list[str]:
    """The first MOVE-sandwich violation of ``circuit`` (a one-item list), or an empty list."""
    tracker = MoveSandwichTracker(index.resonators, move_supported=index.move_supported, mode=mode)
    for position, instruction in enumerate(circuit.instructions):
        locus = instruction.qubits
        if qubit_mapping is not None:
            locus = tuple(qubit_mapping.get(q, q) for q in locus)
        message = tracker.step(instruction.name, locus)
        if message is not None:
            return [f"{prefix}, instruction {position}: {message}"]
    message = tracker.finish()
    return [] if message is None else [f"{prefix}: {message}"]


def validate_run_request(
    request: RunRequest,
    architecture: QuantumArchitectureSpecification,
    *,
    allow_mid_circuit_measurement: bool = False,
    move_gate_validation: str = "strict",
    feedback_groups: Sequence[frozenset[str]] | None = None,
) -> None:
    """Checks every circuit of ``request`` against ``architecture``.

    Args:
        request: The run request to check.
        architecture: What the quantum computer allows.
        allow_mid_circuit_measurement: See :func:`circuit_violations`.
        move_gate_validation: The MOVE-sandwich validation mode; v1 requests carry none and are
            always ``"strict"``; the second API profile passes its job's ``move_gate_validation``.
        feedback_groups: See :func:`circuit_violations`.

    Raises:
        CircuitValidationError: Listing every violation found (the first few spelled out), or naming
            physical qubits in the qubit mapping that do not exist.
        ValueError: Unknown ``move_gate_validation``.
    """
    mapping = request.qubit_mapping_dict
    violations: list[str] = []
    if mapping is not None:
        unknown = sorted(p for p in mapping.values() if p not in set(architecture.qubits))
        if unknown:
            violations.append(
                f"qubit_mapping maps to physical qubit(s) {unknown} that do not exist on "
                f"{architecture.name}; it has {', '.join(architecture.qubits)}"
            )
    for circuit_index, circuit in enumerate(request.circuits):
        violations.extend(
            circuit_violations(
                circuit,
                circuit_index,
                architecture,
                mapping,
                allow_mid_circuit_measurement=allow_mid_circuit_measurement,
                move_gate_validation=move_gate_validation,
                feedback_groups=feedback_groups,
            )
        )
    if violations:
        raise CircuitValidationError(format_violations(violations))


def format_violations(violations: list[str]) -> str:
    """Joins violation messages into one, spelling out at most :data:`MAX_REPORTED_VIOLATIONS`."""
    shown = violations[:MAX_REPORTED_VIOLATIONS]
    text = "; ".join(shown)
    if len(violations) > len(shown):
        text += f"; and {len(violations) - len(shown)} more violation(s)"
    return text
