"""The old home of the IQM Server API routes; they live in :mod:`.routes_iqm_server` now.

The app registers these routes itself; :func:`install` only hands back the app's router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cirq_iqm_ext.server.framework import Handler, Route
from cirq_iqm_ext.server.routes_iqm_server import (
    ADMISSION_CODES,
    ERROR_CODES,
    SOURCE,
    IQMServerRoutes,
    error,
)

if TYPE_CHECKING:
    from cirq_iqm_ext.server.app import IQMServerApp

#: The routes' old name.
IQMServerAPI = IQMServerRoutes


def install(app: IQMServerApp) -> IQMServerRoutes:
    """The IQM Server API routes of ``app`` (every app has them since it is built)."""
    return app.iqm_server_api


__all__ = [
    "ADMISSION_CODES",
    "ERROR_CODES",
    "SOURCE",
    "Handler",
    "IQMServerAPI",
    "IQMServerRoutes",
    "Route",
    "error",
    "install",
]
