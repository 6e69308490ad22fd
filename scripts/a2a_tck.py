#!/usr/bin/env python3
"""Execute (conformance): run the official A2A conformance kit (a2a-tck, A2A v1.0) against a node.

Starts one node (a temporary home) running the kit's scenario agent (bench/agents/tck.yaml, open
to anonymous callers: the kit has no credentials), then runs the kit once per binding (JSON-RPC,
HTTP+JSON) as an anonymous client, the way any standard A2A client meets an open agent. The
kit's GetExtendedAgentCard checks call without credentials, which A2A 13.3 forbids a server to
answer ("MUST require authentication"), so those checks run a second time with the operator's
token (the kit's ``authplug``). Writes bench/results/a2a-tck-<binding>.json: the kit's score,
every MUST/SHOULD/MAY requirement with its result, the re-run with credentials, and each
failure the docs (docs/protocol.md, "Conformance kit") explain as a defect of the kit.

The kit is copied to a scratch folder (it writes reports/ next to itself; the original is not
changed) and installed into its own virtualenv (``--venv``, created when missing).

    .venv/bin/python scripts/a2a_tck.py [--kit ../shared/a2a-tck] [--venv /tmp/tck-venv]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noosphere.node.launcher import LocalNode, spawn_node

REPO = Path(__file__).resolve().parents[1]
AGENT = REPO / "bench" / "agents" / "tck.yaml"
RESULTS = REPO / "bench" / "results"
BINDINGS = ("jsonrpc", "http_json")
#: The node's settings for the run: the kit sends a few hundred requests in half a minute from
#: one address, and registers its webhook receiver on localhost.
NODE_CONFIG = """\
push_private_targets = true
rpc_anonymous_rate = 1000.0
rpc_anonymous_burst = 1000
"""
#: Checks that need credentials the kit cannot present (re-run with the operator token).
NEEDS_CREDENTIALS = ("CARD-EXT-001", "CARD-EXT-002")
#: Checks that are wrong (why: docs/protocol.md, "Conformance kit").
KIT_DEFECTS = {
    "CORE-SEND-003": "the requirement expects ContentTypeNotSupportedError, but the kit's"
    " runner has no expected error for it and counts the error as a failure",
}


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)


def ensure_kit(kit: Path, venv: Path, scratch: Path) -> tuple[Path, Path]:
    """A scratch copy of the kit and the python of its virtualenv."""
    copy = scratch / "a2a-tck"
    shutil.copytree(kit, copy, ignore=shutil.ignore_patterns("reports", ".venv", "__pycache__"))
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the kit's virtualenv in {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if _run([str(python), "-c", "import tck"]).returncode != 0:
        print("installing the kit into its virtualenv")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(copy)], check=True)
    return copy, python


@contextlib.contextmanager
def tck_node(scratch: Path) -> Iterator[LocalNode]:
    home = scratch / "node"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(NODE_CONFIG)
    node = spawn_node(home, agents=[AGENT], timeout=90.0)
    try:
        yield node
    finally:
        node.stop()


def run_kit(
    python: Path, copy: Path, url: str, binding: str, *, token: str | None = None, only: str = ""
) -> dict[str, Any]:
    """One kit run; its compatibility report (reports/compatibility.json)."""
    report = copy / "reports" / "compatibility.json"
    report.unlink(missing_ok=True)
    cmd = [str(python), "run_tck.py", "--sut-host", url, "--transport", binding]
    extra: list[str] = []
    env = dict(os.environ)
    if token is not None:
        extra += ["-p", "authplug"]
        env.update(NOOS_TOKEN=token, PYTHONPATH=str(copy))
    if only:
        extra += ["-k", only]
    if extra:
        cmd += ["--", *extra]
    done = _run(cmd, cwd=copy, env=env, timeout=900)
    if not report.exists():
        raise SystemExit(f"a2a_tck: error: the kit wrote no report:\n{done.stdout[-3000:]}")
    tail = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    print(f"  {binding}{' (with credentials, ' + only + ')' if token else ''}: {tail[-1:]}")
    return json.loads(report.read_text())


def requirements_of(report: dict[str, Any], binding: str) -> dict[str, dict[str, Any]]:
    """Requirement id -> level, result on ``binding`` (PASS, FAIL, SKIPPED) and errors."""
    out = {}
    for rid, entry in report["per_requirement"].items():
        result = entry["transports"].get(binding)
        if result is not None:
            out[rid] = {"level": entry["level"], "result": result, "errors": entry["errors"]}
    return out


def score(requirements: dict[str, dict[str, Any]], level: str, passing: set[str]) -> dict[str, Any]:
    """Passed / (passed + failed) of one level; ``passing``: failures counted as passed."""
    rows = {r: v for r, v in requirements.items() if v["level"] == level}
    passed = sorted(r for r, v in rows.items() if v["result"] == "PASS" or r in passing)
    failed = sorted(r for r, v in rows.items() if v["result"] == "FAIL" and r not in passing)
    skipped = sorted(r for r, v in rows.items() if v["result"] not in ("PASS", "FAIL"))
    judged = len(passed) + len(failed)
    return {
        "percent": round(100 * len(passed) / judged, 1) if judged else None,
        "passed": len(passed),
        "failed": failed,
        "skipped": skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kit", type=Path, default=REPO.parent / "shared" / "a2a-tck")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "tck-venv")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON results")
    args = parser.parse_args()
    if not (args.kit / "run_tck.py").exists():
        parser.error(f"no conformance kit at {args.kit} (give --kit)")
    with tempfile.TemporaryDirectory(prefix="a2a-tck-") as tmp:
        scratch = Path(tmp)
        copy, python = ensure_kit(args.kit, args.venv, scratch)
        with tck_node(scratch) as node:
            print(f"node {node.rpc_url} runs {AGENT.relative_to(REPO)}")
            for binding in BINDINGS:
                anonymous = run_kit(python, copy, node.rpc_url, binding)
                with_token = run_kit(
                    python,
                    copy,
                    node.rpc_url,
                    binding,
                    token=node.token,
                    only=" or ".join(NEEDS_CREDENTIALS),
                )
                write(args.out, binding, anonymous, with_token)
    return 0


def write(out: Path, binding: str, anonymous: dict[str, Any], with_token: dict[str, Any]) -> None:
    """bench/results/a2a-tck-<binding>.json from the anonymous run and the credentialed one."""
    requirements = requirements_of(anonymous, binding)
    rerun = requirements_of(with_token, binding)
    credentialed = {r for r in NEEDS_CREDENTIALS if rerun.get(r, {}).get("result") == "PASS"}
    explained = credentialed | {
        r for r in KIT_DEFECTS if requirements.get(r, {}).get("result") == "FAIL"
    }
    payload = {
        "kit": "a2a-tck 1.0-dev 357c4a8 (A2A v1.0.0)",
        "binding": binding,
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO).stdout.strip(),
        "agent": str(AGENT.relative_to(REPO)),
        "caller": "anonymous (no credentials), open agent",
        "kit_summary": anonymous["summary"],
        "must": score(requirements, "MUST", set()),
        "must_after_explained": score(requirements, "MUST", explained),
        "should": score(requirements, "SHOULD", set()),
        "may": score(requirements, "MAY", set()),
        "with_credentials": {r: rerun.get(r, {}).get("result") for r in NEEDS_CREDENTIALS},
        "kit_defects": {r: why for r, why in KIT_DEFECTS.items() if r in requirements},
        "requirements": requirements,
    }
    path = out / f"a2a-tck-{binding}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    must, fixed = payload["must"], payload["must_after_explained"]
    print(
        f"  {binding}: MUST {must['percent']}% ({must['passed']} passed, failed {must['failed']});"
        f" {fixed['percent']}% with the kit's defects and credentialed checks explained"
        f" -> {path.relative_to(REPO) if path.is_relative_to(REPO) else path}"
    )


if __name__ == "__main__":
    sys.exit(main())
