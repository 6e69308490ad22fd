"""The address-scope rule for connections a stranger chose (egress.py): how addresses are
classified (IPv6 forms embedding IPv4 included), which scopes a node may dial from where it
stands, multiaddr filtering, and the httpx transport that resolves, checks and connects to
exactly the checked address (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from fake_resolver import Rebinder
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from threaded_server import serve_app

from noosphere.node.egress import (
    EgressPolicy,
    EgressRefused,
    Scope,
    address_scope,
    dialable_multiaddrs,
    guarded_client,
)

LOOPBACK = EgressPolicy(Scope.LOOPBACK)
PRIVATE = EgressPolicy(Scope.PRIVATE)
PUBLIC = EgressPolicy.public_only()
ALL_POLICIES = (LOOPBACK, PRIVATE, PUBLIC)

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("8.8.8.8", Scope.PUBLIC),
        ("2606:4700::1111", Scope.PUBLIC),
        ("127.0.0.1", Scope.LOOPBACK),
        ("127.9.9.9", Scope.LOOPBACK),
        ("::1", Scope.LOOPBACK),
        ("10.0.0.7", Scope.PRIVATE),
        ("172.17.0.2", Scope.PRIVATE),
        ("192.168.1.1", Scope.PRIVATE),
        ("100.64.0.1", Scope.PRIVATE),
        ("fd12:3456::1", Scope.PRIVATE),
        ("169.254.169.254", Scope.LINK_LOCAL),
        ("fe80::1", Scope.LINK_LOCAL),
        ("fe80::1%eth0", Scope.LINK_LOCAL),
        ("0.0.0.0", Scope.UNROUTABLE),
        ("::", Scope.UNROUTABLE),
        ("224.0.0.1", Scope.UNROUTABLE),
        ("ff02::1", Scope.UNROUTABLE),
        ("255.255.255.255", Scope.UNROUTABLE),
        ("240.0.0.1", Scope.UNROUTABLE),
        ("192.0.2.10", Scope.UNROUTABLE),  # documentation
        ("2001:db8::1", Scope.UNROUTABLE),
        # IPv6 forms that embed an IPv4 address
        ("::ffff:127.0.0.1", Scope.LOOPBACK),  # mapped: it is 127.0.0.1
        ("::ffff:10.0.0.1", Scope.PRIVATE),
        ("::ffff:8.8.8.8", Scope.PUBLIC),
        ("::127.0.0.1", Scope.UNROUTABLE),  # compatible (deprecated): never
        ("::8.8.8.8", Scope.UNROUTABLE),
        ("64:ff9b::7f00:1", Scope.UNROUTABLE),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", Scope.UNROUTABLE),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", Scope.PUBLIC),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", Scope.UNROUTABLE),  # local-use NAT64: where it leads is unknown
        ("2002:7f00:1::1", Scope.UNROUTABLE),  # 6to4 of 127.0.0.1
        ("2002:0a00:0001::1", Scope.UNROUTABLE),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", Scope.PUBLIC),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", Scope.UNROUTABLE),  # Teredo, client 127.0.0.1
    ],
)
def test_address_scopes(address: str, scope: Scope) -> None:
    assert address_scope(ip(address)) is scope


@pytest.mark.parametrize(
    ("policy", "allowed", "refused"),
    [
        (LOOPBACK, ["127.0.0.1", "::1", "8.8.8.8"], ["10.0.0.1", "169.254.169.254", "::127.0.0.1"]),
        (PRIVATE, ["10.0.0.1", "fd00::1", "8.8.8.8"], ["127.0.0.1", "::1", "169.254.169.254"]),
        (PUBLIC, ["8.8.8.8", "64:ff9b::808:808"], ["127.0.0.1", "10.0.0.1", "fe80::1", "0.0.0.0"]),
    ],
)
def test_policy_allows_public_and_its_own_scope(
    policy: EgressPolicy, allowed: list[str], refused: list[str]
) -> None:
    for address in allowed:
        assert policy.allows(ip(address)), address
    for address in refused:
        assert not policy.allows(ip(address)), address
        assert "a peer may only make this node connect to" in (policy.refusal(ip(address)) or "")


@given(ipv4)
def test_mapped_ipv6_has_the_scope_of_its_ipv4(v4: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(0xFFFF_0000_0000 | int(v4))
    assert address_scope(mapped) is address_scope(v4)


@given(ipv4)
def test_translated_forms_of_a_non_public_ipv4_are_never_dialed(v4: ipaddress.IPv4Address) -> None:
    forms = [
        ipaddress.IPv6Address(int(v4)),  # IPv4-compatible
        ipaddress.IPv6Address((0x0064_FF9B << 96) | int(v4)),  # NAT64 /96
        ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1),  # 6to4
        ipaddress.IPv6Address(
            (0x2001_0000 << 96) | (0x4136_E378 << 64) | (0xFFFFFFFF ^ int(v4))
        ),  # Teredo, public server, client v4
    ]
    if int(v4) < 2:  # :: and ::1 are themselves, not IPv4-compatible forms
        forms = forms[1:]
    for form in forms:
        if address_scope(v4) is not Scope.PUBLIC:
            assert all(not policy.allows(form) for policy in ALL_POLICIES), form


@given(st.one_of(ipv4, st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)))
def test_allowed_means_public_or_the_nodes_own_scope(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    scope = address_scope(address)
    for policy in ALL_POLICIES:
        if policy.allows(address):
            assert scope is Scope.PUBLIC or scope is policy.own
        if scope in (Scope.LINK_LOCAL, Scope.UNROUTABLE):
            assert not policy.allows(address)
    assert PUBLIC.allows(address) == (scope is Scope.PUBLIC)


def test_policy_for_the_advertised_host() -> None:
    assert EgressPolicy.for_host("127.0.0.1").own is Scope.LOOPBACK
    assert EgressPolicy.for_host("localhost").own is Scope.LOOPBACK
    assert EgressPolicy.for_host("172.18.0.5").own is Scope.PRIVATE
    assert EgressPolicy.for_host("203.0.114.9").own is Scope.PUBLIC
    # a name that does not resolve: the strictest
    assert EgressPolicy.for_host("no-such-node.invalid").own is Scope.PUBLIC


async def test_multiaddrs_from_cards_are_filtered_and_names_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        Rebinder({"node.public.test": ["8.8.4.4"], "node.internal.test": ["127.0.0.1"]}),
    )
    addrs = [
        "/ip4/127.0.0.1/tcp/4001/p2p/A",
        "/ip4/10.0.0.5/tcp/4001/p2p/B",
        "/ip4/169.254.169.254/tcp/80/p2p/C",
        "/ip6/::ffff:127.0.0.1/tcp/1/p2p/D",
        "/ip4/8.8.8.8/tcp/4001/p2p/E",
        "/dns4/node.public.test/tcp/4001/p2p/F",
        "/dns4/node.internal.test/tcp/4001/p2p/G",
        "/unix/tmp/sock",
        "garbage",
    ]
    assert await dialable_multiaddrs(addrs, PUBLIC) == [
        "/ip4/8.8.8.8/tcp/4001/p2p/E",
        "/ip4/8.8.4.4/tcp/4001/p2p/F",  # the checked address, not the name
    ]
    assert await dialable_multiaddrs(addrs, LOOPBACK) == [
        "/ip4/127.0.0.1/tcp/4001/p2p/A",
        "/ip6/::ffff:127.0.0.1/tcp/1/p2p/D",
        "/ip4/8.8.8.8/tcp/4001/p2p/E",
        "/ip4/8.8.4.4/tcp/4001/p2p/F",
        "/ip4/127.0.0.1/tcp/4001/p2p/G",
    ]


# ---- the guarded httpx client ---------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"host": request.headers.get("host")})

    with serve_app(Starlette(routes=[Route("/", echo)]), "echo server") as url:
        yield url


async def test_guarded_client_connects_to_the_checked_address_with_the_name_as_host(
    echo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = echo_server.rsplit(":", 1)[1]
    monkeypatch.setattr(socket, "getaddrinfo", Rebinder({"agent.local.test": ["127.0.0.1"]}))
    async with guarded_client(LOOPBACK) as http:
        response = await http.get(f"http://agent.local.test:{port}/")
    assert response.json() == {"host": f"agent.local.test:{port}"}


async def test_guarded_client_refuses_a_name_rebound_to_a_forbidden_address(
    echo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First answer allowed (loopback, for a loopback node), the next one the metadata service:
    each new connection resolves again and is checked again."""
    port = echo_server.rsplit(":", 1)[1]
    resolver = Rebinder({"agent.rebind.test": ["127.0.0.1", "169.254.169.254"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://agent.rebind.test:{port}/"
    async with guarded_client(LOOPBACK) as http:
        assert (await http.get(url, headers={"Connection": "close"})).status_code == 200
        with pytest.raises(EgressRefused, match=re.escape("169.254.169.254, a link-local address")):
            await http.get(url)
    assert resolver.asked == ["agent.rebind.test", "agent.rebind.test"]


async def test_guarded_client_refuses_literal_internal_urls(echo_server: str) -> None:
    port = echo_server.rsplit(":", 1)[1]
    async with guarded_client(PUBLIC) as http:
        for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]"):
            with pytest.raises(httpx.ConnectError, match="a peer may only make this node"):
                await http.get(f"http://{host}:{port}/")


async def test_guarded_client_ignores_proxy_settings(
    echo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve the name itself, after the check: the environment is ignored."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with guarded_client(LOOPBACK) as http:
        assert (await http.get(echo_server + "/")).status_code == 200


async def test_a2a_client_with_a_policy_refuses_card_urls_outside_it(echo_server: str) -> None:
    """What submit and the orchestrator use for an agent's card URL (a stranger's word)."""
    from noosphere.node.a2a_client import A2AClient
    from noosphere.node.client import NodeUnreachable
    from noosphere.protocol import RpcError

    async with A2AClient(echo_server, egress=PUBLIC) as client:
        with pytest.raises(NodeUnreachable, match=r"not calling .* loopback address"):
            await client.get_card()
    async with A2AClient(echo_server, egress=LOOPBACK) as client:  # a node on loopback may
        with pytest.raises(RpcError, match="HTTP 404"):  # reached the server: no card there
            await client.get_card()
