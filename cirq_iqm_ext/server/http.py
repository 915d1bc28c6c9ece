"""A threaded loopback HTTP/1.1 server for the WSGI app, and :class:`EmbeddedServer`.

``wsgiref`` speaks HTTP/1.0 only (a new connection per request), so this module has its own small
handler on top of :class:`http.server.ThreadingHTTPServer`: HTTP/1.1 keep-alive, Nagle's algorithm
off (else every keep-alive answer waits ~40 ms for a delayed ACK), a listen backlog of 128 (the
default 5 drops connections under a burst), one daemon thread per connection, and a shutdown that
closes idle keep-alive connections and joins every thread.

The per-request path is kept short because every test and client poll goes through it: headers
are parsed by a small reader (the standard library's ``email`` parser costs more than the whole
app), each response goes out in one ``send`` (status line, headers and body together), the
``Date`` header is formatted once a second, and access logs are formatted only when debug logging
is on. A large answer without ``Content-Length`` (a big result, written a piece at a time
from the arrays) goes out chunked as it is written instead, so it is never whole in memory and
other requests are served between its chunks.

Hostile or unlucky clients are bounded (``ServerConfig.max_connections`` and
``ServerConfig.connection_timeout``): every request must arrive whole (request line, headers and
body) within ``connection_timeout`` seconds of the connection becoming idle, a total deadline
rather than one per read, so trickling a byte now and then holds nothing; and at most
``max_connections`` connections are served at once. A new connection beyond the cap first sheds
the oldest idle keep-alive connection (then the oldest still sending its request); when every
connection is busy in the app it is answered 503 at once. ``Content-Length`` must be digits only,
and repeated ``Content-Length`` fields must agree (else 400), so this layer and the app can never
read different lengths.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import logging
import math
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from cirq_iqm_ext.server.app import IQMServerApp
from cirq_iqm_ext.server.config import (
    DEFAULT_CONNECTION_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    ServerConfig,
)

logger = logging.getLogger(__name__)

#: Unread request bodies up to this size are drained to keep the connection; larger ones close it.
_DRAIN_LIMIT = 1 << 16
#: An answer without ``Content-Length`` whose first pieces reach this size is sent chunked as it
#: is written, in chunks of about this size; a smaller one goes out whole with its length.
_CHUNK = 1 << 18
#: Limits of the header reader (as :mod:`http.client`'s): line length and number of fields.
_MAX_LINE = 65536
_MAX_HEADERS = 100
#: What a connection is doing, for shedding: idle ones go first, busy ones never.
_IDLE, _READING, _BUSY = 0, 1, 2
_SHED_ORDER = (_IDLE, _READING)
#: The answer to a connection over the cap when none can be shed.
_OVERLOADED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 62\r\n\r\n"
    b'{"detail":"The server has too many connections; retry shortly"}'
)


class _FramingError(Exception):
    """A request's ``Content-Length`` cannot be trusted (answered with 400)."""


def content_length(values: list[str] | None) -> int:
    """The one length that a request's ``Content-Length`` fields give (0 without any).

    Raises:
        _FramingError: A value that is not plain digits (``+426``, ``42_6``, ``-1``, ``0x1a``),
            or repeated fields that differ.
    """
    if not values:
        return 0
    lengths = set()
    for value in values:
        for part in value.split(","):  # "426, 426" is a repeated field folded into one
            part = part.strip()
            if not (part.isascii() and part.isdigit()):
                raise _FramingError(f"Invalid Content-Length header: {value!r}")
            lengths.add(int(part))
    if len(lengths) != 1:
        raise _FramingError(f"Conflicting Content-Length headers: {', '.join(values)}")
    return lengths.pop()


class _DeadlineSocket(io.RawIOBase):
    """The socket as a raw stream whose every receive ends by the connection's deadline.

    A socket timeout counts per ``recv``; this one counts what is left of the deadline, so
    trickled bytes cannot stretch a request forever.
    """

    def __init__(self, sock: socket.socket):
        super().__init__()
        self._sock = sock
        self.deadline = time.monotonic() + DEFAULT_CONNECTION_TIMEOUT

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the connection's deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _HeaderError(Exception):
    """A request's header block is too large (answered with 431)."""


class _Headers:
    """Request header fields: the few mapping methods the handler and the stdlib base use.

    Lookups are case-insensitive and return the first field of a name (as ``email.message``).
    """

    __slots__ = ("_fields", "_first")

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = fields
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of field ``name``, or ``default``."""
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        """Every value of field ``name`` in order, or ``failobj``."""
        key = name.lower()
        values = [value for field, value in self._fields if field.lower() == key]
        return values or failobj

    def items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` in order, repeated names included."""
        return list(self._fields)

    def keys(self) -> list[str]:
        """Every field name in order."""
        return [name for name, _ in self._fields]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._fields)


def _read_headers(stream: Any) -> _Headers:
    """Reads header lines up to the blank line (obsolete line folding is joined).

    Raises:
        _HeaderError: A line longer than 64 KiB or more than 100 fields.
    """
    fields: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADERS + 1):
        line = stream.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise _HeaderError("Line too long")
        if line in (b"\r\n", b"\n", b""):
            return _Headers(fields)
        text = line.decode("iso-8859-1")
        if text[0] in " \t" and fields:  # obsolete folding: continues the previous field
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {text.strip()}")
            continue
        name, colon, value = text.partition(":")
        if colon and name and name == name.strip():
            fields.append((name, value.strip()))
        # A line without a colon (or with space before it) is not a field: ignored.
    raise _HeaderError(f"got more than {_MAX_HEADERS} headers")


class _DateCache:
    """The ``Date`` header value, formatted at most once a second (all threads share it)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            # A race between threads only formats the same second twice; both values are right.
            self._text = formatdate(second, usegmt=True)
            self._second = second
        return self._text


_DATE = _DateCache()


class _BodyReader(io.RawIOBase):
    """``wsgi.input``: reads at most the request's ``Content-Length`` from the socket stream."""

    def __init__(self, stream: Any, length: int):
        super().__init__()
        self._stream = stream
        self.remaining = length
        #: Set when reading failed (timeout, reset): the connection cannot be reused.
        self.broken = False

    def _read(self, size: int) -> bytes:
        try:
            # read1: what has arrived (at least a byte), so a stalled body still counts its bytes
            return bytes(self._stream.read1(size))
        except OSError:  # TimeoutError included
            self.broken = True
            self.remaining = 0
            raise

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        size = min(len(buffer), self.remaining)
        data = self._read(size)
        buffer[: len(data)] = data
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.remaining
        size = min(size, self.remaining)
        if size <= 0:
            return b""
        data = self._read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data


class WSGIRequestHandler(BaseHTTPRequestHandler):
    """Calls the server's WSGI app for every request, keeping HTTP/1.1 connections alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "cirq-iqm-ext"
    #: The socket timeout until :meth:`setup` replaces it by the server's total deadline.
    timeout = DEFAULT_CONNECTION_TIMEOUT
    server: LoopbackHTTPServer

    def setup(self) -> None:
        """Sets up the streams; reads go through a deadline (see :class:`_DeadlineSocket`)."""
        super().setup()
        self.rfile.close()  # the plain stream is replaced (closing it releases its socket ref)
        self._raw = _DeadlineSocket(self.connection)
        self.rfile = io.BufferedReader(self._raw, 1 << 16)

    def _set_state(self, state: int) -> None:
        self.server.connection_state(state)

    def handle_one_request(self) -> None:
        """Reads one request and answers it through the app, whatever its method."""
        self._raw.deadline = time.monotonic() + self.server.connection_timeout
        self._set_state(_IDLE)
        self.raw_requestline = b""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            self._set_state(_READING)
            if not self.parse_request():
                return
            self._call_app()
        except (TimeoutError, ConnectionError, OSError) as error:
            self.close_connection = True
            if isinstance(error, TimeoutError) and self.raw_requestline:
                # A request begun and not finished in time: the client's fault, one line.
                logger.warning(
                    "Closed the connection from %s: its request did not arrive whole within %g s",
                    self.client_address[0],
                    self.server.connection_timeout,
                )
            else:
                self.log_message("connection dropped: %r", error)

    def parse_request(self) -> bool:
        """Parses the request line (as the standard library does) and the headers (faster).

        Returns:
            ``False`` when an error answer has been sent instead.
        """
        self.command = None  # type: ignore[assignment]  # set in case of error on the first line
        self.request_version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3 and not self._parse_version(words[-1]):
            return False
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):  # gh-87389: "//host/path" reads as a URL to some clients
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = _read_headers(self.rfile)  # type: ignore[assignment]
        except _HeaderError as error:
            message = "Line too long" if str(error) == "Line too long" else "Too many headers"
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, message, str(error))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _parse_version(self, version: str) -> bool:
        """Reads ``HTTP/x.y`` from the request line (as the standard library does).

        Returns:
            ``False`` when an error answer has been sent instead.
        """
        try:
            if not version.startswith("HTTP/"):
                raise ValueError
            base_version_number = version.split("/", 1)[1]
            parts = base_version_number.split(".")
            if len(parts) != 2 or not all(p.isdigit() and len(p) <= 10 for p in parts):
                raise ValueError
            version_number = int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            return False
        if version_number >= (1, 1):
            self.close_connection = False
        if version_number >= (2, 0):
            self.send_error(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                f"Invalid HTTP version ({base_version_number})",
            )
            return False
        self.request_version = version
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answers protocol-level errors (bad request line, huge headers) as JSON ``detail``."""
        try:
            short, long = self.responses[code]
        except KeyError:
            short, long = "error", ""
        body = json.dumps({"detail": message or explain or long or short}).encode()
        self.log_message("error %d: %s", code, message or short)
        if self.request_version == "HTTP/0.9":  # unparsable request line: still send headers
            self.request_version = "HTTP/1.0"
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _environ(self, body: _BodyReader) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                key = f"HTTP_{key}"
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call_app(self) -> None:
        try:
            length = content_length(self.headers.get_all("Content-Length"))
        except _FramingError as error:
            # Framing that cannot be trusted: the body's end is unknown, so answer and hang up.
            self.send_error(HTTPStatus.BAD_REQUEST, str(error))
            return
        body = _BodyReader(self.rfile, length)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True  # the app refuses it, and the body cannot be skipped
        response: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            response["status"] = status
            response["headers"] = headers
            return lambda data: None  # the legacy write() callable; the app never uses it

        environ = self._environ(body)
        if "CONTENT_LENGTH" in environ:
            environ["CONTENT_LENGTH"] = str(length)  # the one value, however it was sent
        self._set_state(_BUSY)
        result: Iterable[bytes] = self.server.app(environ, start_response)
        try:
            pieces = iter(result)
            if isinstance(result, list) and len(result) == 1:  # a whole body: the usual case
                payload, more = result[0], False
            else:
                payload, more = _first_chunk(pieces)
            # An unread body would be parsed as the next request: drain a small one, else hang.
            if body.broken or body.remaining > _DRAIN_LIMIT:
                self.close_connection = True
            elif body.remaining:
                body.read()
            if more and not any(n.lower() == "content-length" for n, _ in response["headers"]):
                self._send_streamed(response, payload, pieces)
            else:
                self._send_whole(response, payload + b"".join(pieces) if more else payload)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _head(self, status: str, headers: list[tuple[str, str]], extra: list[str]) -> bytes:
        """The status line and headers of an answer, ending with the blank line."""
        lines = [
            f"{self.protocol_version} {status}",
            f"Server: {self.version_string()}",
            f"Date: {_DATE.now()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.extend(extra)
        if self.close_connection:
            lines.append("Connection: close")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1", "strict")

    def _send_streamed(
        self, response: dict[str, Any], first: bytes, pieces: Iterator[bytes]
    ) -> None:
        """Sends a large answer chunked as it is written (HTTP/1.0: until the connection closes).

        The body is never whole in memory, and the interpreter is free between chunks for
        other requests (a status poll does not wait for a big result to be encoded).
        """
        chunked = self.request_version >= "HTTP/1.1"
        if not chunked:
            self.close_connection = True
        extra = ["Transfer-Encoding: chunked"] if chunked else []
        head = self._head(response["status"], response["headers"], extra)
        self.connection.settimeout(self.server.connection_timeout)  # a reader that stalls
        if self.command == "HEAD":  # no body at all, not even the last chunk
            self.wfile.write(head)
            return
        sent = 0
        chunk = first
        while chunk:
            sent += len(chunk)
            frame = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
            self.wfile.write(head + frame if head else frame)
            head = b""
            try:
                chunk, _ = _first_chunk(pieces)
            except Exception:  # the status line is out: all that is left is to hang up
                logger.exception("Writing the answer to %s %s failed", self.command, self.path)
                self.close_connection = True
                return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        if logger.isEnabledFor(logging.DEBUG):
            self.log_request(response["status"].partition(" ")[0], sent)

    def _send_whole(self, response: dict[str, Any], payload: bytes) -> None:
        """Sends an answer in one buffer and one send (with Nagle off, separate writes would
        go out as separate packets)."""
        status = response["status"]
        if logger.isEnabledFor(logging.DEBUG):
            self.log_request(status.partition(" ")[0], len(payload))
        headers = response["headers"]
        # The app's own answers always carry a Content-Length (framework.answer_wsgi).
        has_length = bool(headers) and headers[-1][0] == "Content-Length"
        if not has_length:
            has_length = any(name.lower() == "content-length" for name, _ in headers)
        extra = [] if has_length else [f"Content-Length: {len(payload)}"]
        head = self._head(status, headers, extra)
        self.connection.settimeout(self.server.connection_timeout)  # a reader that stalls
        self.wfile.write(head if self.command == "HEAD" else head + payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Sends access logs to :mod:`logging` at debug level instead of stderr."""
        if logger.isEnabledFor(logging.DEBUG):  # formatting costs more than the request
            logger.debug("%s - %s", self.address_string(), format % args)


def _first_chunk(pieces: Iterator[bytes]) -> tuple[bytes, bool]:
    """The next ~:data:`_CHUNK` bytes of ``pieces``, and whether more may follow."""
    parts: list[bytes] = []
    size = 0
    for piece in pieces:
        if piece:
            parts.append(piece)
            size += len(piece)
        if size >= _CHUNK:
            return b"".join(parts), True
    return b"".join(parts), False


@dataclass
class _Connection:
    """One open connection: its socket, what it is doing and since when."""

    sock: socket.socket
    state: int = _IDLE
    since: float = field(default_factory=time.monotonic)
    shed: bool = False


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections, caps them and closes them on shutdown.

    Args:
        address: ``(host, port)``; an IPv6 host such as ``::1`` selects an IPv6 socket.
        app: The WSGI app to call.
        max_connections: Most connections served at once (see the module docstring).
        connection_timeout: Seconds each request may take to arrive whole.
    """

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    block_on_close = False  # connection threads are tracked and joined by shutdown_all()

    def __init__(
        self,
        address: tuple[str, int],
        app: Any,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
    ):
        if max_connections < 1 or not connection_timeout > 0:
            raise ValueError("max_connections must be >= 1 and connection_timeout > 0")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.max_connections = max_connections
        self.connection_timeout = float(connection_timeout)
        #: Connections shed and refused because of the cap (for monitoring and tests).
        self.shed_count = self.refused_count = 0
        self._connections: dict[threading.Thread, _Connection] = {}
        self._connections_lock = threading.Lock()
        self._cap_warned_at = -math.inf
        super().__init__(address, WSGIRequestHandler)

    def server_bind(self) -> None:
        """Binds without ``HTTPServer.server_bind``'s reverse DNS lookup (slow on some hosts)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def connection_state(self, state: int) -> None:
        """Records what the calling connection thread is doing (idle, reading, busy)."""
        connection = self._connections.get(threading.current_thread())
        if connection is not None and connection.state != state:
            connection.state, connection.since = state, time.monotonic()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serves a connection in a daemon thread and remembers it; applies the cap first."""
        with self._connections_lock:
            live = [c for c in self._connections.values() if not c.shed]
            if len(live) >= self.max_connections and not self._shed_one(live):
                self.refused_count += 1
                self._warn_cap()
                refuse = True
            else:
                refuse = False
        if refuse:
            with contextlib.suppress(OSError):
                request.settimeout(0.5)
                request.sendall(_OVERLOADED)
                request.shutdown(socket.SHUT_WR)
                # Read what the client already sent, without waiting: closing with unread bytes
                # resets the connection, and a reset can destroy the 503 before it is read.
                request.setblocking(False)
                for _ in range(16):
                    if not request.recv(65536):
                        break
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"cirq-iqm-ext-http-{client_address[1] if len(client_address) > 1 else ''}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = _Connection(request)
        thread.start()

    def _shed_one(self, live: list[_Connection]) -> bool:
        """Hangs up the oldest idle connection, else the oldest still sending (lock held)."""
        for state in _SHED_ORDER:
            candidates = [c for c in live if c.state == state]
            if candidates:
                victim = min(candidates, key=lambda c: c.since)
                victim.shed = True
                with contextlib.suppress(OSError):
                    victim.sock.shutdown(socket.SHUT_RDWR)
                self.shed_count += 1
                self._warn_cap()
                return True
        return False

    def _warn_cap(self) -> None:
        now = time.monotonic()
        if now - self._cap_warned_at >= 60:  # at most once a minute: a flood must not flood logs
            self._cap_warned_at = now
            logger.warning(
                "%d connections open (the cap): shedding idle ones, refusing when all are busy",
                self.max_connections,
            )

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken connection must not take the server down
            logger.debug("error on connection from %s", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Hangs up every open connection and joins the connection threads."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for _thread, connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.sock.shutdown(socket.SHUT_RDWR)
        for thread, _connection in connections:
            thread.join(timeout)


class EmbeddedServer:
    """The IQM-compatible server on a loopback port, in background threads.

    Args:
        architecture: Built-in name (``adonis``, ``apollo``, ``garnet``, ``aphrodite``, ``deneb``;
            case-insensitive) or the path of a JSON architecture file.
        host: Address to listen on (``127.0.0.1``, ``::1``, ...).
        port: Port; ``0`` picks a free one (see :attr:`url`).
        token: Static bearer token the job endpoints require.
        auth_users: User name -> password for the built-in OpenID Connect token endpoint.
        seed: Seed of the simulator.
        job_delay: Seconds each job spends in the pending states.
        token_lifetime: Seconds an access token from the token endpoint is valid.
        **options: Further :class:`~cirq_iqm_ext.server.app.ServerConfig` fields
            (``max_body_bytes``, ``base_path``, ...).

    Example::

        with EmbeddedServer("adonis", seed=1) as server:
            client = IQMClient(server.url)
    """

    def __init__(
        self,
        architecture: Any = "adonis",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        auth_users: Mapping[str, str] | None = None,
        seed: int | None = None,
        job_delay: float = 0.0,
        token_lifetime: float = 300.0,
        **options: Any,
    ):
        self.config = ServerConfig(
            architecture=architecture,
            token=token,
            auth_users=dict(auth_users) if auth_users else None,
            seed=seed,
            job_delay=job_delay,
            token_lifetime=token_lifetime,
            **options,
        )
        self._host = host
        self._port = port
        self._app: IQMServerApp | None = None
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else f"{self._host}:{self._port}, stopped"
        return f"<EmbeddedServer {where}>"

    @property
    def app(self) -> IQMServerApp:
        """The WSGI app (available after :meth:`start`)."""
        if self._app is None:
            raise RuntimeError("The server is not running; call start() first")
        return self._app

    @property
    def url(self) -> str:
        """Base URL with the real port, e.g. ``http://127.0.0.1:54321`` (plus any base path)."""
        if self._server is None:
            raise RuntimeError("The server is not running; call start() first")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        host_text = f"[{host}]" if ":" in host else host
        base = self.config.base_path.strip("/")
        return f"http://{host_text}:{port}" + (f"/{base}" if base else "")

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("The server is not running; call start() first")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        """Binds the port and starts serving in a background thread.

        Returns:
            ``self``, so ``server = EmbeddedServer().start()`` works.

        Raises:
            ValueError: The architecture cannot be loaded.
            OSError: The address cannot be bound.
        """
        if self._server is not None:
            return self
        app = IQMServerApp(self.config)
        try:
            server = LoopbackHTTPServer(
                (self._host, self._port),
                app,
                max_connections=self.config.max_connections,
                connection_timeout=self.config.connection_timeout,
            )
        except BaseException:
            app.close()
            raise
        _warn_if_exposed(server, app)
        # The workers start once the port is bound: a failed bind leaves no thread behind.
        app.start()
        self._app, self._server = app, server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cirq-iqm-ext-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, closes connections and joins the server and worker threads."""
        server, thread, app = self._server, self._thread, self._app
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join()
        server.close_connections()
        server.server_close()
        if app is not None:
            app.close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _warn_if_exposed(server: LoopbackHTTPServer, app: IQMServerApp) -> None:
    """Warns when the server listens beyond this machine and anyone may use it."""
    host = str(server.server_address[0])
    try:
        loopback = ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not app.auth.enabled:
        logger.warning(
            "Listening on %s without a token: anyone who can reach this address can submit, "
            "read and delete jobs; set a token (--token) or users (--auth-user), or listen on "
            "127.0.0.1",
            host,
        )
