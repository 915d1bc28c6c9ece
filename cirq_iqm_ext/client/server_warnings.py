"""Warnings that the IQM server attached to a job, re-emitted on the client side."""

from __future__ import annotations

import warnings
from collections.abc import Iterable


class IQMServerWarning(UserWarning):
    """A warning the IQM server attached to a job, re-emitted on the client side."""


def emit_server_warnings(texts: Iterable[str], *, stacklevel: int = 3) -> None:
    """Re-emits each server warning as an :class:`IQMServerWarning`.

    Args:
        texts: The warnings' texts, as the server sent them.
        stacklevel: As for :func:`warnings.warn`, counted from the caller of this function
            (the default 3 points at the code that called the client method that called it).
    """
    for text in texts:
        warnings.warn(text, IQMServerWarning, stacklevel=stacklevel)
