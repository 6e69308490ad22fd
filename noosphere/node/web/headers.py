"""All six phases (web view, security): response headers for everything the node's HTTP server
answers. The page and its assets get a strict Content-Security-Policy (scripts, styles and
connections from this origin only, no inline script or style, no frames, no plugins); every
other response (JSON-RPC, cards, metrics, event streams) gets ``default-src 'none'``. All get
``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and ``Referrer-Policy:
no-referrer``; the view's paths also ``Cross-Origin-Resource-Policy`` and ``-Opener-Policy:
same-origin``. Headers a route set itself are kept."""

from __future__ import annotations

from typing import Any

#: The page's policy: nothing inline, nothing from elsewhere, never framed.
VIEW_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Every other response: data, never a document that may run or embed anything.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_VIEW = [
    (b"content-security-policy", VIEW_CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_API = [(b"content-security-policy", API_CSP.encode())]


def is_view(path: str, method: str) -> bool:
    """The page (``GET /``; ``POST /`` is JSON-RPC) and everything under ``/ui/``."""
    return (path == "/" and method in ("GET", "HEAD")) or path.startswith("/ui/")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        view = is_view(scope.get("path", ""), scope.get("method", ""))
        extra = _COMMON + (_VIEW if view else _API)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
