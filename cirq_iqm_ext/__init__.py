"""cirq_iqm_ext: run Cirq programs on IQM quantum computers."""

from __future__ import annotations

from cirq_iqm_ext._version import __version__

__all__ = ["__version__"]
