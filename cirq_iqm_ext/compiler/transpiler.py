"""The compiler: any Cirq circuit -> a native circuit on an IQM device, plus the qubit maps.

Optimisation levels (one meaning everywhere, :data:`OPTIMIZATION_LEVELS`):

* ``0`` — translate: every operation becomes native pulses on its own (Z rotations stay virtual,
  folded exactly into the phases of later ``prx`` pulses); nothing is merged, cancelled or
  resynthesised across operations; waits and barriers are kept. The sampler's default.
* ``1`` — also merge adjacent single-qubit gates into one pulse and drop negligible ones.
* ``2`` — also resynthesise two-qubit blocks, absorb SWAPs into the final mapping, try several
  layouts and route exactly commuting gates in whichever order needs fewer SWAPs
  (:mod:`.commutation`; never across a measurement, wait or barrier); doubly controlled gates
  (Toffoli, ``CCZ``, ``CSWAP``) are compiled both in their 6-CZ forms (which use all three
  pairs) and in Cirq's nearest-neighbour ones, keeping the fewer CZ. The default of
  :func:`transpile`.
* ``3`` — also spend more layout and routing trials (the best of several seeds); with a
  calibration set, also move the compiled circuit onto the device qubits and couplers where its
  estimated success probability is highest (:mod:`.noise_aware`; never a circuit on device
  qubits or one given an ``initial_mapping``).

At every level: barriers are honoured (nothing is moved or merged across one), waits are kept, a
circuit written on the device's own qubits runs on exactly those qubits (no placement, no
routing), only logical qubits (``LineQubit``, ``GridQubit``, other names) are placed, and the
output is equivalent to the input up to global phase and the reported qubit maps (a Z rotation
is dropped only where a measurement follows it).

:func:`transpile` is a short driver over the named stages of :mod:`.stages`, which pass one typed
intermediate form (:class:`~.stages.Compilation`) along:

1. ``prepare``: logical qubits and the region of device qubits they may use (:mod:`.region`);
2. ``itemise``: flatten to 1- and 2-qubit gates and measurements (:mod:`.decompose`; symbolic
   two-qubit gates become CZ and symbolic rotations), as items (:mod:`.itemise`);
3. ``optimise_logical``: input SWAPs elided, two-qubit blocks merged, SWAPs absorbed;
4. ``schedule_measurements``: terminal measurements held back from routing;
5. ``place_and_route``: an exact embedding of the interaction graph when there is one, else the
   best of several seeded SABRE layout trials (:mod:`.placement`), with look-ahead SWAP insertion
   (:mod:`.routing`);
6. ``synthesise``: two-qubit blocks (SWAPs included) resynthesised with at most 3 CZ, single-qubit
   runs merged into one ``PhasedXPowGate``, Z rotations ejected into measurements
   (:mod:`.synthesis`);
7. ``finish``: the qubit maps, and the device's check of the output.

On a star device (a computational resonator, e.g. Deneb) the stages run on the fictional
qubit-only architecture whose ``cz`` pairs are those a resonator can implement, and a final pass
(``star_pass``, :mod:`.star`) replaces each fictional CZ by MOVEs and resonator CZs with look-ahead.
:mod:`.transformers` offers the stages as ``cirq.transformer`` functions to compose by hand.

The result is checked with :meth:`IQMDevice.validate_circuit` before it is returned. The same input
and seed give the same output in any process: nothing depends on hash order or on the clock.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import cirq
import numpy as np

from cirq_iqm_ext.calibration import CalibrationSet, load_calibration
from cirq_iqm_ext.compiler.noise_aware import best_relocation, estimated_success_probability
from cirq_iqm_ext.compiler.region import device_qubits_of
from cirq_iqm_ext.compiler.stages import (
    MAX_TRIALS,
    MIN_TRIALS,
    TRIAL_WORK,
    Compilation,
    CompileOptions,
    finish,
    itemise,
    optimise_logical,
    place_and_route,
    plan_star,
    prepare,
    schedule_measurements,
    star_pass,
    synthesise,
)
from cirq_iqm_ext.compiler.star import DEFAULT_LOOKAHEAD
from cirq_iqm_ext.device.iqm_device import IQMDevice
from cirq_iqm_ext.errors import CompilationError

__all__ = [
    "LEVEL3_SEEDS",
    "MAX_TRIALS",
    "MIN_TRIALS",
    "OPTIMIZATION_LEVELS",
    "TRIAL_WORK",
    "TranspileResult",
    "device_qubits_of",
    "transpile",
]

#: The optimisation levels of :func:`transpile` (see the module docstring).
OPTIMIZATION_LEVELS = (0, 1, 2, 3)

#: Level 3: seeds tried (each with twice the layout trials of level 2); the fewest CZ wins. A
#: fixed count, not a clock, so the output never depends on the machine's speed.
LEVEL3_SEEDS = 4


@dataclass(frozen=True)
class TranspileResult:
    """A compiled circuit and where the logical qubits are at its start and end.

    Unpacks as a tuple: ``circuit, initial_mapping, final_mapping = transpile(...)``.

    Attributes:
        circuit: The native circuit on device qubits.
        initial_mapping: Logical qubit -> device qubit at the start of the circuit.
        final_mapping: Logical qubit -> device qubit at the end (after routing SWAPs).
        estimated_success_probability: With a calibration set, the product of its CZ, prx and
            readout fidelities over the circuit; else ``None``.
    """

    circuit: cirq.Circuit
    initial_mapping: dict[cirq.Qid, cirq.Qid]
    final_mapping: dict[cirq.Qid, cirq.Qid]
    estimated_success_probability: float | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.circuit, self.initial_mapping, self.final_mapping))


def _check_arguments(
    optimization_level: Any, optimize: bool | None, circuit: Any, device: Any
) -> int:
    """The optimisation level asked for (``optimize`` is deprecated), with the argument types."""
    if optimize is not None:
        warnings.warn(
            "transpile(optimize=...) is deprecated: use optimization_level (optimize=True is "
            "level 2, optimize=False level 0)",
            DeprecationWarning,
            stacklevel=3,
        )
        level = 2 if optimize else 0
    elif (
        isinstance(optimization_level, bool)
        or not isinstance(optimization_level, int | np.integer)
        or int(optimization_level) not in OPTIMIZATION_LEVELS
    ):
        raise CompilationError(
            f"optimization_level must be one of {OPTIMIZATION_LEVELS}, got {optimization_level!r}"
        )
    else:
        level = int(optimization_level)
    if not isinstance(circuit, cirq.AbstractCircuit):
        raise TypeError(f"transpile needs a cirq.Circuit, got {type(circuit).__name__}")
    if not isinstance(device, IQMDevice):
        raise TypeError(f"transpile needs an IQMDevice to compile for, got {device!r}")
    return level


def transpile(
    circuit: cirq.AbstractCircuit,
    device: IQMDevice,
    *,
    optimization_level: int = 2,
    initial_mapping: Mapping[cirq.Qid, cirq.Qid | str] | None = None,
    qubit_subset: Iterable[cirq.Qid | str] | None = None,
    seed: int | None = None,
    existing_moves: str = "keep",
    lookahead: int = DEFAULT_LOOKAHEAD,
    calibration: CalibrationSet | str | Mapping[str, Any] | None = None,
    optimize: bool | None = None,
) -> TranspileResult:
    """Compiles ``circuit`` into native operations on ``device``.

    Args:
        circuit: Any circuit of unitary gates (symbolic ones included), measurements, waits
            (``cirq.WaitGate``) and barriers (:func:`cirq_iqm_ext.barrier`).
        device: The target device.
        optimization_level: ``0`` translate each operation on its own, ``1`` also merge adjacent
            single-qubit gates, ``2`` (default) also resynthesise two-qubit blocks, ``3`` also
            try more layouts and seeds (see the module docstring).
        initial_mapping: Logical qubit -> device qubit (or its name) to start from; placement
            search is skipped when given.
        qubit_subset: Restrict the compiled circuit to these device qubits (or names).
        seed: Seeds layout trials and tie-breaking; ``None`` means ``0``. The output depends only on
            the input and the seed.
        existing_moves: Star devices only, for an input that already holds ``IQMMoveGate``s (on
            device qubits): ``"keep"`` its sandwiches (the rest must then be native, with
            qubit-qubit CZs allowed), ``"remove"`` them and compile the rest, or ``"trust"`` them
            (``keep`` without pre-validation). An input that is already valid is returned as is.
        lookahead: Star devices only: the MOVE pass's look-ahead window (0 is greedy).
        calibration: A calibration set (or a built-in name, a JSON path or a parsed dict, as for
            :func:`cirq_iqm_ext.calibration.load_calibration`): the result reports its estimated
            success probability, and level 3 places the circuit where that is highest.
        optimize: Deprecated: ``True`` is level 2, ``False`` level 0.

    Returns:
        The native circuit with the initial and final logical -> physical maps (the identity for a
        circuit on device qubits).

    Raises:
        CompilationError: The circuit holds an operation that cannot be compiled (a non-unitary one
            other than measurement), needs more qubits than the device (or ``qubit_subset``)
            offers, ``initial_mapping`` is invalid, or ``optimization_level`` is unknown.
        cirq_iqm_ext.errors.CircuitValidationError: A qubit is named like a device qubit the device
            does not have, device and logical qubits are mixed, a circuit on device qubits uses an
            uncoupled pair, or (star devices) explicit MOVEs break a sandwich rule.
        TypeError: ``circuit`` is not a Cirq circuit or ``device`` not an ``IQMDevice``.
    """
    options = CompileOptions(
        level=_check_arguments(optimization_level, optimize, circuit, device),
        initial_mapping=initial_mapping,
        qubit_subset=None if qubit_subset is None else tuple(qubit_subset),
        seed=0 if seed is None else int(seed),
        existing_moves=existing_moves,
        lookahead=lookahead,
    )
    figures = None if calibration is None else load_calibration(calibration)
    compile_for = _compile_star if device.resonators else _compile_best
    compiled = compile_for(circuit, device, options)
    if figures is not None and options.level == 3 and not device.resonators:
        compiled = _relocated(compiled, figures)
    assert isinstance(compiled.circuit, cirq.Circuit)  # the stages build one
    esp = None if figures is None else estimated_success_probability(compiled.circuit, figures)
    return TranspileResult(compiled.circuit, compiled.initial_mapping, compiled.final_mapping, esp)


def _relocated(compiled: Compilation, calibration: CalibrationSet) -> Compilation:
    """The compiled circuit renamed onto the device qubits where it is most likely to succeed
    (:func:`.noise_aware.best_relocation`); as it is when the user chose the qubits."""
    if compiled.on_device_qubits or compiled.options.initial_mapping is not None:
        return compiled
    physical = compiled.physical
    couplers = [(physical[a], physical[b]) for a, b in compiled.edges]
    extra = [*compiled.initial_mapping.values(), *compiled.final_mapping.values()]
    to = best_relocation(compiled.circuit, extra, physical, couplers, calibration)
    if all(old == new for old, new in to.items()):
        return compiled
    assert isinstance(compiled.circuit, cirq.Circuit)  # the stages build one
    circuit = compiled.circuit.transform_qubits(lambda q: to.get(q, q))
    compiled.device.validate_circuit(circuit)
    return replace(
        compiled,
        circuit=circuit,
        initial_mapping={lq: to[p] for lq, p in compiled.initial_mapping.items()},
        final_mapping={lq: to[p] for lq, p in compiled.final_mapping.items()},
    )


def _compile_star(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> Compilation:
    """On a star device: the input's own MOVEs read, the stages run on the fictional qubit-only
    device, then the MOVE pass (a circuit pinned by its own MOVE sandwiches only gets the last)."""
    plan = plan_star(circuit, device, options)
    if plan.pinned:
        return star_pass(plan)
    return star_pass(plan, _compile_best(plan.circuit, plan.fictional_device(), options))


def _compile_best(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> Compilation:
    """Levels 0-1 compile once; level 2 keeps the fewer-CZ result of the two decompositions of
    doubly controlled gates (:func:`_compile_either_form`); level 3 keeps the fewest-CZ result of
    ``LEVEL3_SEEDS`` seeds, each as level 2 with twice the layout trials."""
    if options.level < 2:
        return _compile(circuit, device, options)
    if options.level == 2:
        return _compile_either_form(circuit, device, options)
    best: Compilation | None = None
    best_cz = 0
    for k in range(LEVEL3_SEEDS):
        trial = replace(options, level=2, seed=options.seed + k, trial_scale=2)
        compiled = _compile_either_form(circuit, device, trial)
        n_cz = _cz_count(compiled)
        if best is None or n_cz < best_cz:
            best, best_cz = compiled, n_cz
    assert best is not None
    return best


def _compile_either_form(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> Compilation:
    """Level 2: doubly controlled gates in their 6-CZ forms, and, when there were any, also in
    Cirq's nearest-neighbour forms (8 CZ on two pairs, which can need fewer SWAPs); the fewer
    CZ wins (the short forms on a tie)."""
    short = _compile(circuit, device, replace(options, short_forms=True))
    # The nearest-neighbour forms only pay for themselves by saving SWAPs: none, nothing to win.
    if not short.short_forms_used or not any(g < 0 for g, _ in short.steps):
        return short
    near = _compile(circuit, device, replace(options, short_forms=False))
    return near if _cz_count(near) < _cz_count(short) else short


def _cz_count(compiled: Compilation) -> int:
    return sum(1 for op in compiled.circuit.all_operations() if len(op.qubits) == 2)


def _compile(
    circuit: cirq.AbstractCircuit, device: IQMDevice, options: CompileOptions
) -> Compilation:
    """The stages in order, on a device without resonators."""
    form = prepare(circuit, device, options)
    form = itemise(form)
    form = optimise_logical(form)
    form = schedule_measurements(form)
    form = place_and_route(form)
    form = synthesise(form)
    return finish(form)
