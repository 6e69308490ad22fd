"""``noosphere abe``: authority init, issue to a node, import, encrypt, decrypt (exit 3 when the
key does not satisfy the policy, 4 when the file was changed), inspect, rekey, and one-line
errors for missing files."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from noosphere.cli.abe import EXIT_NOT_AUTHORIZED, EXIT_REJECTED, abe_app
from noosphere.node.keystore import KEY_FILENAME, write_secret_file
from noosphere.protocol import NodeKey

runner = CliRunner()


def run(*args: str | Path) -> Result:
    return runner.invoke(abe_app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def make_node(home: Path) -> NodeKey:
    home.mkdir(parents=True)
    key = NodeKey.generate()
    write_secret_file(home / KEY_FILENAME, key.to_pem())
    return key


@dataclass
class Setup:
    root: Path
    authority: Path
    analyst: Path  # node home with an org:acme + role:analyst key
    intern: Path  # node home with an org:acme key only
    analyst_key: Path
    intern_key: Path
    plain: Path
    sealed: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("cli")
    authority = root / "authority"
    result = run("authority", "init", "--home", authority)
    assert result.exit_code == 0, result.output
    assert "epoch 1" in result.stdout and "public.key" in result.stdout

    key_paths = []
    for name, attrs in (("analyst", "org:acme, role:analyst"), ("intern", "org:acme")):
        node_home = root / name
        node = make_node(node_home)
        bundle = root / f"{name}.abekey.json"
        result = run(
            "issue", "--home", authority, "--agent", node.peer_id, "--attrs", attrs, "--out", bundle
        )
        assert result.exit_code == 0, result.output
        assert bundle.exists() and json.loads(bundle.read_text())["holder"] == node.peer_id
        result = run("import", bundle, "--home", node_home)
        assert result.exit_code == 0, result.output
        [key_path] = (node_home / "abe").glob("*.key")
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert str(key_path) in result.stdout.replace("\n", "")
        key_paths.append(key_path)

    plain = root / "plain.bin"
    plain.write_bytes(b"task payload\n\x00\xff" * 100)
    sealed = root / "plain.bin.abe"
    result = run(
        "encrypt",
        plain,
        sealed,
        "--authority",
        authority,
        "--policy",
        "org:acme and role:analyst",
        "--task-id",
        "task-1",
    )
    assert result.exit_code == 0, result.output
    assert "sealed" in result.stdout
    return Setup(root, authority, root / "analyst", root / "intern", *key_paths, plain, sealed)


def test_decrypt_with_a_satisfying_key(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    result = run("decrypt", setup.sealed, out, "--key", setup.analyst_key, "--task-id", "task-1")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == setup.plain.read_bytes()
    result = run("decrypt", setup.sealed, out, "--key", setup.analyst_key)  # no task check
    assert result.exit_code == 0


def test_decrypt_with_a_key_that_does_not_satisfy_exits_3(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    result = run("decrypt", setup.sealed, out, "--key", setup.intern_key)
    assert result.exit_code == EXIT_NOT_AUTHORIZED == 3
    line = one_line_error(result)
    assert "do not satisfy the policy" in line and "org:acme" in line
    assert not out.exists()


def test_tampered_file_exits_4(setup: Setup, tmp_path: Path) -> None:
    data = bytearray(setup.sealed.read_bytes())
    out = tmp_path / "out.bin"
    for position in (len(data) - 1, len(data) - 40, 8):  # tag, body, authority
        changed = bytearray(data)
        changed[position] ^= 1
        tampered = tmp_path / "tampered.abe"
        tampered.write_bytes(bytes(changed))
        result = run("decrypt", tampered, out, "--key", setup.analyst_key)
        assert result.exit_code == EXIT_REJECTED == 4, (position, result.output)
        one_line_error(result)
    truncated = tmp_path / "truncated.abe"
    truncated.write_bytes(bytes(data[:100]))
    result = run("decrypt", truncated, out, "--key", setup.analyst_key)
    assert result.exit_code == 4 and "truncated" in one_line_error(result)
    assert not out.exists()


def test_wrong_task_id_exits_4(setup: Setup, tmp_path: Path) -> None:
    result = run(
        "decrypt", setup.sealed, tmp_path / "o", "--key", setup.analyst_key, "--task-id", "task-2"
    )
    assert result.exit_code == 4 and "task-1" in one_line_error(result)


def test_inspect_prints_policy_and_epoch(setup: Setup) -> None:
    result = run("inspect", setup.sealed)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["policy"] == "org:acme and role:analyst"
    assert shown["epoch"] == 1 and shown["taskId"] == "task-1" and shown["rows"] == 2
    assert len(shown["authority"]) == 32


@pytest.mark.parametrize(
    "args",
    [
        ("decrypt", "{root}/missing.abe", "{root}/o", "--key", "{analyst_key}"),
        ("decrypt", "{sealed}", "{root}/o", "--key", "{root}/missing.key"),
        ("encrypt", "{root}/missing.txt", "{root}/o", "--authority", "{authority}",
         "--policy", "org:acme"),
        ("encrypt", "{plain}", "{root}/o", "--authority", "{root}/nowhere", "--policy", "org:acme"),
        ("encrypt", "{plain}", "{root}/o", "--authority", "{authority}", "--policy", "org:acme or"),
        ("decrypt", "{sealed}", "{root}/no-dir/o", "--key", "{analyst_key}"),
        ("inspect", "{root}/missing.abe"),
        ("import", "{root}/missing.json", "--home", "{analyst}"),
        ("import", "{root}/analyst.abekey.json", "--home", "{root}/no-node"),
        ("issue", "--home", "{root}/no-authority", "--agent", "x", "--attrs", "org:acme"),
        ("issue", "--home", "{authority}", "--agent", "12D3KooWbad", "--attrs", "org:acme"),
        ("authority", "rekey", "--home", "{root}/no-authority"),
        ("authority", "init", "--home", "{authority}"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_exit_1(setup: Setup, args: tuple[str, ...]) -> None:
    values = {name: str(getattr(setup, name)) for name in Setup.__dataclass_fields__}
    result = run(*(arg.format(**values) for arg in args))
    assert result.exit_code == 1, result.output
    one_line_error(result)


def test_bundle_for_another_node_is_refused(setup: Setup, tmp_path: Path) -> None:
    make_node(tmp_path / "other")
    result = run("import", setup.root / "analyst.abekey.json", "--home", tmp_path / "other")
    assert result.exit_code == 1 and "another node" in one_line_error(result)


def test_rekey_with_revoke(tmp_path: Path) -> None:
    authority = tmp_path / "authority"
    assert run("authority", "init", "--home", authority).exit_code == 0
    nodes = {}
    for name in ("keep", "drop"):
        nodes[name] = make_node(tmp_path / name)
        bundle = tmp_path / f"{name}.json"
        agent = nodes[name].peer_id
        assert (
            run(
                "issue",
                "--home",
                authority,
                "--agent",
                agent,
                "--attrs",
                "org:acme",
                "--out",
                bundle,
            ).exit_code
            == 0
        )
        assert run("import", bundle, "--home", tmp_path / name).exit_code == 0
    outbox = tmp_path / "outbox"
    result = run(
        "authority",
        "rekey",
        "--home",
        authority,
        "--revoke",
        nodes["drop"].peer_id,
        "--out-dir",
        outbox,
    )
    assert result.exit_code == 0, result.output
    assert "epoch 2: 1 bundles re-issued, 1 revoked" in result.stdout
    [new_bundle] = outbox.iterdir()
    assert new_bundle.name == f"{nodes['keep'].peer_id}.epoch-2.abekey.json"

    plain, sealed = tmp_path / "p", tmp_path / "p.abe"
    plain.write_bytes(b"epoch two data")
    assert (
        run(
            "encrypt",
            plain,
            sealed,
            "--authority",
            authority / "public.key",
            "--policy",
            "org:acme",
        ).exit_code
        == 0
    )
    assert json.loads(run("inspect", sealed).stdout)["epoch"] == 2

    [old_key] = (tmp_path / "drop" / "abe").glob("*.key")
    result = run("decrypt", sealed, tmp_path / "o", "--key", old_key)
    assert result.exit_code == 4 and "epoch 2" in one_line_error(result)

    assert run("import", new_bundle, "--home", tmp_path / "keep").exit_code == 0
    new_keys = [p for p in (tmp_path / "keep" / "abe").glob("*.key")]
    assert len(new_keys) == 2
    outcomes = {run("decrypt", sealed, tmp_path / "o", "--key", k).exit_code for k in new_keys}
    assert outcomes == {0, 4}  # the epoch-2 key opens it, the epoch-1 key does not
    assert (tmp_path / "o").read_bytes() == b"epoch two data"
