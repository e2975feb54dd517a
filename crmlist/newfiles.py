"""Output files made anew: never opened through a link or over a file planted under their name."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from crmlist.errors import OutputError

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(path: Path | str, dir_fd: int | None = None) -> int:
    """A descriptor of a file made anew at path: a stale temp file or a link planted under its name is
    removed first (the link, never what it points at), and O_EXCL|O_NOFOLLOW opens nothing else."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path, dir_fd=dir_fd)
    return os.open(path, NEW_FILE, 0o666, dir_fd=dir_fd)  # the umask gives the mode (owner-only: 0600)


def refuse_link(path: Path, option: str) -> None:
    """A folder crmlist writes into inside an output folder must not be a symbolic link."""
    if path.is_symlink():
        raise OutputError(
            str(path),
            "is a symbolic link; crmlist never writes through one",
            f"remove the link, or choose another {option}",
        )
