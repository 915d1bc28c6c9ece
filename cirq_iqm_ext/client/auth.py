"""Authentication: the three ways of PROTOCOL.md §6 behind one small interface.

A :class:`TokenProvider` hands out the current access token and can be asked to refresh it.
:class:`BearerAuth` is the ``httpx.Auth`` that puts the token on each request and, when the server
answers 401, forces one refresh and sends the request once more.

Secrets are held in private attributes and never appear in ``repr``, log records, warnings or
exception messages; errors name the parameters involved, never their values.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

import httpx

from cirq_iqm_ext.errors import ClientAuthenticationError, ClientConfigurationError

logger = logging.getLogger(__name__)

AUTH_CLIENT_ID = "iqm_client"
AUTH_REALM = "cortex"
#: A token with this many seconds or fewer left is treated as expired and renewed.
REFRESH_MARGIN_SECONDS = 60.0
#: Longer "tokens" are not decoded at all (their expiry counts as unknown).
MAX_TOKEN_CHARS = 64 * 1024

#: Constructor parameter -> environment variable, in the order they are reported.
AUTH_ENV_VARS: dict[str, str] = {
    "token": "IQM_TOKEN",
    "tokens_file": "IQM_TOKENS_FILE",
    "auth_server_url": "IQM_AUTH_SERVER",
    "username": "IQM_AUTH_USERNAME",
    "password": "IQM_AUTH_PASSWORD",
}

_VALID_COMBINATIONS = (
    frozenset({"token"}),
    frozenset({"tokens_file"}),
    frozenset({"auth_server_url", "username", "password"}),
)

_COMBINATIONS_HELP = (
    "Use exactly one of: (1) token= / IQM_TOKEN; (2) tokens_file= / IQM_TOKENS_FILE; "
    "(3) auth_server_url=, username= and password= / IQM_AUTH_SERVER, IQM_AUTH_USERNAME and "
    "IQM_AUTH_PASSWORD; either all as constructor arguments or all as environment variables."
)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT as a Unix time, or ``None`` when it cannot be read.

    Any garbage (not a string, not three parts, bad base64, bad or too deeply nested JSON, no
    finite numeric ``exp``, absurdly long) gives ``None``: an unreadable token counts as "expiry
    unknown", never as a crash.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        expiry = float(exp)
    except OverflowError:  # an integer beyond any float
        return None
    return expiry if math.isfinite(expiry) else None


def seconds_left(token: str, now: float) -> float | None:
    """Seconds until ``token`` expires (``None`` when unknown)."""
    expiry = jwt_expiry(token)
    return None if expiry is None else expiry - now


class TokenProvider(Protocol):
    """Where the client gets its bearer token from."""

    def get_token(self, *, force_refresh: bool = False) -> str:
        """Returns a valid access token, renewing it first when needed or forced."""

    def close(self) -> bool:
        """Ends the session with the auth server, if there is one; True when one was ended."""


class StaticTokenProvider:
    """A token from a dashboard, used as it is and never refreshed."""

    def __init__(self, token: str):
        if not token:
            raise ClientConfigurationError("The token is empty")
        self._token = token

    def get_token(self, *, force_refresh: bool = False) -> str:
        """Returns the token; a forced refresh cannot renew it."""
        return self._token

    def close(self) -> bool:
        """Raises: a static token has no session to end."""
        raise ClientAuthenticationError(
            "There is no auth session to close when a plain token is used"
        )

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=<hidden>)"


class TokensFileProvider:
    """A tokens file written and refreshed by a login tool; only ``access_token`` is used.

    The file is re-read whenever the cached token has :data:`REFRESH_MARGIN_SECONDS` or less left,
    or its expiry cannot be read, or a refresh is forced.

    Args:
        path: Path of the JSON tokens file.
        clock: Returns the current Unix time.

    Raises:
        ClientConfigurationError: The file cannot be read or holds no access token.
    """

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        self._path = os.fspath(path)
        self._clock = clock
        self._token: str | None = None
        self._warn_if_readable_by_others()
        self._token = self._read()

    def _warn_if_readable_by_others(self) -> None:
        try:
            mode = os.stat(self._path).st_mode
        except OSError:
            return  # _read reports the problem
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"The tokens file {self._path} can be read by other users; restrict it with "
                f"`chmod 600 {self._path}`",
                stacklevel=4,
            )

    def _read(self) -> str:
        try:
            with open(self._path, encoding="utf-8") as file:
                data = json.load(file)
        except OSError as error:
            raise ClientConfigurationError(
                f"Cannot read the tokens file {self._path}: {error.strerror or error}"
            ) from None
        except ValueError:
            raise ClientConfigurationError(
                f"The tokens file {self._path} is not valid JSON; log in again to rewrite it"
            ) from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ClientConfigurationError(
                f'The tokens file {self._path} has no "access_token"; log in again to rewrite it'
            )
        return token

    def get_token(self, *, force_refresh: bool = False) -> str:
        """Returns the access token, re-reading the file when it is about to expire."""
        token = self._token
        left = None if token is None else seconds_left(token, self._clock())
        if force_refresh or token is None or left is None or left <= REFRESH_MARGIN_SECONDS:
            token = self._token = self._read()
        return token

    def close(self) -> bool:
        """Raises: the tokens file's session belongs to the tool that wrote it."""
        raise ClientAuthenticationError(
            "The auth session of a tokens file is managed by the tool that wrote it; log out there"
        )

    def __repr__(self) -> str:
        return f"TokensFileProvider(path={self._path!r})"


class PasswordTokenProvider:
    """Username and password against an OpenID Connect server, with refresh and re-login.

    Args:
        auth_server_url: Base URL of the auth server.
        username: The user to log in as.
        password: The password.
        http: The HTTP client to talk to the auth server with (the IQM client's own).
        clock: Returns the current Unix time.
        timeout: Network timeout in seconds for auth requests.
    """

    def __init__(
        self,
        auth_server_url: str,
        username: str,
        password: str,
        http: httpx.Client,
        clock: Callable[[], float] = time.time,
        timeout: float = 60.0,
    ):
        self._base = auth_server_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = http
        self._clock = clock
        self._timeout = timeout
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._lock = threading.Lock()

    @property
    def _endpoint(self) -> str:
        return f"{self._base}/realms/{AUTH_REALM}/protocol/openid-connect"

    def get_token(self, *, force_refresh: bool = False) -> str:
        """Returns a valid access token, refreshing or logging in again as needed."""
        with self._lock:
            now = self._clock()
            token = self._access_token
            if token is not None and not force_refresh:
                left = seconds_left(token, now)
                if left is None or left > REFRESH_MARGIN_SECONDS:
                    return token
            refresh = self._refresh_token
            refresh_left = None if refresh is None else seconds_left(refresh, now)
            refresh_usable = refresh_left is None or refresh_left > REFRESH_MARGIN_SECONDS
            if refresh is not None and refresh_usable:
                try:
                    return self._request_tokens(
                        {"grant_type": "refresh_token", "refresh_token": refresh}
                    )
                except ClientAuthenticationError:
                    logger.info("Token refresh was refused; logging in again with the password")
            return self._request_tokens(
                {"grant_type": "password", "username": self._username, "password": self._password}
            )

    def _request_tokens(self, form: Mapping[str, str]) -> str:
        url = f"{self._endpoint}/token"
        try:
            response = self._http.post(
                url, data={"client_id": AUTH_CLIENT_ID, **form}, timeout=self._timeout
            )
        except httpx.HTTPError as error:
            raise ClientAuthenticationError(
                f"Cannot reach the auth server at {url}: {type(error).__name__}"
            ) from None
        grant = form["grant_type"]
        if response.status_code != 200:
            raise ClientAuthenticationError(
                f"The auth server refused the {grant} grant for user {self._username!r} "
                f"(HTTP {response.status_code}): {_describe_auth_error(response)}",
                status_code=response.status_code,
            )
        try:
            data: Any = response.json()
            access = data["access_token"]
            if not isinstance(access, str) or not access:
                raise KeyError("access_token")
        except (ValueError, KeyError, TypeError):
            raise ClientAuthenticationError(
                f"The auth server at {url} answered the {grant} grant without an access token"
            ) from None
        self._access_token = access
        refresh = data.get("refresh_token")
        self._refresh_token = refresh if isinstance(refresh, str) and refresh else None
        return access

    def close(self) -> bool:
        """Logs out: ends the session at the auth server and forgets the tokens.

        Returns:
            True when a session was ended, False when there was none.

        Raises:
            ClientAuthenticationError: The auth server refused the logout.
        """
        with self._lock:
            refresh = self._refresh_token
            if refresh is None:
                return False
            url = f"{self._endpoint}/logout"
            try:
                response = self._http.post(
                    url,
                    data={"client_id": AUTH_CLIENT_ID, "refresh_token": refresh},
                    timeout=self._timeout,
                )
            except httpx.HTTPError as error:
                raise ClientAuthenticationError(
                    f"Cannot reach the auth server at {url} to log out: {type(error).__name__}"
                ) from None
            if response.status_code not in (200, 204):
                raise ClientAuthenticationError(
                    f"Logout failed (HTTP {response.status_code}): "
                    f"{_describe_auth_error(response)}",
                    status_code=response.status_code,
                )
            self._access_token = self._refresh_token = None
            return True

    def __repr__(self) -> str:
        return (
            f"PasswordTokenProvider(auth_server_url={self._base!r}, username={self._username!r}, "
            "password=<hidden>)"
        )


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` and refreshes the token once on a 401.

    One instance serves one logical request, across all its retry attempts: the first 401 forces
    a token refresh and a repeat of that attempt (PROTOCOL.md §6; the server refused before
    acting, so the repeat is safe even for a job submission), a later 401 is returned as it is
    and becomes a :class:`~cirq_iqm_ext.ClientAuthenticationError` in the error mapping.

    Args:
        provider: Where the token comes from.
    """

    # The 401 body is read before the repeat, so its connection goes back to the pool first.
    requires_response_body = True

    def __init__(self, provider: TokenProvider):
        self._provider = provider
        self._refreshed = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sends ``request`` with the current token, and once more with a fresh one after 401."""
        request.headers["Authorization"] = f"Bearer {self._provider.get_token()}"
        response = yield request
        if response.status_code != 401 or self._refreshed:
            return
        self._refreshed = True
        token = self._provider.get_token(force_refresh=True)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._provider!r})"


def _describe_auth_error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return "no details"
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("error", "error_description", "detail") if k in data]
        if parts:
            return "; ".join(parts)
    return "no details"


def gather_auth_parameters(
    arguments: Mapping[str, str | os.PathLike[str] | None],
    environ: Mapping[str, str],
) -> dict[str, str]:
    """Picks the authentication parameters from the constructor or the environment, not both.

    Args:
        arguments: Constructor parameter name -> value (``None`` or empty when not given).
        environ: The environment to read the ``IQM_*`` variables from.

    Returns:
        Parameter name -> value, empty when no authentication is configured.

    Raises:
        ClientConfigurationError: Both sources are used, or the parameters found are not one of
            the three valid combinations. The message names the parameters, never their values.
    """
    given = {k: os.fspath(v) for k, v in arguments.items() if v}
    from_env = {k: environ[var] for k, var in AUTH_ENV_VARS.items() if environ.get(var)}
    if given and from_env:
        raise ClientConfigurationError(
            "Authentication parameters were given both as constructor arguments "
            f"({', '.join(given)}) and as environment variables "
            f"({', '.join(AUTH_ENV_VARS[k] for k in from_env)}); do not mix the two sources. "
            + _COMBINATIONS_HELP
        )
    found = given or from_env
    if found and frozenset(found) not in _VALID_COMBINATIONS:
        names = ", ".join(found) if given else ", ".join(AUTH_ENV_VARS[k] for k in found)
        raise ClientConfigurationError(
            f"Invalid combination of authentication parameters: found {names}. "
            + _COMBINATIONS_HELP
        )
    return found


def create_token_provider(
    parameters: Mapping[str, str],
    http: httpx.Client,
    *,
    clock: Callable[[], float] = time.time,
    timeout: float = 60.0,
) -> TokenProvider | None:
    """Builds the token provider for parameters from :func:`gather_auth_parameters`."""
    if not parameters:
        return None
    if "token" in parameters:
        return StaticTokenProvider(parameters["token"])
    if "tokens_file" in parameters:
        return TokensFileProvider(parameters["tokens_file"], clock=clock)
    return PasswordTokenProvider(
        parameters["auth_server_url"],
        parameters["username"],
        parameters["password"],
        http,
        clock=clock,
        timeout=timeout,
    )
