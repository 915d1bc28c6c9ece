"""The OpenID Connect token and logout endpoints, as Keycloak answers them for IQM's clients.

The routes exist only when users are configured; the token logic is
:class:`~cirq_iqm_ext.server.oidc.TokenIssuer`'s, this module only reads forms and words errors.
"""

from __future__ import annotations

from cirq_iqm_ext.server.framework import HTTPError, Request, Response, Router, read_form
from cirq_iqm_ext.server.oidc import REALM, OIDCError, TokenIssuer

#: Form bodies of the token endpoints are tiny; anything larger is refused.
MAX_FORM_BYTES = 64 * 1024
#: Where the endpoints live, as in Keycloak.
PREFIX = f"realms/{REALM}/protocol/openid-connect"


class OIDCRoutes:
    """The handlers of the token endpoints.

    Args:
        issuer: Issues, renews and revokes the tokens.
    """

    def __init__(self, issuer: TokenIssuer):
        self.issuer = issuer

    def add_to(self, router: Router) -> None:
        """Registers the routes on ``router``."""
        router.add("POST", f"{PREFIX}/token", self.token)
        router.add("POST", f"{PREFIX}/logout", self.logout)

    def token(self, request: Request) -> Response:
        """``POST .../token``: password and refresh-token grants."""
        try:
            body = self.issuer.token(read_form(request, MAX_FORM_BYTES))
        except OIDCError as error:
            raise HTTPError(error.status, error.description, body=error.body()) from None
        return Response(200, body, [("Cache-Control", "no-store")])

    def logout(self, request: Request) -> Response:
        """``POST .../logout``: ends the session of a refresh token."""
        try:
            self.issuer.logout(read_form(request, MAX_FORM_BYTES))
        except OIDCError as error:
            raise HTTPError(error.status, error.description, body=error.body()) from None
        return Response(204, None)
