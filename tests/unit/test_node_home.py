"""The node home on disk: the exclusive home lock (held across processes, named by pid, dropped by
the kernel when its holder dies), permissions narrowed to the owner, the config written only
when asked (after a successful start) and 0600, and log output that never renders the local
variables of a traceback's frames, in either log format."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from noosphere.node.config import CONFIG_FILENAME, NodeConfig, load_config, save_config
from noosphere.node.home import LOCK_FILENAME, HomeInUse, HomeLock, make_private
from noosphere.securefile import private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from noosphere.node.home import HomeLock
    lock = HomeLock.acquire(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(600)
    """
)


def hold_in_another_process(home: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


# ---- the home lock ------------------------------------------------------------------------


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    holder = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(HomeInUse) as info:
            HomeLock.acquire(tmp_path)
        message = str(info.value)
        assert f"pid {holder.pid}" in message
        assert str(tmp_path) in message and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)  # no cleanup: the kernel must drop the lock
        holder.wait(10)
    lock = HomeLock.acquire(tmp_path)  # the stale lock file does not block
    assert (tmp_path / LOCK_FILENAME).read_text().strip() == str(os.getpid())
    assert mode(tmp_path / LOCK_FILENAME) == 0o600
    lock.release()


def test_lock_is_exclusive_within_one_process_and_released(tmp_path: Path) -> None:
    lock = HomeLock.acquire(tmp_path)
    assert lock.held
    with pytest.raises(HomeInUse, match=f"pid {os.getpid()}"):
        HomeLock.acquire(tmp_path)
    lock.release()
    lock.release()  # idempotent
    assert not lock.held
    assert (tmp_path / LOCK_FILENAME).exists()  # never deleted (no race on a new inode)
    HomeLock.acquire(tmp_path).release()


# ---- permissions ----------------------------------------------------------------------------


def test_make_private_narrows_home_and_files_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "node.db").write_text("x")
    os.chmod(home / "node.db", 0o644)
    (home / "node.key").write_text("k")
    os.chmod(home / "node.key", 0o600)
    (home / "workers").mkdir(mode=0o755)  # a sub-home: its own node narrows it
    os.chmod(home / "workers", 0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    os.chmod(outside, 0o644)
    (home / "link").symlink_to(outside)

    changed = make_private(home)
    assert set(changed) == {home, home / "node.db"}
    assert mode(home) == 0o700
    assert mode(home / "node.db") == 0o600
    assert mode(home / "node.key") == 0o600
    assert mode(home / "workers") == 0o755
    assert mode(outside) == 0o644  # a symlink's target is left alone
    assert make_private(home) == []


def test_a_home_the_node_does_not_own_is_logged_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.chmod(tmp_path, 0o2775)  # a volume root as kubelet leaves it with fsGroup

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with capture_logs() as logs:
        assert make_private(tmp_path) == []
    assert [e["event"] for e in logs] == [
        "cannot narrow permissions in the node home (not its owner); restrict it by hand"
        " or through the volume's settings"
    ]


def test_private_file_creates_0600_and_narrows(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    assert private_file(path) is None
    assert path.exists() and path.stat().st_size == 0 and mode(path) == 0o600
    os.chmod(path, 0o664)
    assert private_file(path) == 0o664
    assert mode(path) == 0o600


# ---- the config file --------------------------------------------------------------------


def test_config_is_written_only_when_saved_and_0600(tmp_path: Path) -> None:
    config, new = load_config(tmp_path, {"rpc_port": 7171}, environ={}, write=False)
    assert new is True
    assert not (tmp_path / CONFIG_FILENAME).exists()  # a start that fails leaves nothing
    save_config(tmp_path, config)
    assert mode(tmp_path / CONFIG_FILENAME) == 0o600
    assert tomllib.loads((tmp_path / CONFIG_FILENAME).read_text())["rpc_port"] == 7171
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_FILENAME]  # no temporary left
    again, new = load_config(tmp_path, environ={}, write=False)
    assert new is False and again.rpc_port == 7171


def test_shutdown_grace_setting() -> None:
    assert NodeConfig().shutdown_grace_s == 10.0  # well under Kubernetes' 30 s
    assert NodeConfig(shutdown_grace_s=0).shutdown_grace_s == 0
    with pytest.raises(ValueError):
        NodeConfig(shutdown_grace_s=-1)


# ---- tracebacks without locals ---------------------------------------------------------------

LOGGER = textwrap.dedent(
    """
    import sys
    import structlog
    from noosphere.node.logging import configure_default_logging, configure_logging
    if sys.argv[1] == "default":
        configure_default_logging()
    else:
        configure_logging("info", sys.argv[1])
    log = structlog.get_logger("test")

    def handle(request_body):
        bearer = "token-" + "SECRETVALUE"
        raise RuntimeError("boom")

    try:
        handle({"text": "sealed " + "PLAINTEXT"})
    except RuntimeError:
        log.exception("request failed")
    """
)


@pytest.mark.parametrize("fmt", ["console", "json", "default"])
def test_tracebacks_never_show_local_variables(fmt: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOGGER, fmt],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"},
    )
    output = run.stdout + run.stderr
    assert "request failed" in output
    assert "RuntimeError: boom" in output  # the traceback is there, plainly
    for leak in ("SECRETVALUE", "PLAINTEXT", "locals", "request_body =", "│"):
        assert leak not in output, f"{leak!r} in {fmt} output"
