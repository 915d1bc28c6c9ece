"""The example notebook runs top to bottom in a real Jupyter kernel against the embedded server."""

from __future__ import annotations

import pathlib
import re

import nbclient
import nbformat
import pytest

NOTEBOOK = pathlib.Path(__file__).parent.parent / "examples" / "first_hour.ipynb"


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": "examples"}}
    )
    client.execute()
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [output for cell in cells for output in cell.outputs]


def _text(notebook: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in _outputs(notebook) if o.output_type == "stream")


def test_the_notebook_is_stored_without_outputs():
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in stored.cells if cell.cell_type == "code")


def test_every_cell_runs_and_the_plots_are_drawn(executed):
    outputs = _outputs(executed)
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the device's calibration map, the Rabi scan, the T1 decay


def test_the_device_shows_itself(executed):
    html = [o["data"]["text/html"] for o in _outputs(executed) if "text/html" in o.get("data", {})]
    assert any("IQMDevice Garnet" in page and "<svg" in page for page in html)


def test_the_rabi_scan_and_the_algorithm_give_physical_numbers(executed):
    text = _text(executed)
    p1 = float(re.search(r"P\(1\) at π = ([0-9.]+)", text).group(1))
    assert 0.9 < p1 < 1.0  # a π pulse, read out with the calibration's readout errors
    ghz = float(re.search(r"P\(00000\) \+ P\(11111\) = ([0-9.]+)", text).group(1))
    assert 0.7 < ghz < 0.99


def test_the_fitted_t1_is_the_calibrated_one(executed):
    found = re.search(r"fitted T1 = ([0-9.]+) us \(calibration: ([0-9.]+) us\)", _text(executed))
    fitted, calibrated = float(found.group(1)), float(found.group(2))
    assert abs(fitted - calibrated) < 0.3 * calibrated


def test_a_long_job_shows_its_progress_in_the_cell(executed):
    displays = ("display_data", "update_display_data")
    shown = [
        o["data"]
        for o in _outputs(executed)
        if o.output_type in displays and "text/html" in o.get("data", {})
    ]
    progress = [d for d in shown if "cirq-iqm-ext-progress" in d["text/html"]]
    assert progress, "no progress display in the notebook's outputs"
    assert re.search(r"IQM job [0-9a-f-]+: ready \(\d+ s\)", progress[-1]["text/plain"])
