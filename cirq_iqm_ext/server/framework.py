"""A small WSGI framework: requests, responses, a router, error answers and body reading.

Nothing here knows about jobs, architectures or either API: the route modules register handlers
on a :class:`Router`, and :func:`answer_wsgi` turns what a handler returns (or raises) into the
bytes of one WSGI answer. Every body is JSON unless a handler returns ``bytes`` and names its own
``Content-Type``; an unexpected exception is logged and answered with a bare 500, never a
traceback.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Headers = Sequence[tuple[str, str]]

#: Reason phrases of the statuses the server sends.
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
#: Bodies are read in pieces of this size.
_READ_CHUNK = 1 << 20


class HTTPError(Exception):
    """An error answer: status and ``detail`` (plus optional headers and extra body fields)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []
        self.body = body if body is not None else {"detail": detail}


class NoRouteError(HTTPError):
    """No route matches the path (404), or none of the matching route's methods (405)."""


class Streamed:
    """A body sent in pieces as they are written (large results), never whole in memory.

    Without a ``Content-Length`` the HTTP layer sends it chunked.

    Args:
        pieces: The body's bytes, in order.
        content_type: Its media type.
    """

    def __init__(self, pieces: Iterable[bytes], content_type: str = "application/json"):
        self.pieces = pieces
        self.content_type = content_type


class Response(NamedTuple):
    """What a handler returns: a status, a JSON-ready body (or ``bytes``, or ``None``), headers.

    A tuple, so ``status, body, headers = response`` works as it did when handlers returned plain
    tuples.
    """

    status: int
    body: Any = None
    headers: Headers = ()


@dataclass
class Request:
    """What a handler sees of one HTTP request.

    Attributes:
        method: The method in upper case.
        path: The path without the router's base path.
        params: The values of the route pattern's ``{name}`` segments.
        environ: The WSGI environment.
    """

    method: str
    path: str
    params: dict[str, str]
    environ: dict[str, Any]

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive), or ``None``."""
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return self.environ.get(key)
        return self.environ.get(f"HTTP_{key}")

    def query(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or ``None``."""
        values = urllib.parse.parse_qs(str(self.environ.get("QUERY_STRING", ""))).get(name)
        return values[-1] if values else None

    def query_float(self, name: str, default: float, maximum: float) -> float:
        """A non-negative number from the query, capped at ``maximum``.

        Raises:
            HTTPError: 400 for a value that is not a non-negative finite number.
        """
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise HTTPError(
                400, f"Query parameter {name!r} must be a number, got {raw!r}"
            ) from None
        if not 0 <= value < float("inf"):
            raise HTTPError(400, f"Query parameter {name!r} must be a non-negative number")
        return min(value, maximum)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """One path pattern (``{x}`` matches one segment) and its handler per method."""

    pattern: tuple[str, ...]
    handlers: dict[str, Handler]

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """The pattern's parameters if ``segments`` match it, else ``None``."""
        if len(self.pattern) != len(segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(self.pattern, segments, strict=True):
            if expected.startswith("{"):
                params[expected.strip("{}")] = actual
            elif expected != actual:
                return None
        return params


@dataclass(frozen=True)
class RouteMatch:
    """A resolved request: the handler, its request, and the key its statistics count under."""

    key: str
    handler: Handler
    request: Request


class Router:
    """Method + path pattern -> handler; the first matching pattern wins.

    Args:
        base_path: Optional path prefix (e.g. ``"/cocos"``); paths match with and without it.
    """

    def __init__(self, base_path: str = ""):
        stripped = base_path.strip("/")
        #: The base path as sent in ``Location`` headers: ``""`` or ``"/cocos"``.
        self.base = f"/{stripped}" if stripped else ""
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Routes ``method`` on ``pattern`` (e.g. ``"jobs/{id}/status"``) to ``handler``."""
        segments = tuple(s for s in pattern.split("/") if s)
        for route in self._routes:
            if route.pattern == segments:
                route.handlers[method.upper()] = handler
                return
        self._routes.append(Route(segments, {method.upper(): handler}))

    def resolve(self, environ: dict[str, Any]) -> RouteMatch:
        """The handler and request for a WSGI environment.

        Raises:
            NoRouteError: 404 when no pattern matches, 405 when the method does not.
        """
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        if self.base and (path == self.base or path.startswith(self.base + "/")):
            path = path[len(self.base) :]
        segments = tuple(s for s in path.split("/") if s)
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            handler = route.handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(route.handlers))
                raise NoRouteError(
                    405,
                    f"Method {method} is not allowed on /{'/'.join(segments)}; use {allowed}",
                    headers=[("Allow", allowed)],
                )
            key = f"{method} {'/'.join(route.pattern)}"
            return RouteMatch(key, handler, Request(method, path, params, environ))
        raise NoRouteError(404, f"Not found: {method} {path}")


def answer_wsgi(
    respond: Callable[[dict[str, Any]], Response],
    environ: dict[str, Any],
    start_response: StartResponse,
) -> Iterable[bytes]:
    """Answers one WSGI request with what ``respond`` returns or raises."""
    try:
        status, body, headers = respond(environ)
    except HTTPError as error:
        status, body, headers = error.status, error.body, error.headers
    except Exception:  # the last resort: log it here, never show a traceback to the client
        logger.exception(
            "Unhandled error answering %s %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
        status, body, headers = 500, {"detail": "internal server error"}, []
    headers = list(headers)
    if isinstance(body, Streamed):  # no Content-Length: the HTTP layer chunks it
        headers = [h for h in headers if h[0].lower() != "content-type"]
        headers.append(("Content-Type", body.content_type))
        start_response(f"{status} {REASONS.get(status, 'Unknown')}", headers)
        return body.pieces
    if isinstance(body, bytes):  # e.g. protobuf; the handler names its Content-Type
        payload = body
    else:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        if body is not None:
            headers.append(("Content-Type", "application/json"))
    headers.append(("Content-Length", str(len(payload))))
    start_response(f"{status} {REASONS.get(status, 'Unknown')}", headers)
    return [payload]


def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused before reading when larger than ``limit`` bytes.

    Raises:
        HTTPError: 411 for a chunked body, 413 above the limit, 400 for a bad or short body.
    """
    raw_length = request.header("Content-Length")
    if not raw_length:
        if "chunked" in (request.header("Transfer-Encoding") or "").lower():
            raise HTTPError(411, "Chunked request bodies are not supported; send Content-Length")
        return b""
    if not (raw_length.isascii() and raw_length.isdigit()):  # int() would take "+4", "4_2"
        raise HTTPError(400, f"Invalid Content-Length header: {raw_length!r}")
    length = int(raw_length)
    if length > limit:
        raise HTTPError(
            413, f"Request body of {length} bytes is larger than the limit of {limit} bytes"
        )
    stream = request.environ["wsgi.input"]
    chunks = []
    remaining = length
    while remaining > 0:
        try:
            chunk = stream.read(min(remaining, _READ_CHUNK))
        except OSError as error:  # TimeoutError included: the client stopped sending
            # The client's doing, not a server fault: one line, no traceback.
            logger.warning(
                "The body of %s %s from %s stopped after %d of %d bytes (%s); dropped",
                request.method,
                request.path,
                request.environ.get("REMOTE_ADDR", "?"),
                length - remaining,
                length,
                type(error).__name__,
            )
            raise HTTPError(408, "The request body did not arrive in time") from None
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    if remaining:
        raise HTTPError(400, f"Request body ended after {length - remaining} of {length} bytes")
    return b"".join(chunks)


def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as strict JSON (no ``NaN``/``Infinity``).

    Raises:
        HTTPError: 400 for an empty, non-UTF-8 or invalid body; see :func:`read_body`.
    """
    return parse_json(read_body(request, limit))


def parse_json(body: bytes) -> Any:
    """A request body parsed as strict JSON (no ``NaN``/``Infinity``).

    The standard library's decoder, not ``orjson``: that one turns integers beyond 64 bits into
    floats without a word, and a request must read as it was written.

    Raises:
        HTTPError: 400 for an empty, non-UTF-8 or invalid body.
    """
    if not body.strip():
        raise HTTPError(400, "The request body is empty; send a JSON run request")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise HTTPError(400, f"The request body is not UTF-8: {error}") from None
    except RecursionError:
        raise HTTPError(400, "The request body is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, too many digits
        raise HTTPError(400, f"The request body is not valid JSON: {error}") from None


def read_form(request: Request, limit: int) -> dict[str, str]:
    """The request body parsed as ``application/x-www-form-urlencoded`` fields.

    Raises:
        HTTPError: 400 for a body that cannot be parsed; see :func:`read_body`.
    """
    body = read_body(request, limit)
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPError(400, f"The form body cannot be parsed: {error}") from None
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")
