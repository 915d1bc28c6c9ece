"""Names both sides of the wire use: headers, query parameters and paths, written down once.

The client sends and reads them, the server answers with them; neither spells them itself, so a
rename cannot reach one side only.
"""

from __future__ import annotations

#: Request header carrying the key that makes ``POST jobs`` safe to repeat (PROTOCOL.md §5).
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: Response header by which a server says it deduplicates ``POST jobs`` on that key, and its
#: value. A client may then repeat an ambiguous submission with the same key.
IDEMPOTENCY_SUPPORT_HEADER = "IQM-Idempotency-Keys"
IDEMPOTENCY_SUPPORT_VALUE = "1"

#: Response header of ``GET jobs/{id}/status`` by which the project's server offers long polling:
#: a status request may hold its answer up to this many seconds with ``?wait=<seconds>``.
LONG_POLL_HEADER = "IQM-Long-Poll"
LONG_POLL_QUERY = "wait"

#: Query of ``GET jobs/{id}`` asking for measurements in the packed encoding (:mod:`.packed`),
#: and the result field that says which encoding the answer uses.
MEASUREMENTS_QUERY = {"measurements": "packed"}
MEASUREMENTS_FORMAT_FIELD = "measurements_format"
PACKED_FORMAT = "packed"

#: Query of ``GET jobs/{id}`` by which a client that kept its own request asks the project's
#: server not to echo it in ``metadata.request`` (CoCoS v1 always echoes it, and IQM's v1
#: clients need it); the answer's metadata then says ``"request_omitted": true`` instead.
REQUEST_ECHO_QUERY = {"request": "omit"}
REQUEST_OMITTED_FIELD = "request_omitted"

#: Query of ``GET quantum-architecture`` by which this project's client asks a v1 server to list
#: what it executes beyond CoCoS v1: a comma-separated set, ``delay`` (waits) and ``dynamic``
#: (``reset`` and ``cc_prx``). CoCoS v1 itself has none of them and ignores the query; other v1
#: clients (IQM's, which crash on unknown operation names) never send it, so they see the plain
#: architecture.
ARCHITECTURE_EXTENSIONS_QUERY = {"extensions": "delay,dynamic"}

#: The path ``IQMClient(api="auto")`` probes (PROTOCOL_IQM_SERVER.md §9.3).
PROBE_PATH = "api/v1/quantum-computers"
#: A response header of the probe by which a server says it also serves CoCoS v1 for its
#: quantum computer, at the given path (the project's server: ``/``). ``auto`` then prefers v1,
#: whose extensions (long polling, packed results, deduplication) the project's server offers.
COCOS_V1_HEADER = "IQM-CoCoS-V1-Path"

__all__ = [
    "ARCHITECTURE_EXTENSIONS_QUERY",
    "COCOS_V1_HEADER",
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENCY_SUPPORT_HEADER",
    "IDEMPOTENCY_SUPPORT_VALUE",
    "LONG_POLL_HEADER",
    "LONG_POLL_QUERY",
    "MEASUREMENTS_FORMAT_FIELD",
    "MEASUREMENTS_QUERY",
    "PACKED_FORMAT",
    "PROBE_PATH",
    "REQUEST_ECHO_QUERY",
    "REQUEST_OMITTED_FIELD",
]
