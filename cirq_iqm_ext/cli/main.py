"""The ``cirq-iqm-ext`` command line.

Subcommands register themselves in :data:`SUBCOMMANDS` (name -> function that adds a subparser and
sets its handler), so adding one means writing two small functions. Today: ``serve``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cirq_iqm_ext._version import __version__
from cirq_iqm_ext.cli import arguments
from cirq_iqm_ext.cli.commands import COMMANDS
from cirq_iqm_ext.simulation.engines import ENGINE_ENV, ENGINES, EngineError, resolve_engine

#: Environment variable the ``serve`` token may come from (so it stays out of ``ps`` listings).
TOKEN_ENV = "IQM_SERVER_TOKEN"


def _add_serve(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the IQM-compatible server (simulator with calibrated noise) until interrupted",
        description="Run the IQM-compatible server on a loopback port until SIGINT/SIGTERM.",
    )
    _add_serve_network(parser)
    _add_serve_retention(parser)
    _add_serve_auth(parser)
    _add_serve_machine(parser)
    parser.set_defaults(handler=_serve, subparser=parser)


def _add_serve_network(parser: argparse.ArgumentParser) -> None:
    """Where it listens, how many jobs it holds and where it keeps them."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=arguments.port, default=0, help="port; 0 picks a free one (default)"
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="keep jobs in SQLite in DIR so they survive a restart (default: memory only)",
    )
    parser.add_argument("--workers", type=int, default=1, help="simulation threads (default 1)")
    parser.add_argument(
        "--max-queue", type=int, default=1000, help="jobs waiting before 503 (default 1000)"
    )
    parser.add_argument(
        "--max-connections",
        type=arguments.positive_int,
        default=256,
        help="connections served at once; over it idle ones are closed first (default 256)",
    )
    parser.add_argument(
        "--connection-timeout",
        type=arguments.positive_float,
        default=120.0,
        metavar="SECONDS",
        help="time a request may take to arrive whole, not per read (default 120)",
    )


def _add_serve_retention(parser: argparse.ArgumentParser) -> None:
    """How many finished jobs it keeps, and for how long (evicted ones answer "expired")."""
    from cirq_iqm_ext.server.retention import (
        DEFAULT_RETAIN_BYTES,
        DEFAULT_RETAIN_JOBS,
        DEFAULT_RETAIN_SECONDS,
    )

    parser.add_argument(
        "--retain-jobs",
        type=arguments.positive_int,
        default=DEFAULT_RETAIN_JOBS,
        metavar="N",
        help="finished jobs kept; beyond, the oldest (fetched ones first) expire "
        f"(default {DEFAULT_RETAIN_JOBS})",
    )
    parser.add_argument(
        "--retain-bytes",
        type=arguments.byte_size,
        default=DEFAULT_RETAIN_BYTES,
        metavar="SIZE",
        help="bytes of results kept (packed, 8 bits a byte), e.g. 512M (default 1G)",
    )
    parser.add_argument(
        "--retain-age",
        type=arguments.non_negative_float,
        default=DEFAULT_RETAIN_SECONDS,
        metavar="SECONDS",
        help=f"time a finished job is kept; 0: no limit (default {DEFAULT_RETAIN_SECONDS:g}, "
        "a week)",
    )


def _add_serve_machine(parser: argparse.ArgumentParser) -> None:
    """The quantum computer it pretends to be: architecture, calibration, noise, features."""
    parser.add_argument(
        "--architecture",
        default="adonis",
        metavar="NAME|PATH.json",
        help="adonis (default), apollo, garnet, aphrodite, deneb, or a JSON architecture file",
    )
    parser.add_argument(
        "--calibration",
        default=None,
        metavar="NAME|PATH.json",
        help="calibration set (default: the architecture's built-in set); repeat for more sets, "
        "the first is the default",
        action="append",
    )
    parser.add_argument(
        "--noise",
        choices=("calibration", "none"),
        default="calibration",
        help="simulate with the calibration's noise (default) or exactly (none)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help=f"simulation engine (default: ${ENGINE_ENV}, else auto: qsim where it is faster and "
        "installed, else numpy); speed only, the same distribution of results",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the simulator")
    parser.add_argument(
        "--job-delay",
        type=arguments.non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="time each job spends pending (default 0)",
    )
    parser.add_argument(
        "--no-delay",
        dest="delay",
        action="store_false",
        help="behave like a CoCoS v1 server without delay: do not list it, refuse waits",
    )
    parser.add_argument(
        "--no-dynamic",
        dest="dynamic",
        action="store_false",
        help="behave like a CoCoS v1 server without dynamic circuits: do not list reset and "
        "cc_prx, refuse them and mid-circuit measurements",
    )


def _add_serve_auth(parser: argparse.ArgumentParser) -> None:
    """Who may use it: a static token, or users of the OpenID Connect token endpoint."""
    parser.add_argument(
        "--token",
        default=None,
        help=f"require this bearer token on job endpoints (or set {TOKEN_ENV})",
    )
    parser.add_argument(
        "--auth-user",
        type=arguments.user,
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="enable the OpenID Connect token endpoint with this user (repeatable)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=arguments.non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="lifetime of access tokens from the token endpoint (default 300)",
    )


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # Catch SIGINT/SIGTERM before the slow imports, so an early Ctrl-C still exits quietly.
    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    try:
        return _run_server(args, parser, stop)
    except KeyboardInterrupt:  # SIGINT when no handler could be installed (not the main thread)
        return 0
    finally:
        restore()


def _run_server(
    args: argparse.Namespace, parser: argparse.ArgumentParser, stop: threading.Event
) -> int:
    from cirq_iqm_ext.server import StateDirError

    server = _build_server(args, parser)
    try:
        server.start()
    except StateDirError as error:  # locked by another server, a file, a damaged database
        print(f"cirq-iqm-ext serve: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        reason = error.strerror or str(error)
        print(
            f"cirq-iqm-ext serve: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    try:
        print(f"Serving IQM API on {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _build_server(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The server the arguments describe; a bad argument ends the program with a usage error."""
    from cirq_iqm_ext.calibration import load_calibration
    from cirq_iqm_ext.server import EmbeddedServer, load_architecture

    try:
        architecture = load_architecture(args.architecture)
    except ValueError as error:
        parser.error(f"argument --architecture: {error}")
    calibrations = []
    for spec in args.calibration or ():
        try:
            calibrations.append(load_calibration(spec))
        except ValueError as error:
            parser.error(f"argument --calibration: {error}")
    if args.workers < 1 or args.max_queue < 1:
        parser.error("--workers and --max-queue must be at least 1")
    try:  # an unknown $CIRQ_IQM_EXT_ENGINE, or qsim without qsimcirq: say so before serving
        engine = resolve_engine(args.engine)
    except EngineError as error:
        parser.error(str(error))
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    return EmbeddedServer(
        architecture,
        host=args.host,
        port=args.port,
        token=token,
        auth_users=dict(args.auth_user) or None,
        seed=args.seed,
        job_delay=args.job_delay,
        token_lifetime=args.token_lifetime,
        calibration=calibrations[0] if calibrations else None,
        extra_calibrations=tuple(calibrations[1:]),
        noise=args.noise,
        engine=engine,
        state_dir=args.state_dir,
        workers=args.workers,
        max_queue=args.max_queue,
        max_connections=args.max_connections,
        connection_timeout=args.connection_timeout,
        retain_jobs=args.retain_jobs,
        retain_bytes=args.retain_bytes,
        retain_seconds=args.retain_age,
        delay=args.delay,
        dynamic=args.dynamic,
    )


def _install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """Makes SIGINT and SIGTERM set ``stop``; returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


#: Subcommand name -> function adding its parser (with ``handler`` set as a default).
SUBCOMMANDS: dict[str, Callable[[Any], None]] = {"serve": _add_serve, **COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cirq-iqm-ext",
        description="Cirq integration for IQM quantum computers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a runtime failure; bad options exit with 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args, args.subparser))
