"""A real local OpenAI-compatible chat server for tests (starlette + uvicorn on a loopback port in
a thread): it records every request and answers from a per-test script of replies (tool calls,
plain content, HTTP errors, raw bodies, delays). Shared by the LLM backend and agent runtime tests:
``with serve_fake_openai() as server: ...`` in a module-scoped fixture."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from threaded_server import serve_app


@dataclass
class Scripted:
    status: int = 200
    body: Any = None
    delay: float = 0.0
    raw: str | None = None


@dataclass
class FakeOpenAI:
    """What the server received and what it will answer next (shared with the server thread)."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.script.clear()

    def then(self, *replies: Scripted) -> None:
        with self.lock:
            self.script.extend(replies)


def completion(message: dict[str, Any], *, model: str = "served-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def content_reply(text: str) -> Scripted:
    return Scripted(body=completion({"role": "assistant", "content": text}))


def tool_reply(name: str, arguments: str, call_id: str = "call_1") -> Scripted:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }
    return Scripted(body=completion(message))


def make_app(state: FakeOpenAI) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            state.requests.append(
                {
                    "path": request.url.path,
                    "headers": dict(request.headers),
                    "body": json.loads(raw),
                }
            )
            reply = state.script.pop(0) if state.script else content_reply("default")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            return PlainTextResponse(reply.raw, status_code=reply.status)
        return JSONResponse(reply.body, status_code=reply.status)

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


@contextmanager
def serve_fake_openai() -> Iterator[FakeOpenAI]:
    """The server, running until the block ends; ``state.base_url`` ends in ``/v1``."""
    state = FakeOpenAI()
    with serve_app(make_app(state), "fake OpenAI server") as url:
        state.base_url = f"{url}/v1"
        yield state
