"""All phases (operations): structured logs with structlog to stderr, console or JSON. libp2p's
stdlib loggers are attached explicitly (``import libp2p`` detaches them) and kept at WARNING.

Tracebacks are plain text (file, line, code), never with local variables: structlog's console
renderer defaults to rich tracebacks that print every frame's locals, which put request bodies,
bearer tokens and opened sealed text into the log. ``configure_default_logging`` applies the
same rule to processes that never call ``configure_logging`` (every CLI command)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else _console_renderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # JSON logs carry the traceback as an "exception" string (console renders it).
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("libp2p", "multiaddr", "uvicorn", "uvicorn.error"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
        lib.disabled = False
        lib.setLevel(max(numeric, logging.WARNING))


def _console_renderer(*, colors: bool) -> structlog.dev.ConsoleRenderer:
    """structlog's console renderer with plain tracebacks (no frame locals)."""
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


def configure_default_logging() -> None:
    """structlog's default pipeline, minus the locals in tracebacks, for code that logs before
    (or without) ``configure_logging``; a configuration made earlier is left alone."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            _console_renderer(colors=sys.stderr.isatty()),
        ]
    )
