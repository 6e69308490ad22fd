"""Node configuration: defaults < config.toml < NOOSPHERE_* env < overrides, and its errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from noosphere.node.config import CONFIG_FILENAME, ConfigError, NodeConfig, load_config
from noosphere.protocol import NodeKey

PEER = NodeKey.from_seed(bytes(32)).peer_id
BOOT_A = f"/ip4/10.0.0.1/tcp/4001/p2p/{PEER}"
BOOT_B = f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}"


def write_config(home: Path, text: str) -> None:
    (home / CONFIG_FILENAME).write_text(text)


def config_error(home: Path, **kwargs: object) -> str:
    """The message of the ConfigError that load_config raises, checked to be one line."""
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load_config(home, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_without_file_env_or_overrides(tmp_path: Path) -> None:
    config, _ = load_config(tmp_path, environ={})
    assert config == NodeConfig()
    assert (config.host, config.p2p_port, config.rpc_port) == ("127.0.0.1", 4001, 7070)
    assert config.bootstrap == []
    assert config.card_ttl_s == 60


def test_first_load_writes_config_file_and_reports_created(tmp_path: Path) -> None:
    config, created = load_config(tmp_path, overrides={"rpc_port": 7171}, environ={})
    assert created is True
    written = tomllib.loads((tmp_path / CONFIG_FILENAME).read_text())
    assert written["rpc_port"] == 7171
    assert NodeConfig.model_validate(written) == config


def test_second_load_reuses_written_values_and_reports_not_created(tmp_path: Path) -> None:
    load_config(tmp_path, overrides={"rpc_port": 7171, "name": "first"}, environ={})
    config, created = load_config(tmp_path, environ={})
    assert created is False
    assert (config.rpc_port, config.name) == (7171, "first")


def test_file_values_override_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, 'name = "from-file"\ncard_ttl_s = 90\n[gossip]\ndegree = 8\n')
    config, created = load_config(tmp_path, environ={})
    assert created is False
    assert (config.name, config.card_ttl_s, config.gossip.degree) == ("from-file", 90, 8)


def test_env_overrides_file(tmp_path: Path) -> None:
    write_config(tmp_path, "rpc_port = 1000\np2p_port = 1001\n")
    config, _ = load_config(tmp_path, environ={"NOOSPHERE_RPC_PORT": "2000"})
    assert (config.rpc_port, config.p2p_port) == (2000, 1001)


def test_overrides_beat_env_and_file(tmp_path: Path) -> None:
    write_config(tmp_path, "rpc_port = 1000\np2p_port = 1001\ncard_ttl_s = 90\n")
    environ = {"NOOSPHERE_RPC_PORT": "2000", "NOOSPHERE_P2P_PORT": "2001"}
    config, _ = load_config(tmp_path, overrides={"p2p_port": 3001}, environ=environ)
    assert (config.card_ttl_s, config.rpc_port, config.p2p_port) == (90, 2000, 3001)


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    environ = {"NOOSPHERE_RPC_PORT": "2000"}
    config, _ = load_config(tmp_path, overrides={"rpc_port": None}, environ=environ)
    assert config.rpc_port == 2000


def test_env_bootstrap_is_a_comma_separated_list(tmp_path: Path) -> None:
    config, _ = load_config(tmp_path, environ={"NOOSPHERE_BOOTSTRAP": f"{BOOT_A},,{BOOT_B},"})
    assert config.bootstrap == [BOOT_A, BOOT_B]


def test_env_agents_is_a_list_of_paths(tmp_path: Path) -> None:
    config, _ = load_config(tmp_path, environ={"NOOSPHERE_AGENTS": "a.yaml,b/c.toml"})
    assert config.agents == [Path("a.yaml"), Path("b/c.toml")]


def test_unrelated_env_variables_are_ignored(tmp_path: Path) -> None:
    environ = {"NOOSPHERE_NOT_A_FIELD": "1", "RPC_PORT": "1", "NOOSPHERE_GOSSIP": "x"}
    config, _ = load_config(tmp_path, environ=environ)
    assert config == NodeConfig()


def test_explicit_environ_replaces_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOOSPHERE_RPC_PORT", "1234")
    assert load_config(tmp_path, environ={})[0].rpc_port == 7070


def test_process_environment_is_used_when_environ_is_omitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOOSPHERE_RPC_PORT", "1234")
    assert load_config(tmp_path)[0].rpc_port == 1234


def test_rpc_port_out_of_range_names_field(tmp_path: Path) -> None:
    message = config_error(tmp_path, overrides={"rpc_port": 70000})
    assert "rpc_port" in message


def test_invalid_env_value_names_field(tmp_path: Path) -> None:
    message = config_error(tmp_path, environ={"NOOSPHERE_RPC_PORT": "not-a-port"})
    assert "rpc_port" in message


def test_bootstrap_without_p2p_component_names_field(tmp_path: Path) -> None:
    message = config_error(tmp_path, environ={"NOOSPHERE_BOOTSTRAP": "/ip4/10.0.0.1/tcp/4001"})
    assert "bootstrap" in message
    assert "/p2p/" in message


def test_unknown_key_in_file_names_it(tmp_path: Path) -> None:
    write_config(tmp_path, "rpc_prot = 7070\n")
    assert "rpc_prot" in config_error(tmp_path)


def test_unknown_nested_gossip_key_names_its_path(tmp_path: Path) -> None:
    write_config(tmp_path, "[gossip]\nfanout = 3\n")
    assert "gossip.fanout" in config_error(tmp_path)


def test_broken_toml_names_file(tmp_path: Path) -> None:
    write_config(tmp_path, "rpc_port = \n")
    message = config_error(tmp_path)
    assert str(tmp_path / CONFIG_FILENAME) in message
    assert "TOML" in message


def test_invalid_config_does_not_write_file(tmp_path: Path) -> None:
    config_error(tmp_path, overrides={"rpc_port": -1})
    assert not (tmp_path / CONFIG_FILENAME).exists()


def test_non_utf8_config_file_raises_config_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILENAME).write_bytes(b'name = "\xff\xfe"\n')
    assert CONFIG_FILENAME in config_error(tmp_path)


def test_announce_interval_defaults_to_a_third_of_card_ttl() -> None:
    assert NodeConfig(card_ttl_s=90).effective_announce_interval_s == 30
    assert NodeConfig().effective_announce_interval_s == pytest.approx(20)


def test_explicit_announce_interval_wins() -> None:
    assert NodeConfig(card_ttl_s=90, announce_interval_s=5).effective_announce_interval_s == 5


def test_advertised_host_replaces_wildcard_with_loopback() -> None:
    assert NodeConfig(host="0.0.0.0").advertised_host == "127.0.0.1"
    assert NodeConfig(host="10.1.2.3").advertised_host == "10.1.2.3"
    assert NodeConfig(host="0.0.0.0", public_host="node.example").advertised_host == "node.example"


def test_ledger_settings_are_optional_and_round_trip(tmp_path: Path) -> None:
    config, _ = load_config(tmp_path, environ={})
    assert config.chain_home is None and config.chain_rpc == ""
    assert "chain_home" not in tomllib.loads((tmp_path / CONFIG_FILENAME).read_text())
    other = tmp_path / "other"
    other.mkdir()
    chain = tmp_path / "chain"
    config, _ = load_config(other, environ={"NOOSPHERE_CHAIN_HOME": str(chain)})
    assert config.chain_home == chain
    again, created = load_config(other, environ={})
    assert not created and again.chain_home == chain


def test_trusted_peers_from_env_and_bad_ids_refused(tmp_path: Path) -> None:
    a, b = NodeKey.generate().peer_id, NodeKey.generate().peer_id
    config, _ = load_config(tmp_path, environ={"NOOSPHERE_TRUSTED_PEERS": f"{a},{b}"}, write=False)
    assert config.trusted_peers == [a, b]
    message = config_error(tmp_path, environ={"NOOSPHERE_TRUSTED_PEERS": "not-a-peer"}, write=False)
    assert "trusted peer 'not-a-peer' is not a peer id" in message
