#!/usr/bin/env python3
"""The compose cluster, run for real (all six phases across containers): `make compose-test`.

On a machine of the project's kind (Debian bookworm, root, the package registries reachable but
no image registry), it:

1. finds a Docker engine, or installs Debian's docker.io and starts containerd + dockerd (and
   stops them at the end); installs the compose v2 plugin from Debian's next release when the
   `docker compose` command is missing;
2. uses the registry's base images when they can be pulled, else builds a Debian bookworm base
   image with debootstrap from the host's apt mirror (kept: reused on the next run), and builds
   the node and chain images offline (wheels fetched once with the host's pip, the anvil tarball
   with its npm; both kept in the cache); an image whose inputs did not change is reused as is;
3. `docker compose up --wait` (chain, ledger job, bootstrap, 2 workers, orchestrator), with the
   compose network's traffic kept on this machine (a DOCKER-USER rule drops what it would
   forward elsewhere);
4. checks that every node holds every card (Discover), that a paid task completes and is paid
   on chain (the balances moved: Recruit, Execute, Settle, Feedback), that a worker killed with
   SIGKILL mid-task makes the requester re-recruit another (the task still completes and is
   paid once), and that workers scale up (their cards reach every node) and down;
5. `docker compose down -v` and stops what it started.

Progress goes to stdout with the elapsed time; a failure ends with one `compose-test: error:`
line and exit status 1. Standard library only (it runs before any virtualenv exists).

Environment: NOOSPHERE_CT_CACHE (default /var/cache/noosphere-compose-test), NOOSPHERE_CT_OFFLINE=1
(build offline even when the registry answers), NOOSPHERE_CT_KEEP=1 (leave the cluster up),
APT_MIRROR (default: the host's Debian mirror), NOOSPHERE_CT_PROJECT (default noosphere-ct).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("NOOSPHERE_CT_CACHE", "/var/cache/noosphere-compose-test"))
PROJECT = os.environ.get("NOOSPHERE_CT_PROJECT", "noosphere-ct")
OVERRIDE = ROOT / "scripts" / "compose_test.override.yml"
NODE_IMAGE = "noosphere:dev"
CHAIN_IMAGE = "noosphere-anvil:dev"
BASE_IMAGE = "noosphere-base/debian:bookworm"
REGISTRY_BASES = ("python:3.11-slim", "node:20-slim", "debian:bookworm-slim")
SUITE = "bookworm"
#: Debian's compose v2 plugin: bookworm packages only compose v1 (no `up --wait`).
COMPOSE_SUITE = "trixie"
WORKERS = 2
CARD_TTL_S = 20
#: anvil's development key 0: the deployer and token owner (a public test key).
ERC20_BALANCE_OF = "0x70a08231"
START = time.monotonic()
T = TypeVar("T")


class Failure(Exception):
    """A check or a step failed; the message is the one line printed."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:7.1f}s] {message}", flush=True)


def run(
    *cmd: str,
    capture: bool = True,
    check: bool = True,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    stdin: Any = None,
    cwd: Path | None = None,
) -> str:
    """Run ``cmd``; its stdout (stripped). A failure raises ``Failure`` with its last line."""
    try:
        proc = subprocess.run(
            cmd,
            capture_output=capture,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            stdin=stdin,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise Failure(f"{cmd[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise Failure(f"{' '.join(cmd[:4])} ... took longer than {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        detail = ((proc.stderr or "") + (proc.stdout or "")).strip().splitlines()
        last = detail[-1] if detail else f"exit status {proc.returncode}"
        raise Failure(f"{' '.join(cmd[:4])} ... failed: {last}")
    return (proc.stdout or "").strip()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2) -> T:
    """Poll ``probe`` until it returns something truthy; ``Failure`` naming ``what`` after
    ``timeout`` seconds (the last exception it raised, if any, is added)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            value = probe()
            if value:
                return value
        except (Failure, OSError, ValueError, KeyError) as exc:
            last = f" (last: {exc})"
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not after {timeout:.0f} s{last}")
        time.sleep(every)


# ---- the container engine ---------------------------------------------------------------------


def engine_up() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def apt_install(*packages: str) -> None:
    say(f"installing {' '.join(packages)} (apt)")
    run("apt-get", "update", "-q", timeout=600)
    run(
        "apt-get",
        "install",
        "-y",
        "-q",
        *packages,
        timeout=900,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


def host_apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (APT_MIRROR overrides it)."""
    if os.environ.get("APT_MIRROR"):
        return os.environ["APT_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        with contextlib.suppress(OSError):
            text = path.read_text()
            for match in re.finditer(
                r"(?:URIs:|^deb(?:\s+\[[^\]]*\])?)\s+(\S+/debian)/?\s", text, re.M
            ):
                return match.group(1)
    return "http://deb.debian.org/debian"


class Engine:
    """Docker: the running one, or containerd + dockerd started here (and stopped by ``stop``)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def ensure(self) -> None:
        if engine_up():
            say("docker engine: already running (left running at the end)")
        else:
            if shutil.which("dockerd") is None:
                apt_install("docker.io")
            self._start()
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
            install_compose_plugin()
        say(
            f"docker {run('docker', 'version', '-f', '{{.Server.Version}}')},"
            f" {run('docker', 'compose', 'version', '--short')}"
        )

    def _start(self) -> None:
        if os.geteuid() != 0:
            raise Failure("no docker engine runs and starting one needs root")
        logs = CACHE / "engine"
        logs.mkdir(parents=True, exist_ok=True)
        say(f"starting containerd and dockerd (logs in {logs})")
        sock = "/run/containerd/containerd.sock"
        if not Path(sock).exists():
            self._spawn(["containerd"], logs / "containerd.log")
            wait_for("containerd socket", lambda: Path(sock).exists(), 30, 0.5)
        self._spawn(
            ["dockerd", f"--containerd={sock}", "--storage-driver=overlay2"], logs / "dockerd.log"
        )
        wait_for("dockerd answering", engine_up, 60, 1)

    def _spawn(self, cmd: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.started.append(
                subprocess.Popen(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for proc in reversed(self.started):  # dockerd first, then containerd
            say(f"stopping {Path(str(proc.args[0])).name} (pid {proc.pid}) that this run started")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.started.clear()


def install_compose_plugin() -> None:
    """Debian's docker-compose (v2, a static Go binary needing only libc) from the next
    release's suite, fetched with a private apt configuration: the host's sources stay as they
    are. Installed with dpkg (`apt-get remove docker-compose` undoes it)."""
    mirror = host_apt_mirror()
    say(f"installing the compose v2 plugin: Debian {COMPOSE_SUITE}'s docker-compose from {mirror}")
    work = CACHE / "compose-plugin"
    lists = work / "lists"
    shutil.rmtree(work, ignore_errors=True)
    (lists / "partial").mkdir(parents=True)
    sources = work / "sources.list"
    sources.write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
        f" {mirror} {COMPOSE_SUITE} main\n"
    )
    opts = [
        "-o",
        f"Dir::Etc::sourcelist={sources}",
        "-o",
        "Dir::Etc::sourceparts=/nonexistent",
        "-o",
        f"Dir::State::Lists={lists}",
    ]
    run("apt-get", *opts, "update", "-q")
    subprocess.run(["chown", "_apt", str(work)], capture_output=True, check=False)
    run("apt-get", *opts, "download", "docker-compose", cwd=work)
    debs = sorted(work.glob("docker-compose_*.deb"))
    if not debs:
        raise Failure("apt-get download docker-compose left no .deb")
    run("dpkg", "-i", str(debs[-1]))
    for deb in debs:
        deb.unlink()


# ---- images ------------------------------------------------------------------------------------


def image_label(image: str, label: str) -> str | None:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", f'{{{{index .Config.Labels "{label}"}}}}', image],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def image_exists(image: str) -> bool:
    return image_label(image, "x") is not None


def registry_reachable() -> bool:
    """Whether the registry's base images can be had (present, or pulled now)."""
    if os.environ.get("NOOSPHERE_CT_OFFLINE") == "1":
        return False
    for image in REGISTRY_BASES:
        if image_exists(image):
            continue
        say(f"pulling {image}")
        pulled = subprocess.run(
            ["docker", "pull", "-q", image],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if pulled.returncode != 0:
            err = (pulled.stderr.strip().splitlines() or ["?"])[-1]
            say(f"registry unreachable ({err[:120]}): building offline")
            return False
    return True


def build_base_image() -> None:
    """A Debian bookworm image from debootstrap (minbase: what debian:bookworm-slim holds, less
    docs), imported as BASE_IMAGE; reused when present."""
    if image_exists(BASE_IMAGE):
        say(f"base image {BASE_IMAGE}: present (reused)")
        return
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    mirror = host_apt_mirror()
    say(f"debootstrap {SUITE} (minbase) from {mirror}")
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run("debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror, timeout=1200)
        # like the registry's slim images: no package caches or lists, no docs in later installs
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        for sub in ("usr/share/doc", "usr/share/man", "usr/share/info"):
            shutil.rmtree(rootfs / sub, ignore_errors=True)
        (rootfs / "etc/dpkg/dpkg.cfg.d/noosphere-slim").write_text(
            "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
            "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("docker", "import", "-c", 'CMD ["bash"]', "-", BASE_IMAGE, stdin=tar.stdout)
        tar.wait()
    say(
        f"base image {BASE_IMAGE} built in {time.monotonic() - started:.0f} s"
        f" ({image_size(BASE_IMAGE)})"
    )


def image_size(image: str) -> str:
    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", image))
    return f"{size / 1e6:.0f} MB"


def fill_wheelhouse() -> Path:
    """Every wheel (and sdist) of requirements.lock plus the build tools, downloaded once per
    lock file with the host's pip (its indexes and local wheels, e.g. torch 2.13.0+cpu)."""
    lock = (ROOT / "requirements.lock").read_bytes()
    where = CACHE / f"wheels-{hashlib.sha256(lock).hexdigest()[:16]}"
    if (where / ".complete").exists():
        say(f"wheels: {where} (reused)")
        return where
    say(f"downloading the wheels of requirements.lock into {where} (host pip)")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    run(
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--disable-pip-version-check",
        "-d",
        str(where),
        "-r",
        str(ROOT / "requirements.lock"),
        "setuptools>=77",
        "wheel",
        timeout=1800,
    )
    (where / ".complete").touch()
    return where


def anvil_tarball() -> Path:
    """The pinned @foundry-rs/anvil-linux-amd64 tarball (npm pack), checked against the
    integrity recorded in package-lock.json."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/@foundry-rs/anvil-linux-amd64"]
    version, integrity = entry["version"], entry["integrity"]
    where = CACHE / "npm"
    tarball = where / f"foundry-rs-anvil-linux-amd64-{version}.tgz"
    if not tarball.exists():
        say(f"npm pack @foundry-rs/anvil-linux-amd64@{version}")
        where.mkdir(parents=True, exist_ok=True)
        run(
            "npm",
            "pack",
            "--silent",
            f"@foundry-rs/anvil-linux-amd64@{version}",
            "--pack-destination",
            str(where),
            timeout=600,
        )
    algo, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        tarball.unlink()
        raise Failure(f"{tarball.name} does not match package-lock.json's integrity")
    return tarball


def inputs_hash(paths: list[str], args: dict[str, str]) -> str:
    """A digest of the files an image is built from and its build arguments."""
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode())
    for rel in paths:
        top = ROOT / rel
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


LABEL = "org.noosphere.build-inputs"
NODE_INPUTS = [
    "Dockerfile",
    "deploy/apt-install.sh",
    "deploy/launch.py",
    "requirements.lock",
    "pyproject.toml",
    "README.md",
    "noosphere",
    "examples",
]
CHAIN_INPUTS = [
    "deploy/anvil.Dockerfile",
    "deploy/apt-install.sh",
    "package.json",
    "package-lock.json",
]


@contextlib.contextmanager
def staged(source: Path | None, folder: str, pattern: str) -> Iterator[None]:
    """Hard-link ``source``'s files matching ``pattern`` into ``ROOT/folder`` for one build."""
    target = ROOT / folder
    added: list[Path] = []
    try:
        if source is not None:
            files = [source] if source.is_file() else sorted(source.glob(pattern))
            for path in files:
                dest = target / path.name
                if not dest.exists():
                    try:
                        os.link(path, dest)
                    except OSError:
                        shutil.copy2(path, dest)
                    added.append(dest)
        yield
    finally:
        for dest in added:
            dest.unlink(missing_ok=True)


def build(image: str, dockerfile: str, inputs: list[str], args: dict[str, str]) -> float:
    """Build ``image`` unless its label says it was built from the same inputs; seconds spent."""
    want = inputs_hash(inputs, args)
    if image_label(image, LABEL) == want:
        say(f"image {image}: up to date (reused, {image_size(image)})")
        return 0.0
    say(f"building {image} ({dockerfile})")
    started = time.monotonic()
    cmd = ["docker", "build", "-t", image, "-f", dockerfile, "--label", f"{LABEL}={want}"]
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    log = CACHE / f"build-{image.replace(':', '_').replace('/', '_')}.log"
    with log.open("w") as out:
        # the classic builder: BuildKit (and its frontend image) is not needed
        proc = subprocess.run(
            [*cmd, str(ROOT)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            check=False,
        )
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["?"]
        raise Failure(f"docker build {image} failed (log: {log}): {tail[0]}")
    spent = time.monotonic() - started
    say(f"built {image} in {spent:.0f} s ({image_size(image)})")
    return spent


def build_images() -> dict[str, str]:
    """Build (or reuse) both images; the environment docker compose needs for them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if registry_reachable():
        node_args: dict[str, str] = {}
        chain_args: dict[str, str] = {}
        wheels = tarball = None
    else:
        build_base_image()
        mirror = host_apt_mirror()
        node_args = {
            "PYTHON_IMAGE": BASE_IMAGE,
            "APT_MIRROR": mirror,
            "PIP_INDEX_URL": "",
            "PIP_EXTRA_INDEX_URL": "",
        }
        chain_args = {"NODE_IMAGE": BASE_IMAGE, "BASE_IMAGE": BASE_IMAGE, "APT_MIRROR": mirror}
        node_want = inputs_hash(NODE_INPUTS, node_args)
        chain_want = inputs_hash(CHAIN_INPUTS, chain_args)
        wheels = fill_wheelhouse() if image_label(NODE_IMAGE, LABEL) != node_want else None
        tarball = anvil_tarball() if image_label(CHAIN_IMAGE, LABEL) != chain_want else None
    with staged(wheels, "deploy/wheels", "*"):
        build(NODE_IMAGE, "Dockerfile", NODE_INPUTS, node_args)
    with staged(tarball, "deploy/npm", "*.tgz"):
        build(CHAIN_IMAGE, "deploy/anvil.Dockerfile", CHAIN_INPUTS, chain_args)
    return {"NOOSPHERE_IMAGE": NODE_IMAGE, "NOOSPHERE_CHAIN_IMAGE": CHAIN_IMAGE}


# ---- the cluster -------------------------------------------------------------------------------


class Cluster:
    """The compose project, driven through `docker compose` and the nodes' JSON-RPC (published
    on 127.0.0.1)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {
            **env,
            "NOOSPHERE_CARD_TTL_S": str(CARD_TTL_S),
            "NOOSPHERE_PUBLISH_ADDR": "127.0.0.1",
        }
        self.rule: list[str] | None = None
        self.tokens: dict[str, str] = {}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return run(
            "docker",
            "compose",
            "-p",
            PROJECT,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "-f",
            str(OVERRIDE),
            *args,
            timeout=timeout,
            env=self.env,
            check=check,
        )

    # -- lifecycle

    def up(self) -> float:
        self.compose("down", "-v", "--remove-orphans", check=False)  # a previous run's leftovers
        self.compose("create", "--no-build", "--scale", f"worker={WORKERS}")
        self.isolate()
        started = time.monotonic()
        self.compose(
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            "400",
            "--no-build",
            "--scale",
            f"worker={WORKERS}",
            timeout=600,
        )
        return time.monotonic() - started

    def isolate(self) -> None:
        """Drop whatever the compose network would forward off this machine (nodes only ever
        talk to each other, and the host reaches them through 127.0.0.1)."""
        net_id = run("docker", "network", "inspect", "-f", "{{.Id}}", f"{PROJECT}_default")
        bridge = f"br-{net_id[:12]}"
        rule = ["DOCKER-USER", "-i", bridge, "!", "-o", bridge, "-j", "DROP"]
        run("iptables", "-I", *rule)
        self.rule = rule
        say(f"compose network {PROJECT}_default ({bridge}): forwarding off the machine dropped")

    def down(self) -> None:
        say("docker compose down -v")
        self.compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False)
        if self.rule is not None:
            run("iptables", "-D", *self.rule, check=False)
            self.rule = None

    # -- nodes

    def containers(self, service: str) -> list[str]:
        out = self.compose("ps", "-q", service)
        return [c for c in out.splitlines() if c]

    def node_urls(self) -> dict[str, str]:
        """Container id -> host URL of its JSON-RPC, for every node container."""
        urls = {}
        for service in ("bootstrap", "worker", "orchestrator"):
            for cid in self.containers(service):
                ports = json.loads(
                    run("docker", "inspect", "-f", "{{json .NetworkSettings.Ports}}", cid)
                )
                binding = (ports.get("7070/tcp") or [{}])[0]
                urls[cid] = f"http://127.0.0.1:{binding['HostPort']}"
        return urls

    def token(self, cid: str) -> str:
        if cid not in self.tokens:
            self.tokens[cid] = run("docker", "exec", cid, "cat", "/data/rpc.token")
        return self.tokens[cid]

    def rpc(self, cid: str, url: str, method: str, params: dict[str, Any] | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})
        req = urllib.request.Request(
            url + "/",
            body.encode(),
            method="POST",
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {self.token(cid)}",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            reply = json.load(resp)
        if "error" in reply:
            raise Failure(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def cards(self, cid: str, url: str) -> set[str]:
        result = self.rpc(cid, url, "noosphere.cards.list", {"limit": 10_000})
        items = result["cards"] if isinstance(result, dict) else result
        return {c["cardId"] for c in items}

    def status(self, cid: str, url: str) -> dict[str, Any]:
        return self.rpc(cid, url, "noosphere.node.status")

    # -- the chain

    def chain_call(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        req = urllib.request.Request(
            "http://127.0.0.1:8545",
            body.encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["result"]

    def token_balance(self, token: str, address: str) -> int:
        data = ERC20_BALANCE_OF + address.lower().removeprefix("0x").rjust(64, "0")
        return int(self.chain_call("eth_call", [{"to": token, "data": data}, "latest"]), 16)

    def deployment(self) -> dict[str, Any]:
        boot = self.containers("bootstrap")[0]
        return json.loads(run("docker", "exec", boot, "cat", "/ledger/deployments/31337.json"))


# ---- the checks --------------------------------------------------------------------------------


def check_cards_spread(cluster: Cluster, workers: int, timeout: float = 240) -> set[str]:
    """Every node holds every card (its own agents' and everybody else's)."""

    def spread() -> set[str] | None:
        urls = cluster.node_urls()
        if len(urls) != workers + 2:
            return None
        held = {cid: cluster.cards(cid, url) for cid, url in urls.items()}
        union = set().union(*held.values())
        # each worker runs 3 agents (compose_test.override.yml), the orchestrator 1, and its
        # own pool worker (a process in its container) 1
        if len(union) < 3 * workers + 2 or any(cards != union for cards in held.values()):
            return None
        return union

    union = wait_for(f"every node holding every card ({workers} workers)", spread, timeout)
    say(f"cards spread: each of {workers + 2} nodes holds all {len(union)} cards")
    return union


def submit(cluster: Cluster, text: str, **params: Any) -> tuple[str, str, str]:
    boot = cluster.containers("bootstrap")[0]
    url = cluster.node_urls()[boot]
    started = cluster.rpc(boot, url, "noosphere.tasks.submit", {"task": text, **params})
    return boot, url, started["id"]


def finished(cluster: Cluster, boot: str, url: str, sid: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        sub = cluster.rpc(boot, url, "noosphere.tasks.submission", {"id": sid})
        return sub if sub["state"] != "running" else None

    return wait_for(f"submission {sid} to finish", done, timeout, 1)


def check_paid_task(cluster: Cluster) -> None:
    """The README's steps: give the requester (bootstrap) tokens, submit with a budget; the task
    completes, the escrow is released and the tokens moved from requester to agent."""
    boot = cluster.containers("bootstrap")[0]
    url = cluster.node_urls()[boot]
    requester = cluster.status(boot, url)["evmAddress"]
    cluster.compose(
        "run",
        "--rm",
        "-T",
        "ledger",
        "ledger",
        "faucet",
        requester,
        "--amount",
        "1000",
        "--chain-home",
        "/ledger",
        "--chain-rpc",
        "http://chain:8545",
    )
    token = cluster.deployment()["token"]
    before = cluster.token_balance(token, requester)
    _, _, sid = submit(cluster, "what is 17/3 + 2^10?", budget=10)
    sub = finished(cluster, boot, url, sid, 180)
    if sub["state"] != "completed":
        raise Failure(f"paid task {sid} {sub['state']}: {sub.get('error')}")
    paid = int(sub["paid"])
    attempts = describe(sub)
    if paid <= 0 or "3089/3" not in json.dumps(sub.get("result")):
        raise Failure(f"paid task {sid}: paid {paid}, result {sub.get('result')}; {attempts}")
    payments = cluster.rpc(boot, url, "noosphere.ledger.status")
    escrow = sub["attempts"][-1]["escrowId"]
    row = next(p for p in payments["payments"] if p["escrowId"] == escrow)
    payee = row["agent"]
    # an earlier failed attempt's escrow stays locked until its deadline (then it is refunded)
    locked = sum(a["price"] for a in sub["attempts"][:-1] if a.get("escrowId"))
    after, got = cluster.token_balance(token, requester), cluster.token_balance(token, payee)
    if before - after != paid + locked or got != paid:
        raise Failure(
            f"paid task {sid}: requester {before} -> {after}, agent {payee} holds {got},"
            f" paid {paid}, locked {locked}; {attempts}"
        )
    say(
        f"paid task: {sub['attempts'][-1]['name']} answered 3089/3, escrow released: requester"
        f" {before} -> {after}, agent {payee[:10]}… 0 -> {got} ({attempts})"
    )


def describe(sub: dict[str, Any]) -> str:
    """The attempts of a submission, one line: name state/payment (reason)."""
    parts = []
    for a in sub["attempts"]:
        reason = f" ({a['reason'][:80]})" if a.get("reason") else ""
        parts.append(f"{a['name']} {a['state']}/{a['payment']}{reason}")
    return "attempts: " + "; ".join(parts)


def check_kill_mid_task(cluster: Cluster) -> None:
    """A worker killed with SIGKILL while it runs a paid task: the requester re-recruits another
    worker, the task completes there and is paid once."""
    urls = cluster.node_urls()
    owners = {cluster.status(cid, url)["peerId"]: cid for cid, url in urls.items()}
    boot, url, sid = submit(
        cluster, "wait 8 seconds", budget=10, requiredTags=["sleep"], maxAttempts=2, deadlineS=60
    )

    def running() -> dict[str, Any] | None:
        sub = cluster.rpc(boot, url, "noosphere.tasks.submission", {"id": sid})
        return next((a for a in sub["attempts"] if a["state"] == "running"), None)

    attempt = wait_for(f"submission {sid} running on a worker", running, 120, 0.5)
    victim = owners[attempt["agent"].split("/")[0]]
    say(f"kill -9 of worker {victim[:12]} mid-task ({attempt['name']})")
    pid = run("docker", "inspect", "-f", "{{.State.Pid}}", victim)
    os.kill(int(pid), signal.SIGKILL)
    sub = finished(cluster, boot, url, sid, 240)
    states = describe(sub)
    if sub["state"] != "completed" or len(sub["attempts"]) != 2:
        raise Failure(f"after the kill: submission {sub['state']} ({sub.get('error')}): {states}")
    first, second = sub["attempts"]
    if first["agent"] == second["agent"] or second["payment"] != "released":
        raise Failure(f"after the kill: {states}")
    say(
        f"re-recruited: attempt 1 {first['state']} ({first['payment']}), attempt 2 on another"
        f" worker {second['state']} ({second['payment']}); paid {sub['paid']} once"
    )


def check_scaling(cluster: Cluster) -> None:
    """Scale workers to 3 (the new worker's cards reach every node), then to 1 (the removed
    workers' cards expire everywhere after their TTL)."""
    started = time.monotonic()
    cluster.compose("up", "-d", "--wait", "--no-build", "--no-recreate", "--scale", "worker=3")
    union = check_cards_spread(cluster, 3)
    say(f"scaled up to 3 workers: new cards everywhere in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    cluster.compose("up", "-d", "--wait", "--no-build", "--no-recreate", "--scale", "worker=1")
    if len(cluster.containers("worker")) != 1:
        raise Failure("scale down: not 1 worker left")
    boot = cluster.containers("bootstrap")[0]
    url = cluster.node_urls()[boot]

    def expired() -> set[str] | None:
        held = cluster.cards(boot, url)
        return held if len(held) <= len(union) - 6 else None  # 2 workers x 3 agents gone

    left = wait_for(
        "the removed workers' cards to expire on the bootstrap", expired, CARD_TTL_S * 6
    )
    say(
        f"scaled down to 1 worker: bootstrap holds {len(left)} cards after"
        f" {time.monotonic() - started:.0f} s (was {len(union)})"
    )


# ---- main --------------------------------------------------------------------------------------


def main() -> int:
    # SIGTERM (and CI's timeout) ends the run through the `finally` below: down -v, engine stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    engine = Engine()
    cluster: Cluster | None = None
    try:
        engine.ensure()
        env = build_images()
        cluster = Cluster(env)
        say("docker compose up --wait (chain, ledger, bootstrap, 2 workers, orchestrator)")
        took = cluster.up()
        say(f"cluster healthy in {took:.0f} s")
        check_cards_spread(cluster, WORKERS)
        check_paid_task(cluster)
        check_kill_mid_task(cluster)
        check_scaling(cluster)
        say("compose test passed")
        return 0
    except Failure as exc:
        print(f"compose-test: error: {exc}", file=sys.stderr, flush=True)
        if cluster is not None:
            with contextlib.suppress(Failure):
                logs = cluster.compose("logs", "--no-color", "--tail", "40", check=False)
                (CACHE / "last-failure.log").write_text(logs)
                say(f"last compose logs: {CACHE / 'last-failure.log'}")
        return 1
    finally:
        if cluster is not None and os.environ.get("NOOSPHERE_CT_KEEP") != "1":
            cluster.down()
        if os.environ.get("NOOSPHERE_CT_KEEP") != "1":
            engine.stop()


if __name__ == "__main__":
    sys.exit(main())
