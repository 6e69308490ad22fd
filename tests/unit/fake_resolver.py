"""A resolver the test controls, for DNS rebinding tests: installed as ``socket.getaddrinfo``
(monkeypatch), each listed name answers its addresses in turn (the last one then stays); other
names resolve as usual. asyncio and anyio resolve through ``socket.getaddrinfo`` too."""

from __future__ import annotations

import socket
from typing import Any


class Rebinder:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {name: list(addresses) for name, addresses in answers.items()}
        self.asked: list[str] = []
        self._real = socket.getaddrinfo

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self._real(host, port, family, type, proto, flags)
        self.asked.append(name)
        queue = self.answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        number = int(port) if port else 0
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number))]
