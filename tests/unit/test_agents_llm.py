"""The OpenAI-compatible chat backend against a real local HTTP server (starlette + uvicorn) that
records every request and answers from a per-test script: tool calls, plain content, retries,
errors, malformed replies and timeouts."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest
from llm_server import (
    FakeOpenAI,
    Scripted,
    completion,
    content_reply,
    tool_reply,
)

from noosphere.models.llm import (
    ChatReply,
    LlmBackend,
    LlmConfig,
    LlmError,
    ToolCall,
    llm_config_from_env,
)

API_KEY = "sk-test-0123456789"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def backend_for(server: FakeOpenAI, **overrides: Any) -> LlmBackend:
    fields: dict[str, Any] = {"base_url": server.base_url, "model": "test-model"}
    fields.update(overrides)
    return LlmBackend(LlmConfig(**fields), backoff=0.02)


MESSAGES = [
    {"role": "system", "content": "You are a helpful agent."},
    {"role": "user", "content": "Weather in Paris?"},
]


async def test_tool_call_reply_and_request_shape(server: FakeOpenAI) -> None:
    server.then(tool_reply("get_weather", '{"city": "Paris"}'))
    async with backend_for(server, api_key=API_KEY, temperature=0.2) as llm:
        reply = await llm.chat(MESSAGES, tools=[WEATHER_TOOL])
    assert isinstance(reply, ChatReply)
    assert reply.content is None
    assert reply.tool_calls == [
        ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")
    ]
    assert reply.model == "served-model"
    assert reply.usage == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}

    [seen] = server.requests
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert seen["headers"]["content-type"] == "application/json"
    body = seen["body"]
    assert body["model"] == "test-model"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.2
    assert body["tool_choice"] == "auto"
    assert body["tools"] == [{"type": "function", "function": WEATHER_TOOL}]


async def test_plain_content_reply_without_key_or_tools(server: FakeOpenAI) -> None:
    server.then(content_reply("It is sunny in Paris."))
    async with backend_for(server) as llm:
        reply = await llm.chat(MESSAGES)
    assert reply.content == "It is sunny in Paris."
    assert reply.tool_calls == []
    assert reply.finish_reason == "stop"
    [seen] = server.requests
    assert "authorization" not in seen["headers"]
    assert "tools" not in seen["body"]
    assert "tool_choice" not in seen["body"]
    assert seen["body"]["temperature"] == 0.0


async def test_tool_choice_naming_a_function_and_openai_shaped_tools(server: FakeOpenAI) -> None:
    server.then(tool_reply("get_weather", "", call_id="call_9"))
    openai_shaped = {"type": "function", "function": {"name": "noop", "parameters": {}}}
    async with backend_for(server) as llm:
        reply = await llm.chat(
            MESSAGES, tools=[WEATHER_TOOL, openai_shaped], tool_choice="get_weather"
        )
    assert reply.tool_calls == [ToolCall(name="get_weather", arguments={}, id="call_9")]
    body = server.requests[0]["body"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][1] == openai_shaped


async def test_retries_after_server_error(server: FakeOpenAI) -> None:
    server.then(
        Scripted(status=500, body={"error": {"message": "overloaded"}}),
        Scripted(status=429, body={"error": {"message": "slow down"}}),
        content_reply("second time lucky"),
    )
    async with backend_for(server, max_retries=2) as llm:
        reply = await llm.chat(MESSAGES)
    assert reply.content == "second time lucky"
    assert len(server.requests) == 3
    assert server.requests[0]["body"] == server.requests[2]["body"]


async def test_gives_up_after_max_retries(server: FakeOpenAI) -> None:
    server.then(*[Scripted(status=503, raw="upstream\nunavailable")] * 3)
    async with backend_for(server, max_retries=1) as llm:
        with pytest.raises(LlmError) as info:
            await llm.chat(MESSAGES)
    assert len(server.requests) == 2
    assert "HTTP 503" in str(info.value)
    assert "upstream unavailable" in str(info.value)
    assert "\n" not in str(info.value)


async def test_client_error_is_not_retried_and_hides_key(server: FakeOpenAI) -> None:
    server.then(
        Scripted(
            status=401,
            body={"error": {"message": f"Incorrect API key provided: {API_KEY}", "code": 401}},
        )
    )
    async with backend_for(server, api_key=API_KEY, max_retries=2) as llm:
        with pytest.raises(LlmError) as info:
            await llm.chat(MESSAGES)
        assert API_KEY not in repr(llm) + repr(llm.config)
    message = str(info.value)
    assert len(server.requests) == 1
    assert "HTTP 401" in message
    assert "Incorrect API key provided" in message
    assert API_KEY not in message
    assert "\n" not in message


async def test_tool_arguments_not_json(server: FakeOpenAI) -> None:
    server.then(tool_reply("get_weather", '{"city": "Paris"'))
    async with backend_for(server) as llm:
        with pytest.raises(LlmError, match="arguments are not JSON"):
            await llm.chat(MESSAGES, tools=[WEATHER_TOOL])
    assert len(server.requests) == 1


async def test_tool_arguments_not_an_object(server: FakeOpenAI) -> None:
    server.then(tool_reply("get_weather", '["Paris"]'))
    async with backend_for(server) as llm:
        with pytest.raises(LlmError, match="not a JSON object"):
            await llm.chat(MESSAGES, tools=[WEATHER_TOOL])


@pytest.mark.parametrize(
    ("scripted", "match"),
    [
        (Scripted(raw="<html>oops</html>"), "body is not JSON"),
        (Scripted(body={"choices": []}), "no choices"),
        (Scripted(body={"error": {"message": "model not loaded"}}), "model not loaded"),
    ],
)
async def test_malformed_replies(server: FakeOpenAI, scripted: Scripted, match: str) -> None:
    server.then(scripted)
    async with backend_for(server) as llm:
        with pytest.raises(LlmError, match=match):
            await llm.chat(MESSAGES)


async def test_slow_reply_times_out_without_retry(server: FakeOpenAI) -> None:
    server.then(Scripted(body=completion({"content": "late"}), delay=1.5))
    async with backend_for(server, timeout=0.3, max_retries=2) as llm:
        started = time.monotonic()
        with pytest.raises(LlmError, match=r"timed out after 0\.3 s"):
            await llm.chat(MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert len(server.requests) == 1


async def test_unreachable_endpoint_retries_then_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = LlmConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1)
    async with LlmBackend(config, backoff=0.01) as llm:
        with pytest.raises(LlmError, match="unreachable after 2 attempts"):
            await llm.chat(MESSAGES)


async def test_shared_client_is_not_closed(server: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as client:
        llm = LlmBackend(LlmConfig(base_url=server.base_url + "/", model="m"), client=client)
        server.then(content_reply("one"))
        assert (await llm.chat(MESSAGES)).content == "one"
        await llm.aclose()
        assert not client.is_closed
    assert server.requests[0]["path"] == "/v1/chat/completions"


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        LlmConfig(base_url="ftp://example.org", model="m")
    with pytest.raises(ValueError):
        LlmConfig(base_url="http://127.0.0.1:8000/v1", model="m", timeout=0)
    config = LlmConfig(base_url="http://127.0.0.1:8000/v1/", model="m", api_key="  ")
    assert config.base_url == "http://127.0.0.1:8000/v1"
    assert config.api_key is None


def test_config_from_env() -> None:
    assert llm_config_from_env({}) is None
    assert llm_config_from_env({"NOOSPHERE_LLM_MODEL": "m", "OPENAI_API_KEY": "k"}) is None

    config = llm_config_from_env(
        {
            "NOOSPHERE_LLM_BASE_URL": "http://127.0.0.1:8000/v1",
            "NOOSPHERE_LLM_MODEL": "qwen",
            "NOOSPHERE_LLM_API_KEY": API_KEY,
            "OPENAI_BASE_URL": "https://api.openai.com/v1",
            "OPENAI_API_KEY": "sk-other",
            "NOOSPHERE_LLM_TIMEOUT": "12.5",
        }
    )
    assert config is not None
    assert config.base_url == "http://127.0.0.1:8000/v1"
    assert config.model == "qwen"
    assert config.api_key is not None and config.api_key.get_secret_value() == API_KEY
    assert config.timeout == 12.5
    assert API_KEY not in repr(config) + str(config)

    fallback = llm_config_from_env(
        {
            "OPENAI_BASE_URL": "https://api.openai.com/v1",
            "OPENAI_API_KEY": "sk-other",
            "NOOSPHERE_LLM_MODEL": "gpt-4o-mini",
        }
    )
    assert fallback is not None
    assert fallback.base_url == "https://api.openai.com/v1"
    assert fallback.api_key is not None and fallback.api_key.get_secret_value() == "sk-other"

    no_key = llm_config_from_env({"NOOSPHERE_LLM_BASE_URL": "http://h/v1", "OPENAI_MODEL": "m"})
    assert no_key is not None and no_key.api_key is None and no_key.model == "m"

    with pytest.raises(LlmError, match="NOOSPHERE_LLM_MODEL"):
        llm_config_from_env({"NOOSPHERE_LLM_BASE_URL": "http://127.0.0.1:8000/v1"})
    with pytest.raises(LlmError, match="base_url") as info:
        llm_config_from_env(
            {
                "NOOSPHERE_LLM_BASE_URL": "not a url",
                "NOOSPHERE_LLM_MODEL": "m",
                "OPENAI_API_KEY": "k",
            }
        )
    assert "\n" not in str(info.value)
    with pytest.raises(LlmError, match="timeout"):
        llm_config_from_env(
            {
                "NOOSPHERE_LLM_BASE_URL": "http://h/v1",
                "NOOSPHERE_LLM_MODEL": "m",
                "NOOSPHERE_LLM_TIMEOUT": "soon",
            }
        )


async def test_long_length_bounds_are_not_sent_but_max_tokens_and_extras_are(
    server: FakeOpenAI,
) -> None:
    """Grammar-constrained servers (llama.cpp) unroll a bounded repetition into one rule per
    step; a 1,000-character bound crashed llama-cpp-python's server, so the model is sent
    the schema without long bounds (the caller validates the arguments in full)."""
    server.then(tool_reply("get_weather", '{"city": "Paris"}'))
    properties = {
        "city": {"type": "string", "maxLength": 1000},
        "code": {"type": "string", "maxLength": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 500},
    }
    tool = {**WEATHER_TOOL, "parameters": {"type": "object", "properties": properties}}
    async with backend_for(server, max_tokens=7) as llm:
        await llm.chat(MESSAGES, tools=[tool], extra={"grammar": "root ::= x", "model": "no"})
    body = server.requests[0]["body"]
    sent = body["tools"][0]["function"]["parameters"]["properties"]
    assert "maxLength" not in sent["city"] and sent["code"]["maxLength"] == 3
    assert "maxItems" not in sent["tags"]
    assert properties["city"]["maxLength"] == 1000  # the caller's schema is untouched
    assert body["max_tokens"] == 7 and body["grammar"] == "root ::= x"
    assert body["model"] == "test-model"  # extras never replace the request's own fields


def test_max_tokens_from_env() -> None:
    env = {"NOOSPHERE_LLM_BASE_URL": "http://127.0.0.1:1/v1", "NOOSPHERE_LLM_MODEL": "m"}
    config = llm_config_from_env({**env, "NOOSPHERE_LLM_MAX_TOKENS": "12"})
    assert config is not None and config.max_tokens == 12
    with pytest.raises(LlmError, match="max_tokens"):
        llm_config_from_env({**env, "NOOSPHERE_LLM_MAX_TOKENS": "0"})
