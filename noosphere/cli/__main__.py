"""``python -m noosphere.cli``: the ``noosphere`` command (the launcher starts nodes this way)."""

from noosphere.cli import app

app()
