"""The server's state directory: checked before use and held by one server at a time.

Two servers on one directory would each answer 404 for the other's jobs and, after a restart,
run the other's unfinished jobs again; so the directory is locked with an exclusive
:func:`fcntl.flock` on its ``server.lock`` file (released by the operating system when the process
dies, so a crashed server leaves no stale lock), and the file names the holder's pid for the
message of the second server. Platforms without :mod:`fcntl` run unlocked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from cirq_iqm_ext.errors import IQMError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file inside a state directory.
LOCK_NAME = "server.lock"


class StateDirError(IQMError, ValueError):
    """The state directory cannot be used: a file, unwritable, damaged or held by another server.

    Its message is one line that names the directory and what to do.
    """


def prepare_state_dir(path: str | os.PathLike[str]) -> Path:
    """The state directory, created if missing.

    Raises:
        StateDirError: The path is a file, or the directory cannot be created.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise StateDirError(
            f"The state dir {directory} is a file, not a directory; "
            "give a directory (it is created if missing)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateDirError(
            f"Cannot create the state dir {directory}: {error.strerror or error}"
        ) from None
    return directory


class StateDirLock:
    """An exclusive lock on a state directory, held until :meth:`release`.

    Args:
        directory: The (existing) state directory.

    Raises:
        StateDirError: Another live server holds the directory (the message names its pid).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._file: IO[str] | None = None
        if fcntl is None:  # pragma: no cover - Windows
            return
        path = directory / LOCK_NAME
        try:
            handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - held until release()
        except OSError as error:
            raise StateDirError(
                f"Cannot open the lock file {path}: {error.strerror or error}"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StateDirError(
                f"The state dir {directory} is in use by another server (pid {holder}); "
                "stop that server or give another --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Releases the lock (idempotent)."""
        handle, self._file = self._file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
            handle.close()  # closing the descriptor releases the flock
