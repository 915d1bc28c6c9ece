"""`make bench-compile` on star devices: MOVE insertion next to IQM's `transpile_insert_moves`.

Both passes get the same input: a circuit on the device's qubits in which two-qubit gates may join
any two qubits (the "simplified architecture" where the computational resonator is abstracted away),
as a compiler produces it before MOVEs are inserted. Each pass turns it into a star-architecture
circuit; the benchmark prints per circuit the MOVE count, the resonator CZ count and the time of
both, and the totals. Target (issue 9): no more MOVEs than IQM's transpiler on any circuit, and
fewer on average. IQM's ``iqm-client`` is installed only in the benchmark environment.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np
from _report import record
from iqm.iqm_client.transpile import transpile_insert_moves
from iqm.pulse import Circuit as IQMCircuit
from iqm.pulse import CircuitOperation
from iqm.station_control.interface.models import DynamicQuantumArchitecture

from cirq_iqm_ext.calibration import builtin_calibration, generate_calibration
from cirq_iqm_ext.compiler.star import insert_moves_in_instructions
from cirq_iqm_ext.device.builtin import Deneb, star_device
from cirq_iqm_ext.wire.models import Instruction, QuantumArchitectureSpecification

Pair = tuple[str, str]


def random_circuit(qubits: list[str], layers: int, density: float, seed: int) -> list[Instruction]:
    """Layers of random prx and CZs between random pairs of qubits (any pair: virtual couplers)."""
    rng = np.random.default_rng(seed)
    out: list[Instruction] = []
    for _ in range(layers):
        for q in qubits:
            if rng.random() < 0.5:
                args = {"angle_t": float(rng.random()), "phase_t": float(rng.random())}
                out.append(Instruction("prx", [q], args))
        for _ in range(max(1, int(density * len(qubits)))):
            a, b = rng.choice(len(qubits), size=2, replace=False)
            out.append(Instruction("cz", [qubits[int(a)], qubits[int(b)]]))
    return out


def structured(qubits: list[str]) -> dict[str, list[Instruction]]:
    """GHZ-like chains, a star on one qubit and all-to-all CZ patterns (as in QFT)."""
    half = {"angle_t": 0.25, "phase_t": 0.25}
    chain = [Instruction("prx", [qubits[0]], half)]
    chain += [Instruction("cz", [a, b]) for a, b in itertools.pairwise(qubits)]
    fan = [Instruction("cz", [qubits[0], q]) for q in qubits[1:]]
    all_pairs = [Instruction("cz", [a, b]) for i, a in enumerate(qubits) for b in qubits[i + 1 :]]
    repeated = [Instruction("cz", [qubits[1], qubits[2]])] * 4 + fan
    return {"ghz_chain": chain, "fan_out": fan, "all_pairs": all_pairs, "repeated_pair": repeated}


def counts(names: list[str]) -> tuple[int, int]:
    return names.count("move"), names.count("cz")


def timed(function: Callable[[], list[str]], repeats: int) -> tuple[list[str], float]:
    times, result = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def ours(instructions: list[Instruction], arch: QuantumArchitectureSpecification) -> list[str]:
    return [i.name for i in insert_moves_in_instructions(instructions, arch)]


def theirs(instructions: list[Instruction], dqa: DynamicQuantumArchitecture) -> list[str]:
    ops = []
    for inst in instructions:
        if inst.name == "prx":
            args = {
                "angle": 2 * np.pi * inst.args["angle_t"],
                "phase": 2 * np.pi * inst.args["phase_t"],
            }
        else:
            args = dict(inst.args)
        ops.append(CircuitOperation(name=inst.name, locus=tuple(inst.qubits), args=args))
    circuit = IQMCircuit(name="c", instructions=tuple(ops))
    return [op.name for op in transpile_insert_moves(circuit, dqa).instructions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer circuits")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    devices = [("Deneb", Deneb())] + [(f"Star{n}", star_device(n)) for n in (3, 12)]
    rows = []
    print(
        f"{'device':<7} {'circuit':<18} {'MOVE ours/IQM':>14} {'CZ ours/IQM':>12} "
        f"{'time ours/IQM [ms]':>20}"
    )
    for name, device in devices:
        arch = device.architecture
        calibration = (
            builtin_calibration("deneb") if name == "Deneb" else generate_calibration(arch, seed=1)
        )
        dqa = DynamicQuantumArchitecture.model_validate(calibration.dynamic_architecture(arch))
        qubits = [q for q in arch.qubits if q not in arch.computational_resonators]
        cases = structured(qubits)
        for seed in range(4 if args.quick else 12):
            layers, density = (4, 0.5) if seed % 2 else (8, 1.0)
            cases[f"random_{seed}"] = random_circuit(qubits, layers, density, 1000 + seed)
        for case, instructions in cases.items():
            mine, t_mine = timed(lambda i=instructions, a=arch: ours(i, a), repeats)
            iqm, t_iqm = timed(lambda i=instructions, d=dqa: theirs(i, d), repeats)
            (m_moves, m_cz), (i_moves, i_cz) = counts(mine), counts(iqm)
            rows.append((name, case, m_moves, i_moves, m_cz, i_cz, t_mine, t_iqm))
            print(
                f"{name:<7} {case:<18} {m_moves:>6} / {i_moves:<5} {m_cz:>5} / {i_cz:<4} "
                f"{1000 * t_mine:>9.2f} / {1000 * t_iqm:<8.2f}"
            )
    worse = [r for r in rows if r[2] > r[3]]
    ratios = [(r[2] + 1) / (r[3] + 1) for r in rows]  # +1: circuits needing no MOVE at all
    geomean = float(np.exp(np.mean(np.log(ratios))))
    time_ratio = float(np.exp(np.mean(np.log([r[6] / r[7] for r in rows if r[7] > 0]))))
    total_ours, total_iqm = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(
        f"\nMOVEs in all: ours {total_ours}, IQM {total_iqm}; geometric mean ratio "
        f"{geomean:.3f}; circuits where ours needs more MOVEs: {len(worse)} of {len(rows)}"
    )
    for r in worse:
        print(f"  more MOVEs on {r[0]} {r[1]}: {r[2]} vs {r[3]}")
    record(
        "star",
        [
            ("MOVE count vs IQM transpile_insert_moves (geomean)", geomean, 1.0, "< 1.0"),
            ("MOVE count in all", float(total_ours), float(total_iqm), "<= IQM"),
            ("circuits with more MOVEs than IQM", float(len(worse)), 0.0, "0"),
            ("MOVE insertion time vs IQM (geomean ratio)", time_ratio, 1.0, "-"),
        ],
    )


if __name__ == "__main__":
    main()
