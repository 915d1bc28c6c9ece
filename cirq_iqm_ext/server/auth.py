"""Server-side authentication: the static bearer token and the OpenID Connect users' tokens.

When neither a token nor users are configured, every request passes. Otherwise a protected
route needs ``Authorization: Bearer <token>`` carrying the static token (compared in constant
time with :func:`hmac.compare_digest`) or a live access token of the :class:`TokenIssuer`.

Each accepted request has an identity that owns the jobs it submits: ``user:<name>`` for a user's
access token, :data:`SHARED_TOKEN_IDENTITY` for the static token (everyone who holds it is one
identity), and ``None`` when authentication is off (every job is everyone's).
"""

from __future__ import annotations

import hmac
import time

from cirq_iqm_ext.server.config import ServerConfig
from cirq_iqm_ext.server.framework import Handler, HTTPError, Request, Response
from cirq_iqm_ext.server.oidc import TokenIssuer

#: Sent with every 401, as RFC 6750 asks.
CHALLENGE = ("WWW-Authenticate", 'Bearer realm="iqm"')
#: The identity of every request that carries the static token.
SHARED_TOKEN_IDENTITY = "token"
#: Where :meth:`Authenticator.protect` leaves the identity in the WSGI environment.
IDENTITY_KEY = "cirq_iqm_ext.identity"


def identity_of(request: Request) -> str | None:
    """The identity that :meth:`Authenticator.check` found for ``request`` (``None``: anyone)."""
    identity = request.environ.get(IDENTITY_KEY)
    return identity if isinstance(identity, str) else None


class Authenticator:
    """Checks the bearer token of requests to protected routes.

    Args:
        token: The static bearer token (``None``: none).
        issuer: The token issuer of the OpenID Connect endpoint (``None``: no users).
    """

    def __init__(self, token: str | None, issuer: TokenIssuer | None):
        self._token = token
        #: The OpenID Connect token issuer, if users are configured.
        self.issuer = issuer

    @classmethod
    def from_config(cls, config: ServerConfig) -> Authenticator:
        """The authenticator of a configuration: its token, and an issuer for its users."""
        issuer = (
            TokenIssuer(
                config.auth_users,
                access_lifetime=config.token_lifetime,
                refresh_lifetime=config.refresh_token_lifetime,
                clock=config.clock or time.time,
            )
            if config.auth_users
            else None
        )
        return cls(config.token, issuer)

    @property
    def enabled(self) -> bool:
        """Whether protected routes need a token at all."""
        return self._token is not None or self.issuer is not None

    def check(self, request: Request) -> str | None:
        """Passes an authenticated request and records its identity (see :func:`identity_of`).

        Returns:
            The identity: ``user:<name>``, :data:`SHARED_TOKEN_IDENTITY`, or ``None`` when
            authentication is off.

        Raises:
            HTTPError: 401 with a ``WWW-Authenticate`` challenge.
        """
        identity = self._identify(request)
        request.environ[IDENTITY_KEY] = identity
        return identity

    def _identify(self, request: Request) -> str | None:
        if not self.enabled:
            return None
        challenge = [CHALLENGE]
        header = request.header("Authorization")
        if not header:
            raise HTTPError(
                401,
                "Authentication required: send 'Authorization: Bearer <token>'",
                headers=challenge,
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(
                401, "The Authorization header must be 'Bearer <token>'", headers=challenge
            )
        if self._token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self._token.encode("utf-8")
        ):
            return SHARED_TOKEN_IDENTITY
        user = self.issuer.verify_access_token(token) if self.issuer is not None else None
        if user is not None:
            return f"user:{user}"
        raise HTTPError(401, "Invalid, expired or revoked bearer token", headers=challenge)

    def protect(self, handler: Handler) -> Handler:
        """``handler`` behind :meth:`check`."""

        def protected(request: Request) -> Response:
            self.check(request)
            return handler(request)

        return protected
