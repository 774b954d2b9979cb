"""The one place bundler runs other programs."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bundler.errors import SubprocessError, ToolMissingError
from bundler.events import NullReporter, Reporter

TAIL_LINES = 25


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    hint: str = "",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    reporter: Reporter | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``, capturing its output; on failure raise with the output's tail.

    ``what`` names the action in the error ("pip install for variant base").
    """
    argv = [os.fspath(c) for c in cmd]
    (reporter or NullReporter()).step(f"$ {shlex.join(argv)}")
    full_env = None
    if env is not None:
        full_env = {**os.environ, **env}
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolMissingError(f"{what}: {argv[0]} is not installed", hint or "install it") from exc
    except subprocess.TimeoutExpired as exc:
        raise SubprocessError(f"{what}: timed out after {timeout}s", hint) from exc
    if proc.returncode != 0:
        output = (proc.stdout or "") + (proc.stderr or "")
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        last = tail.splitlines()[-1] if tail else f"exit code {proc.returncode}"
        raise SubprocessError(f"{what} failed: {last}", hint, output=tail)
    return proc
