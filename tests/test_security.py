"""Security: credentials never leak, never travel in clear text, and the server gives nothing away.

Every test runs under the ``secret_scanner`` fixture (tests/conftest.py): all log records at DEBUG,
captured output, and every exception, warning and repr the test hands it are searched for the secret
values in use; a single hit fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from faults.proxy import FaultProxy, upstream_of
from faults.report import REPORT, SecretScanner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cirq_iqm_ext import IQMClient, IQMSampler, Status
from cirq_iqm_ext.client.auth import (
    PasswordTokenProvider,
    StaticTokenProvider,
    TokensFileProvider,
    jwt_expiry,
    seconds_left,
)
from cirq_iqm_ext.errors import ClientAuthenticationError, ClientConfigurationError, IQMError
from cirq_iqm_ext.server import EmbeddedServer, ServerConfig, create_app

pytestmark = pytest.mark.usefixtures("secret_scanner")

TOKEN = "sec-suite-static-token-5b7e90c1"
PASSWORD = "sec-suite-password-c0ffee42"
FILE_TOKEN = "sec-suite-file-token-91d2aa"
SETTINGS = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def jwt(claims: Any, *, secret_part: str = "signature") -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJub25lIn0.{payload}.{secret_part}"


def bell_payload(name: str = "bell") -> dict[str, Any]:
    ry = {"angle_t": 0.25, "phase_t": 0.25}
    return {
        "shots": 8,
        "circuits": [
            {
                "name": name,
                "instructions": [
                    {"name": "prx", "qubits": ["QB1"], "args": ry},
                    {"name": "cz", "qubits": ["QB1", "QB3"], "args": {}},
                    {"name": "measure", "qubits": ["QB1", "QB3"], "args": {"key": "m"}},
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def auth_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer("adonis", seed=1, token=TOKEN, auth_users={"alice": PASSWORD}) as srv:
        yield srv


# -------------------------------------------------------------------------------- no leaks


def _exercise(client: IQMClient, scanner: SecretScanner) -> None:
    scanner.collect(repr(client), str(client), repr(client.token_provider), repr(client.settings))
    job_id = client.submit_payload(bell_payload())
    assert client.wait_for_results(job_id, timeout_secs=30).status is Status.READY
    with pytest.raises(IQMError) as info:
        client.get_run(uuid.uuid4())
    scanner.exception(info.value)


def test_no_secret_in_any_output_for_every_auth_way(auth_server, secret_scanner, tmp_path):
    secret_scanner.add_secret(TOKEN, PASSWORD, FILE_TOKEN)
    with FaultProxy(upstream_of(auth_server.url)) as proxy:
        with IQMClient(proxy.url, token=TOKEN, environ={}) as client:
            _exercise(client, secret_scanner)
        with IQMClient(
            proxy.url,
            environ={
                "IQM_AUTH_SERVER": proxy.url,
                "IQM_AUTH_USERNAME": "alice",
                "IQM_AUTH_PASSWORD": PASSWORD,
            },
        ) as client:
            _exercise(client, secret_scanner)
            assert client.close_auth_session() is True
        # A tokens file whose token the server does not accept: the errors must not show it.
        tokens = tmp_path / "tokens.json"
        tokens.write_text(json.dumps({"access_token": FILE_TOKEN, "refresh_token": "r" * 12}))
        tokens.chmod(0o600)
        with IQMClient(proxy.url, tokens_file=str(tokens), environ={}) as client:
            secret_scanner.collect(repr(client), repr(client.token_provider))
            with pytest.raises(ClientAuthenticationError) as info:
                client.get_quantum_architecture()
            secret_scanner.exception(info.value)
        secret_scanner.add_secret(*proxy.secrets)
    assert len(secret_scanner.secrets) >= 5  # including the tokens the server issued
    REPORT.outcome("every auth way end to end", "secret scan", "0 secrets in output")


def test_refused_login_and_bad_configuration_never_show_values(auth_server, secret_scanner):
    secret_scanner.add_secret(TOKEN, PASSWORD, "wrong-password-123456")
    with IQMClient(
        auth_server.url,
        auth_server_url=auth_server.url,
        username="alice",
        password="wrong-password-123456",
        environ={},
    ) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            client.get_quantum_architecture()
        secret_scanner.exception(info.value)
        assert "alice" in str(info.value)
    bad: list[dict[str, Any]] = [
        {"token": TOKEN, "environ": {"IQM_TOKEN": TOKEN}},
        {"token": TOKEN, "password": PASSWORD, "environ": {}},
        {"environ": {"IQM_AUTH_PASSWORD": PASSWORD, "IQM_TOKEN": TOKEN}},
        {
            "auth_server_url": "http://127.0.0.1:1",
            "username": "u",
            "password": PASSWORD,
            "token": TOKEN,
            "environ": {},
        },
    ]
    for kwargs in bad:
        with pytest.raises(ClientConfigurationError) as config_error:
            IQMClient(auth_server.url, **kwargs)
        secret_scanner.exception(config_error.value)


def test_reprs_hide_secrets(secret_scanner, tmp_path):
    secret_scanner.add_secret(TOKEN, PASSWORD, FILE_TOKEN)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": FILE_TOKEN}))
    tokens.chmod(0o600)
    http = httpx.Client()
    objects: list[Any] = [
        StaticTokenProvider(TOKEN),
        TokensFileProvider(tokens),
        PasswordTokenProvider("https://auth.example", "bob", PASSWORD, http),
        ServerConfig(token=TOKEN, auth_users={"bob": PASSWORD}),
        EmbeddedServer(token=TOKEN, auth_users={"bob": PASSWORD}),
        IQMClient("https://iqm.example", token=TOKEN, environ={}),
        IQMClient(
            "https://iqm.example",
            environ={
                "IQM_AUTH_SERVER": "https://auth.example",
                "IQM_AUTH_USERNAME": "bob",
                "IQM_AUTH_PASSWORD": PASSWORD,
            },
        ),
        IQMSampler("https://iqm.example", token=TOKEN, environ={}),
    ]
    for obj in objects:
        secret_scanner.collect(repr(obj), str(obj))
        assert TOKEN not in repr(obj) and PASSWORD not in repr(obj)
    http.close()


# -------------------------------------------------------------------------------- clear text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": TOKEN},
        {"environ": {"IQM_TOKEN": TOKEN}},
        {"auth_server_url": "https://auth.example", "username": "u", "password": PASSWORD},
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://10.0.0.7:8000",
        "http://[2001:db8::1]/cocos",
        "http://127.example.com",
    ],
)
def test_no_bearer_token_over_plain_http_to_another_host(secret_scanner, kwargs, url):
    kwargs = {"environ": {}, **kwargs}
    with pytest.raises(ClientConfigurationError, match="Refusing to send a bearer token") as info:
        IQMClient(url, **kwargs)
    secret_scanner.add_secret(TOKEN, PASSWORD)
    secret_scanner.exception(info.value)


def test_no_password_over_plain_http_to_another_auth_host(secret_scanner):
    with pytest.raises(ClientConfigurationError, match="Refusing to send a password") as info:
        IQMClient(
            "https://iqm.example",
            auth_server_url="http://auth.example",
            username="u",
            password=PASSWORD,
            environ={},
        )
    secret_scanner.add_secret(PASSWORD)
    secret_scanner.exception(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1",
        "http://localhost:1",
        "http://[::1]:1",
        "http://127.0.0.2:1",
        "https://iqm.example",
    ],
)
def test_loopback_http_and_https_are_allowed(url):
    IQMClient(url, token=TOKEN, environ={}).close()
    IQMClient("http://example.com", environ={}).close()  # no credentials: nothing to protect


def test_redirects_are_not_followed_with_the_token(secret_scanner):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "http://evil.example/steal"})

    client = IQMClient(
        "https://iqm.example", token=TOKEN, environ={}, transport=httpx.MockTransport(handler)
    )
    with client, pytest.raises(IQMError) as info:
        client.get_quantum_architecture()
    secret_scanner.add_secret(TOKEN)
    secret_scanner.exception(info.value)
    assert [r.url.host for r in seen] == ["iqm.example"]


# -------------------------------------------------------------------------------- tokens file


@pytest.mark.parametrize(
    ("mode", "warns"), [(0o600, False), (0o400, False), (0o640, True), (0o604, True), (0o666, True)]
)
def test_tokens_file_readable_by_others_warns(tmp_path, secret_scanner, mode, warns):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": FILE_TOKEN}))
    os.chmod(tokens, mode)
    secret_scanner.add_secret(FILE_TOKEN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        IQMClient("http://127.0.0.1:1", tokens_file=str(tokens), environ={}).close()
    secret_scanner.warnings(caught)
    texts = [str(w.message) for w in caught]
    assert bool([t for t in texts if "chmod 600" in t]) is warns


# -------------------------------------------------------------------------------- JWT decoding


@SETTINGS
@given(st.text(max_size=300))
def test_jwt_expiry_tolerates_any_text(token):
    expiry = jwt_expiry(token)
    assert expiry is None or isinstance(expiry, float)
    assert seconds_left(token, 0.0) is None or expiry is not None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(["exp", "iat", "sub"]), _json, max_size=3),
        _json,
        st.integers().map(lambda n: {"exp": n * 10**300}),
        st.just("[" * 100_000),
        st.binary(max_size=40),
    )
)
def test_jwt_expiry_tolerates_any_payload(claims):
    if isinstance(claims, bytes):
        raw = claims
    elif isinstance(claims, str) and claims.startswith("["):
        raw = claims.encode()
    else:
        raw = json.dumps(claims).encode()
    token = "h." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + ".s"
    expiry = jwt_expiry(token)
    assert expiry is None or (isinstance(expiry, float) and expiry == expiry)
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int) and not isinstance(exp, bool) and abs(exp) < 1e300:
        assert expiry == float(exp)


def test_jwt_expiry_reads_a_real_claim():
    assert jwt_expiry(jwt({"exp": 1_700_000_000})) == 1_700_000_000.0
    assert jwt_expiry(jwt({"exp": float("nan")})) is None
    assert jwt_expiry(jwt({"exp": True})) is None
    assert jwt_expiry("a." + "A" * 100_000 + ".b") is None


# -------------------------------------------------------------------------------- the server


def test_server_compares_tokens_with_compare_digest(monkeypatch):
    """Behaviour, not timing: every static-token check goes through hmac.compare_digest, and
    near misses (prefix, longer, other case, non-ASCII) are all refused without a 5xx."""
    import cirq_iqm_ext.server.auth as server_auth

    calls: list[tuple[bytes, bytes]] = []
    real = server_auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(server_auth.hmac, "compare_digest", spy)
    with EmbeddedServer("adonis", token=TOKEN) as srv, httpx.Client(base_url=srv.url) as http:
        for attempt in [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), TOKEN[:-1] + "é", "x", TOKEN]:
            response = http.get(
                "/quantum-architecture", headers={"Authorization": f"Bearer {attempt}".encode()}
            )
            assert response.status_code == (200 if attempt == TOKEN else 401)
            assert TOKEN not in response.text
    assert len(calls) == 6
    assert all(b == TOKEN.encode() for _, b in calls)


def test_server_never_returns_a_traceback(monkeypatch, secret_scanner):
    app = create_app(token=TOKEN)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal-detail-that-must-stay-in-the-log")

    secret_scanner.add_secret(TOKEN)
    monkeypatch.setattr(app.store, "status_dict", boom)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as http:
            response = http.get(f"/jobs/{uuid.uuid4()}/status", headers=auth)
            assert response.status_code == 500
            assert response.json() == {"detail": "internal server error"}
            assert "internal-detail" not in response.text and "Traceback" not in response.text
            for method, path, body in [
                ("POST", "/jobs", b"{"),
                ("POST", "/jobs", b"\xff\xfe"),
                ("POST", "/jobs", b"[]"),
                ("POST", "/jobs", b'{"shots": 1e999, "circuits": []}'),
                ("GET", "/jobs/../../etc/passwd", b""),
                ("DELETE", "/jobs", b""),
                ("POST", "/jobs", b"[" * 100_000),
            ]:
                answer = http.request(method, path, content=body, headers=auth)
                assert 400 <= answer.status_code < 500, (path, body[:20], answer.status_code)
                assert isinstance(answer.json()["detail"], str)
                assert "Traceback" not in answer.text and 'File "' not in answer.text
                secret_scanner.collect(answer.text)
    finally:
        app.close()
