"""The one place bundler runs other programs.

Each child is tied to bundler's life: on Linux it gets ``PR_SET_PDEATHSIG`` (SIGKILL),
so a bundler killed with ``kill -9`` (a CI timeout, ``timeout -s KILL``) takes its
pip, uv, buildah or java with it instead of leaving them writing into a build prefix.
The kernel sends that signal when the *thread* that forked exits; ``run`` waits for
the child in the thread that started it, so the thread outlives the child.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bundler.errors import SubprocessError, ToolMissingError
from bundler.events import NullReporter, Reporter

TAIL_LINES = 25
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die when bundler dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # bundler died before prctl took effect
            os._exit(128 + signal.SIGKILL)

    return preexec


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
            preexec_fn=_die_with_parent(),
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
