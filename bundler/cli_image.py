"""CLI command(s) for bundler.image (registered by bundler.cli.build_app)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""
