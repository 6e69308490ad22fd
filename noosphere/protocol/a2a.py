"""Wire formats (Execute): the A2A v1.0 task, message and request types as the reference SDK
(``a2a-sdk`` 1.x, proto package ``lf.a2a.v1``) puts them on the wire: proto3 JSON, camelCase
fields, enum values by name (``TASK_STATE_COMPLETED``), RFC 3339 timestamps, bytes as base64.

Incoming A2A objects ignore fields they do not know (proto JSON readers do the same), so newer
clients keep working; everything we send validates against these models first."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from .base import WireModel


class A2AModel(WireModel):
    """A2A objects: camelCase, immutable, unknown fields ignored (proto JSON semantics)."""

    model_config = WireModel.model_config | ConfigDict(extra="ignore")


class TaskState(StrEnum):
    SUBMITTED = "TASK_STATE_SUBMITTED"
    WORKING = "TASK_STATE_WORKING"
    INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
    AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"
    COMPLETED = "TASK_STATE_COMPLETED"
    FAILED = "TASK_STATE_FAILED"
    CANCELED = "TASK_STATE_CANCELED"
    REJECTED = "TASK_STATE_REJECTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        """Waiting for the requester: the task is alive but the current turn is over."""
        return self in (TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED)

    @property
    def short(self) -> str:
        """``completed`` for ``TASK_STATE_COMPLETED`` (CLI output, v0.3 wire names)."""
        return self.value.removeprefix("TASK_STATE_").lower().replace("_", "-")


TERMINAL_STATES = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED}
)


class Role(StrEnum):
    USER = "ROLE_USER"
    AGENT = "ROLE_AGENT"


#: Proto enum numbers (lf.a2a.v1): proto3 JSON readers accept a number as well as the name.
_TASK_STATE_NUMBERS = {
    1: TaskState.SUBMITTED,
    2: TaskState.WORKING,
    3: TaskState.COMPLETED,
    4: TaskState.FAILED,
    5: TaskState.CANCELED,
    6: TaskState.INPUT_REQUIRED,
    7: TaskState.REJECTED,
    8: TaskState.AUTH_REQUIRED,
}
_ROLE_NUMBERS = {1: Role.USER, 2: Role.AGENT}


def _by_number(numbers: dict[int, Any]) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return numbers.get(value, value)
        return value

    return BeforeValidator(convert)


TaskStateField = Annotated[TaskState, _by_number(_TASK_STATE_NUMBERS)]
RoleField = Annotated[Role, _by_number(_ROLE_NUMBERS)]


def now_rfc3339() -> str:
    """Current UTC time as proto JSON writes timestamps (millisecond precision, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Part(A2AModel):
    """One piece of content: exactly one of text, raw bytes (base64), url or JSON data."""

    text: StrictStr | None = None
    raw: StrictStr | None = None
    url: StrictStr | None = None
    data: Any | None = None
    metadata: dict[str, Any] | None = None
    filename: StrictStr | None = None
    media_type: StrictStr | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Part:
        present = [
            name
            for name in ("text", "raw", "url", "data")
            if name in self.model_fields_set and getattr(self, name) is not None
        ]
        if len(present) != 1:
            raise ValueError("a part holds exactly one of text, raw, url or data")
        return self

    @field_validator("raw")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        """Proto3 JSON readers take standard or URL-safe base64, padded or not; we keep the
        standard padded form."""
        if value is not None:
            stripped = value.replace("-", "+").replace("_", "/").rstrip("=")
            normalized = stripped + "=" * (-len(stripped) % 4)
            try:
                base64.b64decode(normalized, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("raw must be base64") from exc
            return normalized
        return value

    @property
    def content_bytes(self) -> bytes | None:
        return base64.b64decode(self.raw) if self.raw is not None else None

    @classmethod
    def of_text(cls, text: str, media_type: str | None = None) -> Part:
        return cls(text=text, media_type=media_type)

    @classmethod
    def of_data(cls, data: Any, media_type: str | None = "application/json") -> Part:
        return cls(data=data, media_type=media_type)

    @classmethod
    def of_bytes(cls, content: bytes, *, filename: str | None, media_type: str | None) -> Part:
        return cls(
            raw=base64.b64encode(content).decode("ascii"), filename=filename, media_type=media_type
        )


class Message(A2AModel):
    message_id: StrictStr = Field(min_length=1, max_length=256)
    context_id: StrictStr | None = None
    task_id: StrictStr | None = None
    role: RoleField
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] = Field(default_factory=list)
    reference_task_ids: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """All text parts joined by newlines."""
        return "\n".join(p.text for p in self.parts if p.text is not None)


class TaskStatus(A2AModel):
    state: TaskStateField
    message: Message | None = None
    timestamp: StrictStr | None = None


class Artifact(A2AModel):
    artifact_id: StrictStr
    name: StrictStr | None = None
    description: StrictStr | None = None
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] = Field(default_factory=list)


class Task(A2AModel):
    id: StrictStr
    context_id: StrictStr
    status: TaskStatus
    artifacts: list[Artifact] = Field(default_factory=list)
    history: list[Message] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def trimmed(self, history_length: int | None, *, artifacts: bool = True) -> Task:
        """A view with at most ``history_length`` recent messages (None: all, 0: none)."""
        update: dict[str, Any] = {}
        if history_length is not None:
            update["history"] = self.history[-history_length:] if history_length > 0 else []
        if not artifacts:
            update["artifacts"] = []
        return self.model_copy(update=update) if update else self


class TaskStatusUpdateEvent(A2AModel):
    task_id: StrictStr
    context_id: StrictStr
    status: TaskStatus
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(A2AModel):
    task_id: StrictStr
    context_id: StrictStr
    artifact: Artifact
    append: StrictBool | None = None
    last_chunk: StrictBool | None = None
    metadata: dict[str, Any] | None = None


class StreamResponse(A2AModel):
    """One event of a stream: exactly one member is set."""

    task: Task | None = None
    message: Message | None = None
    status_update: TaskStatusUpdateEvent | None = None
    artifact_update: TaskArtifactUpdateEvent | None = None


class AuthenticationInfo(A2AModel):
    scheme: StrictStr
    credentials: StrictStr | None = None


class TaskPushNotificationConfig(A2AModel):
    tenant: StrictStr | None = None
    id: StrictStr | None = None
    task_id: StrictStr | None = None
    url: StrictStr = Field(min_length=1, max_length=2048)
    token: StrictStr | None = None
    authentication: AuthenticationInfo | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("push notification url must be http(s)")
        return value


class SendMessageConfiguration(A2AModel):
    accepted_output_modes: list[str] = Field(default_factory=list)
    task_push_notification_config: TaskPushNotificationConfig | None = None
    history_length: int | None = Field(None, ge=0)
    return_immediately: StrictBool = False


class SendMessageRequest(A2AModel):
    tenant: StrictStr | None = None
    message: Message
    configuration: SendMessageConfiguration | None = None
    metadata: dict[str, Any] | None = None


class SendMessageResponse(A2AModel):
    task: Task | None = None
    message: Message | None = None


class GetTaskRequest(A2AModel):
    tenant: StrictStr | None = None
    id: StrictStr = Field(min_length=1)
    history_length: int | None = Field(None, ge=0)


class ListTasksRequest(A2AModel):
    tenant: StrictStr | None = None
    context_id: StrictStr | None = None
    status: TaskStateField | None = None
    page_size: int | None = Field(None, ge=1, le=100)  # A2A: 1..100, 50 when unset
    page_token: StrictStr | None = None
    history_length: int | None = Field(None, ge=0)
    status_timestamp_after: StrictStr | None = None
    include_artifacts: StrictBool = False


class ListTasksResponse(A2AModel):
    tasks: list[Task] = Field(default_factory=list)
    next_page_token: str = ""
    page_size: int = 0
    total_size: int = 0


class CancelTaskRequest(A2AModel):
    tenant: StrictStr | None = None
    id: StrictStr = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class SubscribeToTaskRequest(A2AModel):
    tenant: StrictStr | None = None
    id: StrictStr = Field(min_length=1)


class TaskPushConfigRef(A2AModel):
    """Get/Delete push notification config requests."""

    tenant: StrictStr | None = None
    task_id: StrictStr = Field(min_length=1)
    id: StrictStr = Field(min_length=1)


class ListTaskPushNotificationConfigsRequest(A2AModel):
    tenant: StrictStr | None = None
    task_id: StrictStr = Field(min_length=1)
    page_size: int | None = Field(None, ge=0, le=1000)
    page_token: StrictStr | None = None


class ListTaskPushNotificationConfigsResponse(A2AModel):
    configs: list[TaskPushNotificationConfig] = Field(default_factory=list)
    next_page_token: str = ""


class GetExtendedAgentCardRequest(A2AModel):
    tenant: StrictStr | None = None


#: A2A v1.0 method names and the v0.3 names accepted as aliases for them.
V03_METHOD_ALIASES: dict[str, str] = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/list": "ListTasks",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
    "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
    "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard",
}

A2A_VERSION_HEADER = "A2A-Version"
