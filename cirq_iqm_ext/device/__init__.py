"""The Cirq side of a device: :class:`IQMDevice`, its native gates and the built-in devices.

- :mod:`.native_gates`: the one table of native operations, Cirq gate ⇄ IQM instruction;
- :mod:`.iqm_device`: ``IQMDevice`` and its metadata, validation against an architecture;
- :mod:`.builtin`: Adonis, Apollo, Garnet, Aphrodite, Deneb and star devices, offline;
- :mod:`.move_gate`, :mod:`.barriers`, :mod:`.dynamic`: the gates a circuit for IQM may hold
  besides Cirq's own (``move``, barriers, classically controlled pulses).
"""

from __future__ import annotations

from cirq_iqm_ext.device.iqm_device import (
    MAX_REPORTED_VIOLATIONS,
    DeviceValidationError,
    IQMDevice,
    IQMDeviceMetadata,
)

__all__ = ["MAX_REPORTED_VIOLATIONS", "DeviceValidationError", "IQMDevice", "IQMDeviceMetadata"]
