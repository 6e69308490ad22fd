"""The ``noosphere abe`` commands (Execute): run an attribute authority, issue attribute keys to
agents' nodes, import them on the node, and seal or open files under a policy. Failures print
one line and exit non-zero (decrypt: 3 when the key does not satisfy the policy, 4 when the file
was changed or belongs to another authority, epoch or task)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .kit import fail, out, print_json

if TYPE_CHECKING:
    from noosphere.abe.authority import Authority, KeyBundle

abe_app = typer.Typer(
    help="Attribute-based encryption: authority, attribute keys, sealing files under a policy.",
    no_args_is_help=True,
)
authority_app = typer.Typer(help="Run an attribute authority.", no_args_is_help=True)
abe_app.add_typer(authority_app, name="authority")

AuthorityHome = Annotated[
    Path,
    typer.Option("--home", help="The authority's home directory.", envvar="NOOSPHERE_ABE_HOME"),
]

EXIT_NOT_AUTHORIZED = 3
EXIT_REJECTED = 4


def _authority(home: Path) -> Authority:
    from noosphere.abe.authority import Authority as _Authority
    from noosphere.abe.authority import AuthorityError

    try:
        return _Authority.load(home.expanduser())
    except AuthorityError as exc:
        fail(str(exc))


def _write_bundles(bundles: list[KeyBundle], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for bundle in bundles:
        path = out_dir / f"{bundle.holder}.epoch-{bundle.epoch}.abekey.json"
        path.write_text(bundle.model_dump_json(by_alias=True, indent=2) + "\n")
        paths.append(path)
    return paths


@authority_app.command("init")
def authority_init(home: AuthorityHome) -> None:
    """Create an authority: signing key, epoch-1 ABE master and public keys."""
    from noosphere.abe.authority import Authority, AuthorityError

    try:
        authority = Authority.init(home.expanduser())
    except (AuthorityError, OSError) as exc:
        fail(str(exc))
    public = authority.public_key()
    out.print(f"authority {public.fingerprint} (epoch {public.epoch}) in {authority.home}")
    out.print(f"  public key   {authority.home / 'public.key'} (give it to requesters)")
    out.print(f"  issuer       {authority.signing_key.peer_id}")


@authority_app.command("rekey")
def authority_rekey(
    home: AuthorityHome,
    revoke: Annotated[
        list[str] | None, typer.Option("--revoke", help="Peer id that gets no new key.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Where the new bundles go (default HOME/outbox)."),
    ] = None,
) -> None:
    """Start a new key epoch and re-issue keys to every holder except the revoked ones."""
    from noosphere.abe.authority import AuthorityError

    authority = _authority(home)
    try:
        bundles = authority.rekey(set(revoke or []))
        paths = _write_bundles(bundles, out_dir or authority.home / "outbox")
    except AuthorityError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    out.print(
        f"epoch {authority.epoch}: {len(paths)} bundles re-issued, {len(revoke or [])} revoked"
    )
    for path in paths:
        out.print(f"  {path}")


@abe_app.command("issue")
def issue(
    home: AuthorityHome,
    agent: Annotated[str, typer.Option("--agent", help="Peer id of the agent's node.")],
    attrs: Annotated[str, typer.Option("--attrs", help="Comma list: org:acme,role:analyst")],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Bundle file (default PEER_ID.epoch-N.abekey.json)."),
    ] = None,
    valid_days: Annotated[int, typer.Option("--valid-days", min=1, max=3650)] = 365,
) -> None:
    """Issue an attribute key to a node: sealed to its node key, with a signed attestation."""
    from noosphere.abe.authority import AuthorityError

    authority = _authority(home)
    try:
        bundle = authority.issue(
            agent, [a.strip() for a in attrs.split(",") if a.strip()], valid_days=valid_days
        )
        path = out_file or Path(f"{bundle.holder}.epoch-{bundle.epoch}.abekey.json")
        path.write_text(bundle.model_dump_json(by_alias=True, indent=2) + "\n")
    except AuthorityError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    out.print(f"key bundle for {agent} ({', '.join(bundle.attestation.attributes)}): {path}")
    out.print(f"  import it on that node: noosphere abe import --home NODE_HOME {path}")


@abe_app.command("import")
def import_key(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `noosphere abe issue`.")],
    home: Annotated[Path, typer.Option("--home", help="The node's home.", envvar="NOOSPHERE_HOME")],
) -> None:
    """Open a key bundle with this node's key and store the attribute key (0600)."""
    from noosphere.abe.authority import AuthorityError, import_bundle
    from noosphere.node.keystore import KeyFileError, load_or_create_node_key

    home = home.expanduser()
    if not (home / "node.key").exists():
        fail(f"{home} has no node.key; start the node once first")
    try:
        node_key, _ = load_or_create_node_key(home)
        imported = import_bundle(home, node_key, bundle.read_bytes())
    except (AuthorityError, KeyFileError, OSError) as exc:
        fail(str(exc))
    out.print(
        f"imported epoch-{imported.key.epoch} key of authority {imported.key.authority} for"
        f" {', '.join(imported.key.attributes)}: {imported.key_path}"
    )


@abe_app.command("encrypt")
def encrypt(
    source: Annotated[Path, typer.Argument(help="File to seal.")],
    target: Annotated[Path, typer.Argument(help="Where the sealed file goes.")],
    authority: Annotated[
        Path, typer.Option("--authority", help="Authority home or its public key file.")
    ],
    policy: Annotated[
        str, typer.Option("--policy", help='e.g. "(org:acme and role:analyst) or clearance:secret"')
    ],
    task_id: Annotated[str, typer.Option("--task-id", help="Bind the file to this task id.")] = "",
) -> None:
    """Seal a file so that only keys satisfying the policy open it."""
    from noosphere.abe.authority import AuthorityError, load_public_key
    from noosphere.abe.envelope import seal
    from noosphere.abe.fame import AbeError
    from noosphere.abe.policy import PolicyError

    try:
        public = load_public_key(authority.expanduser())
        sealed = seal(public, policy, source.read_bytes(), task_id)
        target.write_bytes(sealed)
    except (AuthorityError, PolicyError, AbeError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    out.print(f"sealed {source} ({source.stat().st_size} bytes) -> {target} ({len(sealed)} bytes)")


@abe_app.command("decrypt")
def decrypt(
    source: Annotated[Path, typer.Argument(help="A sealed file.")],
    target: Annotated[Path, typer.Argument(help="Where the plaintext goes.")],
    key: Annotated[Path, typer.Option("--key", help="Attribute key file (NODE_HOME/abe/*.key).")],
    task_id: Annotated[
        str | None, typer.Option("--task-id", help="Refuse files sealed for another task.")
    ] = None,
) -> None:
    """Open a sealed file; exit 3 if the key does not satisfy the policy, 4 if tampered."""
    from noosphere.abe.authority import AuthorityError, load_attribute_key
    from noosphere.abe.encoding import EncodingError
    from noosphere.abe.envelope import EnvelopeError, open_sealed
    from noosphere.abe.fame import NotAuthorized

    try:
        attribute_key = load_attribute_key(key.expanduser())
        plaintext = open_sealed(attribute_key, source.read_bytes(), task_id=task_id)
        target.write_bytes(plaintext)
    except NotAuthorized as exc:
        fail(f"{exc} (key attributes: {', '.join(attribute_key.attributes)})", EXIT_NOT_AUTHORIZED)
    except (EnvelopeError, EncodingError) as exc:
        fail(str(exc), EXIT_REJECTED)
    except AuthorityError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    out.print(f"opened {source} -> {target} ({len(plaintext)} bytes)")


@abe_app.command("inspect")
def inspect(source: Annotated[Path, typer.Argument(help="A sealed file.")]) -> None:
    """Show who can open a sealed file (authority, epoch, policy, task id); no key needed."""
    from noosphere.abe.encoding import EncodingError
    from noosphere.abe.envelope import EnvelopeError, read_header

    try:
        header = read_header(source.read_bytes())
    except (EnvelopeError, EncodingError) as exc:
        fail(str(exc), EXIT_REJECTED)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    print_json(
        {
            "authority": header.authority,
            "epoch": header.epoch,
            "policy": str(header.policy),
            "taskId": header.task_id,
            "rows": len(header.ciphertext.rows),
        }
    )
