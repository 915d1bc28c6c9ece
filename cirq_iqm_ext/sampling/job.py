"""``IQMJob``: one submitted sweep or batch, possibly spread over several IQM jobs.

Everything needed to turn a job's measurements into Cirq results (the sweep point, the program
index, the qubit maps, measurement inversions) travels inside each circuit's metadata, which the
server echoes back in ``metadata.request``. So a job can be fetched by id from another process, or
after a restart, and still gives the same :class:`~cirq_iqm_ext.IQMResult` objects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import cirq
import numpy as np

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.errors import CircuitExecutionError, IQMError, JobAbortedError
from cirq_iqm_ext.sampling.progress import PROGRESS_AFTER_SECONDS, progress_for
from cirq_iqm_ext.sampling.results import IQMResult
from cirq_iqm_ext.serialization.serialize import METADATA_KEY
from cirq_iqm_ext.wire.models import RunResult, Status


def circuit_metadata(
    params: Mapping[str, Any],
    program_index: int,
    initial_mapping: Mapping[str, str],
    final_mapping: Mapping[str, str],
    invert_masks: Mapping[str, Sequence[bool]],
    repeated: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The metadata entry that lets results be rebuilt from the job alone.

    ``repeated`` maps a Cirq key measured more than once to its wire keys, in order.
    """
    entry: dict[str, Any] = {"params": dict(params), "program": program_index}
    if initial_mapping:
        entry["initial_mapping"] = dict(initial_mapping)
    if final_mapping and final_mapping != initial_mapping:
        entry["final_mapping"] = dict(final_mapping)
    if invert_masks:
        entry["invert"] = {k: [int(b) for b in v] for k, v in invert_masks.items()}
    if repeated:
        entry["repeated"] = {k: list(v) for k, v in repeated.items()}
    return {METADATA_KEY: entry}


def results_from_run(job_id: UUID, run: RunResult) -> list[tuple[int, IQMResult]]:
    """Turns a ready job's measurements into ``(program index, result)`` pairs, in circuit order.

    Raises:
        CircuitExecutionError: The job is ready but its measurements do not match its circuits.
    """
    measurements = run.measurements or []
    raw_circuits = run.metadata.request_dict.get("circuits", [])
    if len(measurements) != len(raw_circuits):
        raise CircuitExecutionError(
            f"Job {job_id} returned results for {len(measurements)} circuit(s) but has "
            f"{len(raw_circuits)}",
            job_id=job_id,
        )
    requested = run.metadata.request_dict.get("shots")
    out = []
    for raw, circuit_measurements in zip(raw_circuits, measurements, strict=True):
        info = ((raw.get("metadata") or {}).get(METADATA_KEY)) or {}
        widths = {
            inst["args"]["key"]: len(inst["qubits"])
            for inst in raw.get("instructions", [])
            if inst.get("name") in ("measure", "measurement")
        }
        invert = info.get("invert", {})
        arrays = {}
        for key, shots in circuit_measurements.items():
            array = np.asarray(shots, dtype=np.int8)
            if array.size == 0:
                array = array.reshape(0, widths.get(key, 0))
            if key in invert:
                array = array ^ np.asarray(invert[key], dtype=np.int8)
            arrays[key] = array
        records = _records_of_repeated_keys(arrays, info.get("repeated", {}))
        initial = info.get("initial_mapping", {})
        result = IQMResult(
            params=cirq.ParamResolver(info.get("params", {})),
            measurements=arrays,
            records=records,
            job_id=job_id,
            calibration_set_id=run.metadata.calibration_set_id,
            timestamps=run.metadata.timestamps,
            initial_mapping=initial,
            final_mapping=info.get("final_mapping", initial),
            warnings=run.warnings,
            requested_shots=requested,
        )
        out.append((int(info.get("program", 0)), result))
    return out


def _records_of_repeated_keys(
    arrays: dict[str, np.ndarray], repeated: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray] | None:
    """Cirq's records for keys measured more than once, shaped ``(shots, instances, qubits)``;
    their wire keys are taken out of ``arrays``."""
    if not repeated:
        return None
    records = {}
    for key, wire_keys in repeated.items():
        parts = [arrays.pop(w) for w in wire_keys if w in arrays]
        if parts:
            records[key] = np.stack(parts, axis=1)
    for key in list(arrays):
        records[key] = arrays.pop(key)[:, np.newaxis, :]
    return records


class IQMJob:
    """A sweep or batch submitted to an IQM quantum computer, as one or more IQM jobs.

    Args:
        client: The client the jobs were submitted with.
        job_ids: The IQM job ids, in circuit order.
        timeout: Default seconds :meth:`result` waits.
        progress: Show a progress line on stderr (``None``: only when it is a terminal).
    """

    def __init__(
        self,
        client: IQMClient,
        job_ids: Sequence[UUID],
        *,
        timeout: float = 900.0,
        progress: bool | None = None,
    ):
        if not job_ids:
            raise ValueError("An IQMJob needs at least one job id")
        self._client = client
        self.job_ids: tuple[UUID, ...] = tuple(job_ids)
        self._timeout = timeout
        self._progress = progress
        self._runs: dict[UUID, RunResult] = {}

    @property
    def job_id(self) -> UUID:
        """The (first) IQM job id; see :attr:`job_ids` when the work was split."""
        return self.job_ids[0]

    def __repr__(self) -> str:
        ids = ", ".join(repr(str(j)) for j in self.job_ids)
        return f"IQMJob(job_ids=[{ids}])"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        # Shows the live state (asks the server); display.job_summary never raises for it.
        from cirq_iqm_ext.ui.display import job_text  # local: display is for humans only

        p.text(repr(self) if cycle else job_text(self))

    def _repr_html_(self) -> str:
        from cirq_iqm_ext.ui.display import job_html

        return job_html(self)

    def summary(self) -> list[dict[str, Any]]:
        """The state of each IQM job: id, status, message, timestamps, calibration set id.

        Finished jobs come from this job's cache, others are asked for. Never raises for server
        trouble: an unreachable server shows as status ``"unknown"`` with the error as the
        message, because a notebook repr must not fail.
        """
        return [self._summary_row(job_id) for job_id in self.job_ids]

    def _summary_row(self, job_id: UUID) -> dict[str, Any]:
        row: dict[str, Any] = {"job_id": str(job_id), "status": "unknown", "message": None}
        row["timestamps"] = {}
        run = self._runs.get(job_id)
        try:
            if run is None:
                run = self._client.get_run(job_id)
        except CircuitExecutionError as error:
            row.update(status="failed", message=error.detail or str(error))
        except IQMError as error:
            row["message"] = str(error)
        if run is not None:
            calibration = run.metadata.calibration_set_id
            row.update(
                status=run.status.value,
                message=run.message,
                timestamps=dict(run.metadata.timestamps),
                calibration_set_id=None if calibration is None else str(calibration),
            )
        return row

    def status(self) -> Status:
        """The least advanced status of the job's IQM jobs (``ready`` only when all are)."""
        order = [Status.PENDING_COMPILATION, Status.PENDING_EXECUTION, Status.READY]
        statuses = [self._client.get_run_status(j).status for j in self.job_ids]
        for bad in (Status.FAILED, Status.ABORTED):
            if bad in statuses:
                return bad
        unknown = [s for s in statuses if s not in order]
        if unknown:
            return unknown[0]
        return min(statuses, key=order.index)

    def done(self) -> bool:
        """Whether every IQM job has finished (ready, failed or aborted)."""
        return all(self._client.get_run_status(j).status.is_final for j in self.job_ids)

    def abort(self) -> None:
        """Aborts every IQM job of this work that has not finished."""
        errors = []
        for job_id in self.job_ids:
            if job_id in self._runs:
                continue
            try:
                self._client.abort_job(job_id)
            except IQMError as error:
                errors.append(error)
        if errors and len(errors) == len(self.job_ids):
            raise errors[0]

    def _wait_one(self, job_id: UUID, deadline: float) -> RunResult:
        run = self._runs.get(job_id)
        if run is not None:
            return run
        progress = progress_for(job_id, self._progress)
        try:
            run = self._client.wait_for_results(
                job_id,
                timeout_secs=max(0.0, deadline - time.monotonic()),
                progress_callback=progress.update,
            )
        finally:
            progress.finish()
        if run.status == Status.ABORTED:
            raise JobAbortedError(f"Job {job_id} was aborted; it has no results", job_id=job_id)
        if run.status != Status.READY:
            raise CircuitExecutionError(
                f"Job {job_id} ended as {run.status.value}: {run.message or 'no reason given'}",
                job_id=job_id,
            )
        self._runs[job_id] = run
        return run

    def results_with_programs(self, timeout: float | None = None) -> list[tuple[int, IQMResult]]:
        """Like :meth:`result`, paired with each result's program index in the batch."""
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        out: list[tuple[int, IQMResult]] = []
        try:
            for job_id in self.job_ids:
                out.extend(results_from_run(job_id, self._wait_one(job_id, deadline)))
        except KeyboardInterrupt:
            self._abort_on_interrupt()
            raise
        return out

    def result(self, timeout: float | None = None) -> list[IQMResult]:
        """Waits for the job and returns one result per circuit and sweep point, in order.

        Ctrl-C while waiting aborts the remote job(s) once, says so on stderr and re-raises
        ``KeyboardInterrupt``.

        Args:
            timeout: Seconds to wait at most (default: the sampler's ``run_sweep_timeout``).

        Raises:
            APITimeoutError: Not finished in time; the job still runs and can be fetched later with
                ``IQMSampler.get_job(job_id)``.
            CircuitExecutionError: The job failed.
            JobAbortedError: The job was aborted.
        """
        return [result for _, result in self.results_with_programs(timeout)]

    def _abort_on_interrupt(self) -> None:
        pending = [j for j in self.job_ids if j not in self._runs]
        for job_id in pending:
            try:
                self._client.abort_job(job_id)
                print(f"Interrupted: aborted IQM job {job_id}", file=sys.stderr)
            except IQMError as error:
                print(f"Interrupted: could not abort IQM job {job_id}: {error}", file=sys.stderr)


__all__ = [
    "PROGRESS_AFTER_SECONDS",
    "IQMJob",
    "JobAbortedError",
    "circuit_metadata",
    "results_from_run",
]
