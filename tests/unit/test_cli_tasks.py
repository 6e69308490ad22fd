"""The ``noosphere task`` commands' bad-input paths: one line on stderr, non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from noosphere.cli import app
from noosphere.node.auth import load_or_create_token

runner = CliRunner()
NOBODY = "http://127.0.0.1:9"  # discard port: nothing listens


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"NOOSPHERE_HOME": "", **(env or {})})
    return result.exit_code, result.output


def test_task_send_without_credentials_says_what_to_pass() -> None:
    code, output = run("task", "send", "--rpc", NOBODY, "hello")
    assert code == 1
    assert "--home" in output and "NOOSPHERE_TOKEN" in output


def test_task_send_to_a_dead_node_is_one_line(tmp_path: Path) -> None:
    load_or_create_token(tmp_path)
    code, output = run("task", "send", "--rpc", NOBODY, "--home", str(tmp_path), "hello")
    assert code == 1
    assert "no agent answered" in output
    assert len(output.strip().splitlines()) <= 2  # rich may wrap one long line


def test_to_needs_a_node_home_with_a_key(tmp_path: Path) -> None:
    code, output = run("task", "get", "abc", "--rpc", NOBODY, "--home", str(tmp_path), "--to", "x")
    assert code == 1
    assert "node's key" in output


def test_unknown_state_lists_the_states(tmp_path: Path) -> None:
    code, output = run("task", "list", "--token", "t" * 40, "--rpc", NOBODY, "--state", "done")
    assert code == 1
    assert "input-required" in output


def test_unreadable_attachment_is_reported(tmp_path: Path) -> None:
    code, output = run(
        "task",
        "send",
        "--token",
        "t" * 40,
        "--rpc",
        NOBODY,
        "--file",
        str(tmp_path / "missing.csv"),
        "hi",
    )
    assert code == 1
    assert "cannot read" in output


@pytest.mark.parametrize("command", ["send", "get", "cancel", "list"])
def test_every_task_command_has_help(command: str) -> None:
    code, output = run("task", command, "--help")
    assert code == 0
    assert "--rpc" in output and "--home" in output
