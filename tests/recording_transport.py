"""An httpx transport for client tests: a real connection pool that records what it was asked."""

from __future__ import annotations

import httpx


class RecordingTransport(httpx.HTTPTransport):
    """Records each request as ``"METHOD path"`` (:attr:`paths`) and with its query
    (:attr:`asked`, ``"METHOD path?query"``)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.asked: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        self.asked.append(f"{self.paths[-1]}?{request.url.query.decode()}")
        return super().handle_request(request)
