"""``IQMSampler``: IQM quantum computers as a ``cirq.Sampler``.

A program is compiled once per device (cached) with its symbols kept, serialised once into a
template, and every sweep point only fills in numbers. All points of a sweep, and all programs x
points of a batch with the same repetitions, go into one IQM job (split only past
``max_circuits_per_job``, the parts submitted concurrently). Results come back as
:class:`~cirq_iqm_ext.IQMResult`.
"""

from __future__ import annotations

import json
import numbers
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import cirq
import duet

from cirq_iqm_ext.client.iqm_client import IQMClient
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.errors import (
    ClientConfigurationError,
    ModelValidationError,
    ServerResponseError,
)
from cirq_iqm_ext.sampling.job import IQMJob, circuit_metadata
from cirq_iqm_ext.sampling.results import IQMResult
from cirq_iqm_ext.serialization.serialize import CircuitTemplate
from cirq_iqm_ext.wire.models import HeraldingMode, RunRequest, check_job_options

_T = TypeVar("_T")

#: Compiled programs kept per sampler.
COMPILE_CACHE_SIZE = 128


@dataclass(frozen=True)
class PreparedProgram:
    """A program compiled for the device and serialised into a template.

    Attributes:
        template: The serialised native circuit, with logical wire names where known.
        qubit_mapping: Wire name -> physical qubit name, sent as the run request's mapping.
        initial_mapping: Logical qubit (as text) -> physical qubit name at the start.
        final_mapping: Logical qubit (as text) -> physical qubit name at the end.
        circuit: The native circuit on device qubits.
    """

    template: CircuitTemplate
    qubit_mapping: dict[str, str]
    initial_mapping: dict[str, str]
    final_mapping: dict[str, str]
    circuit: cirq.Circuit


def _qubit_text(qubit: cirq.Qid) -> str:
    return qubit.name if isinstance(qubit, cirq.NamedQubit) else str(qubit)


class CalibrationDriftWarning(UserWarning):
    """Programs compiled for one calibration set ran on another."""


class IQMSampler(cirq.Sampler):
    """Runs Cirq circuits on an IQM quantum computer.

    Args:
        url: Base URL of the quantum computer (or of the embedded server).
        client: A ready :class:`~cirq_iqm_ext.IQMClient` to send through instead of ``url``
            (e.g. one shared by several samplers); the sampler then leaves closing it to you.
        device: The device to compile for; fetched from the server on first use when ``None``.
        calibration_set_id: Run with this calibration set instead of the server's default.
        compile: Compile programs that are not native (once per program and device). When False,
            programs are validated against the device and sent as they are (gates that map one
            to one onto pulses are accepted: ``Z`` rotations, ``PhasedXZGate``, X/Y powers,
            ``PhasedXPowGate``, ``CZ``, measurements, waits and barriers).
        optimization_level: How much the compiler may change the program (see
            :func:`~cirq_iqm_ext.transpile`). ``0`` (the default) translates each
            operation on its own: what you write is what runs (waits and barriers kept, device
            qubits left where they are, nothing merged or cancelled). ``1`` merges adjacent
            single-qubit gates, ``2`` also resynthesises two-qubit blocks, ``3`` also tries more
            layouts.
        max_circuits_per_job: Split a sweep or batch into jobs of at most this many circuits.
        run_sweep_timeout: Seconds to wait for a job's results.
        max_circuit_duration_over_t2: Passed to the server (``0.0`` disables its duration check).
        heralding_mode: ``"none"`` or ``"zeros"``.
        progress: Show a progress line on stderr while waiting (``None``: when it is a terminal).
        seed: Seed of the compiler's layout trials.
        move_gate_validation: IQM Server API job option: ``"strict"``, ``"allow_prx"`` or
            ``"none"`` (MOVE-sandwich rules on star devices; ``None``: the server's default).
        move_gate_frame_tracking: IQM Server API job option: ``"full"``,
            ``"no_detuning_correction"`` or ``"none"``.
        active_reset_cycles: IQM Server API job option: active resets before each shot
            (``None``: reset by waiting; ``0``: no initial reset).
        dd_mode: IQM Server API job option: ``"disabled"`` or ``"enabled"`` (dynamical
            decoupling).
        dd_strategy: IQM Server API job option: the dynamical-decoupling strategy.
        use_timeslot: Submit into the account's reserved timeslot (IQM Server API).
        **client_options: Passed to :class:`~cirq_iqm_ext.IQMClient`: authentication
            (``token``, ``tokens_file``, ``auth_server_url``, ``username``, ``password``),
            ``client_signature``, ``transport``, ``timeout``, ...
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: IQMClient | None = None,
        device: IQMDevice | None = None,
        calibration_set_id: UUID | str | None = None,
        compile: bool = True,
        optimization_level: int = 0,
        max_circuits_per_job: int | None = None,
        run_sweep_timeout: float = 900.0,
        max_circuit_duration_over_t2: float | None = None,
        heralding_mode: HeraldingMode | str = HeraldingMode.NONE,
        progress: bool | None = None,
        seed: int | None = None,
        move_gate_validation: str | None = None,
        move_gate_frame_tracking: str | None = None,
        active_reset_cycles: int | None = None,
        dd_mode: str | None = None,
        dd_strategy: Mapping[str, Any] | None = None,
        use_timeslot: bool = False,
        **client_options: Any,
    ):
        if max_circuits_per_job is not None and (
            not _is_integer(max_circuits_per_job) or max_circuits_per_job < 1
        ):
            raise ClientConfigurationError(
                f"max_circuits_per_job must be a positive integer, got {max_circuits_per_job!r}"
            )
        if not _is_integer(optimization_level) or int(optimization_level) not in range(4):
            raise ClientConfigurationError(
                f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}"
            )
        if not run_sweep_timeout > 0:
            raise ClientConfigurationError(
                f"run_sweep_timeout must be positive, got {run_sweep_timeout}"
            )
        try:
            self._heralding_mode = HeraldingMode(heralding_mode)
        except ValueError:
            raise ClientConfigurationError(
                f"heralding_mode must be 'none' or 'zeros', got {heralding_mode!r}"
            ) from None
        if device is not None and not isinstance(device, IQMDevice):
            raise ClientConfigurationError(
                f"device must be an IQMDevice, got {type(device).__name__}"
            )
        self._job_options = _job_options(
            move_gate_validation=move_gate_validation,
            move_gate_frame_tracking=move_gate_frame_tracking,
            active_reset_cycles=active_reset_cycles,
            dd_mode=dd_mode,
            dd_strategy=dd_strategy,
            use_timeslot=use_timeslot,
        )
        self._client, owns_client = _client_for(url, client, client_options)
        self._device = device
        self._fetched_device = device is None
        self._drift_warned: set[tuple[UUID, UUID]] = set()
        self._calibration_set_id = (
            None if calibration_set_id is None else UUID(str(calibration_set_id))
        )
        self._compile = compile
        self._optimization_level = int(optimization_level)
        self._max_circuits_per_job = (
            None if max_circuits_per_job is None else int(max_circuits_per_job)
        )
        self._timeout = run_sweep_timeout
        self._max_duration = max_circuit_duration_over_t2
        self._progress = progress
        self._seed = seed
        self._cache: OrderedDict[Any, PreparedProgram] = OrderedDict()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # Held in a list the finaliser shares, so a sampler that is never closed still releases
        # its connections and threads when it is collected (no ResourceWarning).
        self._executors: list[ThreadPoolExecutor] = []
        self._finalizer = weakref.finalize(
            self, _release, self._client if owns_client else None, self._executors
        )

    # ------------------------------------------------------------------ set-up

    def __repr__(self) -> str:
        return (
            f"IQMSampler({self._client.url!r}, compile={self._compile}, "
            f"optimization_level={self._optimization_level})"
        )

    @property
    def client(self) -> IQMClient:
        """The underlying REST client."""
        return self._client

    @property
    def device(self) -> IQMDevice:
        """The device, fetched from the server (once) on first use.

        Dynamic circuits (mid-circuit measurement, ``reset``, feed-forward) are allowed where the
        server runs them: always on the IQM Server API, on a v1 server when its architecture
        lists ``reset`` or ``cc_prx``. Feedback groups come from the server where it has them.
        """
        with self._lock:
            if self._device is None:
                spec = None
                if self._calibration_set_id is not None:
                    # A pinned set: compile for what that set calibrated, where the server
                    # says (the v1 endpoint for it is optional).
                    try:
                        spec = self._client.get_dynamic_quantum_architecture(
                            self._calibration_set_id
                        )
                    except (ClientConfigurationError, ServerResponseError):
                        spec = None
                if spec is None:
                    spec = self._client.get_quantum_architecture()
                iqm_server = self._client.api == "iqm-server"
                self._device = IQMDevice.from_architecture(
                    spec,
                    self._calibration_set_id,
                    mid_circuit_measurement=True if iqm_server else None,
                    feedback_groups=self._client.get_feedback_groups(),
                )
            return self._device

    def refresh_device(self) -> IQMDevice:
        """Fetches the device again and forgets every compiled program, e.g. after the server's
        calibration changed: the next run compiles for the new calibration set."""
        with self._lock:
            self._device = None if self._fetched_device else self._device
            self._cache.clear()
            self._drift_warned.clear()
        return self.device

    def close(self) -> None:
        """Closes the thread pool and the client it made (also done when it is collected).

        A client passed in as ``client=`` stays open: it belongs to whoever made it.
        """
        self._finalizer()

    def __enter__(self) -> IQMSampler:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(8, thread_name_prefix="iqm-sampler")
                self._executors.append(self._executor)
            return self._executor

    # ------------------------------------------------------------------ compile once

    def prepare(self, program: cirq.AbstractCircuit) -> PreparedProgram:
        """Compiles (or validates) and serialises ``program``; cached per program and device.

        Raises:
            CircuitValidationError: The program cannot run on the device (with ``compile=False``,
                or after compilation in case of a compiler bug).
            cirq_iqm_ext.errors.CompilationError: The program cannot be compiled (e.g. too many
                qubits, or an operation the compiler cannot translate).
        """
        device = self.device
        frozen = program.freeze() if isinstance(program, cirq.Circuit) else program
        key = (frozen, id(device))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        prepared = self._prepare_uncached(frozen, device)
        with self._lock:
            self._cache[key] = prepared
            while len(self._cache) > COMPILE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return prepared

    def _prepare_uncached(
        self, program: cirq.AbstractCircuit, device: IQMDevice
    ) -> PreparedProgram:
        device_qubits = set(device.qubits)
        on_device = all(
            isinstance(q, cirq.NamedQubit) and q in device_qubits for q in program.all_qubits()
        )
        if not self._compile:
            if not on_device:
                raise ClientConfigurationError(
                    "With compile=False the program must use the device's qubits "
                    f"({', '.join(device.qubit_names[:3])}, ...); it uses "
                    f"{sorted(map(str, program.all_qubits()))[:5]}. Use compile=True to map "
                    "logical qubits onto the device"
                )
            device.validate_circuit(program)  # raises, naming every violation
            return _as_native(program)
        if on_device and self._optimization_level == 0 and _is_valid_native(program, device):
            return _as_native(program)  # already native: translating would change nothing
        from cirq_iqm_ext.compiler.transpiler import (
            transpile,
        )  # the compiler is imported only when used

        compiled = transpile(
            program, device, optimization_level=self._optimization_level, seed=self._seed
        )
        # Wires carry the logical qubit they start with; routing ancillas keep physical names.
        wire_names: dict[cirq.Qid, str] = {}
        for logical, physical in compiled.initial_mapping.items():
            wire_names[physical] = _qubit_text(logical)
        for qubit in compiled.circuit.all_qubits():
            wire_names.setdefault(qubit, _qubit_text(qubit))
        feeds_forward = any(op.classical_controls for op in compiled.circuit.all_operations())
        if feeds_forward or len(set(wire_names.values())) != len(wire_names):
            # Names clash, or a cc_prx names its feedback qubit in an argument, which no
            # qubit mapping translates: send physical names.
            wire_names = {q: _qubit_text(q) for q in wire_names}
        template = CircuitTemplate(compiled.circuit, qubit_names=wire_names)
        mapping = {wire_names[q]: _qubit_text(q) for q in compiled.circuit.all_qubits()}
        return PreparedProgram(
            template=template,
            qubit_mapping=mapping,
            initial_mapping={
                _qubit_text(k): _qubit_text(v) for k, v in compiled.initial_mapping.items()
            },
            final_mapping={
                _qubit_text(k): _qubit_text(v) for k, v in compiled.final_mapping.items()
            },
            circuit=compiled.circuit,
        )

    # ------------------------------------------------------------------ requests

    def _payloads(
        self,
        programs: Sequence[cirq.AbstractCircuit],
        params_list: Sequence[cirq.Sweepable],
        repetitions: int,
    ) -> list[bytes]:
        """One run-request body (JSON text) per job: all programs × sweep points, split past the
        limit. Bodies are assembled from the templates' JSON text, never re-encoded."""
        if not _is_integer(repetitions) or repetitions < 1:
            raise ClientConfigurationError(
                f"repetitions must be a positive integer, got {repetitions!r}"
            )
        repetitions = int(repetitions)
        prepared_all = [self.prepare(p) for p in programs]
        mapping: dict[str, str] = {}
        for prepared in prepared_all:
            for wire, physical in prepared.qubit_mapping.items():
                if mapping.setdefault(wire, physical) != physical:
                    mapping = {}  # programs disagree on a logical name: send physical names
                    break
            else:
                continue
            break
        consistent = bool(mapping) and len(set(mapping.values())) == len(mapping)
        circuits: list[str] = []
        for index, (prepared, sweep) in enumerate(zip(prepared_all, params_list, strict=True)):
            resolvers = list(cirq.to_resolvers(sweep))
            invert = {
                k: m.invert_mask for k, m in prepared.template.measurements.items() if m.invert_mask
            }
            metadata = [
                circuit_metadata(
                    {str(k): _plain(v) for k, v in r.param_dict.items()},
                    index,
                    prepared.initial_mapping,
                    prepared.final_mapping,
                    invert,
                    prepared.template.repeated,
                )
                for r in resolvers
            ]
            prefix = f"p{index}_" if len(programs) > 1 else "point_"
            names = [f"{prefix}{point}" for point in range(len(resolvers))]
            template = prepared.template if consistent else CircuitTemplate(prepared.circuit)
            circuits.extend(template.resolve_json_many(resolvers, metadata, names))
        settings: dict[str, Any] = {"shots": repetitions}
        if consistent:
            settings["qubit_mapping"] = [
                {"logical_name": k, "physical_name": v} for k, v in mapping.items()
            ]
        if self._calibration_set_id is not None:
            settings["calibration_set_id"] = str(self._calibration_set_id)
        if self._max_duration is not None:
            settings["max_circuit_duration_over_t2"] = float(self._max_duration)
        settings["heralding_mode"] = self._heralding_mode.value
        settings.update(self._job_options)
        tail = "]," + json.dumps(settings, separators=(",", ":"))[1:]
        limit = self._max_circuits_per_job or len(circuits)
        return [
            ('{"circuits":[' + ",".join(circuits[start : start + limit]) + tail).encode()
            for start in range(0, len(circuits), limit)
        ]

    def create_run_requests(
        self,
        program: cirq.AbstractCircuit,
        params: cirq.Sweepable = None,
        repetitions: int = 1,
    ) -> list[RunRequest]:
        """The run request(s) :meth:`run_sweep` would send, without sending anything (a preview)."""
        return [
            RunRequest.from_dict(json.loads(body))
            for body in self._payloads([program], [params], repetitions)
        ]

    def submit(
        self,
        program: cirq.AbstractCircuit | Sequence[cirq.AbstractCircuit],
        params: cirq.Sweepable | Sequence[cirq.Sweepable] = None,
        repetitions: int = 1,
    ) -> IQMJob:
        """Submits a program and its sweep (or a list of programs with one sweep each) and returns
        at once with an :class:`~cirq_iqm_ext.IQMJob`.

        Raises:
            ClientConfigurationError: Bad repetitions, or programs and sweeps of different lengths.
        """
        if isinstance(program, cirq.AbstractCircuit):
            programs: list[cirq.AbstractCircuit] = [program]
            params_list: list[cirq.Sweepable] = [params]
        else:
            programs = list(program)
            params_list = [None] * len(programs) if params is None else list(params)
            if len(params_list) != len(programs):
                raise ClientConfigurationError(
                    f"Got {len(programs)} programs but {len(params_list)} sweeps; give one sweep "
                    "per program"
                )
        bodies = self._payloads(programs, params_list, repetitions)
        job_ids = self._map_concurrently(self._client.submit_payload, bodies)
        return IQMJob(self._client, job_ids, timeout=self._timeout, progress=self._progress)

    def get_job(self, job_id: UUID | str) -> IQMJob:
        """An :class:`~cirq_iqm_ext.IQMJob` for a job submitted earlier, e.g. by another
        process; its results are rebuilt from the job itself."""
        return IQMJob(
            self._client, [UUID(str(job_id))], timeout=self._timeout, progress=self._progress
        )

    def _map_concurrently(self, function: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) == 1:
            return [function(items[0])]
        futures = [self._pool().submit(function, item) for item in items]
        return [f.result() for f in futures]

    # ------------------------------------------------------------------ cirq.Sampler

    def run_sweep(
        self,
        program: cirq.AbstractCircuit,
        params: cirq.Sweepable,
        repetitions: int = 1,
    ) -> Sequence[cirq.Result]:
        """Runs every point of ``params`` in one IQM job; one result per point, in sweep order."""
        results = self.submit(program, params, repetitions).result()
        self._warn_on_drift(results)
        return results

    def run_batch(
        self,
        programs: Sequence[cirq.AbstractCircuit],
        params_list: Sequence[cirq.Sweepable] | None = None,
        repetitions: int | Sequence[int] = 1,
    ) -> Sequence[Sequence[cirq.Result]]:
        """Runs all programs × sweep points with the same repetitions in one IQM job per group."""
        params_list, repetitions_list = self._normalize_batch_args(
            programs, params_list, repetitions
        )
        groups: dict[int, list[int]] = {}
        for index, reps in enumerate(repetitions_list):
            groups.setdefault(int(reps), []).append(index)
        jobs = [
            (
                indices,
                self.submit(
                    [programs[i] for i in indices], [params_list[i] for i in indices], reps
                ),
            )
            for reps, indices in groups.items()
        ]
        out: list[list[IQMResult]] = [[] for _ in programs]
        for indices, job in jobs:
            for program_index, result in job.results_with_programs():
                out[indices[program_index]].append(result)
        self._warn_on_drift([r for results in out for r in results])
        return out

    def _warn_on_drift(self, results: Sequence[IQMResult]) -> None:
        """Warns once per pair when programs compiled for one calibration set ran on another."""
        compiled_for = self._device.calibration_set_id if self._device is not None else None
        if compiled_for is None:
            return
        for result in results:
            ran_on = result.calibration_set_id
            if ran_on is None or ran_on == compiled_for:
                continue
            pair = (compiled_for, ran_on)
            with self._lock:
                if pair in self._drift_warned:
                    continue
                self._drift_warned.add(pair)
            warnings.warn(
                f"The programs were compiled for calibration set {compiled_for} but ran on "
                f"{ran_on} (the server's default changed, or another set was pinned); the "
                "qubits and gates chosen may no longer be the best. Call sampler.refresh_device() "
                "to compile for the current set",
                CalibrationDriftWarning,
                stacklevel=3,
            )

    async def run_sweep_async(
        self,
        program: cirq.AbstractCircuit,
        params: cirq.Sweepable,
        repetitions: int = 1,
    ) -> Sequence[cirq.Result]:
        """Like :meth:`run_sweep`, in a worker thread so several runs overlap under duet."""
        return await self._in_thread(self.run_sweep, program, params, repetitions)

    async def run_batch_async(
        self,
        programs: Sequence[cirq.AbstractCircuit],
        params_list: Sequence[cirq.Sweepable] | None = None,
        repetitions: int | Sequence[int] = 1,
    ) -> Sequence[Sequence[cirq.Result]]:
        """Like :meth:`run_batch`, in a worker thread."""
        return await self._in_thread(self.run_batch, programs, params_list, repetitions)

    def _in_thread(self, function: Any, *args: Any) -> duet.AwaitableFuture[Any]:
        future: Future[Any] = self._pool().submit(function, *args)
        awaitable: duet.AwaitableFuture[Any] = duet.AwaitableFuture()

        def transfer(done: Future[Any]) -> None:
            error = done.exception()
            if error is not None:
                awaitable.try_set_exception(error)
            else:
                awaitable.try_set_result(done.result())

        future.add_done_callback(transfer)
        return awaitable


def _as_native(program: cirq.AbstractCircuit) -> PreparedProgram:
    """A program that is already native on the device, sent on its own qubits."""
    native = cirq.Circuit(
        program.unfreeze() if isinstance(program, cirq.FrozenCircuit) else program
    )
    identity = {q.name: q.name for q in native.all_qubits()}  # type: ignore[attr-defined]
    return PreparedProgram(CircuitTemplate(native), identity, identity, identity, native)


def _is_valid_native(program: cirq.AbstractCircuit, device: IQMDevice) -> bool:
    try:
        device.validate_circuit(program)
    except ValueError:
        return False
    return True


def _client_for(
    url: str | None, client: IQMClient | None, options: Mapping[str, Any]
) -> tuple[IQMClient, bool]:
    """The client to send through, and whether the sampler made it (and so closes it)."""
    if client is None:
        if url is None:
            raise ClientConfigurationError(
                "IQMSampler needs the server's URL, e.g. IQMSampler('https://...'), or client="
            )
        return IQMClient(url, **options), True
    if not isinstance(client, IQMClient):
        raise ClientConfigurationError(f"client must be an IQMClient, got {type(client).__name__}")
    if url is not None or options:
        given = ["url"] * (url is not None) + sorted(options)
        raise ClientConfigurationError(
            f"Give either client= or the client's settings, not both (got {', '.join(given)}); "
            "set those on the IQMClient instead"
        )
    return client, False


def _release(client: IQMClient | None, executors: list[ThreadPoolExecutor]) -> None:
    for executor in executors:
        executor.shutdown(wait=False, cancel_futures=True)
    if client is not None:
        client.close()


def _is_integer(value: Any) -> bool:
    """A whole number: Python's or numpy's, never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A sweep value as a JSON number."""
    if isinstance(value, int | float | str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return complex(value).real


def _job_options(**options: Any) -> dict[str, Any]:
    """The job options that were set, checked as the wire format checks them; unset ones (the
    server's default) are left out."""
    if _is_integer(options.get("active_reset_cycles")):
        options["active_reset_cycles"] = int(options["active_reset_cycles"])
    try:
        checked = check_job_options(options)
    except ModelValidationError as error:
        raise ClientConfigurationError(str(error)) from None
    return {k: v for k, v in checked.items() if options.get(k) is not None and v is not False}
