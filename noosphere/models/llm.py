"""Execute: a chat backend for any OpenAI-compatible endpoint (``POST {base_url}/chat/completions``)
with function calling, used when the operator configures an endpoint. Retries on 429, 5xx and
connection failures with a short exponential backoff; every other failure is one ``LlmError``
line. The API key is a ``SecretStr`` and never appears in logs, errors or reprs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from noosphere.errors import ModelError
from noosphere.protocol.base import describe_validation_error

log = structlog.get_logger("noosphere.llm")

_RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
_MAX_RETRY_AFTER = 10.0
_MAX_ERROR_TEXT = 300


class LlmError(ModelError, RuntimeError):
    """The endpoint failed or replied with something we cannot use (message is one line)."""


class LlmConfig(BaseModel):
    """Where and how to reach the chat endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)  # None: the server's limit

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL such as http://127.0.0.1:8000/v1")
        return value

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value


class ToolCall(BaseModel):
    """A function the model asks us to call, with its decoded JSON arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: dict[str, Any]
    id: str | None = None


class ChatReply(BaseModel):
    """The first choice of a chat completion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content: str | None
    tool_calls: list[ToolCall]
    model: str
    usage: dict[str, int] | None = None
    finish_reason: str | None = None


class LlmBackend:
    """Async client for one configured endpoint; share one instance per process."""

    def __init__(
        self,
        config: LlmConfig,
        *,
        client: httpx.AsyncClient | None = None,
        backoff: float = 0.2,
    ) -> None:
        self.config = config
        self.backoff = backoff
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._url = f"{config.base_url}/chat/completions"
        # What logs and errors show: never userinfo credentials embedded in the URL.
        self._shown_url = str(httpx.URL(self._url).copy_with(username=None, password=None))

    def __repr__(self) -> str:
        return f"LlmBackend(url={self._shown_url!r}, model={self.config.model!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this backend created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> LlmBackend:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def build_payload(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = "auto",
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request body: ``tools`` given as {name, description, parameters} are wrapped into
        the OpenAI {"type": "function", "function": ...} shape. A ``tool_choice`` other than
        auto/none/required names the one function the model must call. ``extra`` adds fields
        some servers understand (``response_format``, llama.cpp's ``grammar``); it cannot
        replace the fields above."""
        payload: dict[str, Any] = {
            **(extra or {}),
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
        }
        if self.config.max_tokens is not None:
            payload["max_tokens"] = self.config.max_tokens
        if tools:
            payload["tools"] = [_wrap_tool(tool) for tool in tools]
            if tool_choice is not None:
                payload["tool_choice"] = (
                    tool_choice
                    if tool_choice in _TOOL_CHOICES
                    else {"type": "function", "function": {"name": tool_choice}}
                )
        return payload

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = "auto",
        extra: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        """One chat completion; raises ``LlmError`` when the endpoint fails or the reply is
        malformed (including tool arguments that are not a JSON object)."""
        payload = self.build_payload(messages, tools=tools, tool_choice=tool_choice, extra=extra)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.post(
                    self._url, json=payload, headers=headers, timeout=self.config.timeout
                )
            except httpx.TimeoutException as exc:
                # A slow model is not retried: another try would only multiply the wait.
                if isinstance(exc, httpx.ConnectTimeout) and not last:
                    await self._sleep(attempt, None, f"connect timeout ({type(exc).__name__})")
                    continue
                raise LlmError(
                    f"LLM endpoint {self._shown_url} timed out after {self.config.timeout:g} s"
                ) from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if not last:
                    await self._sleep(attempt, None, f"connection failed ({type(exc).__name__})")
                    continue
                raise LlmError(
                    f"LLM endpoint {self._shown_url} unreachable after {attempts} attempts:"
                    f" {self._clean(str(exc)) or type(exc).__name__}"
                ) from exc
            except httpx.HTTPError as exc:
                raise LlmError(
                    f"LLM request to {self._shown_url} failed: {self._clean(str(exc))}"
                ) from exc
            if response.status_code in _RETRY_STATUS and not last:
                await self._sleep(
                    attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}"
                )
                continue
            if response.status_code >= 400:
                raise LlmError(
                    f"LLM endpoint {self._shown_url} returned HTTP {response.status_code}:"
                    f" {self._clean(_server_message(response))}"
                )
            return self._parse(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sleep(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.backoff * (2**attempt) * (1.0 + 0.25 * random.random())
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
        log.warning("LLM request failed; retrying", url=self._shown_url, reason=why, delay=delay)
        await asyncio.sleep(delay)

    def _clean(self, text: str) -> str:
        """One line, bounded, and never the API key even if a server echoes it."""
        text = " ".join(text.split())
        if self.config.api_key is not None:
            secret = self.config.api_key.get_secret_value()
            if secret:
                text = text.replace(secret, "***")
        if len(text) > _MAX_ERROR_TEXT:
            text = text[: _MAX_ERROR_TEXT - 1] + "…"
        return text

    def _parse(self, response: httpx.Response) -> ChatReply:
        def bad(why: str) -> LlmError:
            return LlmError(
                f"malformed reply from LLM endpoint {self._shown_url}: {self._clean(why)}"
            )

        try:
            body = response.json()
        except ValueError as exc:
            raise bad(f"body is not JSON ({response.text[:80]!r})") from exc
        if not isinstance(body, dict):
            raise bad("body is not a JSON object")
        if isinstance(body.get("error"), dict | str):
            why = self._clean(_error_text(body))
            raise LlmError(f"LLM endpoint {self._shown_url} returned an error: {why}")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad("choices[0].message missing")
        content = _content_text(message.get("content"))
        if not (content is None or isinstance(content, str)):  # _INVALID
            raise bad("message.content is neither text nor text parts")
        calls: list[ToolCall] = []
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise bad("message.tool_calls is not a list")
        for i, raw in enumerate(raw_calls):
            function = raw.get("function") if isinstance(raw, dict) else None
            if not isinstance(function, dict):
                raise bad(f"tool_calls[{i}].function missing")
            call_id = raw.get("id")
            calls.append(self._tool_call(function, call_id, f"tool_calls[{i}]", bad))
        legacy = message.get("function_call")
        if not calls and isinstance(legacy, dict):
            calls.append(self._tool_call(legacy, None, "function_call", bad))
        usage = body.get("usage")
        model = body.get("model")
        finish = choices[0].get("finish_reason")
        return ChatReply(
            content=content,
            tool_calls=calls,
            model=model if isinstance(model, str) and model else self.config.model,
            usage=(
                {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
                if isinstance(usage, dict)
                else None
            ),
            finish_reason=finish if isinstance(finish, str) else None,
        )

    @staticmethod
    def _tool_call(
        function: dict[str, Any], call_id: object, where: str, bad: Callable[[str], LlmError]
    ) -> ToolCall:
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise bad(f"{where} has no function name")
        raw_args = function.get("arguments")
        if raw_args is None or (isinstance(raw_args, str) and not raw_args.strip()):
            arguments: Any = {}
        elif isinstance(raw_args, dict):
            arguments = raw_args
        elif isinstance(raw_args, str):
            try:
                arguments = json.loads(raw_args)
            except ValueError as exc:
                raise bad(f"{where} ({name}) arguments are not JSON: {raw_args[:80]!r}") from exc
        else:
            raise bad(f"{where} ({name}) arguments are neither a JSON string nor an object")
        if not isinstance(arguments, dict):
            raise bad(f"{where} ({name}) arguments are not a JSON object")
        return ToolCall(
            name=name, arguments=arguments, id=call_id if isinstance(call_id, str) else None
        )


_INVALID = object()


def _content_text(content: object) -> object:
    """Plain string content, or the concatenated text of a list of content parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "".join(t for t in texts if isinstance(t, str))
    return _INVALID


def _error_text(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return str(message) if message else json.dumps(error)[:_MAX_ERROR_TEXT]
    if error:
        return str(error)
    detail = body.get("detail") or body.get("message")
    return str(detail) if detail else json.dumps(body)[:_MAX_ERROR_TEXT]


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        return _error_text(body)
    return response.text.strip()


def _wrap_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        return without_long_bounds(tool)  # already in the OpenAI shape
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("every tool needs a name")
    function: dict[str, Any] = {"name": name}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = without_long_bounds(
        tool.get("parameters") or {"type": "object", "properties": {}}
    )
    return {"type": "function", "function": function}


#: Length bounds above this are left out of the schemas sent to the model.
MAX_SENT_BOUND = 64
_BOUNDS = ("maxLength", "maxItems")


def without_long_bounds(schema: Any) -> Any:
    """``schema`` without ``maxLength``/``maxItems`` above ``MAX_SENT_BOUND``. Servers that turn
    a tool's schema into a grammar (llama.cpp) unroll a bounded repetition into one rule per
    step: a 1,000-character bound exceeds llama.cpp's grammar limits, and llama-cpp-python
    0.3.36's server crashed on it. Nothing is lost: the caller validates the arguments against
    the tool's full schema (``Tool.validate``)."""
    if isinstance(schema, dict):
        return {
            key: without_long_bounds(value)
            for key, value in schema.items()
            if not (key in _BOUNDS and isinstance(value, int) and value > MAX_SENT_BOUND)
        }
    if isinstance(schema, list):
        return [without_long_bounds(item) for item in schema]
    return schema


def llm_config_from_env(environ: Mapping[str, str] = os.environ) -> LlmConfig | None:
    """The endpoint the operator configured, or None (use the offline planner).

    ``NOOSPHERE_LLM_BASE_URL`` / ``NOOSPHERE_LLM_MODEL`` / ``NOOSPHERE_LLM_API_KEY``, falling back
    to ``OPENAI_BASE_URL`` / ``OPENAI_MODEL`` / ``OPENAI_API_KEY``; optional
    ``NOOSPHERE_LLM_TIMEOUT`` and ``NOOSPHERE_LLM_MAX_TOKENS``. An invalid value raises
    ``LlmError`` naming the variable."""

    def get(*names: str) -> str | None:
        for name in names:
            value = environ.get(name, "").strip()
            if value:
                return value
        return None

    base_url = get("NOOSPHERE_LLM_BASE_URL", "OPENAI_BASE_URL")
    if base_url is None:
        return None
    model = get("NOOSPHERE_LLM_MODEL", "OPENAI_MODEL")
    if model is None:
        raise LlmError("NOOSPHERE_LLM_MODEL must name the model when an LLM base URL is set")
    fields: dict[str, Any] = {
        "base_url": base_url,
        "model": model,
        "api_key": get("NOOSPHERE_LLM_API_KEY", "OPENAI_API_KEY"),
    }
    timeout = get("NOOSPHERE_LLM_TIMEOUT")
    if timeout is not None:
        fields["timeout"] = timeout
    max_tokens = get("NOOSPHERE_LLM_MAX_TOKENS")
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    try:
        return LlmConfig(**fields)
    except ValidationError as exc:
        raise LlmError(
            f"LLM configuration from the environment: {describe_validation_error(exc)}"
        ) from None
