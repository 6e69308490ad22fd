"""The Settle settings of a node (Settle): which arbiter a requester names in its escrows, which
arbiters a priced agent accepts, and whether results are released without the operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from noosphere.node.config import ConfigError, load_config
from noosphere.node.settlement import resolve_accepted_arbiters, resolve_arbiter

ARBITER = "0x" + "ab" * 20
DEFAULT = "0x" + "cd" * 20


def test_defaults_name_the_deployments_arbiter_and_accept_it_or_none(tmp_path: Path) -> None:
    config, _ = load_config(tmp_path, environ={})
    assert config.arbiter == "default"
    assert config.accepted_arbiters == ["default", "none"]
    assert config.auto_release is True
    assert resolve_arbiter(config.arbiter, DEFAULT) == DEFAULT
    assert resolve_accepted_arbiters(config.accepted_arbiters, DEFAULT) == (
        frozenset({DEFAULT}),
        True,
    )
    # a deployment without a default arbiter: escrows name none, agents accept only none
    assert resolve_arbiter("default", None) is None
    assert resolve_accepted_arbiters(["default", "none"], None) == (frozenset(), True)


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "NOOSPHERE_ARBITER": "None",
        "NOOSPHERE_ACCEPTED_ARBITERS": f"{ARBITER},default",
        "NOOSPHERE_AUTO_RELEASE": "false",
    }
    config, _ = load_config(tmp_path, environ=environ)
    assert config.arbiter == "none" and resolve_arbiter(config.arbiter, DEFAULT) is None
    assert config.auto_release is False
    accepted, no_arbiter_ok = resolve_accepted_arbiters(config.accepted_arbiters, DEFAULT)
    assert accepted == {ARBITER.lower(), DEFAULT} and no_arbiter_ok is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arbiter", "0x1234"),
        ("arbiter", "someone"),
        ("arbiter", "0x" + "zz" * 20),
        ("accepted_arbiters", []),
        ("accepted_arbiters", ["default", "nobody"]),
    ],
)
def test_bad_arbiter_settings_fail_with_the_field_named(
    tmp_path: Path, field: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(tmp_path, overrides={field: value}, environ={})
