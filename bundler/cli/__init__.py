"""Command line: parse, build a frozen options object, call one library function.

Every command is a module-level function in one module per command group:
``workspace`` (variants, lock), ``pack``, ``verify``, ``sbom``, ``spark`` (spark-conf),
``image``, ``pyfiles``, ``publish``.  ``COMMANDS`` lists them; ``build_app`` adds them to
the app.  Each runs through ``runner.run`` (library call, ``--json`` or text, exit code);
the options they share and the mapping of errors to exit codes live in ``options``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from bundler import __version__
from bundler.cli.options import App

app = App(
    name="bundler",
    help="Lock, build and pack conda environments that Spark executors run from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Every command, in the order ``bundler --help`` lists them: (name, module, function).
COMMANDS = (
    ("variants", "bundler.cli.workspace", "variants"),
    ("lock", "bundler.cli.workspace", "lock"),
    ("pack", "bundler.cli.pack", "pack"),
    ("verify", "bundler.cli.verify", "verify"),
    ("sbom", "bundler.cli.sbom", "sbom"),
    ("spark-conf", "bundler.cli.spark", "spark_conf_command"),
    ("image", "bundler.cli.image", "image"),
    ("pyfiles", "bundler.cli.pyfiles", "pyfiles_command"),
    ("publish", "bundler.cli.publish", "publish_command"),
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"bundler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Lock, build and pack conda environments that Spark executors run from."""


def build_app() -> typer.Typer:
    """The app with every command added (once)."""
    if not app.registered_commands:
        for name, module, function in COMMANDS:
            app.command(name)(getattr(importlib.import_module(module), function))
    return app


def main() -> None:
    try:
        build_app()()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    if "rattler" in sys.modules:
        # rattler's runtime threads can abort interpreter finalisation (seen after a
        # failed solve, about one run in seven). All output is written and flushed and
        # every file was renamed into place already, so leave without finalising.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
