"""Star architectures: the MOVE gate, sandwich validation (V1-V6), and MOVE-aware compilation.

The equivalence tests simulate every MOVE with its own random phase a = exp(i alpha) and a random
phase on the undefined |11> (STAR_MOVE.md §10): MOVE = SWAP would hide a misplaced MOVE.
"""

from __future__ import annotations

import re

import cirq
import numpy as np
import pytest
from test_transpiler import assert_equivalent

from cirq_iqm_ext.compiler.star import (
    StarTopology,
    insert_moves,
    insert_moves_in_instructions,
)
from cirq_iqm_ext.compiler.transpiler import TranspileResult, transpile
from cirq_iqm_ext.device.builtin import Deneb, star_architecture, star_device
from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice
from cirq_iqm_ext.device.move_gate import MOVE, IQMMoveGate, move_unitary
from cirq_iqm_ext.errors import CircuitValidationError
from cirq_iqm_ext.json_resolver import json_resolver
from cirq_iqm_ext.serialization.serialize import CircuitTemplate, deserialize_circuit
from cirq_iqm_ext.wire.models import (
    Circuit,
    Instruction,
    QuantumArchitectureSpecification,
    RunRequest,
)
from cirq_iqm_ext.wire.validation import (
    MoveSandwichTracker,
    architecture_resonators,
    validate_run_request,
)

DENEB = Deneb()
DENEB_SPEC = DENEB.architecture
NO_MOVE_6 = star_architecture(6, without_move=[6], name="DenebNoMove6")
HYBRID = QuantumArchitectureSpecification.from_dict(
    {
        "name": "Hybrid",
        "qubits": ["QB1", "QB2", "QB3", "QB4", "QB5", "CR1", "CR2"],
        "qubit_connectivity": [],
        "operations": {
            "prx": [[f"QB{i}"] for i in range(1, 6)],
            "measure": [[f"QB{i}"] for i in range(1, 6)],
            "cz": [
                ["QB1", "CR1"],
                ["QB2", "CR1"],
                ["QB3", "CR1"],
                ["QB3", "CR2"],
                ["QB4", "CR2"],
                ["QB5", "CR2"],
                ["QB1", "QB2"],
                ["QB4", "QB5"],
            ],
            "move": [["QB1", "CR1"], ["QB3", "CR1"], ["QB3", "CR2"], ["QB4", "CR2"]],
            "barrier": [],
        },
    }
)

# ----------------------------------------------------------------------------- notation helpers


def parse(text: str, resonator: str = "COMP_R") -> list[tuple[str, tuple[str, ...], None]]:
    """STAR_MOVE.md notation: ``m(2)`` = move(QB2, R), ``cz(1)`` = cz(QB1, R), ``cz(1,2)``..."""
    out: list[tuple[str, tuple[str, ...], None]] = []
    for name, args in re.findall(r"(\w+)\(([^)]*)\)", text):
        qs = tuple(a if not a.isdigit() else f"QB{a}" for a in args.split(","))
        if name == "m":
            out.append(("move", (qs[0], resonator), None))
        elif name == "cz" and len(qs) == 1:
            out.append(("cz", (qs[0], resonator), None))
        else:
            out.append((name, qs, None))
    return out


def show(instructions: list, resonator: str = "COMP_R") -> str:
    parts = []
    for name, locus, _ in instructions:
        short = [q.removeprefix("QB") for q in locus]
        if name == "move" and locus[1] == resonator:
            parts.append(f"m({short[0]})")
        elif name == "cz" and locus[1] == resonator:
            parts.append(f"cz({short[0]})")
        else:
            parts.append(f"{name}({','.join(short)})")
    return " ".join(parts)


def to_model(instructions: list, name: str = "c") -> Circuit:
    def args(n: str) -> dict:
        if n == "prx":
            return {"angle_t": 0.25, "phase_t": 0.0}
        if n == "measure":
            return {"key": "m"}
        return {}

    return Circuit(name, tuple(Instruction(n, locus, args(n)) for n, locus, _ in instructions))


# ----------------------------------------------------------------------------- the gate


def test_move_gate_basics():
    assert IQMMoveGate() == MOVE
    assert cirq.num_qubits(MOVE) == 2
    np.testing.assert_allclose(cirq.unitary(MOVE), cirq.unitary(cirq.SWAP))
    cirq.testing.assert_equivalent_repr(MOVE, setup_code="import cirq_iqm_ext")
    text = cirq.to_json(MOVE)
    assert '"cirq_type": "cirq_iqm_ext.IQMMoveGate"' in text
    assert (
        cirq.read_json(json_text=text, resolvers=[json_resolver, *cirq.DEFAULT_RESOLVERS]) == MOVE
    )


def test_move_unitary_exchanges_population_with_a_phase():
    u = move_unitary(0.3, 1.1)
    a = np.exp(0.3j)
    assert u[1, 2] == pytest.approx(a) and u[2, 1] == pytest.approx(np.conj(a))
    # A sandwich on span{|00>, |10>} is the identity whatever the phase.
    np.testing.assert_allclose((u @ u)[np.ix_([0, 2], [0, 2])], np.eye(2), atol=1e-12)


def test_serialize_and_deserialize_move():
    q, r = cirq.NamedQubit("QB2"), cirq.NamedQubit("COMP_R")
    circuit = cirq.Circuit(MOVE(q, r), cirq.CZ(cirq.NamedQubit("QB1"), r), MOVE(q, r))
    model = CircuitTemplate(circuit).to_model()
    assert model.instructions[0] == Instruction("move", ("QB2", "COMP_R"), {})
    assert deserialize_circuit(model) == circuit


# ----------------------------------------------------------------------------- device


def test_deneb_resonator_and_star_devices():
    assert [r.name for r in DENEB.resonators] == ["COMP_R"]
    assert len(DENEB.move_loci) == 6
    dev = star_device(12)
    assert len(dev.qubits) == 13 and [r.name for r in dev.resonators] == ["COMP_R"]
    assert len(star_device(4, without_move=[4]).move_loci) == 3
    with pytest.raises(ValueError, match="at least 2"):
        star_device(1)


def test_resonators_with_opaque_names_static_and_dynamic():
    # v1 static form: the resonator is among the qubits, with neither prx nor measure.
    assert architecture_resonators(HYBRID) == ("CR1", "CR2")
    dynamic = {
        "calibration_set_id": "26c5e70f-bea0-43af-bd37-6212ec7d04cb",
        "qubits": ["QB1", "QB2"],
        "computational_resonators": ["CR1"],
        "gates": {
            "prx": {"implementations": {"drag": {"loci": [["QB1"], ["QB2"]]}}},
            "cz": {"implementations": {"tgss": {"loci": [["QB1", "CR1"], ["QB2", "CR1"]]}}},
            "move": {"implementations": {"tgss_crf": {"loci": [["QB2", "CR1"]]}}},
            "measure": {"implementations": {"constant": {"loci": [["QB1"], ["QB2"]]}}},
        },
    }
    device = IQMDevice.from_architecture(dynamic)
    assert [r.name for r in device.resonators] == ["CR1"]
    result = transpile(cirq.Circuit(cirq.CZ(*cirq.LineQubit.range(2))), device)
    assert sum(isinstance(op.gate, IQMMoveGate) for op in result.circuit.all_operations()) == 2


def test_device_modes_repr_and_json():
    dev = IQMDevice(DENEB_SPEC, move_gate_validation="allow_prx")
    assert dev.move_gate_validation == "allow_prx"
    cirq.testing.assert_equivalent_repr(
        dev,
        setup_code="import cirq\nimport cirq_iqm_ext\n",
    )
    text = cirq.to_json(dev)
    assert cirq.read_json(json_text=text, resolvers=[json_resolver, *cirq.DEFAULT_RESOLVERS]) == dev
    assert dev != DENEB
    with pytest.raises(ValueError, match="move_gate_validation"):
        IQMDevice(DENEB_SPEC, move_gate_validation="lenient")


# ----------------------------------------------------------------------------- validation (§5)

V5_PRX = (
    "Instruction prx acts on ('QB2',) while the state(s) of {'QB2'} are in a resonator. "
    "Current resonator occupation: {'COMP_R': 'QB2'}."
)
V5_MEASURE = (
    "Instruction measure acts on ('QB2',) while the state(s) of {'QB2'} are in a resonator. "
    "Current resonator occupation: {'COMP_R': 'QB2'}."
)
V4 = "MOVE instruction ('QB3', 'COMP_R') to an already occupied resonator: {'COMP_R': 'QB2'}."
V6 = "Circuit ends while qubit state(s) are still in a resonator: {'COMP_R': 'QB2'}."

# (circuit, strict, allow_prx): None = valid, else (instruction index or None for V6, message).
SANDWICH_ROWS = [
    ("m(2) cz(1) cz(3) m(2)", None, None),
    ("m(2) prx(2) cz(1) m(2)".replace("prx(2)", "prx(1)"), None, None),
    ("m(2) barrier(2,1) cz(1) m(2)", None, None),
    ("m(2) cz(1)", (None, V6), (None, V6)),
    ("m(2) prx(2) cz(1) m(2)", (1, V5_PRX), None),
    ("m(2) measure(2) m(2)", (1, V5_MEASURE), (1, V5_MEASURE)),
    ("m(2) m(3) m(3) m(2)", (1, V4), (1, V4)),
]


@pytest.mark.parametrize("text, strict, allow_prx", SANDWICH_ROWS)
@pytest.mark.parametrize("mode", ["strict", "allow_prx", "none"])
def test_sandwich_rules_client_and_device(text, strict, allow_prx, mode):
    instructions = parse(text)
    expected = {"strict": strict, "allow_prx": allow_prx, "none": None}[mode]
    request = RunRequest(circuits=(to_model(instructions),), shots=1)
    # Mid-circuit measurement on, so the measure row reaches the sandwich rules (V5).
    device = IQMDevice(DENEB_SPEC, mid_circuit_measurement=True, move_gate_validation=mode)
    check = {"move_gate_validation": mode, "allow_mid_circuit_measurement": True}
    ops = [
        (MOVE if n == "move" else cirq.CZ if n == "cz" else None, locus, n)
        for n, locus, _ in instructions
    ]
    circuit = cirq.Circuit()
    for gate, locus, n in ops:
        qubits = [cirq.NamedQubit(q) for q in locus]
        if n == "prx":
            circuit.append(cirq.X(*qubits) ** 0.5, strategy=cirq.InsertStrategy.NEW)
        elif n == "measure":
            circuit.append(cirq.measure(*qubits, key="m"), strategy=cirq.InsertStrategy.NEW)
        elif n == "barrier":
            continue  # no Cirq barrier gate: the rows with barriers are valid anyway
        else:
            circuit.append(gate.on(*qubits), strategy=cirq.InsertStrategy.NEW)
    if expected is None:
        validate_run_request(request, DENEB_SPEC, **check)
        device.validate_circuit(circuit)
        return
    index, message = expected
    where = 'circuit 0 ("c")' + ("" if index is None else f", instruction {index}")
    with pytest.raises(CircuitValidationError) as info:
        validate_run_request(request, DENEB_SPEC, **check)
    assert str(info.value) == f"{where}: {message}"
    with pytest.raises(DeviceValidationError) as dev_info:
        device.validate_circuit(circuit)
    assert message in str(dev_info.value)


def test_v1_v2_v3_messages():
    tracker = MoveSandwichTracker(["COMP_R"], move_supported=False)
    assert tracker.step("move", ("QB1", "COMP_R")) == (
        "MOVE instruction is not supported by the given device architecture."
    )
    tracker = MoveSandwichTracker(["COMP_R"])
    assert tracker.step("move", ("COMP_R", "QB2")) == (
        "MOVE instructions are only allowed between qubit and resonator, not ('COMP_R', 'QB2')."
    )
    tracker = MoveSandwichTracker(["CR1", "CR2"])
    assert tracker.step("move", ("QB3", "CR1")) is None
    assert tracker.step("move", ("QB3", "CR2")) == (
        "MOVE instruction ('QB3', 'CR2'): state of QB3 is in another resonator: {'CR1': 'QB3'}."
    )
    request = RunRequest(circuits=(to_model(parse("m(3) m(3)", "CR1")),), shots=1)
    validate_run_request(request, HYBRID)
    bad = RunRequest(
        circuits=(
            Circuit(
                "c", (Instruction("move", ("QB3", "CR1")), Instruction("move", ("QB3", "CR2")))
            ),
        ),
        shots=1,
    )
    with pytest.raises(CircuitValidationError, match="state of QB3 is in another resonator"):
        validate_run_request(bad, HYBRID)


def test_v1_v2_on_the_device():
    no_move = star_architecture(3).to_dict()
    del no_move["quantum_architecture"]["operations"]["move"]
    device = IQMDevice.from_architecture(no_move)
    q, r = cirq.NamedQubit("QB1"), cirq.NamedQubit("COMP_R")
    with pytest.raises(DeviceValidationError, match="MOVE instruction is not supported"):
        device.validate_circuit(cirq.Circuit(MOVE(q, r), MOVE(q, r)))
    with pytest.raises(DeviceValidationError, match="only allowed between qubit and resonator"):
        DENEB.validate_circuit(cirq.Circuit(MOVE(r, q), MOVE(r, q)))


def test_fictional_cz_is_rejected_on_the_wire():
    request = RunRequest(circuits=(to_model(parse("cz(1,2)")),), shots=1)
    with pytest.raises(CircuitValidationError, match=r"\('QB1', 'QB2'\) is not an allowed locus"):
        validate_run_request(request, DENEB_SPEC)


def test_unknown_mode_is_rejected():
    request = RunRequest(circuits=(to_model(parse("m(2) m(2)")),), shots=1)
    with pytest.raises(ValueError, match="move_gate_validation"):
        validate_run_request(request, DENEB_SPEC, move_gate_validation="loose")


# ----------------------------------------------------------------------------- golden (§9)

GOLDEN = [
    (DENEB_SPEC, "cz(1,2)", "m(2) cz(1) m(2)", 8),
    (DENEB_SPEC, "cz(1,2) cz(1,3)", "m(1) cz(2) cz(3) m(1)", 8),
    (DENEB_SPEC, "cz(1,2) cz(1,3)", "m(2) cz(1) m(2) m(3) cz(1) m(3)", 0),
    (DENEB_SPEC, "cz(1,2) prx(2) cz(2,3)", "m(2) cz(1) m(2) prx(2) m(3) cz(2) m(3)", 8),
    (
        DENEB_SPEC,
        "prx(1) prx(2) cz(1,2) prx(2) prx(3) cz(1,3) prx(3) measure(1,2,3)",
        "prx(1) prx(2) m(1) cz(2) prx(2) prx(3) cz(3) prx(3) m(1) measure(1,2,3)",
        8,
    ),
    (DENEB_SPEC, "cz(1,2) cz(3,4)", "m(2) cz(1) m(2) m(4) cz(3) m(4)", 8),
    (
        DENEB_SPEC,
        "cz(6,2) cz(1,6) cz(5,3) cz(1,5)",
        "m(6) cz(2) cz(1) m(6) m(5) cz(3) cz(1) m(5)",
        8,
    ),
    (
        DENEB_SPEC,
        "cz(1,2) barrier(1,2) cz(1,3)",
        "m(2) cz(1) m(2) barrier(1,2) m(3) cz(1) m(3)",
        8,
    ),
    (NO_MOVE_6, "cz(6,1)", "m(1) cz(6) m(1)", 8),
    (NO_MOVE_6, "cz(6,1) cz(2,6) prx(1)", "m(1) cz(6) m(1) m(2) cz(6) prx(1) m(2)", 8),
]


@pytest.mark.parametrize("spec, text, expected, window", GOLDEN)
def test_worked_examples(spec, text, expected, window):
    topology = StarTopology.from_architecture(spec)
    assert show(insert_moves(parse(text), topology, lookahead=window)) == expected


def test_wire_level_pass_and_unresolvable_cz():
    out = insert_moves_in_instructions(to_model(parse("cz(1,2)")).instructions, DENEB_SPEC)
    assert [i.name for i in out] == ["move", "cz", "move"]
    both_without = StarTopology.from_architecture(star_architecture(7, without_move=[6, 7]))
    with pytest.raises(CircuitValidationError) as info:
        insert_moves(parse("cz(6,7)"), both_without)
    assert str(info.value) == (
        "Unable to implement cz('QB6', 'QB7'): no resonator has a calibrated cz with one of them "
        "and a calibrated move with the other"
    )
    # Two qubits both without move get no edge in the routing graph (IQM's router links them).
    fictional = both_without.fictional_architecture(star_architecture(7, without_move=[6, 7]))
    assert ("QB6", "QB7") not in fictional.loci("cz")


def test_existing_moves_keep_remove_trust_and_errors():
    topology = StarTopology.from_architecture(DENEB_SPEC)
    valid = parse("m(2) cz(1) m(2)")
    assert insert_moves(valid, topology) == valid  # already valid: unchanged
    mixed = parse("m(2) cz(1) m(2) cz(3,4)")
    assert show(insert_moves(mixed, topology)) == "m(2) cz(1) m(2) m(4) cz(3) m(4)"
    pinned = parse("m(2) cz(1) cz(3,4) m(2)")
    with pytest.raises(CircuitValidationError) as info:
        insert_moves(pinned, topology)
    assert str(info.value) == (
        "cz('QB3', 'QB4') cannot be implemented without breaking the explicit MOVE sandwich on "
        "COMP_R; use existing_moves='remove'"
    )
    removed = insert_moves(pinned, topology, existing_moves="remove")
    assert show(removed).count("m(") == 4 and "cz(1)" in show(removed)
    with pytest.raises(CircuitValidationError, match="still in a resonator"):
        insert_moves(parse("m(2) cz(1) cz(3,4)"), topology, existing_moves="remove")
    with pytest.raises(CircuitValidationError, match="while the state"):
        insert_moves(parse("m(2) cz(2,1) m(2)"), topology)
    assert show(insert_moves(parse("m(2) cz(1) m(2) cz(3,4)"), topology, existing_moves="trust"))


# ----------------------------------------------------------------------------- simulation


def _prx(angle_t: float, phase_t: float) -> np.ndarray:
    theta, phi = 2 * np.pi * angle_t, 2 * np.pi * phase_t
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -1j * np.exp(-1j * phi) * s], [-1j * np.exp(1j * phi) * s, c]])


_CZ = np.diag([1, 1, 1, -1]).astype(complex)


def simulate(instructions, names, psi, phases=None):
    """State vector over ``names``; MOVE loci get ``phases[(q, r)] = (alpha, beta)`` (else SWAP)."""
    n = len(names)
    index = {q: i for i, q in enumerate(names)}
    state = psi.reshape((2,) * n)
    for name, locus, payload in instructions:
        if name in ("barrier", "measure"):
            continue
        if name == "prx":
            angle, phase = payload if payload is not None else (0.25, 0.0)
            matrix = _prx(angle, phase)
        elif name == "cz":
            matrix = _CZ
        elif name == "move":
            matrix = move_unitary(*(phases or {}).get(locus, (0.0, 0.0)))
        else:
            raise AssertionError(name)
        axes = [index[q] for q in locus]
        k = len(axes)
        tensor = matrix.reshape((2,) * (2 * k))
        state = np.tensordot(tensor, state, axes=(list(range(k, 2 * k)), axes))
        state = np.moveaxis(state, list(range(k)), axes)
    return state.reshape(-1)


def random_phases(spec, rng):
    return {tuple(locus): tuple(rng.uniform(0, 2 * np.pi, 2)) for locus in spec.loci("move")}


def _names(topology: StarTopology) -> list[str]:
    return [*topology.qubits, *topology.resonators]


def check_compilation(ideal, compiled, spec, rng, mode="strict"):
    """Raises AssertionError unless ``compiled`` is valid and implements ``ideal`` for any phase."""
    topology = StarTopology.from_architecture(spec)
    request = RunRequest(circuits=(to_model(compiled),), shots=1)
    validate_run_request(request, spec, move_gate_validation=mode)
    names = _names(topology)
    nq = len(topology.qubits)
    psi = rng.normal(size=2**nq) + 1j * rng.normal(size=2**nq)
    psi /= np.linalg.norm(psi)
    full = np.kron(psi, np.eye(1, 2 ** len(topology.resonators), 0)[0])
    expected = simulate(ideal, names, full)
    actual = simulate(compiled, names, full, random_phases(spec, rng))
    np.testing.assert_allclose(actual, expected, atol=1e-9)


def random_instructions(topology, rng, length, *, explicit=False):
    """Random fictional/native CZs, prx, barriers; with ``explicit``, valid explicit sandwiches."""
    qubits = list(topology.qubits)
    pairs = [
        (a, b)
        for i, a in enumerate(qubits)
        for b in qubits[i + 1 :]
        if frozenset((a, b)) in topology.native_cz or topology.resolutions(a, b)
    ]
    out = []
    occ: dict[str, str] = {}
    for _ in range(length):
        parked = set(occ.values())
        roll = rng.random()
        if explicit and roll < 0.15:
            free = [
                (m, r)
                for r in topology.resonators
                if r not in occ
                for m in sorted(topology.move_loci[r])
                if m not in parked
            ]
            if free:
                m, r = free[rng.integers(len(free))]
                occ[r] = m
                out.append(("move", (m, r), None))
                continue
        if explicit and roll < 0.3 and occ:
            r = sorted(occ)[rng.integers(len(occ))]
            if rng.random() < 0.5:
                out.append(("move", (occ.pop(r), r), None))
            else:
                gates = [g for g in sorted(topology.cz_loci[r]) if g not in parked]
                if gates:
                    out.append(("cz", (gates[rng.integers(len(gates))], r), None))
            continue
        live = [p for p in pairs if not parked.intersection(p)]
        free_qubits = [q for q in qubits if q not in parked]
        if roll < 0.55 and live:
            a, b = live[rng.integers(len(live))]
            out.append(("cz", (a, b) if rng.random() < 0.5 else (b, a), None))
        elif roll < 0.9 or len(free_qubits) < 2:
            q = free_qubits[rng.integers(len(free_qubits))]
            out.append(("prx", (q,), tuple(rng.uniform(0, 1, 2))))
        else:
            a, b = rng.choice(len(free_qubits), 2, replace=False)
            out.append(("barrier", (free_qubits[a], free_qubits[b]), None))
    for r in sorted(occ):
        out.append(("move", (occ[r], r), None))
    return out


def ideal_of(instructions):
    """What the input means: explicit sandwiches as SWAPs (phase 1), fictional CZs directly."""
    return instructions


TOPOLOGIES = {"Deneb": DENEB_SPEC, "DenebNoMove6": NO_MOVE_6, "Hybrid": HYBRID}


@pytest.mark.parametrize("label", sorted(TOPOLOGIES))
def test_random_circuits_equal_their_compilation_for_any_move_phase(label):
    spec = TOPOLOGIES[label]
    topology = StarTopology.from_architecture(spec)
    rng = np.random.default_rng(2024)
    moves = {8: 0, 0: 0}
    for _ in range(300):
        circuit = random_instructions(topology, rng, int(rng.integers(1, 26)))
        for window in (8, 0):
            compiled = insert_moves(circuit, topology, lookahead=window)
            moves[window] += sum(n == "move" for n, _, _ in compiled)
            check_compilation(circuit, compiled, spec, rng)
    assert moves[8] < moves[0], moves


@pytest.mark.parametrize("label", sorted(TOPOLOGIES))
@pytest.mark.parametrize("existing", ["keep", "remove"])
def test_random_circuits_with_explicit_sandwiches(label, existing):
    spec = TOPOLOGIES[label]
    topology = StarTopology.from_architecture(spec)
    rng = np.random.default_rng(7)
    compiled_count = 0
    for _ in range(150):
        circuit = random_instructions(topology, rng, int(rng.integers(1, 26)), explicit=True)
        try:
            compiled = insert_moves(circuit, topology, existing_moves=existing)
        except CircuitValidationError as error:
            assert existing == "keep" and "use existing_moves='remove'" in str(error)
            continue
        compiled_count += 1
        check_compilation(ideal_of(circuit), compiled, spec, rng)
    assert compiled_count > 50


@pytest.mark.parametrize(
    "ideal, wrong",
    [
        ("cz(1,2)", "m(2) m(2) barrier(1,2) cz(1) m(2) m(2)"),
        ("prx(2) cz(1,2)", "m(2) prx(2) cz(1) m(2)"),
    ],
)
def test_the_checker_rejects_wrong_compilations(ideal, wrong):
    with pytest.raises((AssertionError, CircuitValidationError)):
        check_compilation(parse(ideal), parse(wrong), DENEB_SPEC, np.random.default_rng(1))


# ----------------------------------------------------------------------------- Cirq level


def _with_random_moves(result: TranspileResult, rng) -> TranspileResult:
    phases: dict[tuple[cirq.Qid, ...], np.ndarray] = {}

    def phased(op: cirq.Operation) -> cirq.Operation:
        if not isinstance(op.gate, IQMMoveGate):
            return op
        if op.qubits not in phases:
            phases[op.qubits] = move_unitary(*rng.uniform(0, 2 * np.pi, 2))
        return cirq.MatrixGate(phases[op.qubits]).on(*op.qubits)

    circuit = result.circuit.map_operations(phased)
    return TranspileResult(circuit, result.initial_mapping, result.final_mapping)


STAR_DEVICES = {"Deneb": DENEB, "Star3": star_device(3), "Star9": star_device(9)}


@pytest.mark.parametrize("label", sorted(STAR_DEVICES))
def test_transpile_star_devices_equivalence(label):
    device = STAR_DEVICES[label]
    rng = np.random.default_rng(11)
    n_max = len(device.qubits) - 1
    for seed in range(30):
        n = int(rng.integers(2, min(n_max, 7) + 1))
        circuit = cirq.testing.random_circuit(
            cirq.LineQubit.range(n), n_moments=10, op_density=0.8, random_state=seed
        )
        if not circuit.all_qubits():
            continue
        result = transpile(circuit, device, seed=seed)
        device.validate_circuit(result.circuit)
        assert_equivalent(circuit, _with_random_moves(result, rng), seed=seed)


def test_transpile_existing_moves():
    qb = {i: cirq.NamedQubit(f"QB{i}") for i in range(1, 7)}
    r = cirq.NamedQubit("COMP_R")
    valid = cirq.Circuit(MOVE(qb[2], r), cirq.CZ(qb[1], r), MOVE(qb[2], r))
    assert transpile(valid, DENEB).circuit == valid
    # Cirq may move an operation into a sandwich it shares no qubit with: keep the order explicit.
    mixed = cirq.Circuit(
        [*valid.all_operations(), cirq.CZ(qb[3], qb[4]), cirq.X(qb[3]) ** 0.5],
        strategy=cirq.InsertStrategy.NEW,
    )
    kept = transpile(mixed, DENEB)
    DENEB.validate_circuit(kept.circuit)
    assert sum(isinstance(op.gate, IQMMoveGate) for op in kept.circuit.all_operations()) == 4
    pinned = cirq.Circuit(
        [MOVE(qb[2], r), cirq.CZ(qb[1], r), cirq.CZ(qb[3], qb[4]), cirq.CZ(qb[5], r)],
        MOVE(qb[2], r),
        strategy=cirq.InsertStrategy.NEW,
    )
    with pytest.raises(CircuitValidationError, match="use existing_moves='remove'"):
        transpile(pinned, DENEB)
    removed = transpile(pinned, DENEB, existing_moves="remove")
    DENEB.validate_circuit(removed.circuit)
    lifted = cirq.Circuit(cirq.CZ(qb[1], qb[2]), cirq.CZ(qb[3], qb[4]), cirq.CZ(qb[5], qb[2]))
    assert_equivalent(lifted, _with_random_moves(removed, np.random.default_rng(5)))
    with pytest.raises(CircuitValidationError, match="still in a resonator"):
        transpile(cirq.Circuit(MOVE(qb[2], r), cirq.CZ(qb[1], r)), DENEB)


# ----------------------------------------------------------------------------- server model


def test_server_move_model_exchanges_population_and_cancels_in_a_sandwich():
    from cirq_iqm_ext.simulation.move_model import MovePhaseModel, apply_move, move_matrix

    model = MovePhaseModel("c3ef9cf0-6268-43d7-8579-30767fcd8017", [("QB1", "COMP_R")])
    alpha, beta = model.phases("QB1", "COMP_R")
    assert model.phases("QB1", "COMP_R") == (alpha, beta)  # deterministic
    assert model.phases("QB2", "COMP_R") != (alpha, beta)
    np.testing.assert_allclose(move_matrix(alpha, beta), move_unitary(alpha, beta))
    rng = np.random.default_rng(0)
    psi = rng.normal(size=8) + 1j * rng.normal(size=8)
    psi /= np.linalg.norm(psi)
    # Same as the 4x4 unitary on axes (0, 2) of 3 qubits.
    qs = cirq.LineQubit.range(3)
    gate = cirq.MatrixGate(move_matrix(alpha, beta)).on(qs[0], qs[2])
    expected = cirq.final_state_vector(
        cirq.Circuit(gate), initial_state=psi, qubit_order=qs, dtype=np.complex128
    )
    np.testing.assert_allclose(apply_move(psi, 3, 0, 2, alpha, beta), expected, atol=1e-12)
    # Open, CZ through the resonator, close: CZ on the qubits whatever the phase.
    state = np.kron(psi[:4] / np.linalg.norm(psi[:4]), [1, 0])  # (QB1, QB2) ⊗ |0>_R
    moved = model.apply(state, 3, "QB2", "COMP_R", (1, 2))
    moved = np.diag([1, 1, 1, 1, 1, -1, 1, -1]) @ moved  # cz(QB1, R): QB1 = R = 1
    back = model.apply(moved, 3, "QB2", "COMP_R", (1, 2))
    np.testing.assert_allclose(back, np.kron(np.diag([1, 1, 1, -1]), np.eye(2)) @ state, atol=1e-12)


def test_star_device_size_must_be_an_int():
    with pytest.raises(TypeError, match="n_qubits must be an int, got str"):
        star_device("6")  # type: ignore[arg-type]
