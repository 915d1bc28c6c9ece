"""JSON resolver for the package's Cirq-serialisable classes.

Pass it to ``cirq.read_json``::

    cirq.read_json(text, resolvers=[cirq_iqm_ext.json_resolver.json_resolver,
    *cirq.DEFAULT_RESOLVERS])

Classes serialise with ``_json_namespace_ = "cirq_iqm_ext"``, so their ``cirq_type`` reads
``"cirq_iqm_ext.ClassName"``.
"""

from __future__ import annotations

import importlib
import sys
import types

#: ``cirq_type`` -> (module, class name); imported lazily so the resolver costs nothing to import.
JSON_CLASSES: dict[str, tuple[str, str]] = {
    "cirq_iqm_ext.IQMDevice": ("cirq_iqm_ext.device.iqm_device", "IQMDevice"),
    "cirq_iqm_ext.IQMResult": ("cirq_iqm_ext.sampling.results", "IQMResult"),
    "cirq_iqm_ext.IQMMoveGate": ("cirq_iqm_ext.compiler.star", "IQMMoveGate"),
    "cirq_iqm_ext.IQMBarrierGate": ("cirq_iqm_ext.device.barriers", "IQMBarrierGate"),
}


def json_resolver(cirq_type: str) -> type | None:
    """Returns the class serialised as ``cirq_type``, or ``None`` when it is not one of ours."""
    target = JSON_CLASSES.get(cirq_type)
    if target is None:
        return None
    module, name = target
    return getattr(importlib.import_module(module), name)


class _CallableModule(types.ModuleType):
    """This module, callable as the resolver itself.

    ``cirq_iqm_ext.json_resolver`` names the function through the package's lazy exports, but the
    submodule of the same name once it has been imported; either way it can be passed to
    ``cirq.read_json(resolvers=[...])``.
    """

    def __call__(self, cirq_type: str) -> type | None:
        return json_resolver(cirq_type)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["JSON_CLASSES", "json_resolver"]
