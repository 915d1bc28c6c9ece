"""Optional dependencies (the extras): a module if it is installed, ``None`` if not."""

from __future__ import annotations

import importlib
from typing import Any


def optional_module(name: str) -> Any:
    """The module ``name`` if it is installed, else ``None``.

    Typed ``Any`` either way, so code using an extra type-checks the same with and without it.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
