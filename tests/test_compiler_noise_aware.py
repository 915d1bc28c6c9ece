"""Noise-aware placement: the estimated success probability reported on ``TranspileResult``, and
level 3 moving the compiled circuit onto the best calibrated qubits, never where the user chose."""

from __future__ import annotations

import math

import cirq
import pytest
from equivalence import assert_equivalent

from cirq_iqm_ext.calibration import CalibrationSet, builtin_calibration
from cirq_iqm_ext.compiler.noise_aware import estimated_success_probability
from cirq_iqm_ext.compiler.transpiler import transpile
from cirq_iqm_ext.device.builtin import Aphrodite, Garnet

GARNET, APHRODITE = Garnet(), Aphrodite()
GARNET_CAL = builtin_calibration("Garnet")


def cz_count(circuit: cirq.AbstractCircuit) -> int:
    return sum(1 for op in circuit.all_operations() if op.gate == cirq.CZ)


def sample_circuit(n: int, seed: int) -> cirq.Circuit:
    circuit = cirq.testing.random_circuit(
        cirq.LineQubit.range(n), n_moments=8, op_density=0.8, random_state=seed
    )
    return circuit + cirq.Circuit(cirq.measure(*cirq.LineQubit.range(n), key="m"))


def with_one_good_coupler(calibration: CalibrationSet, pair: str) -> CalibrationSet:
    """A copy where every CZ is poor (0.9) except on ``pair`` (0.999)."""
    data = calibration.to_dict()
    for key, figures in data["couplers"].items():
        figures["cz_fidelity"] = 0.999 if key == pair else 0.9
    return CalibrationSet.from_dict(data)


def test_the_estimate_is_the_product_of_the_calibrated_figures():
    a, b = GARNET.qubit("QB1"), GARNET.qubit("QB2")
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(phase_exponent=0.2, exponent=0.5)(a),
        cirq.Z(b) ** 0.3,  # virtual: free
        cirq.CZ(a, b),
        cirq.CZ(a, b),
        cirq.measure(a, b, key="m"),
    )
    qb1, qb2 = GARNET_CAL.qubit("QB1"), GARNET_CAL.qubit("QB2")
    coupler = GARNET_CAL.coupler("QB1", "QB2")
    assert coupler is not None and coupler.cz_fidelity is not None
    assert qb1.prx_fidelity is not None

    def readout(fig) -> float:
        return 1 - (fig.readout_error_0_to_1 + fig.readout_error_1_to_0) / 2

    expected = qb1.prx_fidelity * coupler.cz_fidelity**2 * readout(qb1) * readout(qb2)
    assert math.isclose(estimated_success_probability(circuit, GARNET_CAL), expected, rel_tol=1e-12)


def test_without_a_calibration_no_estimate_is_reported():
    assert transpile(sample_circuit(3, 0), GARNET).estimated_success_probability is None


@pytest.mark.parametrize("level", [0, 2])
def test_below_level_3_the_estimate_is_reported_but_nothing_moves(level):
    circuit = sample_circuit(4, 1)
    plain = transpile(circuit, GARNET, optimization_level=level)
    rated = transpile(circuit, GARNET, optimization_level=level, calibration="Garnet")
    assert rated.circuit == plain.circuit
    expected = estimated_success_probability(plain.circuit, GARNET_CAL)
    assert rated.estimated_success_probability == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("device", [GARNET, APHRODITE], ids=lambda d: d.name)
@pytest.mark.parametrize("seed", range(3))
def test_level_3_moves_to_better_qubits_without_changing_the_gates(device, seed):
    calibration = builtin_calibration(device.name)
    circuit = sample_circuit(5, seed)
    plain = transpile(circuit, device, optimization_level=3, seed=seed)
    aware = transpile(circuit, device, optimization_level=3, seed=seed, calibration=calibration)
    assert cz_count(aware.circuit) == cz_count(plain.circuit)
    before = estimated_success_probability(plain.circuit, calibration)
    assert aware.estimated_success_probability is not None
    assert aware.estimated_success_probability >= before
    device.validate_circuit(aware.circuit)
    assert_equivalent(circuit, aware, seed=seed)


def test_a_bell_pair_lands_on_the_one_good_coupler():
    calibration = with_one_good_coupler(GARNET_CAL, "QB14,QB15")
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(q[0]), cirq.CNOT(*q), cirq.measure(*q, key="m"))
    result = transpile(circuit, GARNET, optimization_level=3, calibration=calibration)
    assert set(result.initial_mapping.values()) == {GARNET.qubit("QB14"), GARNET.qubit("QB15")}
    assert_equivalent(circuit, result)


def test_the_qubits_the_user_chose_are_never_moved():
    calibration = with_one_good_coupler(GARNET_CAL, "QB14,QB15")
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(q[0]), cirq.CNOT(*q), cirq.measure(*q, key="m"))
    mapping = {q[0]: GARNET.qubit("QB1"), q[1]: GARNET.qubit("QB2")}
    mapped = transpile(
        circuit, GARNET, optimization_level=3, calibration=calibration, initial_mapping=mapping
    )
    assert mapped.initial_mapping == mapping
    on_device = circuit.transform_qubits(mapping)
    pinned = transpile(on_device, GARNET, optimization_level=3, calibration=calibration)
    assert pinned.circuit.all_qubits() <= set(mapping.values())


def test_the_qubit_subset_is_kept():
    calibration = with_one_good_coupler(GARNET_CAL, "QB14,QB15")
    subset = [GARNET.qubit(n) for n in ("QB1", "QB2", "QB4", "QB5")]
    circuit = sample_circuit(3, 4)
    result = transpile(
        circuit, GARNET, optimization_level=3, calibration=calibration, qubit_subset=subset
    )
    assert result.circuit.all_qubits() <= set(subset)
    assert set(result.initial_mapping.values()) <= set(subset)
    assert_equivalent(circuit, result)
