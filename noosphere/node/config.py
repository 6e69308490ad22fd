"""The node daemon's configuration: defaults < ``HOME/config.toml`` < ``NOOSPHERE_*`` environment
variables < command-line flags. The first successful start writes the effective file (0600);
later starts reuse it. A start that fails writes nothing, so fixing the flags is enough."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from noosphere.errors import SetupError
from noosphere.protocol.base import describe_validation_error, one_line

CONFIG_FILENAME = "config.toml"
ENV_PREFIX = "NOOSPHERE_"


class ConfigError(SetupError, ValueError):
    """The configuration file or an override is invalid; the message says which field and why."""


class GossipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    degree: int = Field(6, ge=1, le=64)
    degree_low: int = Field(4, ge=1, le=64)
    degree_high: int = Field(12, ge=1, le=128)
    heartbeat_interval: int = Field(1, ge=1, le=60, description="seconds")
    max_batch_bytes: int = Field(48 * 1024, ge=1024, le=900 * 1024)
    max_envelopes_per_sender_per_s: float = Field(
        50.0, gt=0, description="per-sender rate limit after verification"
    )
    inbound_queue: int = Field(10_000, ge=16)


class NodeConfig(BaseModel):
    """Everything a node needs to start. ``home`` holds keys, config, the SQLite store and logs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="human-friendly node name (default: derived from peer id)")
    host: str = "127.0.0.1"
    p2p_port: int = Field(4001, ge=0, le=65535)
    rpc_port: int = Field(7070, ge=0, le=65535)
    public_host: str = Field("", description="host advertised in cards (default: host)")
    bootstrap: list[str] = Field(default_factory=list)
    agents: list[Path] = Field(default_factory=list)
    card_ttl_s: int = Field(60, ge=5, le=86_400, description="cards expire unless re-announced")
    announce_interval_s: float = Field(0, ge=0, description="0 = a third of card_ttl_s")
    sweep_interval_s: float = Field(1.0, gt=0)
    envelope_ttl_s: int = Field(300, ge=5, le=86_400)
    max_clock_skew_s: int = Field(30, ge=0, le=3600)
    max_cards: int = Field(
        100_000, ge=100, description="cards held at most; new owners are refused beyond it"
    )
    max_cards_per_owner: int = Field(
        256, ge=1, le=100_000, description="cards held at most from one node (its agents)"
    )
    max_cards_relayed_per_peer: int = Field(
        2_000, ge=0, description="cards of other owners held at most because one peer relayed them"
    )
    max_peers: int = Field(10_000, ge=16, description="peers remembered at most")
    target_peers: int = Field(
        8, ge=0, le=256, description="dial peers learned from cards up to this"
    )
    store_sync: Literal["normal", "full"] = Field(
        "normal", description="SQLite synchronous mode: normal survives kill -9, full an OS crash"
    )
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    max_batch_requests: int = Field(100, ge=1)
    max_concurrent_tasks: int = Field(4, ge=1, le=1024, description="task turns run at once")
    task_timeout_s: float = Field(300.0, gt=0, le=86_400, description="longest a turn may run")
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        le=300,
        description="on SIGTERM, how long running turns may still finish (results kept); keep"
        " it a few seconds under the supervisor's own limit (Kubernetes: 30 s)",
    )
    llm_base_url: str = Field(
        "", description="OpenAI-compatible endpoint for agents (key: NOOSPHERE_LLM_API_KEY)"
    )
    llm_model: str = Field("", description="model name at llm_base_url")
    rpc_header_timeout_s: float = Field(
        10.0, gt=0, le=600, description="a request's headers must arrive within this"
    )
    rpc_body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="a request's body must arrive within this"
    )
    rpc_write_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="close a connection whose client stops reading"
    )
    rpc_max_connections: int = Field(
        4096, ge=16, description="open HTTP connections; the oldest idle ones make room"
    )
    rpc_max_connections_per_ip: int = Field(
        256, ge=1, description="open HTTP connections per client IPv4 address or IPv6 /64"
    )
    rpc_max_in_flight: int = Field(
        1000, ge=1, description="requests being handled at once (idle connections do not count)"
    )
    rpc_nonces_per_peer: int = Field(
        6000, ge=10, description="signed requests one peer may have inside the replay window"
    )
    rpc_nonces_total: int = Field(
        100_000, ge=100, description="signed requests all peers may have inside the window"
    )
    rpc_anonymous_rate: float = Field(
        2.0,
        gt=0,
        description="A2A requests per second one anonymous client address (IPv4 or IPv6 /64)"
        " may make to the node's open agents (access: anyone), sustained",
    )
    rpc_anonymous_burst: int = Field(
        30, ge=1, description="A2A requests an anonymous client address may make at once"
    )
    push_private_targets: bool = Field(
        False, description="let remote peers register webhooks on private/loopback addresses"
    )
    abe_authorities: list[Path] = Field(
        default_factory=list,
        description="attribute authority public keys (or homes) whose attestations MARS trusts",
    )
    trusted_peers: list[str] = Field(
        default_factory=list,
        description="peer ids this node pre-trusts (EigenTrust's pre-trusted set): their ratings"
        " count in full from the start, and trust flows from them to the nodes they rate well",
    )
    chain_rpc: str = Field(
        "", description="EVM JSON-RPC URL of the ledger (default: the chain running in chain_home)"
    )
    chain_home: Path | None = Field(
        None,
        description="directory of `noosphere chain start`/`ledger deploy` (contract addresses);"
        " unset = no ledger: agents work for free, submissions pay nobody",
    )
    payment_window_s: int = Field(
        30, ge=1, le=86_400, description="a priced agent needs this long left on an escrow"
    )
    escrow_deadline_s: int = Field(
        300, ge=10, le=30 * 86_400, description="how long escrows this node opens run"
    )
    arbiter: str = Field(
        "default",
        description="arbiter named in escrows this node opens: 'default' (the deployment's),"
        " 'none' (no recourse against a committed result) or an EVM address",
    )
    accepted_arbiters: list[str] = Field(
        default_factory=lambda: ["default", "none"],
        description="arbiters this node's priced agents accept in an escrow: 'default' (the"
        " deployment's), 'none' (escrows without an arbiter) and/or EVM addresses",
    )
    auto_release: bool = Field(
        True,
        description="release an escrow as soon as the result matches the agent's commitment;"
        " false: the operator releases or disputes (noosphere ledger release|dispute)",
    )
    preload_models: bool = Field(
        True, description="load the embedding model at start rather than on the first task"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    gossip: GossipConfig = Field(default_factory=GossipConfig)

    @field_validator("bootstrap")
    @classmethod
    def _p2p_addrs(cls, value: list[str]) -> list[str]:
        for addr in value:
            if "/p2p/" not in addr or not addr.startswith("/"):
                raise ValueError(
                    f"bootstrap address {addr!r} must be a multiaddr ending in /p2p/<id>"
                )
        return value

    @field_validator("trusted_peers")
    @classmethod
    def _peer_ids(cls, value: list[str]) -> list[str]:
        from noosphere.protocol.identity import InvalidPeerId, public_key_from_peer_id

        for peer_id in value:
            try:
                public_key_from_peer_id(peer_id)
            except InvalidPeerId:
                raise ValueError(f"trusted peer {peer_id!r} is not a peer id") from None
        return value

    @field_validator("arbiter")
    @classmethod
    def _arbiter(cls, value: str) -> str:
        return _arbiter_setting(value)

    @field_validator("accepted_arbiters")
    @classmethod
    def _accepted_arbiters(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one arbiter ('default', 'none' or an address)")
        return [_arbiter_setting(v) for v in value]

    @property
    def effective_announce_interval_s(self) -> float:
        return self.announce_interval_s or self.card_ttl_s / 3

    @property
    def advertised_host(self) -> str:
        return self.public_host or ("127.0.0.1" if self.host == "0.0.0.0" else self.host)


def _arbiter_setting(value: str) -> str:
    """'default', 'none' or an EVM address (0x + 40 hex digits), as given."""
    value = value.strip()
    if value.lower() in ("default", "none"):
        return value.lower()
    if len(value) != 42 or not value.startswith("0x"):
        raise ValueError(f"arbiter {value!r} must be 'default', 'none' or an EVM address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise ValueError(f"arbiter {value!r} must be 'default', 'none' or an EVM address") from None
    return value


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``NOOSPHERE_RPC_PORT=1`` -> {"rpc_port": "1"}; lists are comma-separated."""
    overrides: dict[str, Any] = {}
    for field, info in NodeConfig.model_fields.items():
        raw = environ.get(ENV_PREFIX + field.upper())
        if raw is None or field == "gossip":
            continue
        overrides[field] = (
            [v for v in raw.split(",") if v]
            if info.annotation
            in (
                list[str],
                list[Path],
            )
            else raw
        )
    return overrides


def load_config(
    home: Path,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    *,
    write: bool = True,
) -> tuple[NodeConfig, bool]:
    """Build the node config for ``home``; returns it and whether the config file is new
    (created now, or, with ``write=False``, to be written by ``save_config`` once the node
    has started)."""
    path = home / CONFIG_FILENAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid UTF-8 TOML: {one_line(str(exc))}") from exc
    data |= _env_overrides(dict(os.environ if environ is None else environ))
    data |= {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        config = NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid node config: {describe_validation_error(exc)}") from exc
    created = not path.exists()
    if created and write:
        save_config(home, config)
    return config, created


def save_config(home: Path, config: NodeConfig) -> None:
    """Write ``HOME/config.toml`` (0600, atomically: a reader never sees half a file)."""
    path = home / CONFIG_FILENAME
    tmp = path.with_name(f".{CONFIG_FILENAME}.tmp")
    data = tomli_w.dumps(config.model_dump(mode="json", exclude_none=True)).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
