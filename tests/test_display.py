"""Notebook and terminal renderings: rendered to files and checked for their content."""

from __future__ import annotations

import re

import cirq
import matplotlib
import pytest

matplotlib.use("Agg")  # before pyplot is imported anywhere: no display needed

from cirq_iqm_ext import IQMSampler, devices, display
from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.server import EmbeddedServer

DEVICES = ["Adonis", "Apollo", "Garnet", "Aphrodite", "Deneb"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Printer:
    """The part of IPython's pretty printer that ``_repr_pretty_`` uses."""

    def __init__(self) -> None:
        self.output = ""

    def text(self, text: str) -> None:
        self.output += text


def pretty(obj: object, cycle: bool = False) -> str:
    printer = Printer()
    obj._repr_pretty_(printer, cycle)  # type: ignore[attr-defined]
    return printer.output


@pytest.fixture(scope="module")
def finished():
    """A finished Bell job on the embedded server: (server url, job, its one result)."""
    a, b = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(a), cirq.CNOT(a, b), cirq.measure(a, b, key="m"))
    with EmbeddedServer("adonis", seed=3) as server, IQMSampler(server.url, progress=False) as s:
        job = s.submit(circuit, repetitions=200)
        [result] = job.result()
        yield server.url, job, result


# ----------------------------------------------------------------------------------- devices


@pytest.mark.parametrize("name", DEVICES)
def test_device_html_names_every_qubit_and_coupler(name, tmp_path):
    device = getattr(devices, name)()
    calibration = builtin_calibration(name)
    page = display.device_html(device, calibration.metrics())
    path = tmp_path / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<div class="cirq-iqm-ext-device">') and text.endswith("</div>")
    assert f"IQMDevice {name}" in text
    assert text.count("<svg") == 1 and text.count("<circle") == len(device.qubits)
    assert text.count("<line") == device.metadata.nx_graph.number_of_edges()
    for qubit in device.qubit_names:
        assert f">{qubit}</text>" in text
    for a, b in device.cz_pairs:
        assert f"<td>{a.name},{b.name}</td>" in text
    assert "prx fidelity" in text and "cz fidelity" in text
    # Figures colour the picture: more than one fill colour among the qubits.
    assert len(set(re.findall(r'fill="(#[0-9a-f]{6})"', text))) > 1


def test_device_html_without_metrics_is_neutral_and_escaped():
    device = devices.Adonis()
    page = display.device_html(device)
    assert "<table>" not in page
    assert set(re.findall(r'fill="(#[0-9a-f]{6})"', page)) == {"#9ec5fe"}


def test_device_text_draws_lattices_as_grids_and_stars_as_lists():
    apollo = display.device_text(devices.Apollo())
    assert "QB3  ─ QB4  ─ QB5  ─ QB6  ─ QB7" in apollo
    assert "│" in apollo
    deneb = display.device_text(devices.Deneb(), builtin_calibration("deneb"))
    assert "COMP_R ── QB1 QB2 QB3 QB4 QB5 QB6" in deneb
    assert "move fidelity" in deneb


def test_grid_layout_checks_its_answer():
    assert display.grid_layout(["QB1", "QB2", "QB3"], [("QB1", "QB2"), ("QB2", "QB3")]) == {
        "QB1": (0, 0),
        "QB2": (1, 0),
        "QB3": (2, 0),
    }
    # A triangle is no square lattice; a resonator has no number.
    assert (
        display.grid_layout(["QB1", "QB2", "QB3"], [("QB1", "QB2"), ("QB2", "QB3"), ("QB1", "QB3")])
        is None
    )
    assert display.grid_layout(["QB1", "COMP_R"], [("QB1", "COMP_R")]) is None


@pytest.mark.parametrize(
    "form",
    [
        lambda c: c,  # a CalibrationSet
        lambda c: c.metrics(),  # the endpoint's body
        lambda c: c.metrics()["metrics"],  # its inner object
        lambda c: {k: float(v["value"]) for k, v in c.metrics()["metrics"].items()},  # flat
    ],
)
def test_every_metrics_form_is_understood(form):
    qubits, couplers = display.split_metrics(form(builtin_calibration("adonis")))
    assert set(qubits) == {"QB1", "QB2", "QB3", "QB4", "QB5"}
    assert 0.9 < qubits["QB1"]["prx.fidelity"] <= 1
    assert ("QB1", "QB3") in couplers and "cz.fidelity" in couplers[("QB1", "QB3")]


@pytest.mark.parametrize(
    ("name", "figure_metric"), [("Apollo", "fidelity"), ("Adonis", "readout"), ("Deneb", "t1")]
)
def test_plot_device_writes_a_png_with_colour_bars(name, figure_metric, tmp_path):
    import matplotlib.pyplot as plt

    device = getattr(devices, name)()
    ax = display.plot_device(device, builtin_calibration(name), figure_metric=figure_metric)
    path = tmp_path / f"{name}.png"
    ax.figure.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    labels = [a.get_ylabel() for a in ax.figure.axes if a is not ax]
    assert any(label.startswith("qubits:") for label in labels)
    assert "couplers: cz fidelity" in labels
    assert {t.get_text() for t in ax.texts} >= set(device.qubit_names)
    plt.close(ax.figure)


def test_plot_device_on_given_axes_without_metrics(tmp_path):
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    assert display.plot_device(devices.Adonis(), ax=ax) is ax
    assert len(figure.axes) == 1  # no figures, no colour bar
    figure.savefig(tmp_path / "plain.png")
    assert (tmp_path / "plain.png").stat().st_size > 5_000
    plt.close(figure)
    with pytest.raises(ValueError, match="figure_metric"):
        display.plot_device(devices.Adonis(), figure_metric="beauty")


def test_importing_the_package_does_not_import_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, cirq_iqm_ext.ui.display, cirq_iqm_ext.cli.commands, cirq_iqm_ext.cli.main; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -------------------------------------------------------------------------------- jobs, results


def test_job_html_and_pretty_show_id_state_and_timestamps(finished, tmp_path):
    _, job, _ = finished
    page = job._repr_html_()
    (tmp_path / "job.html").write_text(page, encoding="utf-8")
    assert str(job.job_id) in page and "<b>ready</b>" in page
    assert "job_start" in page and "job_end" in page
    text = pretty(job)
    assert text.startswith(f"IQMJob {job.job_id}: ready")
    assert re.search(r"^  job_end\s+\d{4}-", text, flags=re.MULTILINE)
    assert pretty(job, cycle=True) == repr(job)


def test_job_repr_survives_an_unreachable_server():
    from cirq_iqm_ext.client.iqm_client import IQMClient
    from cirq_iqm_ext.client.retry import RetryPolicy
    from cirq_iqm_ext.sampling.job import IQMJob

    client = IQMClient("http://127.0.0.1:9", timeout=0.5, retry_policy=RetryPolicy(max_attempts=1))
    job = IQMJob(client, ["00000000-0000-4000-8000-000000000000"])  # type: ignore[list-item]
    assert "unknown" in job._repr_html_()
    assert "unknown" in pretty(job)


def test_result_html_and_pretty_show_counts_and_metadata(finished, tmp_path):
    _, job, result = finished
    page = result._repr_html_()
    (tmp_path / "result.html").write_text(page, encoding="utf-8")
    assert str(result.job_id) in page and str(result.calibration_set_id) in page
    assert "<code>m</code>" in page and "<code>00</code>" in page and "<code>11</code>" in page
    text = pretty(result)
    assert text.startswith("IQMResult: 200 shots")
    assert f"job: {job.job_id}" in text
    assert re.search(r"^    (00|11)\s+\d+\s+#+$", text, flags=re.MULTILINE)
    assert pretty(result, cycle=True) == repr(result)


def test_cirq_plot_state_histogram_works_on_results(finished, tmp_path):
    import matplotlib.pyplot as plt

    _, _, result = finished
    ax = cirq.plot_state_histogram(result)
    heights = [patch.get_height() for patch in ax.patches]
    assert sum(heights) == 200 and len(heights) == 4  # 00, 01, 10, 11
    ax.figure.savefig(tmp_path / "histogram.png")
    assert (tmp_path / "histogram.png").read_bytes().startswith(PNG_MAGIC)
    plt.close(ax.figure)


def test_device_methods_delegate_to_display(tmp_path):

    import matplotlib.pyplot as plt

    device = devices.Apollo()
    assert device._repr_html_() == display.device_html(device)
    assert pretty(device) == display.device_text(device)
    ax = device.plot(builtin_calibration("apollo"))
    ax.figure.savefig(tmp_path / "apollo.png", dpi=50)
    assert (tmp_path / "apollo.png").read_bytes().startswith(PNG_MAGIC)
    plt.close(ax.figure)
