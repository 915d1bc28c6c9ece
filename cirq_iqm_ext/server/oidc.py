"""A small OpenID Connect token endpoint, enough for IQM's username/password login flow.

It answers like Keycloak's ``/realms/cortex/protocol/openid-connect/token`` and ``.../logout``:
``grant_type=password`` starts a session, ``grant_type=refresh_token`` renews its tokens, logout
ends it. Tokens are JWT-shaped (``base64url(header).base64url(payload).base64url(signature)``) and
signed with HMAC-SHA256 under a random secret that lives only as long as the server. Every token
names its session (``sid``), so logging out revokes all tokens of that session at once.

Nothing here does HTTP: the WSGI app passes in parsed form fields and sends the returned
``(status, body)`` pairs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The realm and client id IQM's clients use.
REALM = "cortex"
CLIENT_ID = "iqm_client"

ACCESS = "Bearer"
REFRESH = "Refresh"


class OIDCError(Exception):
    """An OAuth error answer: HTTP status, ``error`` code and a description."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """The JSON body: OAuth's ``error``/``error_description`` plus the protocol's ``detail``."""
        return {
            "error": self.error,
            "error_description": self.description,
            "detail": self.description,
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: One unpadded base64url segment of a JWT (RFC 7515 §2): the URL-safe alphabet only.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: no padding, no other characters, only canonical encodings.

    Raises:
        binascii.Error: Anything else (a lenient decoder would skip ``!!``, ``%%`` or ``==``,
            so an altered token would still verify).
    """
    if not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise binascii.Error("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url(data) != text:  # unused low bits set: another text for the same bytes
        raise binascii.Error("not a canonical base64url encoding")
    return data


@dataclass
class _Session:
    subject: str
    refresh_expires: float
    active: bool = True


class TokenIssuer:
    """Issues, verifies and revokes tokens for a fixed set of users.

    Args:
        users: User name -> password.
        access_lifetime: Seconds an access token is valid.
        refresh_lifetime: Seconds a refresh token is valid (at least ``access_lifetime``).
        clock: Returns the current time in seconds since the epoch (injectable for tests).
        issuer: The ``iss`` claim.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        access_lifetime: float = 300.0,
        refresh_lifetime: float | None = None,
        clock: Callable[[], float] = time.time,
        issuer: str = f"cirq-iqm-ext/realms/{REALM}",
    ):
        self._users = dict(users)
        self._access_lifetime = float(access_lifetime)
        self._refresh_lifetime = max(
            float(refresh_lifetime) if refresh_lifetime is not None else 6 * self._access_lifetime,
            self._access_lifetime,
        )
        self._clock = clock
        self._issuer = issuer
        self._secret = secrets.token_bytes(32)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # Grants ---------------------------------------------------------------------------------------

    def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Handles a token request (password or refresh grant).

        Args:
            form: The form fields of the request.

        Returns:
            The token response body.

        Raises:
            OIDCError: Bad client, unsupported grant, wrong credentials or a bad refresh token.
        """
        self._check_client(form)
        grant = form.get("grant_type")
        if grant == "password":
            username, password = form.get("username"), form.get("password")
            if not username or password is None:
                raise OIDCError(400, "invalid_request", "username and password are required")
            if not self._password_ok(username, password):
                raise OIDCError(401, "invalid_grant", "Invalid user credentials")
            now = self._clock()
            sid = secrets.token_hex(16)
            with self._lock:
                self._prune(now)
                self._sessions[sid] = _Session(username, now + self._refresh_lifetime)
            return self._issue(sid, username, now)
        if grant == "refresh_token":
            claims = self._verify(form.get("refresh_token", ""), REFRESH, "refresh")
            now = self._clock()
            return self._issue(claims["sid"], claims["sub"], now)
        raise OIDCError(
            400,
            "unsupported_grant_type",
            f"grant_type must be password or refresh_token, got {grant!r}",
        )

    def logout(self, form: Mapping[str, str]) -> None:
        """Ends the session of the given refresh token; all its tokens stop working.

        Raises:
            OIDCError: Bad client or an invalid refresh token.
        """
        self._check_client(form)
        claims = self._verify(form.get("refresh_token", ""), REFRESH, "refresh")
        with self._lock:
            self._sessions[claims["sid"]].active = False

    def verify_access_token(self, token: str) -> str | None:
        """Returns the user name of a valid, unexpired, unrevoked access token, else ``None``."""
        try:
            return str(self._verify(token, ACCESS, "access")["sub"])
        except OIDCError:
            return None

    # Internals ------------------------------------------------------------------------------------

    @staticmethod
    def _check_client(form: Mapping[str, str]) -> None:
        if form.get("client_id") != CLIENT_ID:
            raise OIDCError(401, "invalid_client", f"Unknown client; use client_id={CLIENT_ID}")

    def _password_ok(self, username: str, password: str) -> bool:
        expected = self._users.get(username)
        # Compare even for unknown users, so timing does not reveal which user names exist.
        ok = hmac.compare_digest(
            (expected if expected is not None else secrets.token_hex(8)).encode(),
            password.encode(),
        )
        return ok and expected is not None

    def _prune(self, now: float) -> None:
        for sid in [s for s, session in self._sessions.items() if session.refresh_expires < now]:
            del self._sessions[sid]

    def _issue(self, sid: str, subject: str, now: float) -> dict[str, Any]:
        with self._lock:
            session = self._sessions.get(sid)
            refresh_expires = session.refresh_expires if session else now
        refresh_left = max(0.0, refresh_expires - now)
        access_lifetime = self._access_lifetime
        return {
            "access_token": self._sign(ACCESS, sid, subject, now, now + access_lifetime),
            "expires_in": int(access_lifetime),
            "refresh_token": self._sign(REFRESH, sid, subject, now, refresh_expires),
            "refresh_expires_in": int(refresh_left),
            "token_type": "Bearer",
            "scope": "openid",
        }

    def _sign(self, typ: str, sid: str, subject: str, now: float, expires: float) -> str:
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        while True:
            claims = {
                "exp": math.ceil(expires),  # rounded up: a token lives at least its lifetime
                "iat": int(now),
                "jti": secrets.token_hex(8),
                "iss": self._issuer,
                "azp": CLIENT_ID,
                "sub": subject,
                "typ": typ,
                "sid": sid,
            }
            payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
            # iqm-client 17 decodes the payload with the *standard* base64 alphabet; a fresh jti
            # until the payload has no '-' or '_' keeps that decoder working.
            if "-" not in payload and "_" not in payload:
                break
        signing_input = f"{header}.{payload}".encode("ascii")
        signature = hmac.new(self._secret, signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}"

    def _verify(self, token: str, typ: str, what: str) -> dict[str, Any]:
        invalid = OIDCError(
            400 if typ == REFRESH else 401, "invalid_grant", f"Invalid {what} token"
        )
        if not isinstance(token, str) or token.count(".") != 2:
            raise invalid
        header, payload, signature = token.split(".")
        expected = hmac.new(
            self._secret, f"{header}.{payload}".encode("ascii", "replace"), hashlib.sha256
        ).digest()
        try:
            _b64url_decode(header)
            given = _b64url_decode(signature)
            claims = json.loads(_b64url_decode(payload))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise invalid from None
        if not hmac.compare_digest(expected, given) or not isinstance(claims, dict):
            raise invalid
        if claims.get("typ") != typ:
            raise invalid
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= self._clock():
            raise OIDCError(invalid.status, "invalid_grant", f"The {what} token has expired")
        with self._lock:
            session = self._sessions.get(str(claims.get("sid")))
            if session is None or not session.active:
                raise OIDCError(
                    invalid.status, "invalid_grant", f"The {what} token's session has ended"
                )
        return claims
