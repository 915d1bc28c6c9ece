"""A fault-injecting HTTP/1.1 proxy on a real loopback socket.

The proxy sits between an :class:`~cirq_iqm_ext.IQMClient` and the project's server. It
forwards every request unchanged unless a *rule* matches it; then it injects that rule's fault: a
reset before or after the server saw the request, a truncated body, a delayed answer, an answer of
its own (502, 429 with or without ``Retry-After``, non-JSON 200, ...), or a stripped header. Each
client connection gets its own thread and its own upstream connection, so keep-alive, connection
pools and long polls behave as they do in production.

Only loopback addresses are used. Every loop ends by itself: a connection thread stops at end of
file or error, and :meth:`FaultProxy.stop` closes every socket it opened.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from faults.report import REPORT

LOOPBACK = ("127.0.0.1", "::1")
SECRET_FIELD = re.compile(r'"(?:access_token|refresh_token)"\s*:\s*"([^"]+)"')
FORM_SECRET = re.compile(r"(?:^|&)(password|refresh_token)=([^&]+)")
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """One fault to inject into one request.

    Attributes:
        kind: ``reset_before`` (connection reset, request not forwarded), ``reset_after``
            (forwarded, answer dropped, connection reset), ``truncate`` (forwarded, half the
            answer's body sent, connection closed), ``delay`` (forwarded, answer held for
            ``delay`` seconds),
            ``respond`` (answered by the proxy with ``status``/``body``/``headers``, not forwarded),
            ``replace`` (forwarded, the server's answer replaced by ``status``/``body``),
            ``strip_header`` (forwarded, the response header ``header`` removed).
        status: Status of a ``respond``/``replace`` answer.
        body: Body of a ``respond``/``replace`` answer.
        headers: Extra headers of a ``respond``/``replace`` answer.
        delay: Seconds a ``delay`` fault holds the answer.
        header: The header a ``strip_header`` fault removes.
        label: Name to count the fault under (default: derived from kind and status).
    """

    kind: str
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    header: str = ""
    label: str = ""

    @property
    def name(self) -> str:
        """The name this fault is counted under in the report."""
        if self.label:
            return self.label
        if self.kind in ("respond", "replace"):
            return f"{self.kind} {self.status}"
        return self.kind


def respond(status: int, body: bytes | str = b"", *, label: str = "", **headers: str) -> Fault:
    """A fault answering ``status`` without forwarding (e.g. a gateway's 502); header names are
    given with ``_`` for ``-`` (``Retry_After="2"``)."""
    data = body.encode() if isinstance(body, str) else body
    return Fault(
        "respond",
        status=status,
        body=data,
        label=label,
        headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()),
    )


def replace(status: int, body: bytes | str, label: str = "") -> Fault:
    """A fault forwarding the request, then replacing the server's answer."""
    data = body.encode() if isinstance(body, str) else body
    return Fault("replace", status=status, body=data, label=label)


RESET_BEFORE = Fault("reset_before")
RESET_AFTER = Fault("reset_after")
TRUNCATE = Fault("truncate")


@dataclass
class Rule:
    """Inject ``faults`` (one per request, in order) into requests matching method and path."""

    method: str
    path: re.Pattern[str]
    faults: list[Fault]
    times: int = 1
    hits: int = field(default=0)


@dataclass
class ParsedRequest:
    """One HTTP request as read from the client."""

    method: str
    target: str
    head: bytes
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


def _read_head(stream: BinaryIO) -> tuple[bytes, list[str]] | None:
    lines: list[bytes] = []
    size = 0
    while True:
        line = stream.readline(MAX_HEAD_BYTES)
        if not line:
            return None
        size += len(line)
        if size > MAX_HEAD_BYTES:
            return None
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # tolerate stray empty lines between requests
            break
        lines.append(line)
    return b"".join(lines) + b"\r\n", [x.decode("latin-1").rstrip("\r\n") for x in lines]


def _headers(lines: Iterable[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def read_request(stream: BinaryIO) -> ParsedRequest | None:
    """Reads one request (Content-Length bodies only); ``None`` at end of input."""
    parsed = _read_head(stream)
    if parsed is None:
        return None
    head, lines = parsed
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers = _headers(lines[1:])
    length = int(headers.get("content-length", "0") or 0)
    body = stream.read(length) if length else b""
    if len(body) != length:
        return None
    return ParsedRequest(method, target, head, headers, body)


def read_response(stream: BinaryIO) -> tuple[list[str], bytes] | None:
    """Reads one response: its head lines and body; ``None`` when the server closed first."""
    parsed = _read_head(stream)
    if parsed is None:
        return None
    _, lines = parsed
    headers = _headers(lines[1:])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        # A large answer streamed by the server: passed on whole, with its length.
        lines = [x for x in lines if not x.lower().startswith("transfer-encoding:")]
        return lines, _read_chunked(stream)
    if "content-length" in headers:
        body = stream.read(int(headers["content-length"]))
    else:
        body = stream.read()  # until the server closes
    return lines, body


def _read_chunked(stream: BinaryIO) -> bytes:
    """A chunked body, decoded (trailers skipped)."""
    parts = []
    while True:
        size_line = stream.readline(MAX_HEAD_BYTES)
        if not size_line:
            raise OSError("the server closed the connection inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(MAX_HEAD_BYTES) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline(MAX_HEAD_BYTES)  # the CRLF after the chunk


def build_response(status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """An HTTP/1.1 response with a correct Content-Length."""
    head = [f"HTTP/1.1 {status} Injected"]
    names = set()
    for name, value in headers:
        head.append(f"{name}: {value}")
        names.add(name.lower())
    if "content-type" not in names and body:
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _reset(sock: socket.socket) -> None:
    """Closes ``sock`` with a TCP RST instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """A loopback HTTP proxy that injects faults by rule or at random.

    Args:
        upstream: ``(host, port)`` of the server (loopback only).
        host: Address to listen on (loopback only).
        port: Port to listen on; ``0`` picks a free one.

    Attributes:
        injected: Faults injected so far, by name.
        seen: ``"METHOD /path"`` of every request the proxy read, in order.
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0):
        if upstream[0] not in LOOPBACK or host not in LOOPBACK:
            raise ValueError("The fault proxy only talks to loopback addresses")
        self.upstream = upstream
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._random: tuple[random.Random, float, list[Fault], re.Pattern[str]] | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self.injected: Counter[str] = Counter()
        self.seen: list[str] = []
        #: Credentials that passed through (bearer tokens, passwords, issued tokens), so the
        #: secret scan knows every value to look for.
        self.secrets: set[str] = set()
        self.on_request: Callable[[ParsedRequest], None] | None = None

    # ---------------------------------------------------------------------------------- control

    def start(self) -> FaultProxy:
        """Binds and starts accepting connections (again, after :meth:`stop_listening`)."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(128)
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        thread = threading.Thread(
            target=self._accept_loop, args=(listener,), daemon=True, name="fault-proxy-accept"
        )
        thread.start()
        self._threads.append(thread)
        return self

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return self._port

    def stop_listening(self) -> None:
        """Closes the listening socket: new connections are refused (open ones go on)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def stop(self) -> None:
        """Stops listening, closes every connection and joins the threads."""
        self._stopping.set()
        self.stop_listening()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, method: str, path: str, *faults: Fault, times: int | None = None) -> Rule:
        """Injects ``faults`` into the next requests matching ``method`` and the ``path`` regex.

        Args:
            method: ``GET``/``POST``, or ``*`` for any.
            path: A regular expression searched in the request path.
            *faults: One fault per matching request, in order; the last repeats ``times`` in all.
            times: How many matching requests get a fault (default: one per fault given).
        """
        rule = Rule(method, re.compile(path), list(faults), times or len(faults))
        with self._lock:
            self._rules.append(rule)
        return rule

    def inject_randomly(
        self, rate: float, faults: list[Fault], *, seed: int, path: str = ""
    ) -> None:
        """Injects a fault drawn from ``faults`` into each request with probability ``rate``."""
        self._random = (random.Random(seed), rate, faults, re.compile(path))

    def clear(self) -> None:
        """Removes every rule and random injection."""
        with self._lock:
            self._rules.clear()
            self._random = None

    def _choose(self, request: ParsedRequest) -> Fault | None:
        with self._lock:
            self.seen.append(f"{request.method} {request.path}")
            for rule in self._rules:
                if rule.hits >= rule.times:
                    continue
                if rule.method not in ("*", request.method) or not rule.path.search(request.path):
                    continue
                fault = rule.faults[min(rule.hits, len(rule.faults) - 1)]
                rule.hits += 1
                break
            else:
                fault = None
                if self._random is not None:
                    rng, rate, choices, pattern = self._random
                    if pattern.search(request.path) and rng.random() < rate:
                        fault = rng.choice(choices)
            if fault is not None:
                self.injected[fault.name] += 1
                REPORT.count_fault(fault.name)
            return fault

    # ---------------------------------------------------------------------------------- serving

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(client)
            thread = threading.Thread(
                target=self._serve, args=(client,), daemon=True, name="fault-proxy-conn"
            )
            thread.start()
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _connect_upstream(self) -> tuple[socket.socket, BinaryIO]:
        sock = socket.create_connection(self.upstream, timeout=10)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(sock)
        return sock, sock.makefile("rb")

    def _serve(self, client: socket.socket) -> None:
        upstream: tuple[socket.socket, BinaryIO] | None = None
        reader = client.makefile("rb")
        try:
            while not self._stopping.is_set():
                try:
                    request = read_request(reader)
                except (OSError, ValueError):
                    return
                if request is None:
                    return
                self._note_secrets(request.headers.get("authorization", ""), request.body)
                if self.on_request is not None:
                    self.on_request(request)
                fault = self._choose(request)
                if fault is not None and fault.kind == "reset_before":
                    _reset(client)
                    return
                if fault is not None and fault.kind == "respond":
                    client.sendall(build_response(fault.status, fault.body, fault.headers))
                    continue
                try:
                    if upstream is None:
                        upstream = self._connect_upstream()
                    upstream[0].sendall(request.head + request.body)
                    answer = read_response(upstream[1])
                except OSError:
                    answer = None
                if answer is not None:
                    self._note_secrets("", answer[1])
                if answer is None:  # the server is gone: pass the failure on as a reset
                    _reset(client)
                    return
                if not self._answer(client, fault, *answer):
                    return
        except OSError:
            return
        finally:
            if upstream is not None:
                self._untrack(upstream[0])
                with contextlib.suppress(OSError):
                    upstream[0].close()
            self._untrack(client)
            with contextlib.suppress(OSError):
                client.close()

    def _note_secrets(self, authorization: str, body: bytes) -> None:
        found = []
        if authorization.lower().startswith("bearer "):
            found.append(authorization[7:].strip())
        if body and len(body) < 65536:
            text = body.decode("utf-8", "replace")
            found += SECRET_FIELD.findall(text)
            found += [v for _, v in FORM_SECRET.findall(text)]
        if found:
            with self._lock:
                self.secrets.update(s for s in found if len(s) >= 6)

    def _answer(
        self, client: socket.socket, fault: Fault | None, lines: list[str], body: bytes
    ) -> bool:
        """Sends the (possibly faulty) answer; returns whether the connection stays open."""
        status = int(lines[0].split(" ", 2)[1])
        headers = [(n.strip(), v.strip()) for n, _, v in (x.partition(":") for x in lines[1:])]
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        if fault is None:
            client.sendall(build_response(status, body, headers))
            return True
        if fault.kind == "reset_after":
            _reset(client)
            return False
        if fault.kind == "truncate":
            whole = build_response(status, body, headers)
            client.sendall(whole[: len(whole) - max(1, len(body) // 2)])
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            return False
        if fault.kind == "delay":
            time.sleep(fault.delay)
            client.sendall(build_response(status, body, headers))
            return True
        if fault.kind == "replace":
            client.sendall(build_response(fault.status, fault.body, fault.headers))
            return True
        if fault.kind == "strip_header":
            kept = [(n, v) for n, v in headers if n.lower() != fault.header.lower()]
            client.sendall(build_response(status, body, kept))
            return True
        raise ValueError(f"Unknown fault kind {fault.kind!r}")


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def upstream_of(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://127.0.0.1:PORT`` URL."""
    rest = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)
