"""The compiler's stages as ``cirq.transformer`` functions, composed by hand.

Composed in order they must give what ``transpile`` promises: a circuit the device accepts,
equal to the input up to global phase and the qubit maps that routing reports.
"""

from __future__ import annotations

import cirq
import pytest
import sympy
from equivalence import assert_equivalent, assert_same_distribution

from cirq_iqm_ext.compiler import transformers
from cirq_iqm_ext.compiler.transformers import (
    QubitMaps,
    decompose_to_two_qubit_gates,
    insert_move_gates,
    route_to_device,
    synthesize_to_native,
)
from cirq_iqm_ext.compiler.transpiler import TranspileResult
from cirq_iqm_ext.device.builtin import Aphrodite, Deneb, Garnet
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.device.move_gate import IQMMoveGate
from cirq_iqm_ext.errors import CompilationError

GARNET, APHRODITE, DENEB = Garnet(), Aphrodite(), Deneb()
STAGES = (decompose_to_two_qubit_gates, route_to_device, synthesize_to_native, insert_move_gates)


def compose(
    circuit: cirq.AbstractCircuit,
    device: IQMDevice,
    logger: cirq.TransformerLogger | None = None,
    **route_options,
) -> TranspileResult:
    """Every stage in order, by hand; returns the output with the maps routing reported."""
    context = cirq.TransformerContext(logger=logger or cirq.TransformerLogger())
    maps = QubitMaps()
    out = decompose_to_two_qubit_gates(circuit, context=context)
    out = route_to_device(out, device=device, context=context, maps=maps, **route_options)
    out = synthesize_to_native(out, device=device, context=context)
    out = insert_move_gates(out, device=device, context=context)
    device.validate_circuit(out)
    return TranspileResult(out, maps.initial, maps.final)


def qft(n: int) -> cirq.Circuit:
    q = cirq.LineQubit.range(n)
    c = cirq.Circuit()
    for i in range(n):
        c.append(cirq.H(q[i]))
        for j in range(i + 1, n):
            c.append(cirq.CZPowGate(exponent=1 / 2 ** (j - i)).on(q[j], q[i]))
    return c


class RecordingLogger(cirq.TransformerLogger):
    """Remembers the name of every transformer that ran."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def register_initial(self, circuit: cirq.AbstractCircuit, transformer_name: str) -> None:
        self.names.append(transformer_name)
        super().register_initial(circuit, transformer_name)


def test_the_stages_are_exported_transformers():
    assert set(transformers.__all__) >= {stage.__name__ for stage in STAGES}
    assert "QubitMaps" in transformers.__all__
    logger = RecordingLogger()
    compose(cirq.Circuit(cirq.CZ(*cirq.LineQubit.range(2))), DENEB, logger=logger)
    # @cirq.transformer registers every stage with the context's logger, in order.
    assert logger.names == [stage.__name__ for stage in STAGES]


@pytest.mark.parametrize("device", [GARNET, APHRODITE, DENEB], ids=lambda d: d.name)
@pytest.mark.parametrize("seed", range(3))
def test_composed_stages_give_an_equivalent_valid_circuit(device, seed):
    n = 5 if device is DENEB else 7
    circuit = cirq.testing.random_circuit(
        cirq.LineQubit.range(n), n_moments=14, op_density=0.8, random_state=seed
    )
    result = compose(circuit, device, seed=seed)
    assert_equivalent(circuit, result)
    assert set(result.initial_mapping) == circuit.all_qubits()


def test_routing_on_a_lattice_inserts_swaps_and_reports_where_qubits_end():
    circuit = qft(6)
    maps = QubitMaps()
    routed = route_to_device(decompose_to_two_qubit_gates(circuit), device=GARNET, maps=maps)
    pairs = {frozenset(p) for p in GARNET.cz_pairs}
    two_qubit = [op for op in routed.all_operations() if len(op.qubits) == 2]
    assert all(frozenset(op.qubits) in pairs for op in two_qubit)
    assert any(op.gate == cirq.SWAP for op in two_qubit)  # QFT-6 needs SWAPs on a lattice
    assert maps.initial != maps.final
    result = compose(circuit, GARNET)
    assert_equivalent(circuit, result)


def test_star_devices_get_their_moves_from_the_last_stage():
    circuit = qft(4)
    result = compose(circuit, DENEB)
    moves = [op for op in result.circuit.all_operations() if isinstance(op.gate, IQMMoveGate)]
    assert moves and len(moves) % 2 == 0
    assert_equivalent(circuit, result)


def test_routing_honours_an_initial_mapping_and_is_deterministic():
    circuit = qft(5)
    q = sorted(circuit.all_qubits())
    start = dict(zip(q, ["QB1", "QB2", "QB4", "QB5", "QB9"], strict=True))
    result = compose(circuit, GARNET, initial_mapping=start)
    assert result.initial_mapping == {lq: GARNET.qubit(name) for lq, name in start.items()}
    assert_equivalent(circuit, result)
    flat = decompose_to_two_qubit_gates(circuit)
    first, again = (route_to_device(flat, device=GARNET, seed=5) for _ in range(2))
    assert first == again


def test_composed_stages_keep_measurements_and_feed_forward():
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        cirq.H(q[0]),
        cirq.CNOT(q[0], q[2]),
        cirq.measure(q[0], key="a"),
        cirq.X(q[1]).with_classical_controls("a"),
        cirq.CNOT(q[1], q[2]),
        cirq.measure(*q, key="b"),
    )
    result = compose(circuit, GARNET)
    assert_same_distribution(circuit, result)


def test_a_circuit_on_device_qubits_stays_where_it_is_written():
    a, b = GARNET.qubit("QB1"), GARNET.qubit("QB2")
    circuit = cirq.Circuit(cirq.H(a), cirq.CNOT(a, b), cirq.measure(a, b, key="m"))
    result = compose(circuit, GARNET)
    assert result.initial_mapping == result.final_mapping == {a: a, b: b}
    assert result.circuit.all_qubits() == {a, b}
    assert_equivalent(circuit, result)


def test_symbolic_circuits_compose_once_for_every_value():
    t = sympy.Symbol("t")
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        cirq.H.on_each(*q), cirq.CZPowGate(exponent=t).on(q[0], q[2]), cirq.rx(t).on(q[1])
    )
    result = compose(circuit, GARNET)
    for value in (0.3, 1.7):
        assert_equivalent(circuit, result, resolver={"t": value})


def test_stages_that_need_a_device_say_so():
    circuit = cirq.Circuit(cirq.H(cirq.LineQubit(0)))
    for stage in (route_to_device, synthesize_to_native, insert_move_gates):
        with pytest.raises(TypeError, match=f"{stage.__name__} needs the device"):
            stage(circuit)


def test_synthesis_needs_a_placed_circuit():
    circuit = cirq.Circuit(cirq.CZ(*cirq.LineQubit.range(2)))
    with pytest.raises(CompilationError, match="route_to_device"):
        synthesize_to_native(circuit, device=GARNET)


def test_insert_move_gates_leaves_a_device_without_resonators_alone():
    a, b = GARNET.qubit("QB1"), GARNET.qubit("QB2")
    circuit = cirq.Circuit(cirq.CZ(a, b)).freeze()
    out = insert_move_gates(circuit, device=GARNET)
    assert out == circuit.unfreeze() and isinstance(out, cirq.Circuit)
