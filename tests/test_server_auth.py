"""Bearer-token protection and the OpenID Connect token endpoint of the server."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from cirq_iqm_ext.server import EmbeddedServer
from cirq_iqm_ext.server.oidc import OIDCError, TokenIssuer

TOKEN = "static-token-0123456789"
TOKEN_PATH = "/realms/cortex/protocol/openid-connect/token"
LOGOUT_PATH = "/realms/cortex/protocol/openid-connect/logout"
BODY = {
    "circuits": [
        {
            "name": "one",
            "instructions": [{"name": "measure", "qubits": ["QB1"], "args": {"key": "m"}}],
        }
    ],
    "shots": 2,
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    """Decodes the payload the way iqm-client 17 does: *standard* base64 with padding restored."""
    payload = token.split(".")[1]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def token_server():
    with EmbeddedServer(token=TOKEN, seed=1) as running:
        yield running


@pytest.fixture(scope="module")
def oidc_server():
    users = {"alice": "alice-password", "bob": "bob-password"}
    with EmbeddedServer(auth_users=users, token_lifetime=60) as running:
        yield running


def login(http: httpx.Client, user: str = "alice", password: str | None = None) -> httpx.Response:
    return http.post(
        TOKEN_PATH,
        data={
            "client_id": "iqm_client",
            "grant_type": "password",
            "username": user,
            "password": password if password is not None else f"{user}-password",
        },
    )


# Static token ------------------------------------------------------------------------------------


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["detail"]
    assert TOKEN not in response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/quantum-architecture"),
        ("POST", "/jobs"),
        ("GET", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11"),
        ("GET", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11/status"),
        ("GET", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11/counts"),
        ("POST", "/jobs/3f2b4bba-8f0b-4c1f-9d7e-2f1a4c1b0a11/abort"),
    ],
)
def test_every_job_endpoint_needs_the_token(token_server, method, path):
    assert_refused(httpx.request(method, f"{token_server.url}{path}", json=BODY))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        TOKEN,
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
    ],
)
def test_a_wrong_authorization_header_is_401_and_creates_no_job(token_server, authorization):
    before = len(token_server.app.store)
    with httpx.Client(base_url=token_server.url, headers={"Authorization": authorization}) as http:
        assert_refused(http.post("/jobs", json=BODY))
        assert_refused(http.get("/quantum-architecture"))
    assert len(token_server.app.store) == before


def test_the_right_token_works_everywhere(token_server):
    with httpx.Client(base_url=token_server.url, headers=bearer(TOKEN)) as http:
        assert http.get("/quantum-architecture").status_code == 200
        job_id = http.post("/jobs", json=BODY).json()["id"]
        assert http.get(f"/jobs/{job_id}/status").status_code == 200
        assert http.get(f"/jobs/{job_id}").status_code == 200
        assert http.get(f"/jobs/{job_id}/counts").status_code == 200
        assert http.post(f"/jobs/{job_id}/abort").status_code in (200, 409)


def test_health_needs_no_token_and_no_token_endpoint_without_users(token_server):
    assert httpx.get(f"{token_server.url}/health").status_code == 200
    response = httpx.post(f"{token_server.url}{TOKEN_PATH}", data={"client_id": "iqm_client"})
    assert response.status_code == 404


def test_unknown_path_is_404_even_without_a_token(token_server):
    assert httpx.get(f"{token_server.url}/nowhere").status_code == 404


# OpenID Connect ----------------------------------------------------------------------------------


def test_password_login_gives_jwt_shaped_tokens_that_open_the_job_endpoints(oidc_server):
    with httpx.Client(base_url=oidc_server.url) as http:
        response = login(http)
        assert response.status_code == 200
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == 60
        assert tokens["refresh_expires_in"] >= 60
        access = tokens["access_token"]
        header, _, signature = access.split(".")[0], None, access.split(".")[2]
        assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
        assert signature
        payload = claims(access)
        assert payload["sub"] == "alice"
        assert payload["typ"] == "Bearer"
        assert 55 <= payload["exp"] - time.time() <= 61
        assert claims(tokens["refresh_token"])["typ"] == "Refresh"
        assert http.get("/quantum-architecture", headers=bearer(access)).status_code == 200
        assert http.post("/jobs", json=BODY, headers=bearer(access)).status_code == 201
        assert http.get("/quantum-architecture").status_code == 401


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"username": "alice", "password": "wrong"}, 401, "invalid_grant"),
        ({"username": "mallory", "password": "alice-password"}, 401, "invalid_grant"),
        ({"username": "alice", "password": ""}, 401, "invalid_grant"),
        ({"username": "alice"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"client_id": "someone_else"}, 401, "invalid_client"),
        ({"grant_type": "refresh_token", "refresh_token": "a.b.c"}, 400, "invalid_grant"),
        ({"grant_type": "refresh_token"}, 400, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(oidc_server, form, status, error):
    data = {"client_id": "iqm_client", "grant_type": "password", **form}
    response = httpx.post(f"{oidc_server.url}{TOKEN_PATH}", data=data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"] and body["detail"]
    assert "alice-password" not in response.text


def test_refresh_gives_new_working_tokens(oidc_server):
    with httpx.Client(base_url=oidc_server.url) as http:
        first = login(http, "bob").json()
        refreshed = http.post(
            TOKEN_PATH,
            data={
                "client_id": "iqm_client",
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
            },
        )
        assert refreshed.status_code == 200
        tokens = refreshed.json()
        assert tokens["access_token"] != first["access_token"]
        assert claims(tokens["access_token"])["sub"] == "bob"
        headers = bearer(tokens["access_token"])
        assert http.get("/quantum-architecture", headers=headers).status_code == 200


def test_refresh_token_and_tampered_token_are_not_access_tokens(oidc_server):
    with httpx.Client(base_url=oidc_server.url) as http:
        tokens = login(http).json()
        assert (
            http.get("/quantum-architecture", headers=bearer(tokens["refresh_token"])).status_code
            == 401
        )
        header, payload, signature = tokens["access_token"].split(".")
        forged_claims = claims(tokens["access_token"]) | {"sub": "bob"}
        forged_payload = (
            base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).decode().rstrip("=")
        )
        forged = f"{header}.{forged_payload}.{signature}"
        assert http.get("/quantum-architecture", headers=bearer(forged)).status_code == 401
        unsigned = f"{header}.{payload}."
        assert http.get("/quantum-architecture", headers=bearer(unsigned)).status_code == 401


def test_logout_revokes_the_session(oidc_server):
    with httpx.Client(base_url=oidc_server.url) as http:
        tokens = login(http).json()
        other = login(http).json()  # a second session of the same user stays valid
        response = http.post(
            LOGOUT_PATH, data={"client_id": "iqm_client", "refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 204
        assert response.content == b""
        denied = http.get("/quantum-architecture", headers=bearer(tokens["access_token"]))
        assert denied.status_code == 401
        refresh = http.post(
            TOKEN_PATH,
            data={
                "client_id": "iqm_client",
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
            },
        )
        assert refresh.status_code == 400
        assert refresh.json()["error"] == "invalid_grant"
        ok = http.get("/quantum-architecture", headers=bearer(other["access_token"]))
        assert ok.status_code == 200
        again = http.post(
            LOGOUT_PATH, data={"client_id": "iqm_client", "refresh_token": tokens["refresh_token"]}
        )
        assert again.status_code == 400


def test_access_tokens_expire():
    server = EmbeddedServer(auth_users={"alice": "alice-password"}, token_lifetime=1)
    with server as running, httpx.Client(base_url=running.url) as http:
        access = login(http).json()["access_token"]
        assert http.get("/quantum-architecture", headers=bearer(access)).status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            response = http.get("/quantum-architecture", headers=bearer(access))
            if response.status_code == 401:
                break
            time.sleep(0.1)
        assert response.status_code == 401
        assert "Invalid, expired or revoked" in response.json()["detail"]


def test_expiry_and_refresh_with_an_injected_clock():
    now = [1_000_000.0]
    issuer = TokenIssuer({"u": "p"}, access_lifetime=10, refresh_lifetime=30, clock=lambda: now[0])
    tokens = issuer.token(
        {"client_id": "iqm_client", "grant_type": "password", "username": "u", "password": "p"}
    )
    assert issuer.verify_access_token(tokens["access_token"]) == "u"
    now[0] += 11
    assert issuer.verify_access_token(tokens["access_token"]) is None
    refreshed = issuer.token(
        {
            "client_id": "iqm_client",
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        }
    )
    assert issuer.verify_access_token(refreshed["access_token"]) == "u"
    now[0] += 30
    with pytest.raises(OIDCError, match="expired"):
        issuer.token(
            {
                "client_id": "iqm_client",
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
            }
        )


def test_static_token_and_oidc_together():
    server = EmbeddedServer(token=TOKEN, auth_users={"alice": "alice-password"})
    with server as running, httpx.Client(base_url=running.url) as http:
        access = login(http).json()["access_token"]
        for token in (TOKEN, access):
            assert http.get("/quantum-architecture", headers=bearer(token)).status_code == 200
        assert http.get("/quantum-architecture").status_code == 401
