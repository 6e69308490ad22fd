"""The HTTP server's protections (http_server.py) against a real uvicorn server on loopback, with
both of uvicorn's parsers: deadlines for headers and bodies, per-client and total connection caps
that close the oldest idle connection first, the in-flight limit that idle connections cannot
use up, body and head size limits, and clients that stop reading."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from noosphere.node.http_server import (
    ConnectionGuard,
    InFlightLimit,
    client_key,
    ensure_open_files,
    guarded_protocol,
)
from noosphere.node.metrics import NodeMetrics

PARSERS = ["h11", "httptools"]
ATTACKER = "127.0.0.2"  # Linux routes all of 127/8 on lo


@dataclass
class Server:
    url: str
    port: int
    guard: ConnectionGuard
    limit: InFlightLimit
    metrics: NodeMetrics
    release: threading.Event
    entered: list[str]

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def _app(release: threading.Event, entered: list[str]) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"size": len(body)})

    async def hold(request: Request) -> Response:
        entered.append(request.url.path)
        while not release.is_set():
            await asyncio.sleep(0.01)
        return JSONResponse({"held": True})

    async def flood(_request: Request) -> Response:
        async def chunks() -> Any:
            for _ in range(400):
                yield b"x" * (1 << 20)

        return StreamingResponse(chunks())

    return Starlette(
        routes=[
            Route("/", echo, methods=["GET", "POST"]),
            Route("/hold", hold, methods=["GET", "POST"]),
            Route("/flood", flood),
        ]
    )


@contextlib.contextmanager
def serve(parser: str, **limits: Any) -> Iterator[Server]:
    metrics = NodeMetrics()
    settings = {
        "max_connections": 1000,
        "max_per_client": 1000,
        "header_timeout_s": 30.0,
        "body_timeout_s": 30.0,
        "write_timeout_s": 30.0,
    }
    in_flight = limits.pop("max_in_flight", 100)
    settings.update(limits)
    guard = ConnectionGuard(metrics=metrics, **settings)
    release, entered = threading.Event(), []
    limit = InFlightLimit(
        _app(release, entered), max_in_flight=in_flight, max_body_bytes=4096, metrics=metrics
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        limit,
        http=guarded_protocol(guard, parser),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{port}", port, guard, limit, metrics, release, entered)
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def connect(port: int, source: str = ATTACKER) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return conn


def wait_closed(conn: socket.socket, timeout: float = 30.0) -> bool:
    """True once the server closed (FIN or RST) the connection; False after ``timeout``."""
    conn.settimeout(timeout)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def read_until(conn: socket.socket, marker: bytes, timeout: float = 30.0) -> bytes:
    """What the server sent, read until ``marker`` arrives (a response may come in pieces)."""
    conn.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def legit_get(server: Server) -> httpx.Response:
    return httpx.get(server.url + "/", timeout=30)


@pytest.mark.parametrize("parser", PARSERS)
def test_a_head_that_never_ends_is_cut_at_the_deadline(parser: str) -> None:
    with serve(parser, header_timeout_s=0.3) as server:
        conn = connect(server.port)
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # dripping does not extend a deadline
            conn.sendall(b"X-Drip: 1\r\n")
        assert wait_closed(conn)
        assert (
            server.sample("noosphere_http_connections_closed_total", reason="header_timeout") == 1
        )
        assert legit_get(server).status_code == 200


@pytest.mark.parametrize("parser", PARSERS)
def test_a_body_that_never_ends_is_cut_at_the_deadline(parser: str) -> None:
    with serve(parser, body_timeout_s=0.3) as server:
        conn = connect(server.port)
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        assert wait_closed(conn)
        assert server.sample("noosphere_http_connections_closed_total", reason="body_timeout") == 1
        assert server.limit.in_flight == 0
        response = httpx.post(server.url + "/", content=b"y" * 100, timeout=30)
        assert response.json() == {"size": 100}


@pytest.mark.parametrize("parser", PARSERS)
def test_keep_alive_connections_get_a_new_head_deadline(parser: str) -> None:
    with serve(parser, header_timeout_s=0.3) as server:
        conn = connect(server.port)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in read_until(conn, b"200 OK")
        conn.sendall(b"GET / HTTP/1.1\r\n")  # the next request stalls
        assert wait_closed(conn)


@pytest.mark.parametrize("parser", PARSERS)
def test_one_client_over_its_cap_loses_its_own_oldest_idle_connection(parser: str) -> None:
    with serve(parser, max_per_client=3) as server:
        held = [connect(server.port) for _ in range(3)]
        for conn in held:
            conn.sendall(b"GET / HTTP/1.1\r\n")
        wait_until(lambda: server.guard.connections_of(ATTACKER) == 3)
        newest = connect(server.port)
        assert wait_closed(held[0])  # the oldest idle one made room
        newest.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in read_until(newest, b"200 OK")
        assert legit_get(server).status_code == 200  # other clients are not affected
        assert server.sample("noosphere_http_connections_closed_total", reason="evicted") == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_busy_connections_are_never_evicted_and_a_new_one_is_refused(parser: str) -> None:
    with serve(parser, max_per_client=2) as server:
        busy = [connect(server.port) for _ in range(2)]
        for conn in busy:
            conn.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: len(server.entered) == 2)
        refused = connect(server.port)
        assert wait_closed(refused)
        assert server.sample("noosphere_http_connections_refused_total", cap="per_client") == 1
        server.release.set()
        for conn in busy:
            assert b'{"held":true}' in read_until(conn, b'{"held":true}')


@pytest.mark.parametrize("parser", PARSERS)
def test_the_total_cap_closes_the_oldest_idle_connection_of_anyone(parser: str) -> None:
    with serve(parser, max_connections=20) as server:
        sources = [f"127.0.0.{n}" for n in range(2, 22)]  # 20 attackers, one connection each
        held = [connect(server.port, source) for source in sources]
        for conn in held:
            conn.sendall(b"GET / HTTP/1.1\r\n")
        wait_until(lambda: len(server.guard) == 20)
        for _ in range(5):
            assert legit_get(server).status_code == 200
        assert wait_closed(held[0])
        assert len(server.guard) <= 20


@pytest.mark.parametrize("parser", PARSERS)
def test_idle_connections_do_not_use_up_the_in_flight_limit(parser: str) -> None:
    with serve(parser, max_in_flight=2) as server:
        idle = [connect(server.port) for _ in range(50)]
        for conn in idle:
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc")
        wait_until(lambda: len(server.guard) == 50)
        assert server.limit.in_flight == 0
        assert legit_get(server).status_code == 200
        busy = [connect(server.port, "127.0.0.1") for _ in range(2)]
        for conn in busy:
            conn.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: server.limit.in_flight == 2)
        shed = legit_get(server)
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert shed.json()["error"]["code"] == -32044
        server.release.set()
        wait_until(lambda: server.limit.in_flight == 0)
        assert legit_get(server).status_code == 200


@pytest.mark.parametrize("parser", PARSERS)
def test_bodies_over_the_limit_are_refused_before_they_are_read(parser: str) -> None:
    with serve(parser) as server:
        response = httpx.post(server.url + "/", content=b"z" * 5000, timeout=30)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == -32041

        async def chunked() -> Any:
            for _ in range(5):
                yield b"z" * 1000

        async def send_chunked() -> httpx.Response:
            async with httpx.AsyncClient(timeout=30) as client:
                return await client.post(server.url + "/", content=chunked())

        assert asyncio.run(send_chunked()).status_code == 413


@pytest.mark.parametrize("parser", PARSERS)
def test_an_endless_head_is_refused(parser: str) -> None:
    with serve(parser) as server:
        conn = connect(server.port)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(40):
                conn.sendall(b"X-Pad: " + b"p" * 1024 + b"\r\n")
        assert wait_closed(conn)


@pytest.mark.parametrize("parser", PARSERS)
def test_a_client_that_stops_reading_is_cut_off(parser: str) -> None:
    with serve(parser, write_timeout_s=0.3) as server:
        conn = connect(server.port)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(
            lambda: (
                server.sample("noosphere_http_connections_closed_total", reason="write_timeout")
                == 1
            )
        )
        wait_until(lambda: server.limit.in_flight == 0)


def test_client_keys_group_ipv6_by_64_and_unmap_ipv4() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" == client_key("10.0.0.1")
    assert client_key(None) == "local"


def test_open_files_limit_is_raised_to_fit_the_cap() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        allowed = ensure_open_files(2000)
        now_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard == resource.RLIM_INFINITY or hard >= 2512:
            assert allowed == 2000 and now_soft >= 2512
        else:
            assert allowed == max(16, hard - 512)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
