"""Old module paths that user code may import, answered by the modules that now hold the code.

The package was flat until 0.x; its modules moved into layered subpackages (README,
"Architecture"). ``import cirq_iqm_ext.sampler`` and ``from cirq_iqm_ext.devices import Garnet``
keep working: a finder at the end of ``sys.meta_path`` answers exactly the names below, after the
normal finders found no file for them. An old path that became one module *is* that module (so
``unittest.mock.patch`` on it patches the real thing); one that was split, or was a package, is a
module holding the public names of its parts.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

#: Old module path -> the module(s) that hold its code now.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "cirq_iqm_ext.models": ("cirq_iqm_ext.wire.models",),
    "cirq_iqm_ext.validation": ("cirq_iqm_ext.wire.validation",),
    "cirq_iqm_ext.util": ("cirq_iqm_ext.wire.json",),
    "cirq_iqm_ext.profiles": (
        "cirq_iqm_ext.client.profiles.base",
        "cirq_iqm_ext.client.profiles.choice",
        "cirq_iqm_ext.wire.protocol",
    ),
    "cirq_iqm_ext.profiles.cocos_v1": ("cirq_iqm_ext.client.profiles.cocos_v1",),
    "cirq_iqm_ext.profiles.iqm_server": ("cirq_iqm_ext.client.profiles.iqm_server",),
    "cirq_iqm_ext.profiles.iqm_server_format": ("cirq_iqm_ext.wire.iqm_server_format",),
    "cirq_iqm_ext.profiles.channel_properties": ("cirq_iqm_ext.wire.channel_properties",),
    "cirq_iqm_ext.auth": ("cirq_iqm_ext.client.auth",),
    "cirq_iqm_ext.devices": ("cirq_iqm_ext.device.builtin",),
    "cirq_iqm_ext.barriers": ("cirq_iqm_ext.device.barriers",),
    "cirq_iqm_ext.dynamic": ("cirq_iqm_ext.device.dynamic",),
    "cirq_iqm_ext.move": ("cirq_iqm_ext.device.move_gate", "cirq_iqm_ext.compiler.star"),
    "cirq_iqm_ext.transpiler": ("cirq_iqm_ext.compiler.transpiler",),
    "cirq_iqm_ext.decompose": ("cirq_iqm_ext.compiler.decompose",),
    "cirq_iqm_ext.synthesis": ("cirq_iqm_ext.compiler.synthesis",),
    "cirq_iqm_ext.placement": ("cirq_iqm_ext.compiler.placement",),
    "cirq_iqm_ext.routing": ("cirq_iqm_ext.compiler.routing",),
    "cirq_iqm_ext.qasm": ("cirq_iqm_ext.compiler.qasm",),
    "cirq_iqm_ext.serialize": ("cirq_iqm_ext.serialization.serialize",),
    "cirq_iqm_ext.noise": ("cirq_iqm_ext.simulation.noise", "cirq_iqm_ext.sampling.local"),
    "cirq_iqm_ext.sampler": ("cirq_iqm_ext.sampling.sampler",),
    "cirq_iqm_ext.job": ("cirq_iqm_ext.sampling.job",),
    "cirq_iqm_ext.results": ("cirq_iqm_ext.sampling.results",),
    "cirq_iqm_ext.display": ("cirq_iqm_ext.ui.display",),
    "cirq_iqm_ext.commands": ("cirq_iqm_ext.cli.commands",),
    "cirq_iqm_ext.server.simulator": ("cirq_iqm_ext.simulation.simulator",),
    "cirq_iqm_ext.server.move_model": ("cirq_iqm_ext.simulation.move_model",),
}


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, homes: Sequence[str]) -> None:
        self._homes = tuple(homes)
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        homes = [importlib.import_module(name) for name in self._homes]
        is_parent = any(other.startswith(spec.name + ".") for other in MOVED_MODULES)
        if len(homes) == 1 and not is_parent:
            self._spec = homes[0].__spec__  # the import system overwrites it; put it back
            return homes[0]
        merged = types.ModuleType(spec.name, f"Moved: now {', '.join(self._homes)}.")
        for home in homes:
            public = getattr(home, "__all__", [n for n in vars(home) if not n.startswith("_")])
            merged.__dict__.update({name: getattr(home, name) for name in public})
        if is_parent:
            merged.__path__ = []  # a package once: its old submodules import through the finder
        return merged

    def exec_module(self, module: types.ModuleType) -> None:
        if self._spec is not None:
            module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        homes = MOVED_MODULES.get(fullname)
        if homes is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader(homes))


def install() -> None:
    """Adds the finder once (idempotent: re-importing the package does not stack finders)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())


def old_submodule(name: str) -> types.ModuleType | None:
    """The module behind ``cirq_iqm_ext.<name>`` for an old top-level path, else ``None``."""
    fullname = f"cirq_iqm_ext.{name}"
    if fullname not in MOVED_MODULES:
        return None
    return importlib.import_module(fullname)
