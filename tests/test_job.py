"""Turning a job's answer into Cirq results, and the progress line, without a server."""

from __future__ import annotations

import io
import uuid

import cirq
import numpy as np
import pytest

from cirq_iqm_ext.errors import CircuitExecutionError
from cirq_iqm_ext.sampling.job import circuit_metadata, results_from_run
from cirq_iqm_ext.sampling.progress import ProgressLine
from cirq_iqm_ext.wire.models import RunResult, Status

JOB = uuid.UUID("5b0c1f9e-4a7c-4f0e-9f49-0c7f5c1d2e3a")


def run_with(measurements: list, circuits: list, shots: int = 4) -> RunResult:
    return RunResult.from_dict(
        {
            "status": "ready",
            "measurements": measurements,
            "warnings": ["heralding dropped shots"],
            "metadata": {
                "request": {"circuits": circuits, "shots": shots},
                "calibration_set_id": str(JOB),
                "timestamps": {"job_end": "t"},
            },
        }
    )


def circuit(metadata: dict, width: int = 2) -> dict:
    qubits = [f"QB{i + 1}" for i in range(width)]
    return {
        "name": "c",
        "metadata": metadata,
        "instructions": [{"name": "measure", "qubits": qubits, "args": {"key": "m"}}],
    }


def test_heralding_reduced_and_empty_shot_counts():
    meta = circuit_metadata({"t": 0.5}, 0, {"q(0)": "QB1"}, {"q(0)": "QB2"}, {})
    run = run_with([{"m": [[0, 1], [1, 1]]}, {"m": []}], [circuit(meta), circuit(meta)])
    first, second = results_from_run(JOB, run)
    assert first[1].measurements["m"].shape == (2, 2)
    assert first[1].shots == 2 and first[1].requested_shots == 4
    assert second[1].measurements["m"].shape == (0, 2)
    assert first[1].params == cirq.ParamResolver({"t": 0.5})
    assert first[1].initial_mapping == {"q(0)": "QB1"}
    assert first[1].final_mapping == {"q(0)": "QB2"}
    assert first[1].warnings == ("heralding dropped shots",)
    assert first[1].calibration_set_id == JOB


def test_invert_masks_are_applied():
    meta = circuit_metadata({}, 3, {}, {}, {"m": (True, False)})
    [(program, result)] = results_from_run(
        JOB, run_with([{"m": [[0, 0], [1, 1]]}], [circuit(meta)])
    )
    assert program == 3
    np.testing.assert_array_equal(result.measurements["m"], [[1, 0], [0, 1]])


def test_packed_and_list_measurements_give_the_same_result():
    meta = circuit_metadata({}, 0, {}, {}, {})
    plain = run_with([{"m": [[0, 1], [1, 1], [1, 0]]}], [circuit(meta)])
    packed = RunResult.from_dict(
        {
            **plain.to_dict(),
            "measurements_format": "packed",
            "measurements": [{"m": {"shape": [3, 2], "bits": "eA=="}}],
        }
    )
    assert packed.status is Status.READY
    [(_, a)] = results_from_run(JOB, plain)
    [(_, b)] = results_from_run(JOB, packed)
    assert a == b


def test_result_count_mismatch_is_an_error():
    meta = circuit_metadata({}, 0, {}, {}, {})
    run = run_with([{"m": [[0, 1]]}], [circuit(meta), circuit(meta)])
    with pytest.raises(CircuitExecutionError, match=f"Job {JOB} returned results for 1"):
        results_from_run(JOB, run)


def test_progress_line_only_after_a_few_seconds_and_only_when_enabled():
    stream = io.StringIO()
    line = ProgressLine(JOB, True, stream)
    line.update(Status.PENDING_EXECUTION, 1.0)
    assert stream.getvalue() == ""
    line.update(Status.PENDING_EXECUTION, 4.2)
    line.update(Status.READY, 5.0)
    line.finish()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert f"IQM job {JOB}: ready (5 s)" in text
    quiet = io.StringIO()
    off = ProgressLine(JOB, None, quiet)  # not a terminal: off
    off.update(Status.PENDING_EXECUTION, 10.0)
    off.finish()
    assert quiet.getvalue() == ""
