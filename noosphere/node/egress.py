"""Recruit, Execute and Discover (security): where this node may connect when a stranger chose the
address. Peers' cards, task requests and webhooks carry URLs and multiaddrs that anyone can write;
without a rule, a hostile peer aims the node at its own loopback services, its private network or
the cloud metadata service (server-side request forgery).

One rule, ``EgressPolicy``: a target address is allowed if it is public, or if it is in the same
scope (loopback, or private) as the address this node advertises. A node on loopback may dial
loopback (every test runs on 127.0.0.1); a node in a private docker/k8s network may dial private
addresses; a node with a public address never dials loopback, private or link-local addresses
learned from strangers. Link-local (169.254/16, fe80::/10) is never allowed, and IPv6 forms that
embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are judged by that IPv4 address.

Names are resolved when the connection is made, every address is checked, and the connection
goes to exactly the checked address (``GuardedTransport`` for httpx, ``dialable_multiaddrs`` for
libp2p), so a name that answers a public address first and 127.0.0.1 later (DNS rebinding) gains
nothing. Targets the operator set (config bootstrap, webhooks registered with the operator
token) do not go through this module."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio
import httpcore
import httpx

from noosphere.errors import ServiceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Scope(StrEnum):
    """Where an address leads, as far as egress is concerned."""

    PUBLIC = "public"
    PRIVATE = "private"  # RFC 1918, shared address space (100.64/10), unique local (fc00::/7)
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    UNROUTABLE = "unroutable"  # unspecified, multicast, reserved, documentation, embedded junk


_PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_PRIVATE_V6 = (ipaddress.IPv6Network("fc00::/7"),)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # prefix length unknown: v4 not locatable
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def address_scope(address: IPAddress) -> Scope:
    """The scope of one IP address (IPv6 forms that embed an IPv4 address are judged by it)."""
    if isinstance(address, ipaddress.IPv6Address):
        return _ipv6_scope(address)
    return _ipv4_scope(address)


def _ipv4_scope(address: ipaddress.IPv4Address) -> Scope:
    if address.is_loopback:
        return Scope.LOOPBACK
    if address.is_link_local:
        return Scope.LINK_LOCAL
    if any(address in net for net in _PRIVATE_V4):
        return Scope.PRIVATE
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return Scope.UNROUTABLE
    return Scope.PUBLIC if address.is_global else Scope.UNROUTABLE


def _ipv6_scope(address: ipaddress.IPv6Address) -> Scope:
    if address.scope_id:  # fe80::1%eth0 and the like
        return Scope.LINK_LOCAL if address.is_link_local else Scope.UNROUTABLE
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
        return _ipv4_scope(address.ipv4_mapped)
    if address.is_loopback:
        return Scope.LOOPBACK
    if address.is_unspecified or address in _IPV4_COMPATIBLE or address in _NAT64_LOCAL:
        return Scope.UNROUTABLE  # ::a.b.c.d is deprecated; local NAT64 hides where it leads
    embedded = _embedded_ipv4(address)
    if embedded:
        public = all(_ipv4_scope(v4) is Scope.PUBLIC for v4 in embedded)
        return Scope.PUBLIC if public else Scope.UNROUTABLE
    if address.is_link_local:
        return Scope.LINK_LOCAL
    if any(address in net for net in _PRIVATE_V6):
        return Scope.PRIVATE
    if address.is_multicast or address.is_site_local:
        return Scope.UNROUTABLE
    return Scope.PUBLIC if address.is_global else Scope.UNROUTABLE


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address leads to through a translator or tunnel."""
    if address in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client)
    return []


def parse_ip(host: str) -> IPAddress | None:
    """The address if ``host`` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class EgressRefused(ServiceError, httpx.ConnectError):
    """A connection this node will not make: the message names the address and the rule."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The address-scope rule for one node: ``own`` is the scope of its advertised address."""

    own: Scope

    @classmethod
    def public_only(cls) -> EgressPolicy:
        return cls(Scope.PUBLIC)

    @classmethod
    def for_host(cls, host: str) -> EgressPolicy:
        """The policy of a node advertising ``host`` (an IP or a name, resolved now; a name
        that does not resolve counts as public, the strictest)."""
        ip = parse_ip(host)
        if ip is not None:
            return cls(_own_scope([ip]))
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return cls.public_only()
        return cls(_own_scope([ipaddress.ip_address(i[4][0]) for i in infos]))

    def allows(self, address: IPAddress) -> bool:
        scope = address_scope(address)
        return scope is Scope.PUBLIC or (
            scope is self.own and scope in (Scope.LOOPBACK, Scope.PRIVATE)
        )

    def refusal(self, address: IPAddress, *, name: str | None = None) -> str | None:
        """Why ``address`` (which ``name`` resolved to, if given) may not be dialed; None if
        it may."""
        if self.allows(address):
            return None
        own = self.own.value if self.own in (Scope.LOOPBACK, Scope.PRIVATE) else None
        allowed = f"public or {own}" if own else "public"
        target = f"{name!r} resolves to {address}" if name else str(address)
        return (
            f"{target}, a {address_scope(address).value} address; a peer may only make this"
            f" node connect to {allowed} addresses"
        )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` and check every address; raises EgressRefused if one is refused
        (a name that mixes public and internal answers is treated as an attack)."""
        literal = parse_ip(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise EgressRefused(f"{host!r} does not resolve ({exc})") from exc
            addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
            if not addresses:
                raise EgressRefused(f"{host!r} does not resolve")
        for address in addresses:
            reason = self.refusal(address, name=None if literal is not None else host)
            if reason is not None:
                raise EgressRefused(reason)
        return addresses


def _own_scope(addresses: Sequence[IPAddress]) -> Scope:
    """The scope a node's own addresses put it in: the narrowest one among them."""
    scopes = {address_scope(a) for a in addresses}
    for scope in (Scope.LOOPBACK, Scope.PRIVATE):
        if scope in scopes:
            return scope
    return Scope.PUBLIC


# ---- HTTP: httpx/httpcore -------------------------------------------------------------------


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves, checks and connects to exactly the checked
    address; TLS (SNI, certificate) and the Host header keep the name, because httpcore passes
    the name to ``start_tls`` and builds headers from the URL, not from this connection."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with anyio.fail_after(timeout):
            addresses = await self._policy.resolve(host, port)
        failure: Exception | None = None
        for address in addresses:  # each one was checked; try them in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are never dialed for a remote peer")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connections go through ``GuardedNetworkBackend``. Proxies from the
    environment are ignored (a proxy would resolve the name itself, after our check)."""

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=limits)
        # httpx (0.28) builds its httpcore pool without a way to pass a network backend; the
        # pool is rebuilt here with the same settings plus ours (httpcore's documented API).
        if not isinstance(self._pool, httpcore.AsyncConnectionPool):  # pragma: no cover
            raise RuntimeError("unexpected httpx transport layout; egress guard not installed")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy),
        )


def guarded_client(policy: EgressPolicy | None, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that obeys ``policy`` (None: an ordinary client, for operator targets)."""
    if policy is None:
        return httpx.AsyncClient(**kwargs)
    return httpx.AsyncClient(transport=GuardedTransport(policy), trust_env=False, **kwargs)


# ---- libp2p multiaddrs ------------------------------------------------------------------------

_DNS_FAMILIES = {"dns": socket.AF_UNSPEC, "dns4": socket.AF_INET, "dns6": socket.AF_INET6}


async def dialable_multiaddrs(addrs: Iterable[str], policy: EgressPolicy) -> list[str]:
    """The multiaddrs (learned from a stranger, e.g. a card) this node may dial, in order.
    ``/ip4`` and ``/ip6`` addresses are checked; ``/dns*`` names are resolved now and, when
    every answer is allowed, rewritten to the first checked address, so libp2p dials exactly
    what was checked. Anything else (unix sockets, unknown transports) is dropped."""
    out: list[str] = []
    for addr in addrs:
        parts = addr.split("/")
        if len(parts) < 3 or parts[0] != "":
            continue
        kind, host = parts[1], parts[2]
        if kind in ("ip4", "ip6"):
            ip = parse_ip(host)
            if ip is not None and policy.allows(ip):
                out.append(addr)
        elif kind in _DNS_FAMILIES:
            try:
                infos = await anyio.getaddrinfo(
                    host, None, family=_DNS_FAMILIES[kind], type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                continue
            ips = [ipaddress.ip_address(i[4][0]) for i in infos]
            if ips and all(policy.allows(ip) for ip in ips):
                first = ips[0]
                family = "ip4" if isinstance(first, ipaddress.IPv4Address) else "ip6"
                out.append("/".join(["", family, str(first), *parts[3:]]))
    return out
