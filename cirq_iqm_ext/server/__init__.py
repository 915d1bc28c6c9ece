"""The project's own IQM-compatible server: a WSGI app and a threaded loopback HTTP server.

``EmbeddedServer`` runs it in background threads (tests, demos); ``create_app`` builds the WSGI app
alone (e.g. for ``httpx.WSGITransport``); ``cirq-iqm-ext serve`` runs it from the command line.
"""

from __future__ import annotations

from cirq_iqm_ext.catalogue import load_architecture
from cirq_iqm_ext.server.app import ServerConfig, create_app
from cirq_iqm_ext.server.http import EmbeddedServer
from cirq_iqm_ext.server.state_dir import StateDirError

__all__ = ["EmbeddedServer", "ServerConfig", "StateDirError", "create_app", "load_architecture"]
