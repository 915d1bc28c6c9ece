"""The ``cirq-iqm-ext`` command line: ``serve`` (:mod:`.main`) and the client commands
(:mod:`.commands`)."""

from __future__ import annotations

from cirq_iqm_ext.cli.main import SUBCOMMANDS, TOKEN_ENV, build_parser, main

__all__ = ["SUBCOMMANDS", "TOKEN_ENV", "build_parser", "main"]
