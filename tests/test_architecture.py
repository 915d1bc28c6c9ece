"""The package's shape: the import rule holds, the public namespace is pinned, old paths work."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest
from import_rules import LAYERS, read_package, violations

import cirq_iqm_ext

ROOT = pathlib.Path(cirq_iqm_ext.__file__).parent
GOLDEN = pathlib.Path(__file__).parent / "golden" / "module_paths_0_x.json"

PUBLIC_NAMES = [
    "APITimeoutError",
    "Adonis",
    "Aphrodite",
    "Apollo",
    "CalibrationDriftWarning",
    "Circuit",
    "CircuitExecutionError",
    "CircuitValidationError",
    "ClientAuthenticationError",
    "ClientConfigurationError",
    "CompilationError",
    "Deneb",
    "DeviceValidationError",
    "Garnet",
    "HeraldingMode",
    "IQMBarrierGate",
    "IQMClient",
    "IQMConnectionError",
    "IQMDevice",
    "IQMDeviceMetadata",
    "IQMError",
    "IQMJob",
    "IQMMoveGate",
    "IQMNoiseModel",
    "IQMResult",
    "IQMSampler",
    "IQMServerWarning",
    "Instruction",
    "JobAbortedError",
    "JobAbortionError",
    "JobError",
    "JobNotFoundError",
    "JobSubmissionUncertainError",
    "ModelValidationError",
    "QuantumArchitectureSpecification",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "ServerResponseError",
    "SingleQubitMapping",
    "Status",
    "TranspileResult",
    "__version__",
    "barrier",
    "circuit_from_qasm",
    "json_resolver",
    "local_sampler",
    "serialize_circuit",
    "star_device",
    "transpile",
]

#: Names of 0.x modules removed on purpose, with the reason (issue 14: dead code).
REMOVED = {
    ("cirq_iqm_ext.job", "StatusCallback"): "an alias nothing used",
    ("cirq_iqm_ext.models", "is_number"): "dead helper",
    ("cirq_iqm_ext.noise", "predicted_fidelity"): "dead helper, not the noise model's physics",
    ("cirq_iqm_ext.server.simulator", "NoiselessSimulator"): "CalibratedSimulator(None) is it",
}


# ------------------------------------------------------------------------------- import rule


def test_the_package_keeps_the_import_rule():
    found = violations(read_package(ROOT))
    assert found == [], "\n".join(found)


def test_every_component_of_the_package_is_in_a_layer():
    components = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py"}
    components |= {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    components -= {"data"}
    layered = {c for row in LAYERS for c in row}
    assert components <= layered, components - layered


def _package(**modules: str) -> dict[str, str]:
    """A made-up package: ``a__b`` -> source of ``cirq_iqm_ext.a.b``; every module a source
    imports exists (empty), as do all parent packages."""
    sources: dict[str, str] = {}
    named = [".".join(["cirq_iqm_ext", *name.split("__")]) for name in modules]
    imported = re.findall(r"cirq_iqm_ext(?:\.\w+)+", " ".join(modules.values()))
    for module in [*named, *imported]:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            sources.setdefault(".".join(parts[:i]), "")
    for module, source in zip(named, modules.values(), strict=True):
        sources[module] = textwrap.dedent(source)
    return sources


# Three edges of the flat 0.x tree, rebuilt in the layered names, that the rule must catch.
@pytest.mark.parametrize(
    "modules, expected",
    [
        pytest.param(  # the device took the MOVE gate from the compiler's star pass
            {"device__iqm_device": "from cirq_iqm_ext.compiler.star import IQMMoveGate\n"},
            "compiler is above device",
            id="device-imports-compiler",
        ),
        pytest.param(  # the server read the IQM Server API format from the client's profiles
            {"server__api": "from cirq_iqm_ext.client.profiles.base import COCOS_V1_HEADER\n"},
            "the server never imports client",
            id="server-imports-client",
        ),
        pytest.param(  # the local sampler's noise ran the server's simulator, which imported it
            {
                "simulation__noise": "def f():\n    from cirq_iqm_ext.server.simulator import S\n",
                "server__simulator": "from cirq_iqm_ext.simulation.noise import g\n",
            },
            "server is above simulation",
            id="simulation-imports-server-inside-a-function",
        ),
        pytest.param(  # the views did network I/O through a job's private client
            {"ui__display": "def summary(job):\n    return job._client.get_run(job.job_id)\n"},
            "reads another module's private ._client",
            id="private-access",
        ),
        pytest.param(
            {"sampling__sampler": "import httpx\n"},
            "imports httpx outside client",
            id="httpx-outside-the-client",
        ),
        pytest.param({"wire__models": "import cirq\n"}, "stays free of Cirq", id="cirq-in-wire"),
        pytest.param(
            {"compiler__a": "import cirq_iqm_ext.serialization.b\n"},
            "siblings in one layer",
            id="sibling",
        ),
        pytest.param(
            {
                "server__app": "def f():\n    from cirq_iqm_ext.server import api\n",
                "server__api": "from cirq_iqm_ext.server.app import Request\n",
            },
            "import circle: cirq_iqm_ext.server.api -> cirq_iqm_ext.server.app",
            id="circle",
        ),
        pytest.param(
            {"sampling__local": "from cirq_iqm_ext.server.http import EmbeddedServer\n"},
            "sampling and server are siblings",
            id="local-sampler-imports-server",
        ),
    ],
)
def test_the_rule_catches(modules, expected):
    found = violations(_package(**modules))
    assert any(expected in line for line in found), found


def test_the_rule_allows_what_the_layout_allows():
    allowed = _package(
        device__iqm_device=(
            "import cirq\nfrom cirq_iqm_ext.wire.models import Circuit\n"
            "class D:\n"
            "    def _repr_html_(self):\n"
            "        from cirq_iqm_ext.ui.display import device_html\n"
            "        return device_html(self._x)\n"
            "    def __eq__(self, other):\n"
            "        self._x = 1\n        return self._x == other._x\n"
        ),
        wire__models="",
        ui__display="",
        client__session="import httpx\nfrom cirq_iqm_ext.wire import models\n",
    )
    assert violations(allowed) == []


#: Longest function body (docstring excluded) without a ``# Long on purpose:`` comment saying why.
MAX_FUNCTION_LINES = 60


def _long_functions(source: str) -> list[tuple[str, int, int]]:
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:] or body
        length = body[-1].end_lineno - body[0].lineno + 1
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        if length > MAX_FUNCTION_LINES and "# Long on purpose:" not in text:
            found.append((node.name, node.lineno, length))
    return found


def test_functions_are_short_or_say_why_not():
    found = [
        f"{module}:{line} {name} has {length} lines"
        for module, source in sorted(read_package(ROOT).items())
        for name, line, length in _long_functions(source)
    ]
    assert found == [], "\n".join(found)


def test_the_length_check_counts_code_not_docstrings():
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    assert _long_functions(f"def f():\n    'doc'\n{body}\n") == [("f", 1, 61)]
    assert _long_functions(f"def f():\n    # Long on purpose: a table.\n{body}\n") == []
    doc = "\n".join("    doc" for _ in range(100))
    assert _long_functions(f'def f():\n    """\n{doc}\n    """\n    return 1\n') == []


# --------------------------------------------------------------------------- public namespace


def test_the_public_namespace_is_pinned():
    assert cirq_iqm_ext.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(cirq_iqm_ext, name) is not None, name
    assert sorted(dir(cirq_iqm_ext)) == sorted(PUBLIC_NAMES)


def test_every_public_error_is_an_iqm_error():
    errors = [getattr(cirq_iqm_ext, n) for n in PUBLIC_NAMES if n.endswith("Error")]
    assert errors
    assert all(issubclass(error, cirq_iqm_ext.IQMError) for error in errors)


# ---------------------------------------------------------------------------- old module paths


def _old_names() -> list[tuple[str, str]]:
    data = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return [(module, name) for module, names in sorted(data.items()) for name in names]


@pytest.mark.parametrize("module, name", _old_names())
def test_every_name_of_the_flat_0_x_modules_still_imports(module, name):
    if (module, name) in REMOVED:
        assert not hasattr(importlib.import_module(module), name)
        return
    assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_an_old_path_is_the_module_that_holds_the_code_now():
    import cirq_iqm_ext.sampler

    import cirq_iqm_ext.sampling.sampler

    assert cirq_iqm_ext.sampler is cirq_iqm_ext.sampling.sampler
    # the import system's bookkeeping of the real module is left alone
    assert cirq_iqm_ext.sampling.sampler.__spec__.name == "cirq_iqm_ext.sampling.sampler"


def test_old_paths_work_in_a_fresh_interpreter():
    # 0.x reprs and imports, run where nothing of the package was imported before.
    program = textwrap.dedent(
        """
        import cirq, cirq_iqm_ext
        from cirq_iqm_ext.devices import Garnet
        from cirq_iqm_ext.noise import IQMNoiseModel, local_sampler
        from cirq_iqm_ext.profiles.cocos_v1 import CocosV1Profile
        import cirq_iqm_ext.server.simulator as simulator
        assert eval("cirq_iqm_ext.devices.Garnet()") == Garnet()
        assert eval("cirq_iqm_ext.move.IQMMoveGate()") == cirq_iqm_ext.IQMMoveGate()
        assert simulator.CalibratedSimulator.__module__ == "cirq_iqm_ext.simulation.simulator"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
