"""The ``delay`` instruction (a wait) on the project's server, in both API profiles.

Over real loopback servers: a delay idles its qubits for its duration with the calibration's T1
and T2 (amplitude damping and dephasing), counts towards the duration check, and is refused by a
server built with ``delay=False`` (a CoCoS v1 server has no delay).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest

from cirq_iqm_ext import Circuit, CircuitValidationError, Instruction, IQMClient
from cirq_iqm_ext.calibration import builtin_calibration
from cirq_iqm_ext.cli.main import build_parser
from cirq_iqm_ext.server import EmbeddedServer, create_app
from cirq_iqm_ext.wire.protocol import ARCHITECTURE_EXTENSIONS_QUERY

CALIBRATION = builtin_calibration("adonis")
QB1 = CALIBRATION.qubit("QB1")
T1, T2 = QB1.t1, QB1.t2
E01, E10 = QB1.readout_error_0_to_1 or 0.0, QB1.readout_error_1_to_0 or 0.0
#: Room for what the tests do not model: prx infidelity and the relaxation during the prx pulses.
MODEL_SLACK = 0.006
UNSUPPORTED = (
    'circuit 0 ("c"), instruction 1: delay (a wait) is not supported by Adonis: this server does '
    "not execute waits; a CoCoS v1 server has no delay instruction — use the IQM Server API "
    'profile (api="iqm-server") of a server that lists delay, or remove the wait'
)


def read_one(p1: float) -> float:
    """Probability of reading 1 on QB1 when its state is 1 with probability ``p1``."""
    return p1 * (1 - E10) + (1 - p1) * E01


def tolerance(p: float, shots: int) -> float:
    """Five standard deviations of a frequency estimated from ``shots``, plus the model slack."""
    return 5 * math.sqrt(p * (1 - p) / shots) + MODEL_SLACK


# ------------------------------------------------------------------------------ request helpers


def v1_prx(qubit: str, angle_t: float, phase_t: float = 0.0) -> dict[str, Any]:
    return {"name": "prx", "qubits": [qubit], "args": {"angle_t": angle_t, "phase_t": phase_t}}


def v1_delay(duration: Any, *qubits: str) -> dict[str, Any]:
    return {"name": "delay", "qubits": list(qubits), "args": {"duration": duration}}


def v1_measure(*qubits: str, key: str = "m") -> dict[str, Any]:
    return {"name": "measure", "qubits": list(qubits), "args": {"key": key}}


def to_iqm_server(instruction: dict[str, Any]) -> dict[str, Any]:
    """A v1 instruction as the IQM Server API writes it (``locus``, radians)."""
    args = dict(instruction["args"])
    if instruction["name"] == "prx":
        args = {"angle": 2 * math.pi * args["angle_t"], "phase": 2 * math.pi * args["phase_t"]}
    return {
        "name": instruction["name"],
        "locus": instruction["qubits"],
        "args": args,
        "implementation": None,
    }


#: Stands for the JSON number 1e400, which parses as infinity (httpx cannot send an inf itself).
INFINITE = "<1e400>"


def submit(http: httpx.Client, api: str, instructions: list[dict[str, Any]], **extra: Any):
    """Posts one circuit ``c`` through ``api``; returns the response."""
    if api == "v1":
        path = "/jobs"
        body = {"circuits": [{"name": "c", "instructions": instructions}], **extra}
    else:
        path = "/api/v1/jobs/adonis/circuit?use_timeslot=false"
        circuit = {"name": "c", "instructions": [to_iqm_server(i) for i in instructions]}
        body = {"circuits": [circuit], "qubit_mapping": None, **extra}
    text = json.dumps(body).replace(json.dumps(INFINITE), "1e400")
    return http.post(path, content=text, headers={"Content-Type": "application/json"})


def run(http: httpx.Client, api: str, instructions: list[dict[str, Any]], **extra: Any):
    """Submits, waits and returns the first circuit's measurements (key -> shots)."""
    response = submit(http, api, instructions, **extra)
    assert response.status_code in (200, 201), response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api == "v1":
            result = http.get(f"/jobs/{job_id}").json()
            if result["status"] == "ready":
                return result["measurements"][0]
            assert result["status"].startswith("pending"), result
        else:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] == "completed":
                return http.get(f"/api/v1/jobs/{job_id}/artifacts/measurements").json()[0]
            assert job["status"] in ("waiting", "processing"), job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def ones(shots: list[list[int]], column: int = 0) -> float:
    return sum(int(shot[column]) for shot in shots) / len(shots)


@pytest.fixture(scope="module")
def noisy():
    with EmbeddedServer("adonis", seed=17, noise="calibration") as running:
        yield running


@pytest.fixture(scope="module")
def no_delay():
    with EmbeddedServer("adonis", seed=17, delay=False) as running:
        yield running


@pytest.fixture
def http(noisy):
    with httpx.Client(base_url=noisy.url, timeout=30) as client:
        yield client


# ------------------------------------------------------------------------------ physics


@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_t1_decay_through_a_delay_of_three_t1(http, api):
    shots = 20_000
    measured = run(
        http,
        api,
        [v1_prx("QB1", 0.5), v1_delay(3 * T1, "QB1"), v1_measure("QB1")],
        shots=shots,
        max_circuit_duration_over_t2=0.0,  # 3 T1 is several T2: the check would refuse it
    )["m"]
    assert len(measured) == shots
    expected = read_one(math.exp(-3))
    assert abs(ones(measured) - expected) < tolerance(expected, shots)


@pytest.mark.parametrize("api", ["v1", "iqm-server"])
@pytest.mark.parametrize(("phase_t", "sign"), [(0.0, 1), (0.5, -1)])
def test_ramsey_fringe_decays_with_t2(http, api, phase_t, sign):
    # X90, wait t, X90 with phase φ (zero detuning): P(1) = (1 + cos(φ)·exp(-t/T2)) / 2; T1 drops
    # out, the second pulse maps only the decayed coherence onto Z. With t < T2 the default
    # duration check (1 × T2) accepts the circuit, delay included.
    shots = 20_000
    wait = 0.8 * T2
    measured = run(
        http,
        api,
        [
            v1_prx("QB1", 0.25),
            v1_delay(wait, "QB1"),
            v1_prx("QB1", 0.25, phase_t),
            v1_measure("QB1"),
        ],
        shots=shots,
    )["m"]
    expected = read_one((1 + sign * math.exp(-wait / T2)) / 2)
    assert abs(ones(measured) - expected) < tolerance(expected, shots)


def test_a_zero_delay_and_an_int_duration_are_accepted(http):
    measured = run(
        http, "v1", [v1_prx("QB1", 0.5), v1_delay(0, "QB1", "QB2"), v1_measure("QB1")], shots=4000
    )["m"]
    expected = read_one(1.0)
    assert abs(ones(measured) - expected) < tolerance(expected, 4000)


def test_a_qubit_measured_before_another_qubit_waits_does_not_decay(http):
    # QB1 is read out before QB2's long delay: time passing afterwards cannot change its result.
    shots = 8000
    measured = run(
        http,
        "v1",
        [
            v1_prx("QB1", 0.5),
            v1_prx("QB2", 0.5),
            v1_measure("QB1", key="early"),
            v1_delay(2 * T1, "QB2"),
            v1_measure("QB2", key="late"),
        ],
        shots=shots,
        max_circuit_duration_over_t2=0.0,
    )
    early = read_one(1.0)
    assert abs(ones(measured["early"]) - early) < tolerance(early, shots)
    qb2 = CALIBRATION.qubit("QB2")
    late_p1 = math.exp(-2 * T1 / qb2.t1)
    late = late_p1 * (1 - (qb2.readout_error_1_to_0 or 0)) + (1 - late_p1) * (
        qb2.readout_error_0_to_1 or 0
    )
    assert abs(ones(measured["late"]) - late) < tolerance(late, shots)


def test_our_client_runs_a_delay_in_both_profiles(noisy):
    circuit = Circuit(
        "c",
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("delay", ["QB1"], {"duration": T1}),
            Instruction("measure", ["QB1"], {"key": "m"}),
        ),
    )
    shots = 8000
    expected = read_one(math.exp(-1))
    for options in ({"api": "cocos-v1"}, {"api": "iqm-server", "quantum_computer": "adonis"}):
        with IQMClient(noisy.url, **options) as client:
            assert "delay" in client.get_quantum_architecture().operations
            job_id = client.submit_circuits([circuit], shots=shots, max_circuit_duration_over_t2=0)
            measured = client.wait_for_results(job_id, timeout_secs=60).measurements[0]["m"]
        assert abs(ones(measured) - expected) < tolerance(expected, shots)


# ------------------------------------------------------------------------------ architecture


def test_both_apis_list_delay(http):
    asked = http.get("/quantum-architecture", params=ARCHITECTURE_EXTENSIONS_QUERY)
    assert asked.json()["quantum_architecture"]["operations"]["delay"] == []
    # v1 clients that do not ask (IQM's, which know no delay) see the plain architecture.
    plain = http.get("/quantum-architecture").json()["quantum_architecture"]
    assert "delay" not in plain["operations"]
    dqa = http.get("/api/v1/calibration-sets/adonis/default/dynamic-quantum-architecture").json()
    assert dqa["gates"]["delay"] == {
        "implementations": {"wait": {"loci": [[q] for q in dqa["qubits"]]}},
        "default_implementation": "wait",
        "override_default_implementation": {},
    }
    # The v1 dynamic architecture is the same body.
    assert (
        http.get("/api/v1/calibration/default/gates").json()["gates"]["delay"]
        == dqa["gates"]["delay"]
    )


def test_the_star_dqa_lists_delay_on_qubits_only():
    with EmbeddedServer("deneb") as server, httpx.Client(base_url=server.url) as http:
        dqa = http.get("/api/v1/calibration-sets/deneb/default/dynamic-quantum-architecture")
        loci = dqa.json()["gates"]["delay"]["implementations"]["wait"]["loci"]
        assert loci == [[f"QB{i}"] for i in range(1, 7)]
        # A delay on the resonator is still valid: like barrier, any existing component.
        measured = run_deneb(http)
        assert len(measured) == 10


def run_deneb(http: httpx.Client) -> list[list[int]]:
    body = {
        "circuits": [
            {
                "name": "c",
                "instructions": [
                    v1_delay(1e-7, "COMP_R", "QB1"),
                    v1_measure("QB1"),
                ],
            }
        ],
        "shots": 10,
    }
    response = http.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    for _ in range(500):
        result = http.get(f"/jobs/{job_id}").json()
        if result["status"] == "ready":
            return result["measurements"][0]["m"]
        time.sleep(0.02)
    raise AssertionError("the Deneb job did not finish")


# ------------------------------------------------------------------------------ duration check


@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_the_duration_check_counts_delays_and_says_how_to_turn_it_off(http, api):
    instructions = [v1_prx("QB1", 0.5), v1_delay(2 * T2, "QB1"), v1_measure("QB1")]
    response = submit(http, api, instructions, shots=10)
    assert response.status_code == 400
    body = response.json()
    detail = body["detail"]
    assert 'circuit 0 ("c") lasts' in detail
    lasts = 2 * T2 + (QB1.prx_duration or 0.0) + CALIBRATION.measure_duration
    assert f"lasts {lasts * 1e6:.3f} µs" in detail  # the delay counts
    assert "max_circuit_duration_over_t2=0 to turn the check off" in detail
    assert "T1 experiment" in detail
    if api == "iqm-server":
        assert body["error_code"] == "circuit_validation_error"
        assert body["message"] == detail
    turned_off = submit(http, api, instructions, shots=10, max_circuit_duration_over_t2=0.0)
    assert turned_off.status_code in (200, 201), turned_off.text


# ------------------------------------------------------------------------------ bad durations


@pytest.mark.parametrize(
    ("duration", "phrase"),
    [
        (-1e-6, ">= 0"),
        (True, "duration"),
        ("1e-6", "duration"),
        (10**400, "too large"),
        (INFINITE, "finite"),
    ],
)
@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_bad_durations_are_refused_naming_the_argument(http, api, duration, phrase):
    response = submit(http, api, [v1_delay(duration, "QB1"), v1_measure("QB1")], shots=1)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "duration" in detail and phrase in detail


# ------------------------------------------------------------------------------ delay=False


@pytest.mark.parametrize("api", ["v1", "iqm-server"])
def test_a_server_without_delay_does_not_list_it_and_refuses_it(no_delay, api):
    with httpx.Client(base_url=no_delay.url, timeout=10) as http:
        static = http.get("/quantum-architecture").json()["quantum_architecture"]
        assert "delay" not in static["operations"]
        dqa = http.get("/api/v1/calibration-sets/adonis/default/dynamic-quantum-architecture")
        assert "delay" not in dqa.json()["gates"]
        response = submit(http, api, [v1_prx("QB1", 0.5), v1_delay(1e-6, "QB1")], shots=1)
        assert response.status_code == 400
        assert response.json()["detail"] == UNSUPPORTED
        # Everything else still runs.
        assert run(http, api, [v1_prx("QB1", 0.5), v1_measure("QB1")], shots=5)["m"] == [[1]] * 5


def test_our_client_refuses_a_delay_for_a_server_without_it_before_posting(no_delay):
    circuit = Circuit(
        "c",
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("delay", ["QB1"], {"duration": 1e-6}),
            Instruction("measure", ["QB1"], {"key": "m"}),
        ),
    )
    before = no_delay.app.stats["POST jobs"]
    with IQMClient(no_delay.url, api="cocos-v1") as client:
        with pytest.raises(CircuitValidationError) as raised:
            client.submit_circuits([circuit])
    assert str(raised.value) == UNSUPPORTED
    assert no_delay.app.stats["POST jobs"] == before


def test_the_delay_option_of_the_app_and_the_cli():
    app = create_app(delay=False)
    try:
        assert "delay" not in app.architecture.operations
        assert "delay=False" in repr(app.config)
    finally:
        app.close()
    # A custom architecture without delay gets it when the server executes waits.
    custom = {
        "name": "Pair",
        "qubits": ["QB1", "QB2"],
        "qubit_connectivity": [["QB1", "QB2"]],
        "operations": {"prx": [["QB1"], ["QB2"]], "cz": [["QB1", "QB2"]], "measure": [["QB1"]]},
    }
    app = create_app(architecture=custom)
    try:
        assert app.architecture.operations["delay"] == ()
    finally:
        app.close()
    assert build_parser().parse_args(["serve", "--no-delay"]).delay is False
    assert build_parser().parse_args(["serve"]).delay is True


def test_a_delay_between_two_measurements_runs_on_the_cirq_fallback():
    # Mid-circuit measurements take the simulator's Cirq path: the delay is a cirq.WaitGate there,
    # which IQMNoiseModel turns into relaxation for its duration.
    from cirq_iqm_ext.simulation.simulator import CalibratedSimulator

    circuit = Circuit(
        "c",
        (
            Instruction("prx", ["QB1"], {"angle_t": 0.5, "phase_t": 0.0}),
            Instruction("measure", ["QB1"], {"key": "first"}),
            Instruction("delay", ["QB1"], {"duration": T1}),
            Instruction("measure", ["QB1"], {"key": "second"}),
        ),
    )
    simulator = CalibratedSimulator(CALIBRATION, seed=4)
    assert not simulator.schedule(circuit, None, CALIBRATION).terminal
    shots = 3000
    arrays = simulator.run_circuit_arrays(circuit, shots)
    first = arrays["first"][:, 0].astype(int)
    second = arrays["second"][:, 0].astype(int)
    assert first.mean() > 0.9
    # After reading 1, a wait of T1 leaves about exp(-1) of the population in 1.
    decayed = second[first == 1].mean()
    expected = read_one(math.exp(-1))
    assert abs(decayed - expected) < tolerance(expected, int((first == 1).sum())) + 0.02
