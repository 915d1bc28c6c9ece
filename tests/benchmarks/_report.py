"""Shared reporting for the benchmarks: one table format, and a JSON file per benchmark so that
``make bench`` can print one summary of every ratio against its baseline."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

#: Where each benchmark leaves its rows for the summary (``BENCH_RESULTS_DIR`` overrides it).
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", ".bench-results"))

Row = tuple[str, float, float, str]


def format_table(title: str, rows: Sequence[Row], *, baseline: str = "baseline") -> str:
    """Rows of (measure, ours, baseline, target) with the ratio ours / baseline."""
    lines = [f"{title:<52} {'ours':>10} {baseline:>10} {'ratio':>7}  target"]
    for name, ours, base, target in rows:
        ratio = ours / base if base and math.isfinite(base) else float("nan")
        lines.append(f"{name:<52} {ours:10.4g} {base:10.4g} {ratio:7.3f}  {target}")
    return "\n".join(lines)


def record(benchmark: str, rows: Sequence[Row]) -> None:
    """Saves ``rows`` for the summary and prints them."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = [{"measure": n, "ours": o, "baseline": b, "target": t} for n, o, b, t in rows]
    (RESULTS_DIR / f"{benchmark}.json").write_text(json.dumps(data, indent=1))
    print()
    print(format_table(f"{benchmark} (medians)", rows))


def summary() -> str:
    """One table of every benchmark's rows found in :data:`RESULTS_DIR`."""
    blocks = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        rows = [
            (r["measure"], r["ours"], r["baseline"], r["target"])
            for r in json.loads(path.read_text())
        ]
        blocks.append(format_table(path.stem, rows))
    return "\n\n".join(blocks) if blocks else f"no benchmark results in {RESULTS_DIR}"


if __name__ == "__main__":
    print(summary())
