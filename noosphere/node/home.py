"""Operations (all phases): the node home on disk, owned by one process and private to its user.

A daemon takes an exclusive ``flock`` on ``HOME/node.lock`` before it writes anything and holds it
for its whole life, as kubo locks its repo (``repo.lock``): a second daemon on the same home
stops with one line naming the pid that holds it, instead of sharing the peer id, the SQLite
store and ``runtime.json`` with the first. The kernel drops the lock when the process ends, even
on ``kill -9``, so a stale lock file never blocks a restart; the file itself is never deleted
(deleting it would let a third process lock a new file while the second still holds the old one).

Every home is 0700 and the files directly in it 0600 (task text, memory, tokens, logs): a home
made wider by an older release or by hand is narrowed at start, with one log line per change. A
path the node does not own (a Kubernetes volume root shared through ``fsGroup``) cannot be
narrowed: that is logged, not fatal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

import structlog

from noosphere.errors import SetupError

log = structlog.get_logger("noosphere.home")

LOCK_FILENAME = "node.lock"


class HomeInUse(SetupError, RuntimeError):
    """Another process holds the home's lock; the message names its pid."""


class HomeLock:
    """An exclusive lock on a node home, held until ``release`` or the end of the process."""

    def __init__(self, home: Path, fd: int) -> None:
        self.home = home
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, home: Path) -> HomeLock:
        """Lock ``home`` (which must exist) or raise ``HomeInUse`` naming the holder's pid."""
        path = home / LOCK_FILENAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"pid {pid}" if pid is not None else "a process that is still starting"
            raise HomeInUse(
                f"{home} is in use by another noosphere node ({holder}); stop it first,"
                " or start this one with another --home"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(home, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
        os.close(fd)  # closing the last descriptor drops the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def make_private(home: Path) -> list[Path]:
    """Narrow ``home`` to 0700 and the regular files directly in it to owner-only (0600 for
    data), logging each change; returns what was changed."""
    changed: list[Path] = []
    for path in (home, *sorted(home.iterdir())):
        try:
            info = path.lstat()
        except FileNotFoundError:  # removed meanwhile (a WAL checkpointed away)
            continue
        if not (stat.S_ISDIR(info.st_mode) and path == home) and not stat.S_ISREG(info.st_mode):
            continue  # symlinks, sockets and sub-homes (workers) are not ours to change here
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            continue
        try:
            os.chmod(path, mode & 0o700)
        except PermissionError:  # e.g. a volume root owned by root, shared through fsGroup
            log.warning(
                "cannot narrow permissions in the node home (not its owner); restrict it by hand"
                " or through the volume's settings",
                path=str(path),
                mode=f"{mode:04o}",
                owner_uid=info.st_uid,
            )
            continue
        changed.append(path)
        log.warning(
            "narrowed permissions in the node home: other users could read it",
            path=str(path),
            was=f"{mode:04o}",
            now=f"{mode & 0o700:04o}",
        )
    return changed
