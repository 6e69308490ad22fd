"""Secret files on disk (all phases): node keys, operator tokens, attribute keys and the
authority's master keys are written with mode 0600 from the first byte, and refused on read
when other users can read them, as ssh does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from noosphere.errors import SetupError


class KeyFileError(SetupError, RuntimeError):
    """The key file exists but cannot be used (permissions, format)."""


def write_secret_file(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``path`` with mode 0600 (created so, never readable by others on the way); an
    existing file is an error unless ``replace``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)  # an existing file keeps its mode otherwise


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret file, refusing one that other users can read (as ssh does)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is accessible by other users (mode {mode:04o}); run: chmod 600 {path}"
        )
    return data


def private_file(path: Path) -> int | None:
    """Make ``path`` a file only its owner can read: create it empty with mode 0600 when it is
    missing (SQLite then gives its -wal and -shm files the same mode), or remove the group and
    other bits of an existing one. Returns the previous mode when it had to be narrowed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if not mode & 0o077:
            return None
        os.fchmod(fd, mode & 0o700)
        return mode
    finally:
        os.close(fd)
