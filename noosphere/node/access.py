"""Execute (access): who may send tasks to which agent, and who an anonymous caller is.

An agent file says who may call the agent (``access``): ``operator`` (the node's bearer token,
or the node itself), ``peers`` (also requests signed by another noosphere node; the default) or
``anyone`` (also anonymous standard A2A clients, which present no credentials).

An anonymous caller is known by its client address (an IPv4 address or an IPv6 /64, as the
connection limits count it): its principal is ``anon:<address>``. It owns the tasks it
creates and sees nothing else, like a peer. Addresses are shared behind NAT and proxies, so the
address is only the first fence: task ids are random UUIDs (a capability: only who created a
task knows its id), an anonymous ``ListTasks`` must name a ``contextId`` (so a neighbour on the
same address cannot enumerate ids), and an agent's memory keeps an anonymous caller's tasks per
conversation (``anon:<address>/<contextId>``), never per address. Anonymous A2A requests are
rate-limited per address (``KeyedRateLimiter``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from noosphere.errors import InvalidParams, RateLimited, Unauthorized
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .ratelimit import KeyedRateLimiter

AgentAccess = Literal["operator", "peers", "anyone"]
ANONYMOUS_PREFIX = "anon:"


def anonymous_principal(client: str) -> str:
    """The principal of an anonymous caller at ``client`` (a ``client_key``)."""
    return ANONYMOUS_PREFIX + client


def is_anonymous(principal: str) -> bool:
    return principal.startswith(ANONYMOUS_PREFIX)


def memory_scope(principal: str, context_id: str) -> str:
    """The principal an agent keeps a task's memories under: the caller, except that anonymous
    callers are kept apart per conversation (an address is shared behind NAT)."""
    return f"{principal}/{context_id}" if is_anonymous(principal) else principal


def check_access(
    agent_id: str, access: AgentAccess, principal: str, operators: Collection[str]
) -> None:
    """Raise ``Unauthorized`` unless ``principal`` may send tasks to the agent."""
    if principal == LOCAL_PRINCIPAL or principal in operators or access == "anyone":
        return
    if access == "operator":
        raise Unauthorized(f"Unauthorized: agent {agent_id} works only for its node's operator")
    if is_anonymous(principal):
        raise Unauthorized(
            f"Unauthorized: agent {agent_id} works only for signed noosphere peers; present the"
            " node's bearer token or sign the request with a node key",
        )


def check_anonymous_listing(principal: str, context_id: str | None) -> None:
    """An anonymous ``ListTasks`` names the conversation it lists (see the module doc)."""
    if is_anonymous(principal) and not context_id:
        raise InvalidParams(
            "Invalid params: anonymous callers list tasks of one conversation: set contextId",
        )


class AnonymousCallers:
    """Turns an anonymous request into its principal, within its address's rate limit."""

    def __init__(self, *, rate: float, burst: int, max_addresses: int = 100_000) -> None:
        self.limiter = KeyedRateLimiter(rate=rate, burst=burst, max_keys=max_addresses)

    def principal(self, client: str | None) -> str:
        key = client or "unknown"
        wait_s = self.limiter.take(key)
        if wait_s > 0:
            raise RateLimited(
                f"rate limited: anonymous clients at {key} may make {self.limiter.rate:g}"
                f" requests per second (bursts of {self.limiter.burst:g})",
                wait_s,
            )
        return anonymous_principal(key)
