"""What every benchmark script shares: machine facts for the JSON results, argparse help that
keeps the docstring's layout, argument checks, and SIGTERM stopping a run like Ctrl-C. bench/ is
not a package; scripts run as ``python bench/NAME.py`` and import this module by name."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from noosphere import __version__ as noosphere_version

BENCH_DIR = Path(__file__).resolve().parent


def machine_info(packages: Iterable[str] = ()) -> dict[str, Any]:
    """CPU, memory, Python, date, load, git commit and the versions of ``packages``."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "noosphere": noosphere_version,
        "loadavg_at_start": os.getloadavg(),
        "mem_total_mb": psutil.virtual_memory().total // 2**20,
    }
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            info[package] = version(package)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
    return info


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the docstring's layout and appends real defaults to the help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == []:
            return text
        if isinstance(default, Path):
            return text
        return text if "%(default)" in text else text + " (default: %(default)s)"


def add_json_option(parser: argparse.ArgumentParser, default: Path) -> None:
    """``--json PATH``: where the results go (default shown relative to the repository)."""
    repo = Path(__file__).resolve().parent.parent
    shown = default.relative_to(repo) if default.is_relative_to(repo) else default
    parser.add_argument(
        "--json", type=Path, default=default, help=f"output file (default: {shown})"
    )


def check_args(parser: argparse.ArgumentParser, checks: list[tuple[bool, str]]) -> None:
    """``parser.error`` (one line, exit 2) for the first failed check."""
    for ok, message in checks:
        if not ok:
            parser.error(message)


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """The run's JSON, pretty-printed, creating bench/results/ if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM stops a run like Ctrl-C (its servers are shut down), even when started with
    SIGINT ignored."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
