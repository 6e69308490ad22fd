"""All six phases (web view): a small read-mostly web page the node serves at its RPC address
(``GET /``): Network, Agents (with a MARS recruit search), Tasks and submissions (live over
Server-Sent Events), Ledger and Orchestrator. Plain JavaScript and CSS kept in ``static/``; no
build step, nothing fetched from elsewhere. ``routes`` has the endpoints and who may read what,
``headers`` the security headers, ``views`` the read models."""

from .headers import SecurityHeaders
from .routes import web_routes

__all__ = ["SecurityHeaders", "web_routes"]
