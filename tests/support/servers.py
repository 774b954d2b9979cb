"""Servers the tests start as subprocesses (moto_server, the Spark Connect server)."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL when ``proc`` has not exited ``timeout`` seconds later; reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
