"""Execute (push notifications): deliver task events to the webhooks requesters registered
(A2A push-notification configs). Each delivery is a POST of the event as JSON with the config's
token, retried with exponential backoff; deliveries run in the background and never slow a task.

A webhook a remote peer registered must lead to a public address. The host is checked when the
webhook is registered (for a clear error) and again at every delivery, where it is resolved,
checked and connected to exactly the checked address (``egress.GuardedTransport``), so a name
that later answers 127.0.0.1 (DNS rebinding) reaches nothing. Webhooks on the operator's own
tasks are trusted and go through an ordinary client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from urllib.parse import urlsplit

import httpx
import structlog

from noosphere.protocol.a2a import StreamResponse, TaskPushNotificationConfig

from .egress import EgressPolicy, EgressRefused, guarded_client
from .metrics import NodeMetrics

log = structlog.get_logger("noosphere.push")

TOKEN_HEADER = "X-A2A-Notification-Token"


class PushNotifier:
    def __init__(
        self,
        metrics: NodeMetrics,
        *,
        attempts: int = 4,
        backoff_s: float = 0.25,
        timeout_s: float = 5.0,
        allow_private_targets: bool = False,
    ) -> None:
        self._metrics = metrics
        # allow_private_targets: the operator lets remote peers' webhooks reach any address
        self._policy = None if allow_private_targets else EgressPolicy.public_only()
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._guarded = guarded_client(self._policy, timeout=timeout_s, follow_redirects=False)
        self._pending: set[asyncio.Task[None]] = set()
        # One ordered lane per webhook, so a receiver sees a task's events in order.
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def check_target(self, url: str, *, trusted: bool) -> None:
        """Refuse webhooks that would make this node call into its own network on behalf of a
        remote peer (loopback, private, link-local addresses), unless the operator set them
        (``trusted``) or allowed it in the config. Raises ValueError with the reason. The same
        check runs again at every delivery, on the addresses the host has then."""
        if trusted or self._policy is None:
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("push notification url must be an http(s) URL with a host")
        host = parts.hostname
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise ValueError(f"push notification host {host!r} does not resolve") from exc
        for info in infos:
            reason = self._policy.refusal(ipaddress.ip_address(info[4][0]), name=host)
            if reason is not None:
                raise ValueError(
                    f"push notification url: {reason}; only the node operator may register"
                    " webhooks on other addresses"
                )

    def deliver(
        self, config: TaskPushNotificationConfig, event: StreamResponse, *, trusted: bool = False
    ) -> None:
        """Queue one event for ``config``'s webhook; ``trusted`` when the operator set it (it
        then skips the public-address rule)."""
        if self._closed:  # the client is gone: a POST would raise inside a background task
            self._metrics.push_notifications.labels(outcome="failed").inc()
            log.warning("push notification after shutdown dropped", task_id=config.task_id)
            return
        lane = f"{config.task_id}/{config.id}"
        previous = self._lanes.get(lane)
        client = self._client if trusted else self._guarded
        job = asyncio.create_task(self._deliver_after(previous, client, config, event))
        self._lanes[lane] = job
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)
        job.add_done_callback(
            lambda j: self._lanes.pop(lane, None) if self._lanes.get(lane) is j else None
        )

    async def _deliver_after(
        self,
        previous: asyncio.Task[None] | None,
        client: httpx.AsyncClient,
        config: TaskPushNotificationConfig,
        event: StreamResponse,
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        headers = {"Content-Type": "application/json"}
        if config.token:
            headers[TOKEN_HEADER] = config.token
        auth = config.authentication
        if auth and auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
        body = json.dumps(event.to_wire(), separators=(",", ":"), ensure_ascii=True)
        reason = "no attempt made"
        for attempt in range(self._attempts):
            try:
                response = await client.post(config.url, content=body, headers=headers)
                if response.is_success:
                    self._metrics.push_notifications.labels(outcome="delivered").inc()
                    return
                retry = response.status_code == 429 or response.status_code >= 500
                reason = f"HTTP {response.status_code}"
            except EgressRefused as exc:  # the host now leads somewhere it must not
                retry, reason = False, f"refused: {exc}"
            except httpx.HTTPError as exc:
                retry, reason = True, type(exc).__name__
            except Exception as exc:  # a URL httpx refuses (InvalidURL, a bad port surfacing
                # as an ExceptionGroup...): never let a background job die with it
                retry, reason = False, f"{type(exc).__name__}: {exc}"
            if not retry or attempt == self._attempts - 1:
                break
            self._metrics.push_notifications.labels(outcome="retried").inc()
            await asyncio.sleep(self._backoff_s * 2**attempt)
        self._metrics.push_notifications.labels(outcome="failed").inc()
        log.warning("push notification not delivered", task_id=config.task_id, reason=reason)

    async def aclose(self, *, grace_s: float = 2.0) -> None:
        self._closed = True
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=grace_s)
        late = list(self._pending)
        for job in late:
            job.cancel()
        # Let the cancelled jobs unwind before their client goes away.
        await asyncio.gather(*late, return_exceptions=True)
        await self._client.aclose()
        await self._guarded.aclose()
