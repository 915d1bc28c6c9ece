"""Drives the archived ``cirq-iqm`` 14.x ``IQMSampler`` against a server given by URL.

Runs in ``.venv-compat-cirq`` (see ``tests/test_compat_cirq_iqm.py``): a Bell circuit, a sweep, a
batch and an abort. Prints one JSON report on stdout.
"""

from __future__ import annotations

import json
import sys

import cirq
import sympy
from iqm.cirq_iqm.devices.iqm_device import IQMDevice  # noqa: F401 (imports must work)
from iqm.cirq_iqm.iqm_sampler import IQMSampler


def main(url: str) -> None:
    report: dict[str, object] = {}
    sampler = IQMSampler(url)
    device = sampler.device
    q1, q3 = device.qubits[0], device.qubits[2]  # QB1 and QB3 of Adonis
    bell = cirq.Circuit(cirq.H(q1), cirq.CNOT(q1, q3), cirq.measure(q1, q3, key="m"))
    routed = device.decompose_circuit(bell)
    result = sampler.run(routed, repetitions=200)
    bits = result.measurements["m"]
    report["bell_agree"] = float((bits[:, 0] == bits[:, 1]).mean())
    theta = sympy.Symbol("theta")
    swept = device.decompose_circuit(cirq.Circuit(cirq.X(q1) ** theta, cirq.measure(q1, key="a")))
    results = sampler.run_sweep(swept, cirq.Points("theta", [0.0, 1.0]), repetitions=50)
    report["sweep_means"] = [float(r.measurements["a"].mean()) for r in results]
    batch = sampler.run_batch([routed, routed], repetitions=20)
    report["batch_sizes"] = [len(b) for b in batch]
    try:
        request = sampler.create_run_request([routed], repetitions=10)
        job_id = sampler._client.submit_run_request(request)
        sampler._client.abort_job(job_id)
        report["abort_status"] = str(sampler._client.get_run_status(job_id).status)
    except Exception as error:  # report, do not crash: the test asserts on the report
        report["abort_error"] = repr(error)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
