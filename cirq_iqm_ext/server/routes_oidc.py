"""The OpenID Connect token and logout endpoints, as Keycloak answers them for IQM's clients.

The routes exist only when users are configured; the token logic is
:class:`~cirq_iqm_ext.server.oidc.TokenIssuer`'s, this module only reads forms, words errors and
slows down password guessing (:class:`~cirq_iqm_ext.server.throttle.LoginThrottle`: 429 with
``Retry-After`` once a user name or a client address has failed too often).
"""

from __future__ import annotations

import time

from cirq_iqm_ext.server.framework import HTTPError, Request, Response, Router, read_form
from cirq_iqm_ext.server.oidc import REALM, OIDCError, TokenIssuer
from cirq_iqm_ext.server.throttle import LoginThrottle

#: Form bodies of the token endpoints are tiny; anything larger is refused.
MAX_FORM_BYTES = 64 * 1024
#: Where the endpoints live, as in Keycloak.
PREFIX = f"realms/{REALM}/protocol/openid-connect"


class OIDCRoutes:
    """The handlers of the token endpoints.

    Args:
        issuer: Issues, renews and revokes the tokens.
        throttle: Counts failed password logins (default: one with the standard policy).
    """

    def __init__(self, issuer: TokenIssuer, throttle: LoginThrottle | None = None):
        self.issuer = issuer
        self.throttle = throttle or LoginThrottle(time.monotonic)

    def add_to(self, router: Router) -> None:
        """Registers the routes on ``router``."""
        router.add("POST", f"{PREFIX}/token", self.token)
        router.add("POST", f"{PREFIX}/logout", self.logout)

    def token(self, request: Request) -> Response:
        """``POST .../token``: password and refresh-token grants."""
        form = read_form(request, MAX_FORM_BYTES)
        password_grant = form.get("grant_type") == "password"
        user = str(form.get("username") or "")
        address = str(request.environ.get("REMOTE_ADDR") or "")
        if password_grant:
            self._refuse_if_throttled(user, address)
        try:
            body = self.issuer.token(form)
        except OIDCError as error:
            if password_grant and error.error == "invalid_grant":
                self.throttle.failed(user, address)
            raise HTTPError(error.status, error.description, body=error.body()) from None
        if password_grant:
            self.throttle.succeeded(user)
        return Response(200, body, [("Cache-Control", "no-store")])

    def _refuse_if_throttled(self, user: str, address: str) -> None:
        # Refused before the password is checked: a blocked guess learns nothing.
        wait = self.throttle.retry_after(user, address)
        if wait:
            description = f"Too many failed logins; retry in {wait} s"
            raise HTTPError(
                429,
                description,
                headers=[("Retry-After", str(wait))],
                body=OIDCError(429, "slow_down", description).body(),
            )

    def logout(self, request: Request) -> Response:
        """``POST .../logout``: ends the session of a refresh token."""
        try:
            self.issuer.logout(read_form(request, MAX_FORM_BYTES))
        except OIDCError as error:
            raise HTTPError(error.status, error.description, body=error.body()) from None
        return Response(204, None)
