"""What every benchmark script shares: machine facts for the JSON results, the command line
(``BenchParser``: help that keeps the docstring's layout, ``--json`` and the ``--smoke`` mode that
runs every stage at tiny sizes so the test suite can keep each benchmark working), argument
checks, and SIGTERM stopping a run like Ctrl-C. bench/ is not a package; scripts run as
``python bench/NAME.py`` and import this module by name."""

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
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
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


SMOKE_HELP = (
    "smoke run: every stage of the full run at tiny sizes ({sizes}; options given"
    " explicitly still win, and the minimums that only keep figures meaningful are relaxed);"
    " it checks that the benchmark works, its figures mean nothing; without --json the results"
    " go to a new temporary file (named at the end of the run), never to bench/results/"
)


def _shown(path: Path) -> Path:
    repo = BENCH_DIR.parent
    return path.relative_to(repo) if path.is_relative_to(repo) else path


def _as_options(sizes: Mapping[str, Any]) -> str:
    """``{"cards": [300, 2000], "no_or": True}`` -> ``--cards 300 2000 --no-or``."""
    out = []
    for dest, value in sizes.items():
        option = "--" + dest.replace("_", "-")
        if value is True:
            out.append(option)
        elif isinstance(value, list | tuple):
            out.append(
                " ".join([option, *(f"{v:g}" if isinstance(v, float) else str(v) for v in value)])
            )
        else:
            out.append(f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}")
    return " ".join(out)


class BenchParser(argparse.ArgumentParser):
    """The command line of a benchmark script: the module docstring as description (layout
    kept), real defaults in the help, ``--json PATH`` and ``--smoke``.

    ``results`` is where a full run writes its JSON when ``--json`` is not given: a path, a
    function of the parsed arguments (e.g. another file for a quick mode), or None (no file).
    ``smoke`` holds the sizes of the smoke run as argument defaults (dest -> value): with
    ``--smoke`` they replace the script's defaults, options given on the command line still
    win, and without ``--json`` the results go to a new temporary file, so a smoke run never
    overwrites bench/results/."""

    def __init__(
        self,
        prog: str,
        description: str | None,
        *,
        results: Path | Callable[[argparse.Namespace], Path] | None,
        smoke: Mapping[str, Any],
        results_help: str | None = None,
    ) -> None:
        super().__init__(prog=prog, description=description, formatter_class=HelpFormatter)
        self._results = results
        self._smoke = dict(smoke)
        if results_help is None:
            results_help = (
                f"default: {_shown(results)}" if isinstance(results, Path) else "default: none"
            )
        self.add_argument(
            "--json",
            type=Path,
            metavar="PATH",
            help=f"output file ({results_help}; with --smoke: a new temporary file)",
        )
        self.add_argument(
            "--smoke", action="store_true", help=SMOKE_HELP.format(sizes=_as_options(self._smoke))
        )

    def parse_args(self, args: Sequence[str] | None = None) -> argparse.Namespace:  # type: ignore[override]
        unknown = sorted(set(self._smoke) - {action.dest for action in self._actions})
        if unknown:  # an option was renamed and its smoke size would silently not apply
            raise ValueError(f"{self.prog}: smoke sizes for unknown options: {unknown}")
        parsed = super().parse_args(args)
        if parsed.smoke:
            self.set_defaults(**self._smoke)
            parsed = super().parse_args(args)
            print(
                f"[{Path(self.prog).stem}] smoke run: tiny sizes, the figures mean nothing",
                file=sys.stderr,
                flush=True,
            )
        if parsed.json is None:
            if parsed.smoke:
                parsed.json = smoke_results_file(self.prog)
            elif isinstance(self._results, Path):
                parsed.json = self._results
            elif self._results is not None:
                parsed.json = self._results(parsed)
        return parsed


def smoke_results_file(prog: str) -> Path:
    """A new, empty temporary file (0600) for a smoke run's JSON."""
    fd, name = tempfile.mkstemp(prefix=f"noosphere-bench-{Path(prog).stem}-smoke-", suffix=".json")
    os.close(fd)
    return Path(name)


def add_json_option(parser: argparse.ArgumentParser, default: Path) -> None:
    """``--json PATH``: where the results go (default shown relative to the repository), for a
    script built on a plain ArgumentParser; ``BenchParser`` adds it together with ``--smoke``."""
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
