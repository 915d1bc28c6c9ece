"""Drives IQM's official ``iqm-client`` 36.x and its Cirq adapter against a server; prints JSON.

Run with the compatibility environment's interpreter (``.venv-compat36/bin/python``), never with
the project's own: ``python iqm_client36_check.py URL``. The server must speak the IQM Server API
(PROTOCOL_IQM_SERVER.md) at the root ``URL`` and run jobs with a delay of about a second, so that
the cancel step catches a pending job. Authentication comes from the environment the way the
official client reads it (``IQM_TOKEN``). Exits 1 (after printing what it saw, with the error) when
a step fails.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from collections import Counter
from typing import Any

import cirq
import sympy
from iqm.cirq_iqm.iqm_sampler import IQMSampler
from iqm.iqm_client import IQMClient
from iqm.pulse import Circuit, CircuitOperation


def bell(alice: str, bob: str) -> Circuit:
    """RY(pi/2) on both, CZ, RY(-pi/2) on bob: (|00> + |11>)/sqrt(2); angles in radians."""
    half = 1.5707963267948966

    def prx(qubit: str, angle: float, phase: float) -> CircuitOperation:
        return CircuitOperation(name="prx", locus=(qubit,), args={"angle": angle, "phase": phase})

    return Circuit(
        name="bell",
        instructions=(
            prx(alice, half, half),
            prx(bob, half, half),
            CircuitOperation(name="cz", locus=(alice, bob), args={}),
            prx(bob, half, 3 * half),
            CircuitOperation(name="measure", locus=(alice,), args={"key": "a"}),
            CircuitOperation(name="measure", locus=(bob,), args={"key": "b"}),
        ),
        metadata={"origin": "iqm_client36_check"},
    )


def _status(value: Any) -> str:
    return str(getattr(value, "value", value))


def main(url: str, out: dict[str, Any]) -> None:
    from importlib.metadata import version

    out["iqm_client_version"] = version("iqm-client")
    out["cirq_version"] = cirq.__version__
    client = IQMClient.from_url(url)  # lists the quantum computers (E1)
    out["quantum_computer"] = client.quantum_computer_name
    out["health"] = client.get_health()
    out["about"] = sorted(client.get_about())

    dqa = client.get_dynamic_quantum_architecture()
    out["dqa"] = {
        "calibration_set_id": str(dqa.calibration_set_id),
        "qubits": list(dqa.qubits),
        "resonators": list(dqa.computational_resonators),
        "gates": sorted(dqa.gates),
    }
    again = client.get_dynamic_quantum_architecture(dqa.calibration_set_id)
    out["dqa_by_id_matches"] = again.calibration_set_id == dqa.calibration_set_id
    static = client.get_static_quantum_architecture()
    out["static"] = {"dut_label": static.dut_label, "qubits": list(static.qubits)}
    try:
        metrics = client.get_calibration_quality_metrics()
        out["metrics"] = type(metrics).__name__
    except Exception as error:  # informative only: not part of the required surface
        out["metrics_error"] = f"{type(error).__name__}: {error}"

    # Submit, wait, read measurements and counts.
    alice, bob = out["dqa"]["qubits"][0], _neighbour(dqa, out["dqa"]["qubits"][0])
    job = client.submit_circuits([bell(alice, bob)], shots=200)
    out["job_status"] = _status(job.wait_for_completion(timeout_secs=60, polling_interval=0.05))
    results = job.result()
    assert results is not None
    shots = [f"{a[0]}{b[0]}" for a, b in zip(results[0]["a"], results[0]["b"], strict=True)]
    out["bell_counts"] = dict(Counter(shots))
    counts = job.result_counts()
    assert counts is not None
    out["counts"] = {"keys": list(counts[0].measurement_keys), "counts": dict(counts[0].counts)}
    out["payload_circuits"] = len(client.get_job(job.job_id).payload().circuits)

    # A wait: the DQA lists delay, and the official client validates and sends it unchanged.
    flip_and_wait = Circuit(
        name="delayed",
        instructions=(
            CircuitOperation(
                name="prx", locus=(alice,), args={"angle": 3.141592653589793, "phase": 0.0}
            ),
            CircuitOperation(name="delay", locus=(alice, bob), args={"duration": 2e-6}),
            CircuitOperation(name="measure", locus=(alice,), args={"key": "d"}),
        ),
    )
    delayed = client.submit_circuits([flip_and_wait], shots=40)
    out["delay_status"] = _status(
        delayed.wait_for_completion(timeout_secs=60, polling_interval=0.05)
    )
    delayed_results = delayed.result()
    assert delayed_results is not None
    out["delay_ones"] = sum(shot[0] for shot in delayed_results[0]["d"])
    sent = client.get_job(delayed.job_id).payload().circuits[0].instructions[1]
    out["delay_payload"] = {"name": sent.name, "locus": list(sent.locus), "args": dict(sent.args)}
    out["delay_dqa_loci"] = (
        [list(locus) for locus in dqa.gates["delay"].loci] if "delay" in dqa.gates else None
    )

    # Cancel a job that is still pending, then cancel it again (a no-op on a terminal job).
    pending = client.submit_circuits([bell(alice, bob)], shots=10)
    client.cancel_job(pending.job_id)
    tracker = client.get_job(pending.job_id)
    out["cancelled_status"] = _status(tracker.update())
    client.cancel_job(pending.job_id)
    out["cancel_again_ok"] = True
    client.delete_job(pending.job_id)
    try:
        client.get_job(pending.job_id)
        out["deleted_gone"] = False
    except Exception as error:
        out["deleted_gone"] = type(error).__name__

    # The official Cirq adapter: one circuit and a sweep.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = IQMSampler(url)
    qa, qb = cirq.NamedQubit(alice), cirq.NamedQubit(bob)
    circuit = cirq.Circuit(
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=0.5).on_each(qa, qb),
        cirq.CZ(qa, qb),
        cirq.PhasedXPowGate(exponent=0.5, phase_exponent=1.5).on(qb),
        cirq.measure(qa, qb, key="m"),
    )
    result = sampler.run(circuit, repetitions=100)
    out["cirq_counts"] = {
        "".join(map(str, bits)): n
        for bits, n in Counter(map(tuple, result.measurements["m"].tolist())).items()
    }
    # Dynamic circuits through the Cirq adapter: a reset, and an X conditioned on a measurement.
    reset_circuit = cirq.Circuit(
        cirq.X(qa),
        cirq.measure(qa, key="before"),
        cirq.reset(qa),
        cirq.measure(qa, key="after"),
    )
    reset_result = sampler.run(reset_circuit, repetitions=30)
    out["reset_ones"] = {
        key: int(reset_result.measurements[key].sum()) for key in ("before", "after")
    }
    feedback_circuit = cirq.Circuit(
        cirq.X(qa),
        cirq.measure(qa, key="f"),
        cirq.X(qb).with_classical_controls("f"),
        cirq.measure(qb, key="target"),
    )
    feedback_result = sampler.run(feedback_circuit, repetitions=30)
    out["cc_x_ones"] = {
        key: int(feedback_result.measurements[key].sum()) for key in ("f", "target")
    }
    sent_feedback = [
        {"name": op.name, "locus": list(op.locus), "args": dict(op.args)}
        for op in sampler.create_circuit_job_definition(feedback_circuit).circuits[0].instructions
    ]
    out["cc_x_payload"] = sent_feedback
    out["feedback_groups"] = [sorted(group) for group in client.get_feedback_groups()]
    out["dynamic_dqa_loci"] = {
        gate: [list(locus) for locus in dqa.gates[gate].loci]
        for gate in ("reset", "cc_prx")
        if gate in dqa.gates
    }

    theta = sympy.Symbol("theta")
    sweep_circuit = cirq.Circuit(cirq.XPowGate(exponent=theta).on(qa), cirq.measure(qa, key="x"))
    sweep = sampler.run_sweep(sweep_circuit, cirq.Points("theta", [0.0, 1.0]), repetitions=50)
    out["sweep_ones"] = [int(r.measurements["x"].sum()) for r in sweep]


def _neighbour(dqa: Any, qubit: str) -> str:
    for locus in dqa.gates["cz"].loci:
        if qubit in locus:
            return next(q for q in locus if q != qubit)
    raise AssertionError(f"{qubit} has no cz partner")


if __name__ == "__main__":
    report: dict[str, Any] = {}
    try:
        main(sys.argv[1], report)
    except Exception as failure:
        report["error"] = f"{type(failure).__name__}: {failure}"
        report["traceback"] = traceback.format_exc()
        print(json.dumps(report, indent=1, default=str))
        sys.exit(1)
    print(json.dumps(report, indent=1, default=str))
