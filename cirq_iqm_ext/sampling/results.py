"""``IQMResult``: a ``cirq.ResultDict`` that knows the job, calibration and qubits behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import cirq
import numpy as np


class IQMResult(cirq.ResultDict):
    """Measurements of one circuit at one sweep point, with the IQM job's metadata.

    Measurement arrays are shaped ``(shots, qubits)`` like those of Cirq's simulators. With
    heralding the number of shots can be below the requested repetitions.

    Args:
        params: The sweep point.
        measurements: Measurement key -> array of 0/1, shape ``(shots, qubits)``.
        records: Measurement key -> array of 0/1, shape ``(shots, instances, qubits)``, for
            circuits that measure a key more than once (Cirq's repeated keys).
        job_id: The IQM job that produced the result.
        calibration_set_id: The calibration set the job ran with.
        timestamps: The job's timestamps (ISO 8601 strings).
        initial_mapping: Logical qubit -> physical qubit name at the start of the compiled circuit.
        final_mapping: Logical qubit -> physical qubit name at its end (after routing).
        warnings: Warnings the server attached to the job.
        requested_shots: The repetitions asked for.
    """

    def __init__(
        self,
        *,
        params: cirq.ParamResolver | None = None,
        measurements: Mapping[str, np.ndarray] | None = None,
        records: Mapping[str, np.ndarray] | None = None,
        job_id: UUID | str | None = None,
        calibration_set_id: UUID | str | None = None,
        timestamps: Mapping[str, str] | None = None,
        initial_mapping: Mapping[str, str] | None = None,
        final_mapping: Mapping[str, str] | None = None,
        warnings: Sequence[str] = (),
        requested_shots: int | None = None,
    ):
        if records is not None and not records:
            records = None
        super().__init__(
            params=params,
            measurements=measurements if records is None else None,
            records=records,
        )
        self.job_id = None if job_id is None else UUID(str(job_id))
        self.calibration_set_id = (
            None if calibration_set_id is None else UUID(str(calibration_set_id))
        )
        self.timestamps: dict[str, str] = dict(timestamps or {})
        self.initial_mapping: dict[str, str] = dict(initial_mapping or {})
        self.final_mapping: dict[str, str] = dict(final_mapping or {})
        self.warnings: tuple[str, ...] = tuple(warnings)
        self.requested_shots = requested_shots

    @property
    def shots(self) -> int:
        """Shots that came back (fewer than requested when heralding dropped some)."""
        return self.repetitions

    def __repr__(self) -> str:
        return (
            f"IQMResult(job_id={str(self.job_id)!r}, params={self.params!r}, "
            f"shots={self.repetitions}, keys={sorted(self.records)!r})"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from cirq_iqm_ext.ui.display import result_text  # local: display is for humans only

        p.text(repr(self) if cycle else result_text(self))

    def _repr_html_(self) -> str:
        from cirq_iqm_ext.ui.display import result_html

        return result_html(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IQMResult):
            return NotImplemented
        return (
            super().__eq__(other)
            and self.job_id == other.job_id
            and self.calibration_set_id == other.calibration_set_id
            and self.timestamps == other.timestamps
            and self.initial_mapping == other.initial_mapping
            and self.final_mapping == other.final_mapping
            and self.warnings == other.warnings
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def _json_namespace_(cls) -> str:
        return "cirq_iqm_ext"

    def _json_dict_(self) -> dict[str, Any]:
        data = super()._json_dict_()
        data.update(
            job_id=None if self.job_id is None else str(self.job_id),
            calibration_set_id=None
            if self.calibration_set_id is None
            else str(self.calibration_set_id),
            timestamps=self.timestamps,
            initial_mapping=self.initial_mapping,
            final_mapping=self.final_mapping,
            warnings=list(self.warnings),
            requested_shots=self.requested_shots,
        )
        return data

    @classmethod
    def _from_json_dict_(cls, params: Any, **kwargs: Any) -> IQMResult:
        packed = kwargs.pop("records")
        # Cirq's own JSON protocol decodes its packed records (no private helper of Cirq's).
        plain = cirq.ResultDict._from_json_dict_(params=params, records=packed)
        kwargs.pop("cirq_type", None)
        if any(value.shape[1] != 1 for value in plain.records.values()):
            return cls(params=params, records=dict(plain.records), **kwargs)
        measurements = {key: value[:, 0, :] for key, value in plain.records.items()}
        return cls(params=params, measurements=measurements, **kwargs)
