"""Submit now, fetch later: a job outlives the sampler (and the process) that submitted it.

1. Submit a 5-point sweep and keep only the job id (here in a file; a notebook cell, a database or
   ``cirq-iqm-ext run --no-wait`` work the same way) and close the sampler.
2. Later, a second sampler (another process, the next day) asks for the job by id, checks its
   status and rebuilds the same results, sweep parameters and qubit mappings included, from the
   job alone.

    python examples/jobs_later.py

Runs against the embedded server by default (each job waits a moment, so you see it pending), or
against ``IQM_SERVER_URL``. On the command line: ``cirq-iqm-ext status JOB`` and ``result JOB``.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import cirq
import numpy as np
import sympy

from cirq_iqm_ext import IQMSampler
from cirq_iqm_ext.server import EmbeddedServer


def server_url(stack: ExitStack, architecture: str = "adonis") -> str:
    """``IQM_SERVER_URL``, or an embedded server whose jobs stay pending for half a second."""
    url = os.environ.get("IQM_SERVER_URL")
    if url:
        return url
    server = stack.enter_context(EmbeddedServer(architecture, seed=5, job_delay=0.5))
    print(f"Started the embedded IQM-compatible server at {server.url}")
    return server.url


def submit(url: str, id_file: Path) -> None:
    """Submits a sweep, writes the job id to ``id_file`` and returns without waiting."""
    q = cirq.LineQubit(0)
    theta = sympy.Symbol("theta")
    circuit = cirq.Circuit(cirq.rx(theta).on(q), cirq.measure(q, key="m"))
    with IQMSampler(url, progress=False) as sampler:
        job = sampler.submit(circuit, cirq.Linspace(theta, 0, np.pi, 5), repetitions=100)
        id_file.write_text(str(job.job_id), encoding="utf-8")
        print(f"Submitted job {job.job_id}; status {job.status().value}; leaving it running")


def fetch(url: str, id_file: Path) -> None:
    """Picks the job up again by its id, waits for it and prints one line per sweep point."""
    job_id = id_file.read_text(encoding="utf-8").strip()
    with IQMSampler(url, progress=False) as later:
        job = later.get_job(job_id)
        print(f"Fetched job {job.job_id} by id; status {job.status().value}")
        results = job.result(timeout=120)
        print(f"Job {job_id} is {job.status().value}: {len(results)} results")
        for result in results:
            theta = float(result.params.value_of("theta"))
            p1 = float(result.measurements["m"].mean())
            print(f"  theta={theta:4.2f}  P(1)={p1:4.2f}  on {result.initial_mapping}")


def main() -> None:
    """Submits, leaves, and fetches the job later with a second sampler."""
    with ExitStack() as stack:
        url = server_url(stack)
        id_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "job-id.txt"
        submit(url, id_file)
        fetch(url, id_file)


if __name__ == "__main__":
    main()
