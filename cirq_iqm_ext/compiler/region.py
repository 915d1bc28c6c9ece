"""Which device qubits a circuit may run on, and how its qubits are told apart.

A circuit written on the device's own qubits runs on exactly those qubits; one on logical qubits
(``LineQubit``, ``GridQubit``, names unlike the device's) is placed by the compiler on a connected
region of usable device qubits. These are the checks and choices of the compiler's first stage.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

import cirq

from cirq_iqm_ext.device.iqm_device import DeviceValidationError, IQMDevice
from cirq_iqm_ext.errors import CompilationError


def _name_pattern(device: IQMDevice) -> re.Pattern[str]:
    """What the device's qubit names look like (``QB12``, ``COMP_R2``): prefix and number."""
    prefixes = sorted(
        {m.group(1) for n in device.qubit_names if (m := re.fullmatch(r"(.*?)\d+", n))}
    )
    if not prefixes:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("(?:" + "|".join(map(re.escape, prefixes)) + r")\d+")


def device_qubits_of(circuit: cirq.AbstractCircuit, device: IQMDevice) -> list[cirq.Qid]:
    """The circuit's qubits if it is written on ``device``'s own qubits, else ``[]``.

    A circuit on device qubits runs on exactly those qubits; one on logical qubits (``LineQubit``,
    ``GridQubit``, names unlike the device's) is placed by the compiler.

    Raises:
        CircuitValidationError: A qubit is named like a device qubit but the device has no such
            qubit (``NamedQubit("QB99")`` on a 20-qubit device), or the circuit mixes device and
            logical qubits.
    """
    on_device = device.metadata.qubit_set
    pattern = _name_pattern(device)
    fixed: list[cirq.Qid] = []
    logical: list[cirq.Qid] = []
    unknown: list[cirq.Qid] = []
    for q in sorted(circuit.all_qubits()):
        if q in on_device:
            fixed.append(q)
        elif isinstance(q, cirq.NamedQubit) and pattern.fullmatch(q.name):
            unknown.append(q)
        else:
            logical.append(q)
    if unknown:
        names = ", ".join(str(q) for q in unknown)
        raise DeviceValidationError(
            f"The circuit uses {names}, named like qubits of device {device.name!r}, which has no "
            f"such qubit(s) (it has {_qubit_range(device)}). Use qubits the device has, or "
            "logical qubits (cirq.LineQubit, cirq.GridQubit, cirq.NamedQubit('a')) to let the "
            "compiler place them"
        )
    if fixed and logical:
        raise DeviceValidationError(
            f"The circuit mixes device qubits ({', '.join(map(str, fixed[:3]))}) with logical "
            f"qubits ({', '.join(map(str, logical[:3]))}). Device qubits run exactly where they "
            "are written and logical ones are placed by the compiler; write the whole circuit "
            "in one kind (or give initial_mapping for logical qubits)"
        )
    return fixed


def _qubit_range(device: IQMDevice) -> str:
    names = device.qubit_names
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]}"


def pinned_qubits(
    fixed: Sequence[cirq.Qid],
    device: IQMDevice,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None,
    qubit_subset: Iterable[cirq.Qid | str] | None,
) -> list[cirq.Qid]:
    """The device qubits a circuit is written on, in device order, checked against the options.

    Raises:
        CompilationError: ``initial_mapping`` is given (device qubits are never placed), or a
            qubit lies outside ``qubit_subset``.
    """
    if initial_mapping is not None:
        raise CompilationError(
            "initial_mapping places logical qubits, but this circuit is written on device "
            f"qubits ({', '.join(map(str, fixed[:3]))}), which run exactly where they are "
            "written; drop initial_mapping, or write the circuit on logical qubits"
        )
    if qubit_subset is not None:
        outside = [q for q in fixed if q not in subset_of(device, qubit_subset)]
        if outside:
            raise CompilationError(
                f"The circuit is written on {', '.join(map(str, outside))}, outside qubit_subset"
            )
    order: dict[cirq.Qid, int] = {q: i for i, q in enumerate(device.qubits)}
    return sorted(fixed, key=order.__getitem__)


def usable_region(
    device: IQMDevice, qubit_subset: Iterable[cirq.Qid | str] | None, n_logical: int
) -> list[cirq.Qid]:
    """Device qubits the circuit may use: the largest connected set, in natural order.

    Raises:
        CompilationError: The set holds fewer than ``n_logical`` qubits, or ``qubit_subset``
            names a qubit the device does not have.
    """
    prx = set(device.loci("prx"))
    allowed: list[cirq.Qid] = [q for q in device.qubits if (q,) in prx]
    if qubit_subset is not None:
        allowed = [q for q in allowed if q in subset_of(device, qubit_subset)]
    best = _largest_component(device, allowed)
    if n_logical > len(best):
        raise CompilationError(
            f"The circuit needs {n_logical} qubits but device {device.name!r} offers at most "
            f"{len(best)} connected usable qubits"
            + (" in qubit_subset" if qubit_subset is not None else "")
        )
    order: dict[cirq.Qid, int] = {q: i for i, q in enumerate(device.qubits)}
    return sorted(best, key=order.__getitem__)


def _largest_component(device: IQMDevice, allowed: list[cirq.Qid]) -> list[cirq.Qid]:
    """The largest set of ``allowed`` qubits connected by ``cz`` (earliest qubit first on ties)."""
    graph = device.metadata.nx_graph.subgraph(allowed)
    cz = {frozenset(p) for p in device.cz_pairs}
    seen: set[cirq.Qid] = set()
    best: list[cirq.Qid] = []
    for start in allowed:
        if start in seen:
            continue
        comp = [start]
        seen.add(start)
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in sorted(graph.neighbors(u)):
                if v not in seen and frozenset((u, v)) in cz:
                    seen.add(v)
                    comp.append(v)
                    queue.append(v)
        if len(comp) > len(best):
            best = comp
    return best


def subset_of(device: IQMDevice, qubit_subset: Iterable[cirq.Qid | str]) -> list[cirq.Qid]:
    """``qubit_subset`` as device qubits (names resolved), without repeats.

    Raises:
        CompilationError: It names a qubit the device does not have.
    """
    wanted: list[cirq.Qid] = []
    for q in qubit_subset:
        dq = device.qubit(q) if isinstance(q, str) else q
        if dq not in device.metadata.qubit_set:
            raise CompilationError(
                f"qubit_subset names a qubit not on device {device.name!r}: {q!r}"
            )
        if dq not in wanted:
            wanted.append(dq)
    return wanted


def layout_from_mapping(
    mapping: Mapping[cirq.Qid, cirq.Qid | str],
    logical: Sequence[cirq.Qid],
    phys_index: Mapping[cirq.Qid, int],
    device: IQMDevice,
) -> list[int]:
    """The caller's ``initial_mapping`` as a layout: logical index -> index into the region.

    Raises:
        CompilationError: A qubit is not placed, is placed outside the region, or two share one.
    """
    layout: list[int] = []
    used: set[int] = set()
    for q in logical:
        if q not in mapping:
            raise CompilationError(f"initial_mapping does not place qubit {q!r}")
        target = mapping[q]
        dq = device.qubit(target) if isinstance(target, str) else target
        if dq not in phys_index:
            raise CompilationError(
                f"initial_mapping puts {q!r} on {target!r}, which is not a usable qubit of device "
                f"{device.name!r}"
            )
        p = phys_index[dq]
        if p in used:
            raise CompilationError(f"initial_mapping puts two qubits on {target!r}")
        used.add(p)
        layout.append(p)
    return layout
