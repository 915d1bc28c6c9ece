"""The client-side ``cirq-iqm-ext`` commands: look at a quantum computer, run a file, follow jobs.

``architecture``, ``calibration``, ``run FILE``, ``status JOB``, ``result JOB`` and ``abort JOB``.
Each talks to the server named by ``--url`` or ``IQM_SERVER_URL`` and authenticates from the
environment (``IQM_TOKEN``, ``IQM_TOKENS_FILE`` or ``IQM_AUTH_SERVER`` + ``IQM_AUTH_USERNAME`` +
``IQM_AUTH_PASSWORD``), exactly as :class:`~cirq_iqm_ext.IQMClient` does by default.

Exit statuses a shell script can act on:

* ``0``: done;
* ``1``: the server or the job failed (unreachable, refused credentials, job failed or
  aborted, ...); one line on stderr says why;
* ``2``: the command line or the input file is wrong (argparse's convention);
* ``3``: the job did not finish within ``--timeout``; it still runs, fetch it later with ``result``;
* ``130``: interrupted with Ctrl-C.

Expected errors never show a traceback. Heavy modules (Cirq, httpx) are imported inside the
handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cirq_iqm_ext.cli import arguments

if TYPE_CHECKING:
    import cirq

    from cirq_iqm_ext.client.iqm_client import IQMClient
    from cirq_iqm_ext.sampling.results import IQMResult
    from cirq_iqm_ext.sampling.sampler import IQMSampler

#: Environment variable naming the server when ``--url`` is not given.
URL_ENV = "IQM_SERVER_URL"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
EXIT_INTERRUPTED = 130

#: Seconds ``run`` and ``result`` wait for a job by default.
DEFAULT_TIMEOUT = 300.0

_AUTH_HELP = (
    "The server is --url or $IQM_SERVER_URL. Authentication comes from the environment: "
    "IQM_TOKEN, or IQM_TOKENS_FILE, or IQM_AUTH_SERVER with IQM_AUTH_USERNAME and "
    "IQM_AUTH_PASSWORD (nothing set: no authentication)."
)
_EXIT_HELP = (
    "exit status: 0 ok, 1 server or job error, 2 usage or input error, 3 job not finished within "
    "--timeout (it keeps running), 130 interrupted"
)


class UsageError(Exception):
    """The command line or an input file is wrong (exit status 2)."""


# ------------------------------------------------------------------------------- argument types


# --------------------------------------------------------------------------- shared plumbing


def _common(parser: argparse.ArgumentParser, *, json_help: str) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"server URL, e.g. https://host/cocos (default: ${URL_ENV})",
    )
    parser.add_argument(
        "--api",
        choices=("auto", "cocos-v1", "iqm-server"),
        default="auto",
        help="protocol profile: CoCoS v1 or today's IQM Server API (default: detect)",
    )
    parser.add_argument(
        "--quantum-computer",
        default=None,
        metavar="ALIAS",
        help="quantum computer alias on an IQM Server "
        "(default: $IQM_QUANTUM_COMPUTER or the only one)",
    )
    parser.add_argument("--json", action="store_true", help=json_help)


def _add(
    subparsers: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=f"{description} {_AUTH_HELP}",
        epilog=_EXIT_HELP,
    )
    parser.set_defaults(handler=_guarded(name, handler), subparser=parser)
    return parser


def _url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get(URL_ENV)
    if not url:
        raise UsageError(
            f"no server given: pass --url URL or set {URL_ENV} "
            "(try `cirq-iqm-ext serve` for a local one)"
        )
    return str(url)


def _client(args: argparse.Namespace) -> IQMClient:
    from cirq_iqm_ext.client.iqm_client import IQMClient

    return IQMClient(_url(args), **_profile_options(args))


def _sampler(args: argparse.Namespace, url: str, **options: Any) -> IQMSampler:
    from cirq_iqm_ext.sampling.sampler import IQMSampler

    return IQMSampler(url, run_sweep_timeout=args.timeout, **_profile_options(args), **options)


def _profile_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"api": args.api, "quantum_computer": args.quantum_computer}


def _guarded(
    name: str, handler: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace, argparse.ArgumentParser], int]:
    """Runs a handler, turning expected errors into one line on stderr and an exit status."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        from cirq_iqm_ext.errors import APITimeoutError, IQMError

        prefix = f"cirq-iqm-ext {name}: error:"
        try:
            # Server warnings become one stderr line each, not Python's two-line format.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    return handler(args)
                finally:
                    for warning in caught:
                        print(f"cirq-iqm-ext {name}: warning: {warning.message}", file=sys.stderr)
        except UsageError as error:
            parser.print_usage(sys.stderr)
            print(f"{prefix} {error}", file=sys.stderr)
            return EXIT_USAGE
        except APITimeoutError as error:
            print(f"{prefix} {error}", file=sys.stderr)
            return EXIT_PENDING
        except (IQMError, OSError) as error:
            print(f"{prefix} {_one_line(error)}", file=sys.stderr)
            return EXIT_FAILURE
        except KeyboardInterrupt:
            print(f"cirq-iqm-ext {name}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f" {error.filename!s}" if error.filename else ""
        return f"{error.strerror}{where}"
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


# ----------------------------------------------------------------------------- architecture


def add_architecture(subparsers: Any) -> None:
    """Registers ``architecture``."""
    parser = _add(
        subparsers,
        "architecture",
        _architecture,
        summary="show the quantum computer's qubits and couplings",
        description="Show the quantum architecture: a diagram of the coupling map and the "
        "operations with their number of loci, or the architecture JSON with --json.",
    )
    _common(parser, json_help="print the architecture as JSON (as the server sends it)")


def _architecture(args: argparse.Namespace) -> int:
    from cirq_iqm_ext.device.iqm_device import IQMDevice
    from cirq_iqm_ext.ui.display import device_text

    with _client(args) as client:
        spec = client.get_quantum_architecture()
    if args.json:
        _print_json(spec.to_dict())
    else:
        print(device_text(IQMDevice.from_architecture(spec)))
    return EXIT_OK


# ------------------------------------------------------------------------------ calibration


def add_calibration(subparsers: Any) -> None:
    """Registers ``calibration``."""
    parser = _add(
        subparsers,
        "calibration",
        _calibration,
        summary="show calibration figures (T1, T2, fidelities, readout errors)",
        description="Show the quality metrics of the current calibration set, or of the set "
        "given with --id: a table per qubit and per coupler, or the server's JSON with --json.",
    )
    parser.add_argument(
        "--id",
        dest="calibration_set_id",
        type=arguments.uuid_of("a calibration set id"),
        default=None,
        metavar="CALIBRATION_SET_ID",
        help="a calibration set id (default: the current one)",
    )
    _common(parser, json_help="print the metrics as JSON (as the server sends them)")


def fetch_metrics(client: IQMClient, calibration_set_id: UUID | None = None) -> dict[str, Any]:
    """The quality metrics of a calibration set (PROTOCOL.md §4.3 form), in either profile.

    Raises:
        ClientConfigurationError: The server does not offer metrics (404) or refused the request.
        ServerResponseError: The answer is not the documented shape.
    """
    from cirq_iqm_ext.errors import ClientConfigurationError

    try:
        return client.get_calibration_metrics(calibration_set_id)
    except ClientConfigurationError as error:
        if error.status_code != 404:
            raise
        raise ClientConfigurationError(
            f"{client.url} has no calibration metrics"
            + ("" if calibration_set_id is None else f" for calibration set {calibration_set_id}")
            + f" (HTTP 404: {error.detail})",
            status_code=404,
        ) from None


def _calibration(args: argparse.Namespace) -> int:
    from cirq_iqm_ext.ui.display import metrics_text

    with _client(args) as client:
        data = fetch_metrics(client, args.calibration_set_id)
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"calibration set {data.get('calibration_set_id', 'unknown')}")
    print(metrics_text(data))
    return EXIT_OK


# -------------------------------------------------------------------------------------- run


def add_run(subparsers: Any) -> None:
    """Registers ``run``."""
    parser = _add(
        subparsers,
        "run",
        _run,
        summary="run an OpenQASM 2 or Cirq JSON circuit and print its counts",
        description="Run the circuit in FILE (OpenQASM 2 or Cirq JSON, told apart by content; "
        "'-' reads stdin), compiled for the device unless --no-compile, and print the counts, "
        "the job id and the calibration set. A circuit without measurements gets one measuring "
        "every qubit under the key 'm'.",
    )
    parser.add_argument("file", metavar="FILE", help="OpenQASM 2 (.qasm) or Cirq JSON file, or -")
    parser.add_argument(
        "--shots",
        type=arguments.positive_int,
        default=1000,
        help="repetitions (default %(default)s)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile for the device (default); --no-compile sends native circuits as they are",
    )
    parser.add_argument(
        "--optimization-level",
        type=int,
        choices=(0, 1, 2, 3),
        default=0,
        metavar="N",
        help="0 translates each gate as written (default), 1 merges single-qubit gates, 2 also "
        "resynthesises two-qubit blocks, 3 also tries more layouts",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the results (default %(default)g); the job keeps running after",
    )
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="submit and print the job id only; fetch the results later with `result JOB`",
    )
    _common(parser, json_help="print counts, job id, calibration set and metadata as JSON")


def read_circuit(source: str) -> cirq.AbstractCircuit:
    """Reads a circuit from a file (or ``-`` for stdin): Cirq JSON if it looks like JSON, else QASM.

    Raises:
        UsageError: The file cannot be read or is neither valid OpenQASM 2 nor a Cirq JSON circuit.
    """
    import cirq

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(f"cannot read {source!r}: {reason}") from None
    if text.lstrip().startswith(("{", "[")):
        from cirq_iqm_ext.json_resolver import json_resolver

        try:
            value = cirq.read_json(
                json_text=text, resolvers=[json_resolver, *cirq.DEFAULT_RESOLVERS]
            )
        except (ValueError, TypeError, KeyError) as error:
            raise UsageError(f"{source!r} is not a Cirq JSON circuit: {_one_line(error)}") from None
        if not isinstance(value, cirq.AbstractCircuit):
            raise UsageError(
                f"{source!r} holds a {type(value).__name__}, not a circuit "
                "(write one with cirq.to_json(circuit, path))"
            )
        return value
    from cirq_iqm_ext.compiler.qasm import circuit_from_qasm

    try:
        return circuit_from_qasm(text)
    except ImportError as error:
        raise UsageError(str(error)) from None
    except ValueError as error:
        raise UsageError(f"{source!r}: {_one_line(error)}") from None


def _with_measurements(circuit: cirq.AbstractCircuit) -> tuple[cirq.AbstractCircuit, bool]:
    import cirq

    if cirq.is_measurement(circuit):
        return circuit, False
    qubits = sorted(circuit.all_qubits())
    if not qubits:
        raise UsageError("the circuit has no qubits")
    return cirq.Circuit(circuit.unfreeze(copy=False), cirq.measure(*qubits, key="m")), True


def result_record(result: IQMResult) -> dict[str, Any]:
    """The JSON-ready record of one result: counts and the job's metadata.

    ``counts`` maps bitstrings to shots; each bitstring joins the bits of ``measurement_keys`` in
    that order (as IQM's ``counts`` endpoint does).
    """
    from cirq_iqm_ext.ui.display import combined_counts
    from cirq_iqm_ext.wire.qubits import natural_key

    keys = sorted(result.measurements, key=natural_key)
    return {
        "job_id": None if result.job_id is None else str(result.job_id),
        "calibration_set_id": None
        if result.calibration_set_id is None
        else str(result.calibration_set_id),
        "shots": result.repetitions,
        "params": {str(k): _plain(v) for k, v in result.params.param_dict.items()},
        "measurement_keys": keys,
        "counts": dict(sorted(combined_counts(result, keys).items())),
        "initial_mapping": result.initial_mapping,
        "final_mapping": result.final_mapping,
        "timestamps": result.timestamps,
        "warnings": list(result.warnings),
    }


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _print_results(results: list[IQMResult], as_json: bool) -> None:
    if as_json:
        records = [result_record(r) for r in results]
        _print_json(records[0] if len(records) == 1 else records)
        return
    for index, result in enumerate(results):
        record = result_record(result)
        if len(results) > 1:
            params = f", params {_params_text(result)}" if result.params.param_dict else ""
            print(f"{'' if index == 0 else chr(10)}circuit {index}{params}")
        print(f"job             {record['job_id']}")
        print(f"calibration set {record['calibration_set_id']}")
        print(f"shots           {record['shots']}")
        if result.initial_mapping:
            mapping = ", ".join(f"{k}→{v}" for k, v in result.initial_mapping.items())
            print(f"qubits          {mapping}")
        if result.final_mapping and result.final_mapping != result.initial_mapping:
            mapping = ", ".join(f"{k}→{v}" for k, v in result.final_mapping.items())
            print(f"final qubits    {mapping}")
        for warning in result.warnings:
            print(f"warning         {warning}")
        print(f"counts ({' '.join(record['measurement_keys'])}):")
        tally = record["counts"]
        for bits, n in sorted(tally.items(), key=lambda item: (-item[1], item[0])):
            share = n / result.repetitions if result.repetitions else 0.0
            print(f"  {bits}  {n:>7}  {'#' * round(30 * share)}")


def _params_text(result: IQMResult) -> str:
    return ", ".join(f"{k}={_plain(v)}" for k, v in result.params.param_dict.items())


def _run(args: argparse.Namespace) -> int:
    url = _url(args)  # a missing URL is a usage error before the file is read
    circuit, added = _with_measurements(read_circuit(args.file))
    if added:
        print(
            "cirq-iqm-ext run: note: the circuit has no measurements; measuring every qubit "
            "under the key 'm'",
            file=sys.stderr,
        )
    with _sampler(
        args, url, compile=args.compile, optimization_level=args.optimization_level
    ) as sampler:
        job = sampler.submit(circuit, repetitions=args.shots)
        if not args.wait:
            if args.json:
                _print_json({"job_id": str(job.job_id), "job_ids": [str(j) for j in job.job_ids]})
            else:
                for job_id in job.job_ids:
                    print(job_id)
            return EXIT_OK
        results = job.result()
    _print_results(results, args.json)
    return EXIT_OK


# --------------------------------------------------------------------------- status, result, abort


def _add_job_command(
    subparsers: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    summary: str,
    description: str,
    json_help: str,
) -> argparse.ArgumentParser:
    parser = _add(subparsers, name, handler, summary=summary, description=description)
    parser.add_argument("job_id", metavar="JOB", type=arguments.job_id, help="the job id (a UUID)")
    _common(parser, json_help=json_help)
    return parser


def add_status(subparsers: Any) -> None:
    """Registers ``status``."""
    _add_job_command(
        subparsers,
        "status",
        _status,
        summary="print a job's status",
        description="Print the status of a job: pending compilation, pending execution, ready, "
        "failed or aborted (with the server's message, if any).",
        json_help='print {"job_id", "status", "message", "warnings"} as JSON',
    )


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.get_run_status(args.job_id)
    if args.json:
        _print_json(
            {
                "job_id": str(args.job_id),
                "status": status.status.value,
                "message": status.message,
                "warnings": list(status.warnings),
            }
        )
    else:
        line = f"{args.job_id}: {status.status.value}"
        print(line + (f" ({status.message})" if status.message else ""))
    return EXIT_OK


def add_result(subparsers: Any) -> None:
    """Registers ``result``."""
    parser = _add_job_command(
        subparsers,
        "result",
        _result,
        summary="wait for a job and print its counts",
        description="Wait for a job (up to --timeout) and print its counts, calibration set and "
        "qubit mapping, one block per circuit and sweep point.",
        json_help="print the results as JSON",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait (default %(default)g); exit status 3 if the job is still running",
    )


def _result(args: argparse.Namespace) -> int:
    with _sampler(args, _url(args)) as sampler:
        results = sampler.get_job(args.job_id).result()
    _print_results(results, args.json)
    return EXIT_OK


def add_abort(subparsers: Any) -> None:
    """Registers ``abort``."""
    _add_job_command(
        subparsers,
        "abort",
        _abort,
        summary="abort a job that has not finished",
        description="Ask the server to abort a job. Exit status 1 when the server refuses, e.g. "
        "because the job has already finished.",
        json_help='print {"job_id", "aborted": true} as JSON',
    )


def _abort(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.abort_job(args.job_id)
    if args.json:
        _print_json({"job_id": str(args.job_id), "aborted": True})
    else:
        print(f"{args.job_id}: abort requested")
    return EXIT_OK


#: Subcommand name -> function adding its parser; merged into ``cirq_iqm_ext.cli.main.SUBCOMMANDS``.
COMMANDS: Mapping[str, Callable[[Any], None]] = {
    "architecture": add_architecture,
    "calibration": add_calibration,
    "run": add_run,
    "status": add_status,
    "result": add_result,
    "abort": add_abort,
}
