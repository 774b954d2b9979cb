"""A real S3 API for tests: ``moto_server`` (``python -m moto.server``) as a subprocess on a
free local port.

The server's access log (werkzeug's, on stderr) goes to a file; ``writes()`` reads
the requests that can write (PUT, POST, DELETE), which is how the tests prove that
publishing the same bytes again uploads nothing.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import stop

_REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)?(PUT|POST|DELETE|GET|HEAD) (\S+) HTTP/')


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    log: Path

    def env(self) -> dict[str, str]:
        """Environment variables that point boto (and so s3fs) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
        }

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the server logged so far."""
        text = self.log.read_text(errors="replace")
        return [(m.group(1), m.group(2)) for m in _REQUEST.finditer(text)]

    def writes(self, bucket: str) -> list[tuple[str, str]]:
        """The requests that could have written into ``bucket``'s objects."""
        return [
            (method, path)
            for method, path in self.requests()
            if method in ("PUT", "POST", "DELETE") and path.startswith(f"/{bucket}/")
        ]

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not listen on {port}:\n{log.read_text()}")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    # moto_server's own entry point, run by this interpreter (whatever PATH holds).
    server = [sys.executable, "-m", "moto.server"]
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*server, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(port, proc, log)
        yield S3Server(f"http://127.0.0.1:{port}", log)
    finally:
        stop(proc, timeout=30)
