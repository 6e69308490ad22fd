"""Container entry helper for noosphere nodes: work out the addresses a node in a container needs,
then ``exec noosphere ARGS``. Standard library only; the image runs it as
``python /app/deploy/launch.py node start ...``.

* ``NOOSPHERE_PUBLIC_HOST``: the host a node advertises in its cards must be an IPv4 address
  other nodes can dial. Unset or ``auto``: this container's own address (the IP its hostname
  resolves to). Kubernetes sets it from the downward API (``status.podIP``) instead.
* ``NOOSPHERE_BOOTSTRAP_FROM=http://HOST:7070``: when ``NOOSPHERE_BOOTSTRAP`` is empty, wait for
  that node's ``/healthz`` (which answers ``{"ok": true, "peerId": ...}``), resolve HOST to an IP
  and set ``NOOSPHERE_BOOTSTRAP=/ip4/<ip>/tcp/<NOOSPHERE_BOOTSTRAP_P2P_PORT or 4001>/p2p/<peerId>``.
  ``NOOSPHERE_BOOTSTRAP_WAIT_S`` (default 300) bounds the wait; past it the node starts without a
  bootstrap peer (it still dials the peers remembered in its store) and says so.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def log(message: str) -> None:
    print(f"launch: {message}", file=sys.stderr, flush=True)


def own_address() -> str:
    """The container's IP: its hostname's address (Docker writes it to /etc/hosts), else the
    source address of the default route (a UDP connect sends nothing)."""
    try:
        addr = socket.gethostbyname(socket.gethostname())
    except OSError:
        addr = "127.0.0.1"
    if addr.startswith("127."):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(("10.255.255.255", 1))
                addr = probe.getsockname()[0]
            except OSError:
                pass
    return addr


def bootstrap_multiaddr(rpc_url: str, p2p_port: int, wait_s: float) -> str | None:
    url = rpc_url.rstrip("/") + "/healthz"
    host = urllib.parse.urlsplit(rpc_url).hostname or ""
    deadline = time.monotonic() + wait_s
    delay = 1.0
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                peer_id = json.load(resp)["peerId"]
            ip = socket.gethostbyname(host)
            return f"/ip4/{ip}/tcp/{p2p_port}/p2p/{peer_id}"
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            if time.monotonic() >= deadline:
                log(f"bootstrap {url} not reachable after {wait_s:.0f} s ({exc}); starting without")
                return None
            log(f"waiting for bootstrap {url}: {exc}")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def main(argv: list[str]) -> None:
    env = os.environ
    if env.get("NOOSPHERE_PUBLIC_HOST", "auto") in ("", "auto"):
        env["NOOSPHERE_PUBLIC_HOST"] = own_address()
    source = env.get("NOOSPHERE_BOOTSTRAP_FROM", "")
    if source and not env.get("NOOSPHERE_BOOTSTRAP"):
        addr = bootstrap_multiaddr(
            source,
            int(env.get("NOOSPHERE_BOOTSTRAP_P2P_PORT", "4001")),
            float(env.get("NOOSPHERE_BOOTSTRAP_WAIT_S", "300")),
        )
        if addr:
            env["NOOSPHERE_BOOTSTRAP"] = addr
    log(
        f"public host {env['NOOSPHERE_PUBLIC_HOST']},"
        f" bootstrap {env.get('NOOSPHERE_BOOTSTRAP') or '-'}"
    )
    args = ["noosphere", *(argv or ["node", "start", "--home", "/data", "--host", "0.0.0.0"])]
    os.execvp(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
