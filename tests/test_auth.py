"""Authentication parameters, token providers and JWT expiry, without a server."""

from __future__ import annotations

import base64
import json
import os
import warnings

import httpx
import pytest

from cirq_iqm_ext.client.auth import (
    PasswordTokenProvider,
    StaticTokenProvider,
    TokensFileProvider,
    gather_auth_parameters,
    jwt_expiry,
)
from cirq_iqm_ext.errors import ClientAuthenticationError, ClientConfigurationError

SECRET = "s3cr3t-T0KEN-value"


def make_jwt(exp: float | None, **claims) -> str:
    def part(data: dict) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        return raw.rstrip("=")

    payload = dict(claims)
    if exp is not None:
        payload["exp"] = exp
    return f"{part({'alg': 'none'})}.{part(payload)}.signature"


def write_tokens_file(path, access_token: str) -> str:
    path.write_text(
        json.dumps(
            {
                "pid": None,
                "timestamp": "2024-01-01T00:00:00",
                "refresh_status": "SUCCESS",
                "access_token": access_token,
                "refresh_token": "r",
                "auth_server_url": "http://127.0.0.1",
            }
        )
    )
    os.chmod(path, 0o600)
    return str(path)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.!!!.c",
        "a." + base64.b64encode(b"[1,2]").decode() + ".c",
        "a." + base64.urlsafe_b64encode(b'{"exp": "soon"}').decode() + ".c",
        "a." + base64.urlsafe_b64encode(b'{"exp": true}').decode() + ".c",
        "a." + base64.urlsafe_b64encode(b"\xff\xfe").decode() + ".c",
        "é.é.é",
    ],
)
def test_jwt_expiry_tolerates_garbage(garbage):
    assert jwt_expiry(garbage) is None


def test_jwt_expiry_reads_exp_without_padding():
    for exp in (1700000000, 1700000000.5, 17):
        assert jwt_expiry(make_jwt(exp, sub="user-with-odd-length")) == float(exp)


@pytest.mark.parametrize(
    ("arguments", "environ", "expected"),
    [
        ({}, {}, {}),
        ({"token": "t"}, {}, {"token": "t"}),
        ({}, {"IQM_TOKEN": "t"}, {"token": "t"}),
        ({"tokens_file": "/f"}, {}, {"tokens_file": "/f"}),
        (
            {},
            {"IQM_AUTH_SERVER": "http://a", "IQM_AUTH_USERNAME": "u", "IQM_AUTH_PASSWORD": "p"},
            {"auth_server_url": "http://a", "username": "u", "password": "p"},
        ),
        ({"token": ""}, {"IQM_TOKEN": ""}, {}),
    ],
)
def test_valid_parameter_combinations(arguments, environ, expected):
    assert gather_auth_parameters(arguments, environ) == expected


@pytest.mark.parametrize(
    ("arguments", "environ", "names"),
    [
        ({"token": SECRET, "tokens_file": "/f"}, {}, "found token, tokens_file"),
        ({"username": "u", "password": SECRET}, {}, "found username, password"),
        ({}, {"IQM_AUTH_USERNAME": "u", "IQM_AUTH_PASSWORD": SECRET}, "IQM_AUTH_USERNAME"),
        ({"token": SECRET}, {"IQM_AUTH_PASSWORD": SECRET}, "do not mix"),
    ],
)
def test_invalid_combinations_list_the_valid_ones_and_hide_values(arguments, environ, names):
    with pytest.raises(ClientConfigurationError) as info:
        gather_auth_parameters(arguments, environ)
    message = str(info.value)
    assert names in message
    assert "Use exactly one of" in message
    assert SECRET not in message


def test_static_token_hidden_in_repr():
    provider = StaticTokenProvider(SECRET)
    assert provider.get_token() == SECRET
    assert SECRET not in repr(provider)
    with pytest.raises(ClientAuthenticationError):
        provider.close()


def test_tokens_file_is_reread_when_the_token_is_about_to_expire(tmp_path):
    now = [1_000_000.0]
    path = tmp_path / "tokens.json"
    first = make_jwt(now[0] + 120)
    write_tokens_file(path, first)
    provider = TokensFileProvider(path, clock=lambda: now[0])
    second = make_jwt(now[0] + 3600)
    write_tokens_file(path, second)
    assert provider.get_token() == first  # 120 s left: still fine
    now[0] += 61  # 59 s left: re-read
    assert provider.get_token() == second
    assert provider.get_token(force_refresh=True) == second
    assert str(path) in repr(provider)


def test_tokens_file_with_undecodable_token_is_reread_each_time(tmp_path):
    path = tmp_path / "tokens.json"
    write_tokens_file(path, "opaque-token")
    provider = TokensFileProvider(path)
    write_tokens_file(path, "opaque-token-2")
    assert provider.get_token() == "opaque-token-2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Cannot read the tokens file"),
        ("{not json", "is not valid JSON"),
        ('{"refresh_token": "x"}', 'has no "access_token"'),
        ("[1]", 'has no "access_token"'),
    ],
)
def test_unreadable_tokens_file(tmp_path, content, message):
    path = tmp_path / "tokens.json"
    if content is not None:
        path.write_text(content)
        os.chmod(path, 0o600)
    with pytest.raises(ClientConfigurationError) as info:
        TokensFileProvider(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_tokens_file_readable_by_others_warns(tmp_path):
    path = tmp_path / "tokens.json"
    write_tokens_file(path, make_jwt(None))
    os.chmod(path, 0o644)
    with pytest.warns(UserWarning, match="can be read by other users"):
        TokensFileProvider(path)
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TokensFileProvider(path)


class FakeAuthServer:
    """A recording stand-in for the OpenID Connect token endpoint (a narrow error-path fake)."""

    def __init__(self, refuse_refresh: bool = False, lifetime: float = 300.0):
        self.requests: list[dict[str, str]] = []
        self.refuse_refresh = refuse_refresh
        self.lifetime = lifetime
        self.now = 1_000_000.0
        self.issued = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        self.requests.append(form)
        if request.url.path.endswith("/logout"):
            return httpx.Response(204)
        if form["grant_type"] == "refresh_token" and self.refuse_refresh:
            return httpx.Response(400, json={"error": "invalid_grant"})
        if form["grant_type"] == "password" and form.get("password") != SECRET:
            return httpx.Response(
                401,
                json={"error": "invalid_grant", "error_description": "Invalid user credentials"},
            )
        self.issued += 1
        return httpx.Response(
            200,
            json={
                "access_token": make_jwt(self.now + self.lifetime, n=self.issued),
                "refresh_token": make_jwt(self.now + 10 * self.lifetime, n=self.issued),
                "expires_in": self.lifetime,
                "refresh_expires_in": 10 * self.lifetime,
            },
        )


def password_provider(server: FakeAuthServer, password: str = SECRET) -> PasswordTokenProvider:
    http = httpx.Client(transport=httpx.MockTransport(server.handler))
    return PasswordTokenProvider(
        "http://127.0.0.1:1/auth/", "alice", password, http, clock=lambda: server.now
    )


def test_password_login_refresh_and_logout():
    server = FakeAuthServer()
    provider = password_provider(server)
    token = provider.get_token()
    assert server.requests[-1]["grant_type"] == "password"
    assert server.requests[-1]["client_id"] == "iqm_client"
    assert provider.get_token() == token and len(server.requests) == 1  # cached
    server.now += 250  # 50 s left: refresh
    refreshed = provider.get_token()
    assert refreshed != token
    assert server.requests[-1]["grant_type"] == "refresh_token"
    assert provider.get_token(force_refresh=True) != refreshed
    assert provider.close() is True
    assert server.requests[-1].keys() >= {"client_id", "refresh_token"}
    assert provider.close() is False
    assert SECRET not in repr(provider)


def test_refused_refresh_falls_back_to_password_login():
    server = FakeAuthServer(refuse_refresh=True)
    provider = password_provider(server)
    provider.get_token()
    provider.get_token(force_refresh=True)
    assert [r["grant_type"] for r in server.requests] == ["password", "refresh_token", "password"]


def test_wrong_password_is_a_clear_error_without_the_password():
    server = FakeAuthServer()
    provider = password_provider(server, password="wrong-" + SECRET)
    with pytest.raises(ClientAuthenticationError) as info:
        provider.get_token()
    assert "Invalid user credentials" in str(info.value)
    assert "alice" in str(info.value)
    assert SECRET not in str(info.value)
