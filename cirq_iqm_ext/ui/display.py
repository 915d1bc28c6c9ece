"""Text, HTML and matplotlib renderings of devices, jobs and results, for terminals and notebooks.

The ``_repr_html_`` / ``_repr_pretty_`` methods of :class:`~cirq_iqm_ext.IQMDevice`,
:class:`~cirq_iqm_ext.IQMJob` and :class:`~cirq_iqm_ext.IQMResult` and the
``cirq-iqm-ext`` command line all delegate here, so every surface draws the same picture.

Calibration figures (``metrics``) may be given in any of these forms:

* the body of ``GET calibration/metrics/{id}`` (PROTOCOL.md §4.3):
  ``{"calibration_set_id": ..., "metrics": {"QB1.prx.fidelity": {"value": "0.999", "unit": ""}}}``;
* its inner ``metrics`` object, or a flat ``{"QB1.prx.fidelity": 0.999}``;
* a :class:`~cirq_iqm_ext.calibration.CalibrationSet` (anything with a ``metrics()`` method).

matplotlib is imported only inside :func:`plot_device`, so importing this module stays cheap.
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cirq_iqm_ext.wire.qubits import natural_key

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from cirq_iqm_ext.device.iqm_device import IQMDevice
    from cirq_iqm_ext.sampling.job import IQMJob
    from cirq_iqm_ext.sampling.results import IQMResult

#: Seed of the spring layout used for topologies that are not square lattices.
LAYOUT_SEED = 7

#: Histograms show at most this many bitstrings (the most frequent); the rest are summed up.
MAX_HISTOGRAM_ROWS = 16

# Preferred column order of the calibration tables; other metrics follow alphabetically.
_QUBIT_METRIC_ORDER = (
    "t1_time",
    "t2_time",
    "prx.fidelity",
    "prx.duration",
    "readout.error_0_to_1",
    "readout.error_1_to_0",
    "measure.duration",
)
_COUPLER_METRIC_ORDER = ("cz.fidelity", "cz.duration", "move.fidelity", "move.duration")

#: The figure each ``figure_metric`` colours qubits and couplers by, and whether higher is better.
FIGURES: dict[str, tuple[str, str, str]] = {
    # figure_metric: (qubit metric, coupler metric, qubit colour-bar label)
    "fidelity": ("prx.fidelity", "cz.fidelity", "prx fidelity"),
    "readout": ("readout.error", "cz.fidelity", "mean readout error"),
    "t1": ("t1_time", "cz.fidelity", "T1 (µs)"),
    "t2": ("t2_time", "cz.fidelity", "T2 (µs)"),
}

#: Column headings of the calibration tables.
LABELS: dict[str, str] = {
    "t1_time": "T1",
    "t2_time": "T2",
    "prx.fidelity": "prx fidelity",
    "prx.duration": "prx time",
    "readout.error_0_to_1": "readout 0→1",
    "readout.error_1_to_0": "readout 1→0",
    "measure.duration": "measure time",
    "cz.fidelity": "cz fidelity",
    "cz.duration": "cz time",
    "move.fidelity": "move fidelity",
    "move.duration": "move time",
}


# ------------------------------------------------------------------------------------- metrics


def split_metrics(
    metrics: Any,
) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], dict[str, float]]]:
    """Splits calibration figures into per-qubit and per-coupler tables.

    Args:
        metrics: Calibration figures in one of the forms of the module docstring, or ``None``.

    Returns:
        ``(qubits, couplers)``: qubit name -> metric -> value, and a coupler (two names, as listed)
        -> metric -> value. Metric names drop the component, e.g. ``"prx.fidelity"``. Values that
        are not numbers are left out.
    """
    if metrics is None:
        return {}, {}
    if hasattr(metrics, "metrics") and callable(metrics.metrics):
        metrics = metrics.metrics()
    if isinstance(metrics, Mapping) and isinstance(metrics.get("metrics"), Mapping):
        metrics = metrics["metrics"]
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be a mapping or a CalibrationSet, got {type(metrics).__name__}"
        )
    qubits: dict[str, dict[str, float]] = {}
    couplers: dict[tuple[str, str], dict[str, float]] = {}
    for key, raw in metrics.items():
        component, dot, name = str(key).partition(".")
        if not dot:
            continue
        value: Any = raw.get("value") if isinstance(raw, Mapping) else raw
        try:
            number = float(value)  # the protocol sends numbers as strings
        except (TypeError, ValueError):
            continue
        if "," in component:
            a, _, b = component.partition(",")
            couplers.setdefault((a, b), {})[name] = number
        else:
            qubits.setdefault(component, {})[name] = number
    return qubits, couplers


def _ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    present = set(names)
    return [n for n in preferred if n in present] + sorted(present - set(preferred))


def _qubit_figure(figures: Mapping[str, float], metric: str) -> float | None:
    if metric == "readout.error":
        # One number per qubit: the mean of the two asymmetric readout errors.
        errors = [
            figures[k] for k in ("readout.error_0_to_1", "readout.error_1_to_0") if k in figures
        ]
        return sum(errors) / len(errors) if errors else None
    value = figures.get(metric)
    if value is not None and metric in ("t1_time", "t2_time"):
        return value * 1e6
    return value


def format_figure(metric: str, value: float) -> str:
    """A calibration figure as a person reads it: times in µs or ns, fidelities to 4 decimals."""
    if metric.endswith(("t1_time", "t2_time")):
        return f"{value * 1e6:.1f} µs"
    if metric.endswith("duration"):
        return f"{value * 1e9:.0f} ns"
    if "fidelity" in metric or "error" in metric:
        return f"{value:.4f}"
    return f"{value:.4g}"


def metrics_text(metrics: Any) -> str:
    """Two aligned tables (qubits, couplers) of calibration figures, plus a median line each."""
    qubits, couplers = split_metrics(metrics)
    sections = []
    for title, rows in (
        ("qubit", {name: qubits[name] for name in sorted(qubits, key=natural_key)}),
        (
            "coupler",
            {
                ",".join(locus): couplers[locus]
                for locus in sorted(couplers, key=lambda lc: tuple(map(natural_key, lc)))
            },
        ),
    ):
        if not rows:
            continue
        preferred = _QUBIT_METRIC_ORDER if title == "qubit" else _COUPLER_METRIC_ORDER
        columns = _ordered({m for figures in rows.values() for m in figures}, preferred)
        table = [[title, *(LABELS.get(m, m) for m in columns)]]
        for name, figures in rows.items():
            table.append(
                [name, *(format_figure(m, figures[m]) if m in figures else "—" for m in columns)]
            )
        medians = []
        for m in columns:
            values = sorted(figures[m] for figures in rows.values() if m in figures)
            medians.append(format_figure(m, _median(values)) if values else "—")
        table.append(["median", *medians])
        sections.append(_aligned(table))
    return "\n\n".join(sections) if sections else "(no calibration figures)"


def _median(values: Sequence[float]) -> float:
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _aligned(table: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for index, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- layout


def _number(name: str) -> int | None:
    match = re.fullmatch(r"[A-Za-z_]*(\d+)", name)
    return int(match.group(1)) if match else None


def grid_layout(
    names: Sequence[str], edges: Iterable[tuple[str, str]]
) -> dict[str, tuple[int, int]] | None:
    """Integer ``(column, row)`` positions when the coupling map is a numbered square lattice.

    IQM's crystal chips (Adonis, Apollo/Garnet, Aphrodite) number their qubits row by row, so a row
    is a run of consecutive numbers joined by couplers, and the other couplers join rows vertically.
    The result is checked: every coupler must join grid neighbours and no two qubits may share a
    point; otherwise (e.g. a resonator star) the answer is ``None``.
    """
    maybe = {name: _number(name) for name in names}
    numbers = {name: n for name, n in maybe.items() if n is not None}
    if not names or len(numbers) != len(maybe):
        return None
    by_number = {numbers[name]: name for name in names}
    if len(by_number) != len(names):
        return None
    pairs = {frozenset(e) for e in edges if e[0] != e[1]}
    ordered = sorted(names, key=numbers.__getitem__)
    rows: list[list[str]] = [[ordered[0]]]
    for previous, name in itertools.pairwise(ordered):
        if numbers[name] == numbers[previous] + 1 and frozenset((previous, name)) in pairs:
            rows[-1].append(name)
        else:
            rows.append([name])
    row_of = {name: r for r, row in enumerate(rows) for name in row}
    column: dict[str, int] = {name: i for i, name in enumerate(rows[0])}
    for r in range(1, len(rows)):
        # Shift the row so that one of its vertical couplers to the row above is vertical.
        shift = None
        for name in rows[r]:
            for other in (n for pair in pairs if name in pair for n in pair if n != name):
                if row_of[other] == r - 1:
                    shift = column[other] - rows[r].index(name)
                    break
            if shift is not None:
                break
        if shift is None:
            return None
        for i, name in enumerate(rows[r]):
            column[name] = i + shift
    positions = {name: (column[name], row_of[name]) for name in names}
    if len(set(positions.values())) != len(positions):
        return None
    for pair in pairs:
        a, b = tuple(pair)
        (xa, ya), (xb, yb) = positions[a], positions[b]
        if abs(xa - xb) + abs(ya - yb) != 1:
            return None
    low = min(x for x, _ in positions.values())
    return {name: (x - low, y) for name, (x, y) in positions.items()}


def _device_graph(device: IQMDevice) -> tuple[list[str], list[tuple[str, str]]]:
    names = list(device.qubit_names)
    edges = [(a.name, b.name) for a, b in device.metadata.nx_graph.edges]
    return names, edges


def device_layout(device: IQMDevice) -> dict[str, tuple[float, float]]:
    """Positions of the device's qubits for drawing (y grows downwards, as rows are read).

    Square lattices get their grid; anything else a spring layout with a fixed seed, so the
    picture is the same every time.
    """
    names, edges = _device_graph(device)
    grid = grid_layout(names, edges)
    if grid is not None:
        return {name: (float(x), float(y)) for name, (x, y) in grid.items()}
    import networkx as nx  # already a dependency of the device

    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_edges_from(edges)
    raw = nx.spring_layout(graph, seed=LAYOUT_SEED)
    # Scale to roughly one unit per coupler, like the grid.
    scale = max(1.0, math.sqrt(len(names)))
    return {name: (float(raw[name][0]) * scale, float(raw[name][1]) * scale) for name in names}


# ------------------------------------------------------------------------------- text and HTML


def _grid_text(grid: Mapping[str, tuple[int, int]], edges: Iterable[tuple[str, str]]) -> list[str]:
    """The grid as box-drawing text: ``QB1 ─ QB2`` across, ``│`` down."""
    width = max(len(name) for name in grid)
    pairs = {frozenset(e) for e in edges}
    at = {pos: name for name, pos in grid.items()}
    columns = max(x for x, _ in grid.values()) + 1
    rows = max(y for _, y in grid.values()) + 1
    lines = []
    for y in range(rows):
        cells, links = [], []
        for x in range(columns):
            name = at.get((x, y))
            cells.append((name or "").center(width))
            right = at.get((x + 1, y))
            if x < columns - 1:
                joined = (
                    name is not None and right is not None and frozenset((name, right)) in pairs
                )
                cells.append(" ─ " if joined else "   ")
            below = at.get((x, y + 1))
            down = name is not None and below is not None and frozenset((name, below)) in pairs
            links.append(("│" if down else "").center(width))
            if x < columns - 1:
                links.append("   ")
        lines.append("  " + "".join(cells).rstrip())
        if y < rows - 1:
            lines.append("  " + "".join(links).rstrip())
    return lines


def device_text(device: IQMDevice, metrics: Any = None) -> str:
    """The device as text: a header, the coupling map, the operations and (given) the figures.

    Square lattices are drawn as a grid; other topologies as one line per qubit with its
    neighbours.
    """
    names, edges = _device_graph(device)
    lines = [f"IQMDevice {device.name!r}: {len(names)} qubits, {len(edges)} couplings"]
    if device.calibration_set_id is not None:
        lines.append(f"calibration set {device.calibration_set_id}")
    grid = grid_layout(names, edges)
    if grid is not None:
        lines.extend(_grid_text(grid, edges))
    else:
        graph = device.metadata.nx_graph
        width = max((len(n) for n in names), default=0)
        for qubit in device.qubits:
            neighbours = sorted((n.name for n in graph.neighbors(qubit)), key=natural_key)
            lines.append(f"  {qubit.name:>{width}} ── " + " ".join(neighbours))
    operations = ", ".join(
        f"{op} ({len(device.loci(op))} loci)" for op in device.metadata.operation_names
    )
    lines.append(f"operations: {operations}")
    if metrics is not None:
        lines.extend(["", metrics_text(metrics)])
    return "\n".join(lines)


def _colour(value: float | None, low: float, high: float, reverse: bool = False) -> str:
    """A hex colour from red (worst) through yellow to green (best); grey when unknown."""
    if value is None or not math.isfinite(value):
        return "#bbbbbb"
    t = 0.5 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    if reverse:
        t = 1 - t
    # Piecewise linear red -> yellow -> green, readable on white and dark backgrounds.
    r, g = (1.0, 2 * t) if t < 0.5 else (2 * (1 - t), 1.0)
    return f"#{round(40 + 180 * r):02x}{round(40 + 150 * g):02x}50"


def _figures(
    device: IQMDevice, metrics: Any, figure_metric: str
) -> tuple[dict[str, float], dict[frozenset[str], float], str, bool]:
    """The figure per qubit and per coupler that colours the picture, its label and direction."""
    if figure_metric not in FIGURES:
        raise ValueError(
            f"Unknown figure_metric {figure_metric!r}; use one of {', '.join(FIGURES)}"
        )
    qubit_metric, coupler_metric, label = FIGURES[figure_metric]
    qubits, couplers = split_metrics(metrics)
    qubit_values = {
        name: value
        for name, figures in qubits.items()
        if (value := _qubit_figure(figures, qubit_metric)) is not None
    }
    coupler_values = {
        frozenset(locus): figures[coupler_metric]
        for locus, figures in couplers.items()
        if coupler_metric in figures
    }
    return qubit_values, coupler_values, label, figure_metric == "readout"


def device_svg(device: IQMDevice, metrics: Any = None, figure_metric: str = "fidelity") -> str:
    """An inline SVG of the coupling map, coloured by calibration figures when given."""
    positions = device_layout(device)
    names, edges = _device_graph(device)
    qubit_values, coupler_values, _, reverse = _figures(device, metrics, figure_metric)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    step, radius, margin = 64.0, 20.0, 30.0

    def point(name: str) -> tuple[float, float]:
        x, y = positions[name]
        return margin + (x - min(xs)) * step, margin + (y - min(ys)) * step

    width = margin * 2 + (max(xs) - min(xs)) * step
    height = margin * 2 + (max(ys) - min(ys)) * step
    q_low, q_high = _bounds(qubit_values.values())
    c_low, c_high = _bounds(coupler_values.values())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="coupling map of {html.escape(device.name)}">'
    ]
    for a, b in edges:
        (x1, y1), (x2, y2) = point(a), point(b)
        value = coupler_values.get(frozenset((a, b)))
        colour = _colour(value, c_low, c_high) if coupler_values else "#888888"
        tip = f"{a}-{b}" + ("" if value is None else f": {value:.4f}")
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="6"><title>{html.escape(tip)}</title></line>'
        )
    for name in names:
        x, y = point(name)
        value = qubit_values.get(name)
        colour = _colour(value, q_low, q_high, reverse) if qubit_values else "#9ec5fe"
        tip = name + ("" if value is None else f": {value:.4g}")
        parts.append(
            f'<g><title>{html.escape(tip)}</title><circle cx="{x:.1f}" cy="{y:.1f}" '
            f'r="{radius:.0f}" fill="{colour}" stroke="#333333"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="11" text-anchor="middle" '
            f'font-family="sans-serif">{html.escape(name)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _colour_bar(ax: Axes, values: Iterable[float], cmap: Any, label: str) -> None:
    import matplotlib.pyplot as plt
    from matplotlib import colors

    low, high = _bounds(values)
    mappable = plt.cm.ScalarMappable(
        norm=colors.Normalize(low, high if high > low else low + 1e-9), cmap=cmap
    )
    mappable.set_array([])
    ax.figure.colorbar(mappable, ax=ax, label=label, shrink=0.7, pad=0.02)


def _bounds(values: Iterable[float]) -> tuple[float, float]:
    values = list(values)
    return (min(values), max(values)) if values else (0.0, 1.0)


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def device_html(device: IQMDevice, metrics: Any = None, figure_metric: str = "fidelity") -> str:
    """HTML for a notebook: a header, an SVG of the coupling map and the figures' tables."""
    names, edges = _device_graph(device)
    title = (
        f"<b>IQMDevice {html.escape(device.name)}</b>: {len(names)} qubits, {len(edges)} couplings"
    )
    if device.calibration_set_id is not None:
        title += f", calibration set <code>{device.calibration_set_id}</code>"
    operations = ", ".join(
        f"{html.escape(op)} ({len(device.loci(op))})" for op in device.metadata.operation_names
    )
    parts = [
        '<div class="cirq-iqm-ext-device">',
        f"<div>{title}</div>",
        device_svg(device, metrics, figure_metric),
        f"<div>operations (loci): {operations}</div>",
    ]
    qubits, couplers = split_metrics(metrics)
    if qubits:
        columns = _ordered({m for f in qubits.values() for m in f}, _QUBIT_METRIC_ORDER)
        rows = [
            [n, *(format_figure(m, qubits[n][m]) if m in qubits[n] else "—" for m in columns)]
            for n in sorted(qubits, key=natural_key)
        ]
        parts.append(_html_table(["qubit", *(LABELS.get(m, m) for m in columns)], rows))
    if couplers:
        columns = _ordered({m for f in couplers.values() for m in f}, _COUPLER_METRIC_ORDER)
        rows = [
            [
                ",".join(locus),
                *(
                    format_figure(m, couplers[locus][m]) if m in couplers[locus] else "—"
                    for m in columns
                ),
            ]
            for locus in sorted(couplers, key=lambda lc: tuple(map(natural_key, lc)))
        ]
        parts.append(_html_table(["coupler", *(LABELS.get(m, m) for m in columns)], rows))
    parts.append("</div>")
    return "".join(parts)


# -------------------------------------------------------------------------------- matplotlib


def plot_device(
    device: IQMDevice,
    metrics: Any = None,
    ax: Axes | None = None,
    figure_metric: str = "fidelity",
) -> Axes:
    """Draws the coupling map, qubits and couplers coloured by calibration figures.

    Args:
        device: The device to draw.
        metrics: Calibration figures (see the module docstring); without them the map is drawn in
            neutral colours.
        ax: Axes to draw on; a new figure when ``None``.
        figure_metric: What colours the picture: ``"fidelity"`` (prx fidelity of qubits, cz
            fidelity of couplers), ``"readout"`` (mean readout error of qubits), ``"t1"`` or
            ``"t2"`` (µs); couplers always show the cz fidelity.

    Returns:
        The axes drawn on (``ax.figure.savefig(path)`` saves it).

    Raises:
        ValueError: ``figure_metric`` is not one of the above.
    """
    import matplotlib.pyplot as plt  # lazily: matplotlib is slow to import
    from matplotlib import colors
    from matplotlib.collections import LineCollection

    qubit_values, coupler_values, qubit_label, reverse = _figures(device, metrics, figure_metric)
    positions = device_layout(device)
    names, edges = _device_graph(device)
    if ax is None:
        size = max(4.0, min(12.0, 1.1 * math.sqrt(len(names)) + 3))
        _, ax = plt.subplots(figsize=(size + 1.5, size))
    qubit_cmap = plt.get_cmap("RdYlGn_r" if reverse else "RdYlGn")
    coupler_cmap = plt.get_cmap("RdYlGn")

    segments = [[positions[a], positions[b]] for a, b in edges]
    lines = LineCollection(segments, linewidths=6, zorder=1)
    if coupler_values:
        c_low, c_high = _bounds(coupler_values.values())
        norm = colors.Normalize(c_low, c_high if c_high > c_low else c_low + 1e-9)
        lines.set_color(
            [
                coupler_cmap(norm(coupler_values[frozenset(e)]))
                if frozenset(e) in coupler_values
                else (0.75, 0.75, 0.75, 1.0)
                for e in edges
            ]
        )
    else:
        lines.set_color((0.55, 0.55, 0.55, 1.0))
    ax.add_collection(lines)

    xs = [positions[n][0] for n in names]
    ys = [positions[n][1] for n in names]
    if qubit_values:
        q_low, q_high = _bounds(qubit_values.values())
        norm = colors.Normalize(q_low, q_high if q_high > q_low else q_low + 1e-9)
        face = [
            qubit_cmap(norm(qubit_values[n])) if n in qubit_values else (0.75, 0.75, 0.75, 1.0)
            for n in names
        ]
    else:
        face = [(0.62, 0.77, 1.0, 1.0)] * len(names)
    ax.scatter(xs, ys, s=900, c=face, edgecolors="#333333", linewidths=1.2, zorder=2)
    for name, x, y in zip(names, xs, ys, strict=True):
        ax.annotate(
            name, (x, y), ha="center", va="center", fontsize=8 if len(name) < 5 else 6, zorder=3
        )

    # One colour bar per scale: qubits and couplers carry different figures.
    if qubit_values:
        _colour_bar(ax, qubit_values.values(), qubit_cmap, f"qubits: {qubit_label}")
    if coupler_values:
        _colour_bar(ax, coupler_values.values(), coupler_cmap, "couplers: cz fidelity")
    ax.set_title(f"{device.name}: {len(names)} qubits, {len(edges)} couplings")
    ax.set_aspect("equal")
    ax.margins(0.12)
    ax.invert_yaxis()  # rows are read top to bottom
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------------------- jobs


def job_summary(job: IQMJob) -> list[dict[str, Any]]:
    """The state of each IQM job of ``job`` (:meth:`~cirq_iqm_ext.IQMJob.summary`)."""
    return job.summary()


def job_text(job: IQMJob) -> str:
    """Plain text of :func:`job_summary`."""
    lines = []
    for row in job_summary(job):
        line = f"IQMJob {row['job_id']}: {row['status']}"
        if row.get("message"):
            line += f" ({row['message']})"
        lines.append(line)
        for stamp, value in row["timestamps"].items():
            lines.append(f"  {stamp:<16} {value}")
    return "\n".join(lines)


def job_html(job: IQMJob) -> str:
    """HTML for a notebook: per IQM job its id, state, message and timestamps."""
    parts = ['<div class="cirq-iqm-ext-job">']
    for row in job_summary(job):
        parts.append(
            f"<div><b>IQMJob</b> <code>{html.escape(row['job_id'])}</code>: "
            f"<b>{html.escape(row['status'])}</b>"
            + (f" — {html.escape(str(row['message']))}" if row.get("message") else "")
            + "</div>"
        )
        if row["timestamps"]:
            parts.append(_html_table(["step", "time"], row["timestamps"].items()))
    parts.append("</div>")
    return "".join(parts)


# ------------------------------------------------------------------------------ results


def _bits(result: IQMResult, key: str) -> Any:
    """A key's bits per shot, every measurement of a repeated key in time order."""
    records = result.records[key]
    return records.reshape(records.shape[0], -1)


def counts(result: IQMResult, key: str) -> Counter[str]:
    """Bitstring counts of one measurement key (bits in the order the qubits were measured; a
    key measured more than once joins its measurements in time order)."""
    array = _bits(result, key)
    return Counter("".join(str(int(bit)) for bit in row) for row in array)


def combined_counts(result: IQMResult, keys: Sequence[str] | None = None) -> Counter[str]:
    """Counts of the bitstrings of several keys joined per shot, like IQM's ``counts`` endpoint.

    Args:
        result: The result.
        keys: The keys, in the order their bits are joined (default: all, in natural order, so
            the ``c_0``, ``c_1``, ... keys of an OpenQASM program read as one register).
    """
    import numpy as np

    keys = sorted(result.records, key=natural_key) if keys is None else list(keys)
    if not keys:
        return Counter()
    joined = np.concatenate([_bits(result, k) for k in keys], axis=1)
    return Counter("".join(str(int(bit)) for bit in row) for row in joined)


def _histogram_rows(tally: Counter[str], total: int) -> list[tuple[str, int, float]]:
    rows = [(bits, n, n / total if total else 0.0) for bits, n in tally.most_common()]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows


def result_text(result: IQMResult, *, bar_width: int = 30) -> str:
    """The result as text: its metadata and a bar histogram per measurement key."""
    lines = [f"IQMResult: {result.repetitions} shots"]
    if result.requested_shots not in (None, result.repetitions):
        lines[0] += f" of {result.requested_shots} requested"
    for label, value in (
        ("job", result.job_id),
        ("calibration set", result.calibration_set_id),
        ("params", dict(result.params.param_dict) or None),
        ("qubits", result.initial_mapping or None),
    ):
        if value is not None:
            lines.append(f"  {label}: {value}")
    if result.final_mapping and result.final_mapping != result.initial_mapping:
        lines.append(f"  final qubits: {result.final_mapping}")
    for warning in result.warnings:
        lines.append(f"  warning: {warning}")
    for key in sorted(result.records):
        tally = counts(result, key)
        lines.append(f"  {key}:")
        rows = _histogram_rows(tally, result.repetitions)
        for bits, n, share in rows[:MAX_HISTOGRAM_ROWS]:
            lines.append(f"    {bits}  {n:>7}  {'#' * round(bar_width * share)}")
        if len(rows) > MAX_HISTOGRAM_ROWS:
            rest = sum(n for _, n, _ in rows[MAX_HISTOGRAM_ROWS:])
            lines.append(f"    … {len(rows) - MAX_HISTOGRAM_ROWS} more outcomes, {rest} shots")
    return "\n".join(lines)


def result_html(result: IQMResult) -> str:
    """HTML for a notebook: the metadata table and a bar histogram per measurement key."""
    meta = [
        ("shots", str(result.repetitions)),
        ("job", str(result.job_id)),
        ("calibration set", str(result.calibration_set_id)),
    ]
    if result.params.param_dict:
        meta.append(("params", str(dict(result.params.param_dict))))
    if result.initial_mapping:
        meta.append(("initial mapping", str(result.initial_mapping)))
    if result.final_mapping and result.final_mapping != result.initial_mapping:
        meta.append(("final mapping", str(result.final_mapping)))
    meta.extend((stamp, value) for stamp, value in result.timestamps.items())
    meta.extend(("warning", w) for w in result.warnings)
    parts = ['<div class="cirq-iqm-ext-result">', "<b>IQMResult</b>", _html_table(["", ""], meta)]
    for key in sorted(result.records):
        rows = _histogram_rows(counts(result, key), result.repetitions)
        parts.append(f"<div>key <code>{html.escape(key)}</code></div><table>")
        for bits, n, share in rows[:MAX_HISTOGRAM_ROWS]:
            parts.append(
                f"<tr><td><code>{html.escape(bits)}</code></td><td>{n}</td><td>"
                f'<div style="background:#4c72b0;height:0.8em;width:{200 * share:.0f}px"></div>'
                "</td></tr>"
            )
        parts.append("</table>")
        if len(rows) > MAX_HISTOGRAM_ROWS:
            parts.append(f"<div>… {len(rows) - MAX_HISTOGRAM_ROWS} more outcomes</div>")
    parts.append("</div>")
    return "".join(parts)


def pretty(p: Any, cycle: bool, obj: Any, text: str) -> None:
    """IPython's ``_repr_pretty_`` protocol: the full text, or the repr inside a cycle."""
    p.text(repr(obj) if cycle else text)


__all__ = [
    "FIGURES",
    "device_html",
    "device_layout",
    "device_svg",
    "device_text",
    "format_figure",
    "grid_layout",
    "job_html",
    "job_summary",
    "job_text",
    "metrics_text",
    "natural_key",
    "plot_device",
    "result_html",
    "result_text",
    "split_metrics",
]
