"""Where ``bundler publish`` can put an archive: one row per storage, opened through fsspec.

fsspec gives one file-system API over every back-end Spark reads archives from; each
back-end is the storage's own fsspec implementation (s3fs, gcsfs, adlfs, pyarrow's
HDFS client, fsspec's WebHDFS), installed as a bundler extra.  The table says, per
URI scheme, which implementation and extra it needs, whether a put is already atomic
(object stores complete a put or a multipart upload at once) or needs a temporary
name and a rename (file systems), and whether YARN's PUBLIC-cache rule applies.

Errors of the back-ends are translated into one ``PublishError`` line here:
missing credentials, an unreachable endpoint, a denied access, a missing bucket.
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from bundler.errors import PublishError


@dataclass(frozen=True)
class Backend:
    schemes: tuple[str, ...]
    protocol: str  # the fsspec protocol
    module: str | None  # the import that proves the extra is installed
    extra: str | None  # pip install 'bundler[EXTRA]'
    atomic_put: bool  # a put appears whole or not at all (object stores)
    yarn_cache: bool  # YARN's PUBLIC-cache rule (permissions) applies
    spark_scheme: str | None = None  # the scheme Spark's Hadoop file systems read


BACKENDS = (
    Backend(("file",), "file", None, None, atomic_put=False, yarn_cache=True),
    Backend(("s3", "s3a"), "s3", "s3fs", "s3", atomic_put=True, yarn_cache=False,
            spark_scheme="s3a"),
    Backend(("gs", "gcs"), "gcs", "gcsfs", "gcs", atomic_put=True, yarn_cache=False,
            spark_scheme="gs"),
    Backend(("abfs", "abfss", "az"), "abfs", "adlfs", "azure", atomic_put=True,
            yarn_cache=False),
    Backend(("hdfs",), "hdfs", "pyarrow", "hdfs", atomic_put=False, yarn_cache=True),
    Backend(("webhdfs",), "webhdfs", "requests", "hdfs", atomic_put=False, yarn_cache=True),
)  # fmt: skip


def backend_for(uri: str) -> Backend:
    """The row for ``uri``'s scheme; PublishError for a scheme no row has."""
    scheme = urlsplit(uri).scheme.lower()
    for backend in BACKENDS:
        if scheme in backend.schemes:
            return backend
    known = ", ".join(f"{s}://" for b in BACKENDS for s in b.schemes)
    raise PublishError(
        f"--to {uri}: unknown scheme {scheme + '://' if scheme else '(none)'}",
        f"publish to one of {known}",
    )


@dataclass(frozen=True)
class Destination:
    """A parsed ``--to`` URI: the back-end, the directory as given and as fsspec names it."""

    uri: str  # without a trailing slash
    backend: Backend
    path: str  # fsspec's path of the directory (no scheme)

    def uri_of(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def path_of(self, name: str) -> str:
        return posixpath.join(self.path, name) if self.path else name

    def spark_uri(self, uri: str) -> str:
        """``uri`` as Spark reads it: ``s3://`` becomes ``s3a://`` (Hadoop's S3 client)."""
        scheme = self.backend.spark_scheme
        if scheme is None:
            return uri
        return scheme + uri[uri.index(":") :]


def parse_destination(uri: str) -> Destination:
    backend = backend_for(uri)
    parts = urlsplit(uri)
    if backend.protocol == "file":
        if parts.netloc not in ("", "localhost"):
            raise PublishError(f"--to {uri}: file:// takes no host", "write file:///ABS/PATH")
        path = parts.path.rstrip("/") or "/"
        if not os.path.isabs(path):
            raise PublishError(f"--to {uri}: not an absolute path", "write file:///ABS/PATH")
        return Destination(f"file://{path}", backend, path)
    if backend.protocol in ("hdfs", "webhdfs"):
        path = parts.path.rstrip("/") or "/"
    else:
        if not parts.netloc:
            raise PublishError(
                f"--to {uri}: no bucket or container", f"write {parts.scheme}://BUCKET/PATH"
            )
        # abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH: the container is the root.
        bucket = parts.netloc.split("@", 1)[0]
        path = f"{bucket}{parts.path}".rstrip("/")
    return Destination(uri.rstrip("/"), backend, path)


def open_filesystem(dest: Destination) -> Any:
    """The fsspec file system for ``dest``; PublishError naming the extra when it is missing."""
    backend = dest.backend
    if backend.module is not None and importlib.util.find_spec(backend.module) is None:
        scheme = urlsplit(dest.uri).scheme
        raise PublishError(
            f"--to {dest.uri}: {scheme}:// needs {backend.module}, which is not installed",
            f"pip install 'bundler[{backend.extra}]'",
        )
    import fsspec

    options: dict[str, Any] = {}
    parts = urlsplit(dest.uri)
    if backend.protocol == "hdfs":
        options = {"host": parts.hostname or "default", "port": parts.port or 0}
    elif backend.protocol == "webhdfs":
        options = {"host": parts.hostname or "localhost", "port": parts.port or 9870}
    elif backend.protocol == "abfs" and "@" in parts.netloc:
        options = {"account_name": parts.netloc.split("@", 1)[1].split(".", 1)[0]}
    with remote_errors(dest.uri):
        return fsspec.filesystem(backend.protocol, **options)


# ------------------------------------------------------------------ errors

_NO_CREDENTIALS = {
    "NoCredentialsError",
    "PartialCredentialsError",
    "DefaultCredentialsError",
    "CredentialUnavailableError",
    "ClientAuthenticationError",
}
_UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ClientConnectorError",
    "ServerTimeoutError",
    "ConnectionError",
    "ServiceRequestError",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for e in _chain(exc) for cls in type(e).__mro__}


def translate(exc: Exception, uri: str) -> PublishError:
    """One line for a back-end's exception, by what it means to the user."""
    names = _names(exc)
    last = " ".join(str(exc).split())[:200] or type(exc).__name__
    if names & _NO_CREDENTIALS:
        return PublishError(
            f"{uri}: no credentials found for this storage",
            "for S3 set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; "
            "other storages take their usual credentials",
        )
    if names & _UNREACHABLE or isinstance(exc, ConnectionError | TimeoutError):
        return PublishError(
            f"{uri}: cannot reach the storage endpoint ({last})",
            "check the URI, the network and AWS_ENDPOINT_URL or the storage's endpoint setting",
        )
    if isinstance(exc, PermissionError):
        return PublishError(f"{uri}: access denied ({last})", "check the credentials' rights")
    if isinstance(exc, FileNotFoundError):
        return PublishError(f"{uri}: not found ({last})", "create the bucket or container first")
    return PublishError(f"{uri}: {type(exc).__name__}: {last}")


@contextmanager
def remote_errors(uri: str) -> Iterator[None]:
    """Turn a back-end's exception inside the block into one PublishError line."""
    try:
        yield
    except PublishError:
        raise
    except Exception as exc:
        raise translate(exc, uri) from exc


# ------------------------------------------------------------------ permissions


class Modes(Protocol):
    """Reading and setting POSIX permission bits on a file system that has them."""

    def mode(self, path: str) -> int: ...

    def chmod(self, path: str, mode: int) -> None: ...


class LocalModes:
    def mode(self, path: str) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)


class WebHdfsModes:
    """WebHDFS's GETFILESTATUS ``permission`` (octal text) and SETPERMISSION."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def mode(self, path: str) -> int:
        return int(str(self.fs.info(path).get("permission", "0")), 8)

    def chmod(self, path: str, mode: int) -> None:
        self.fs.chmod(path, format(mode, "o"))


class HadoopCliModes:
    """``hdfs dfs -stat %a`` and ``hdfs dfs -chmod``: pyarrow's HDFS client has no chmod,
    and a machine that reaches HDFS through libhdfs has Hadoop's CLI beside it."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        self.root = f"hdfs://{parts.netloc}" if parts.netloc else "hdfs://"

    def _url(self, path: str) -> str:
        return self.root + (path if path.startswith("/") else "/" + path)

    def mode(self, path: str) -> int:
        from bundler import proc

        out = proc.run(["hdfs", "dfs", "-stat", "%a", self._url(path)], what=f"stat {path}")
        return int(out.stdout.strip() or "0", 8)

    def chmod(self, path: str, mode: int) -> None:
        from bundler import proc

        proc.run(["hdfs", "dfs", "-chmod", format(mode, "o"), self._url(path)],
                 what=f"chmod {path}")  # fmt: skip


def modes_for(dest: Destination, fs: Any) -> Modes | None:
    """How to read and set permissions at ``dest``; None where YARN's PUBLIC-cache rule
    does not apply (object stores)."""
    if dest.backend.protocol == "file":
        return LocalModes()
    if dest.backend.protocol == "webhdfs":
        return WebHdfsModes(fs)
    if dest.backend.protocol == "hdfs":
        return HadoopCliModes(dest.uri)
    return None
