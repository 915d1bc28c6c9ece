"""Native Cirq circuits ⇄ IQM instructions, and templates that fill in sweep points."""

from __future__ import annotations

import json
import math

import cirq
import numpy as np
import pytest
import sympy

from cirq_iqm_ext.device.barriers import barrier
from cirq_iqm_ext.serialization.serialize import (
    CircuitTemplate,
    SerializationError,
    deserialize_circuit,
    serialize_circuit,
)
from cirq_iqm_ext.wire.models import Circuit, Instruction

QB1, QB2, QB3 = (cirq.NamedQubit(f"QB{i}") for i in (1, 2, 3))
T = sympy.Symbol("t")
S = sympy.Symbol("s")


def test_gate_mapping_of_the_protocol():
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=0.25).on(QB1),
        cirq.X(QB2) ** 0.5,
        cirq.Y(QB3),
        cirq.CZ(QB1, QB2),
        cirq.GlobalPhaseGate(1j).on(),
        cirq.measure(QB1, QB2, key="m"),
    )
    assert serialize_circuit(circuit, "c") == Circuit(
        "c",
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.25, "phase_t": 0.125}),
            Instruction("prx", ["QB2"], {"angle_t": 0.25, "phase_t": 0.0}),
            Instruction("prx", ["QB3"], {"angle_t": 0.5, "phase_t": 0.25}),
            Instruction("cz", ["QB1", "QB2"]),
            Instruction("measure", ["QB1", "QB2"], {"key": "m"}),
        ),
    )


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (cirq.H(QB1), "has no IQM instruction"),
        (cirq.CZ(QB1, QB2) ** 0.5, "partial CZ"),
        (cirq.CZ(QB1, QB2) ** T, "partial CZ"),
        (cirq.CircuitOperation(cirq.FrozenCircuit(cirq.X(QB1))), "sub-circuit"),
    ],
)
def test_non_native_operations_are_refused(operation, message):
    with pytest.raises(SerializationError, match=message):
        serialize_circuit(cirq.Circuit(operation, cirq.measure(QB1, key="m")))


def test_repeated_keys_get_unique_wire_keys_and_empty_circuits_are_refused():
    # Cirq's repeated keys: one wire key per measurement, never clashing with another key.
    template = CircuitTemplate(
        cirq.Circuit(
            cirq.measure(QB1, key="m"),
            cirq.measure(QB2, key="m__1"),
            cirq.measure(QB2, key="m"),
            cirq.measure(QB3, key="m"),
        )
    )
    keys = [i["args"]["key"] for i in template.resolve()["instructions"]]
    assert keys == ["m", "m__1", "m__2", "m__3"]
    assert template.repeated == {"m": ["m", "m__2", "m__3"]}
    assert template.measurements["m__3"].cirq_key == "m"
    with pytest.raises(SerializationError, match="no operations"):
        CircuitTemplate(cirq.Circuit(cirq.GlobalPhaseGate(1j).on()))


def test_template_matches_resolving_first_at_every_point():
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=T, phase_exponent=2 * S + 0.1).on(QB1),
        cirq.X(QB2) ** (T * S),
        cirq.Y(QB3) ** sympy.sin(S),
        cirq.CZ(QB1, QB2),
        cirq.measure(QB1, QB2, QB3, key="m"),
    )
    template = CircuitTemplate(circuit, "c")
    assert template.is_parameterized
    assert template.parameter_names == {"s", "t"}
    resolvers = [cirq.ParamResolver({"t": t, "s": s}) for t, s in [(0.5, 0.25), (-1.5, 3.0)]]
    for resolver, resolved in zip(resolvers, template.resolve_many(resolvers), strict=True):
        expected = serialize_circuit(cirq.resolve_parameters(circuit, resolver), "c")
        got = Circuit.from_dict(resolved)
        for a, b in zip(got.instructions, expected.instructions, strict=True):
            assert a.name == b.name and a.qubits == b.qubits
            for key, value in b.args.items():
                if key == "phase_t":
                    assert (a.args[key] - value) % 1.0 == pytest.approx(0.0, abs=1e-12) or (
                        a.args[key] - value
                    ) % 1.0 == pytest.approx(1.0, abs=1e-12)
                else:
                    assert a.args[key] == pytest.approx(value)


def test_missing_and_complex_parameter_values_are_refused():
    template = CircuitTemplate(cirq.Circuit(cirq.X(QB1) ** T, cirq.measure(QB1, key="m")))
    with pytest.raises(ValueError, match="'t' has no value"):
        template.resolve({})
    log_template = CircuitTemplate(
        cirq.Circuit(cirq.X(QB1) ** sympy.log(T), cirq.measure(QB1, key="m"))
    )
    with pytest.raises(ValueError, match="not a finite real number"):
        log_template.resolve({"t": -1.0})


def test_metadata_and_qubit_names():
    template = CircuitTemplate(
        cirq.Circuit(cirq.X(QB1), cirq.measure(QB1, key="m")), "c", qubit_names={QB1: "alice"}
    )
    resolved = template.resolve_many([cirq.ParamResolver()], metadata=[{"k": 1}])[0]
    assert resolved["instructions"][0]["qubits"] == ["alice"]
    assert resolved["metadata"] == {"k": 1}
    assert template.measurements["m"].qubits == ("alice",)


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_preserves_the_unitary(seed):
    rng = np.random.default_rng(seed)
    ops = []
    qubits = [QB1, QB2, QB3]
    for _ in range(12):
        if rng.random() < 0.3:
            a, b = rng.choice(3, 2, replace=False)
            ops.append(cirq.CZ(qubits[a], qubits[b]))
        else:
            ops.append(
                cirq.PhasedXPowGate(
                    exponent=rng.uniform(-2, 2), phase_exponent=rng.uniform(-2, 2)
                ).on(qubits[rng.integers(3)])
            )
    circuit = cirq.Circuit(ops)
    back = deserialize_circuit(serialize_circuit(circuit))
    cirq.testing.assert_allclose_up_to_global_phase(
        cirq.unitary(back), circuit.unitary(qubit_order=sorted(back.all_qubits())), atol=1e-9
    )


def test_deserialize_with_mapping_and_barrier():
    circuit = Circuit(
        "c",
        (
            Instruction("barrier", ["a"]),
            Instruction("cz", ["a", "b"]),
            Instruction("measure", ["a"], {"key": "m"}),
        ),
    )
    back = deserialize_circuit(circuit, {"a": "QB1", "b": "QB2"})
    assert back == cirq.Circuit(barrier(QB1), cirq.CZ(QB1, QB2), cirq.measure(QB1, key="m"))


class _CarefulTemplate(CircuitTemplate):
    """Every operation through the general path: the reference of the hot loop."""

    fast_path = False


#: Numbers whose text differs between ``repr`` and orjson, or that sit on a boundary of it.
_AWKWARD_NUMBERS = (1e-05, 3.3e-05, 9.9999e-05, 1e-4, 2.5e-17, 0.0, -0.0, 1e16, 3.2e17, 10.00001)


def _random_native_circuit(
    rng: np.random.Generator, qubits: list[cirq.Qid], symbols: bool = False
) -> cirq.Circuit:
    """Native operations of every kind the serialiser handles, with awkward and plain numbers
    (and, if ``symbols``, symbolic pulses and waits)."""

    def number() -> float | sympy.Expr:
        if symbols and rng.random() < 0.1:
            return float(rng.uniform(-1, 1)) * T + S
        if rng.random() < 0.2:
            return float(rng.choice(_AWKWARD_NUMBERS)) * float(rng.choice((1, -1)))
        return float(rng.uniform(-3, 3))

    operations: list[cirq.Operation] = []
    single_keys: list[str] = []  # keys of one-qubit measurements, which can feed a cc_prx
    for index in range(int(rng.integers(20, 120))):
        q = qubits[int(rng.integers(len(qubits)))]
        other = qubits[(qubits.index(q) + 1) % len(qubits)]
        choice = int(rng.integers(15))
        if choice == 0:
            operations.append(cirq.CZ(q, other))
        elif choice == 1:
            operations.append(cirq.XPowGate(exponent=number()).on(q))
        elif choice == 2:
            operations.append(cirq.YPowGate(exponent=number()).on(q))
        elif choice == 3:
            operations.append(cirq.ZPowGate(exponent=number()).on(q))  # a frame change
        elif choice == 4:
            operations.append(
                cirq.PhasedXZGate(
                    x_exponent=number(), z_exponent=number(), axis_phase_exponent=number()
                ).on(q)
            )
        elif choice == 5:  # ints and numpy scalars take the general path inside the hot loop
            operations.append(
                cirq.PhasedXPowGate(exponent=int(rng.integers(-2, 3)), phase_exponent=0.25).on(q)
            )
            operations.append(
                cirq.PhasedXPowGate(
                    exponent=np.float64(rng.uniform(-3, 3)), phase_exponent=number()
                ).on(q)
            )
        elif choice == 6:  # keys repeat: later ones are renamed on the wire
            key = f"k{index % 5}"
            operations.append(cirq.measure(q, key=key, invert_mask=(bool(rng.random() < 0.5),)))
            single_keys.append(key)
        elif choice == 7:
            nanos = abs(float(rng.uniform(0, 300)))
            operations.append(cirq.WaitGate(cirq.Duration(nanos=nanos)).on(q))
        elif choice == 8:
            operations.append(barrier(q, other))
        elif choice == 9:
            operations.append(cirq.ResetChannel().on(q))
        elif choice == 10 and single_keys:
            operations.append(cirq.X(q).with_classical_controls(single_keys[-1]))
        elif choice == 11:  # CZ as a fresh gate object, and pulses behind a tag or a global shift
            operations.append(cirq.CZPowGate(exponent=1.0).on(q, other))
            operations.append(
                cirq.PhasedXPowGate(exponent=number(), phase_exponent=number(), global_shift=0.1)
                .on(q)
                .with_tags("tag")
            )
        elif choice == 12 and symbols:
            operations.append(cirq.WaitGate(cirq.Duration(nanos=100 * T + 5)).on(q))
        elif choice == 13:
            operations.append(cirq.GlobalPhaseGate(1j).on())
        else:
            operations.append(cirq.PhasedXPowGate(exponent=number(), phase_exponent=number()).on(q))
    operations.append(cirq.measure(*qubits, key="m"))
    return cirq.Circuit(operations)


def _same_templates(circuit: cirq.Circuit, names: dict | None, points: list) -> None:
    fast = CircuitTemplate(circuit, "c", qubit_names=names)
    careful = _CarefulTemplate(circuit, "c", qubit_names=names)
    assert fast.resolve_json_many(points) == careful.resolve_json_many(points)
    assert fast.measurements == careful.measurements and fast.qubits == careful.qubits
    assert fast.repeated == careful.repeated
    assert fast.parameter_names == careful.parameter_names
    sent = json.loads(fast.resolve_json_many(points[:1])[0])["instructions"]
    assert fast.qubits == tuple(dict.fromkeys(q for inst in sent for q in inst["qubits"]))


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_the_hot_loop_writes_what_the_general_path_writes(seed, bulk, monkeypatch):
    from cirq_iqm_ext.serialization import floats

    if not bulk:  # the standard library's repr, as without the fast extra
        monkeypatch.setattr(floats, "_orjson", None)
    rng = np.random.default_rng(seed)
    # A "%" (or a quote, a backslash, non-ASCII) in a name must not disturb the %-formatting.
    qubit_sets: list[list[cirq.Qid]] = [
        [cirq.NamedQubit(n) for n in ["QB1", "QB2", "QB3", "q%s", "QB%5", 'a"b', "ü\\"]],
        [cirq.NamedQubit(n) for n in ["QB1", "QB2", "QB3", "QB4"]],
        list(cirq.LineQubit.range(3)),
    ]
    point = [cirq.ParamResolver()]
    for qubits in qubit_sets:
        for _ in range(3):
            _same_templates(_random_native_circuit(rng, qubits), None, point)
        renamed = {qubits[0]: "alice", qubits[1]: "b%b"}
        _same_templates(_random_native_circuit(rng, qubits), renamed, point)
        # With symbols, the fast loop fills its patterns one by one (no joined text).
        points = [cirq.ParamResolver({"t": t, "s": 0.25}) for t in (0.1, 2.5e-5)]
        _same_templates(_random_native_circuit(rng, qubits, symbols=True), None, points)


def test_texts_shared_between_templates_never_cross_namings(monkeypatch):
    from cirq_iqm_ext.serialization import serialize

    a, b = cirq.NamedQubit("QB1"), cirq.NamedQubit("QB2")
    pulses = [cirq.PhasedXPowGate(exponent=0.1 * i, phase_exponent=0.3).on(a) for i in range(20)]
    circuit = cirq.Circuit(*pulses, cirq.CZ(a, b), cirq.measure(a, b, key="m"))
    point = [cirq.ParamResolver()]

    def text(names: dict | None = None) -> str:
        return CircuitTemplate(circuit, "c", qubit_names=names).resolve_json_many(point)[0]

    default, renamed = text(), text({a: "alice", b: "bob"})
    assert '"alice"' in renamed and '"QB1"' not in renamed
    assert text() == default and text({a: "alice", b: "bob"}) == renamed
    assert text({a: "carol"}) == default.replace('"QB1"', '"carol"')
    monkeypatch.setattr(serialize, "_SHARED_BOUND", 0)  # full: every template on its own
    assert text() == default and text({a: "alice", b: "bob"}) == renamed


def test_a_templates_qubits_are_its_instructions_qubits_in_order():
    a, b, c = (cirq.NamedQubit(n) for n in ("QB1", "QB2", "QB3"))
    circuit = cirq.Circuit(
        cirq.Z(c),  # virtual: sends nothing, so QB3 is not used
        cirq.X(b) ** sympy.Symbol("t"),
        cirq.CZ(b, a),
        cirq.measure(a, b, key="m"),
    )
    assert CircuitTemplate(circuit).qubits == ("QB2", "QB1")
    assert CircuitTemplate(circuit, qubit_names={b: "bob"}).qubits == ("bob", "QB1")


def test_the_wire_text_of_a_circuit():
    # The exact text sent (compact, keys in this order); the measure args keep json.dumps' space.
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=0.25).on(QB1),
        cirq.CZ(QB1, QB2),
        cirq.WaitGate(cirq.Duration(nanos=20)).on(QB2),
        barrier(QB1, QB2),
        cirq.measure(QB1, QB2, key="m"),
    )
    text = CircuitTemplate(circuit, "c").resolve_json_many([cirq.ParamResolver()])[0]
    assert text == (
        '{"name":"c","instructions":['
        '{"name":"prx","qubits":["QB1"],"args":{"angle_t":0.25,"phase_t":0.125}},'
        '{"name":"cz","qubits":["QB1","QB2"],"args":{}},'
        '{"name":"delay","qubits":["QB2"],"args":{"duration":2e-08}},'
        '{"name":"barrier","qubits":["QB1","QB2"],"args":{}},'
        '{"name":"measure","qubits":["QB1","QB2"],"args":{"key": "m"}}]}'
    )


def test_bulk_float_text_is_repr():
    from cirq_iqm_ext.serialization import floats

    rng = np.random.default_rng(7)
    # Random bit patterns cover every exponent (nan and inf are refused: the next test).
    raw = rng.integers(0, 2**63, size=4000, dtype=np.int64).view(np.float64).tolist()
    raw = [v for v in raw if math.isfinite(v)]
    special = [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
    values = [*raw, *_AWKWARD_NUMBERS, *special, *rng.uniform(0, 1, 4000).tolist()]
    assert floats.float_reprs(values) == [repr(v) for v in values]
    assert floats.careful_reprs(values) == [repr(v) for v in values]
    # The test extras install orjson, so the bulk path is the one compared above.
    assert floats.BULK


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("count", [3, 400])  # below and above the bulk path's threshold
def test_bulk_float_text_refuses_non_finite_numbers(bad, count):
    from cirq_iqm_ext.serialization import floats

    values = [0.25] * count
    values[count - 2] = bad
    for convert in (floats.float_reprs, floats.careful_reprs):
        with pytest.raises(floats.NonFiniteNumberError, match=f"number {count - 2} is") as info:
            convert(values)
        assert info.value.index == count - 2


@pytest.mark.parametrize(
    "gate",
    [
        cirq.PhasedXPowGate(exponent=float("nan"), phase_exponent=0.25),
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=float("inf")),
        cirq.X ** np.float64("nan"),
        cirq.rx(float("inf")),
        cirq.PhasedXZGate(x_exponent=0.5, z_exponent=0.0, axis_phase_exponent=float("nan")),
    ],
)
@pytest.mark.parametrize("pulses_before", [0, 40])  # the general path and the hot loop's bulk
def test_a_non_finite_angle_is_refused_naming_its_gate(gate, pulses_before):
    q = cirq.NamedQubit("QB1")
    before = [cirq.PhasedXPowGate(exponent=0.1, phase_exponent=0.2).on(q)] * pulses_before
    circuit = cirq.Circuit(*before, gate.on(q), cirq.measure(q, key="m"))
    with pytest.raises(SerializationError, match=f"moment {pulses_before}: .* nan or infinite"):
        CircuitTemplate(circuit, "c")
