"""bundler.spark.attach: one bundler archive for one Spark Connect session.

The unit tests check attach's own decisions (which sessions, which archives, the
Python warning) on sessions whose classes derive from pyspark's real Connect and
classic ``SparkSession`` but talk to no server.  The integration test starts a real
Spark Connect server from the pyspark package, opens two sessions on it, attaches
the packed ``app`` archive to one and runs a Python UDF in both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundler.deliver.connect import PYTHON_CONF, Attached, PythonMismatchWarning
from bundler.errors import AttachError, ClassicSessionError
from bundler.spark import attach
from tests.support.servers import stop

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


# --- sessions that talk to no server ------------------------------------------------------


class FakeConf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def connect_session() -> Any:
    """A subclass of pyspark's Connect SparkSession that records what attach does."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    class RecordingSession(ConnectSession):
        def __init__(self) -> None:
            self.artifacts: list[tuple[tuple[str, ...], dict[str, bool]]] = []
            self.settings: dict[str, str] = {}

        def addArtifacts(self, *path: str, **kinds: bool) -> None:
            self.artifacts.append((path, kinds))

        @property
        def conf(self) -> Any:
            return FakeConf(self.settings)

        @property
        def session_id(self) -> str:
            return "session-1"

        def __del__(self) -> None:
            pass

    return RecordingSession()


def classic_session() -> Any:
    from pyspark.sql import SparkSession

    class NoJvmSession(SparkSession):
        def __init__(self) -> None:
            pass

    return NoJvmSession()


def fake_archive(
    directory: Path, name: str = "app-linux-64.tar.gz", python: str | None = HERE + ".7"
) -> Path:
    """A small tar.gz with bin/python, and a manifest beside it as bundler pack writes."""
    tree = directory / "tree"
    (tree / "bin").mkdir(parents=True, exist_ok=True)
    (tree / "bin" / "python").write_text("#!/bin/sh\n")
    archive = directory / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "bin", arcname="bin")
    write_manifest(archive, python=python)
    return archive


def write_manifest(archive: Path, python: str | None = HERE + ".7", **archive_fields: Any) -> None:
    record = {"name": archive.name, "size": archive.stat().st_size, **archive_fields}
    manifest = {"variant": "app", "platform": "linux-64", "python": python, "archive": record}
    archive.with_name(archive.name + ".json").write_text(json.dumps(manifest))


# --- unit tests -----------------------------------------------------------------------------


def test_attach_uploads_the_archive_and_sets_the_python(tmp_path: Path) -> None:
    archive = fake_archive(tmp_path)
    session = connect_session()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = attach(session, str(archive), name="pyenv")

    uri = f"{archive.resolve().as_uri()}#pyenv"
    assert session.artifacts == [((uri,), {"archive": True})]
    assert session.settings == {PYTHON_CONF: "pyenv/bin/python"}
    assert result == Attached(
        archive=archive.resolve(),
        artifact=uri,
        name="pyenv",
        python="pyenv/bin/python",
        variant="app",
        archive_python=HERE + ".7",
        session_id="session-1",
    )


def test_attach_resolves_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = fake_archive(tmp_path, name="with space.tgz")
    monkeypatch.chdir(tmp_path)
    session = connect_session()
    result = attach(session, "with space.tgz")
    assert result.artifact == f"{archive.resolve().as_uri()}#env"
    assert "%20" in result.artifact  # a file URI: the Connect client unquotes it again
    assert session.settings == {PYTHON_CONF: "env/bin/python"}


def test_classic_session_points_to_spark_conf(tmp_path: Path) -> None:
    archive = fake_archive(tmp_path)
    with pytest.raises(ClassicSessionError) as info:
        attach(classic_session(), archive)
    text = str(info.value)
    assert "\n" not in text
    assert "Spark Connect" in text
    assert f"bundler spark-conf VARIANT --archive {archive}" in text


def test_a_non_session_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AttachError, match="needs a Spark Connect SparkSession, got dict"):
        attach({}, fake_archive(tmp_path))


@pytest.mark.parametrize(
    "python, expected",
    [
        ("2.7.18", f"holds Python 2.7.18 but this client runs Python {HERE}.*Python 2.7 client"),
        (None, f"records no Python version.*Python {HERE}"),
    ],
)
def test_python_minor_mismatch_warns(tmp_path: Path, python: str | None, expected: str) -> None:
    archive = fake_archive(tmp_path, python=python)
    session = connect_session()
    with pytest.warns(PythonMismatchWarning, match=expected):
        result = attach(session, archive)
    # A warning, not a refusal: the archive is still attached.
    assert len(session.artifacts) == 1
    assert result.archive_python == python


def make_zip(path: Path, link: bool) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bin/python3.11", "binary")
        if link:
            info = zipfile.ZipInfo("bin/python")
            info.create_system = 3
            info.external_attr = (0o120777) << 16
            zf.writestr(info, "python3.11")
    write_manifest(path)
    return path


def test_zip_without_symlinks_is_attached(tmp_path: Path) -> None:
    session = connect_session()
    attach(session, make_zip(tmp_path / "app.zip", link=False))
    assert session.settings == {PYTHON_CONF: "env/bin/python"}


def _missing(tmp: Path) -> Path:
    return tmp / "nope.tar.gz"


def _no_manifest(tmp: Path) -> Path:
    archive = fake_archive(tmp)
    archive.with_name(archive.name + ".json").unlink()
    return archive


def _tar(tmp: Path) -> Path:
    archive = tmp / "app.tar"
    archive.write_bytes(b"x")
    write_manifest(archive)
    return archive


def _wheel(tmp: Path) -> Path:
    archive = tmp / "app.tar.zst"
    archive.write_bytes(b"x")
    write_manifest(archive)
    return archive


def _other_archive(tmp: Path) -> Path:
    archive = fake_archive(tmp)
    write_manifest(archive, size=1)
    return archive


def _hash_in_path(tmp: Path) -> Path:
    (tmp / "a#b").mkdir()
    return fake_archive(tmp / "a#b")


@pytest.mark.parametrize(
    "make, expected",
    [
        (_missing, "nope.tar.gz: no such archive"),
        (_no_manifest, "not a bundler archive .no app-linux-64.tar.gz.json beside it"),
        (_tar, "Spark unpacks .tar with Java .* drops the exec bit"),
        (_wheel, "Spark only unpacks .tar.gz, .tgz, .zip and .jar"),
        (_other_archive, "the manifest belongs to another archive"),
        (_hash_in_path, "cannot upload a path that contains '#'"),
        (lambda tmp: make_zip(tmp / "app.zip", link=True), "holds 1 symlink.* bin/python"),
    ],
)
def test_bad_archives_are_refused_in_one_line(tmp_path: Path, make: Any, expected: str) -> None:
    archive = make(tmp_path)
    session = connect_session()
    with pytest.raises(AttachError, match=expected) as info:
        attach(session, archive)
    assert "\n" not in str(info.value)
    assert session.artifacts == [] and session.settings == {}


@pytest.mark.parametrize("name", ["", "a/b", "..", "e#v"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    session = connect_session()
    with pytest.raises(AttachError, match="must be a plain directory name"):
        attach(session, fake_archive(tmp_path), name=name)
    assert session.artifacts == []


def test_importing_bundler_spark_needs_no_solver_nor_conda_pack() -> None:
    code = (
        "import bundler.spark, sys; "
        "assert callable(bundler.spark.attach); "
        "bad = [m for m in ('rattler', 'conda_pack', 'pyspark') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- a real Spark Connect server -----------------------------------------------------------

_STARTED = re.compile(r"Spark Connect server started at: \S+:(\d+)")


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server (``local[2]``) from the pyspark package: its sc:// URL.

    Port 0 lets the server pick a free port, read back from its log.  Its temporary
    files, session artifacts included, stay in the test's directory.
    """
    import pyspark

    root = tmp_path_factory.mktemp("connect")
    log = root / "server.log"
    home = Path(pyspark.__file__).parent
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # The server's own Python workers (sessions without attach) use this venv's.
        "PYSPARK_PYTHON": sys.executable,
    }
    for var in ("PYSPARK_DRIVER_PYTHON", "PYTHONPATH", "SPARK_REMOTE", "SPARK_CONNECT_MODE"):
        env.pop(var, None)
    cmd = [
        str(home / "bin" / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master",
        "local[2]",
        "--driver-java-options",
        f"-Djava.io.tmpdir={root}",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        "spark.connect.grpc.binding.port=0",
        "--conf",
        f"spark.local.dir={root / 'local'}",
        "--conf",
        "spark.ui.enabled=false",
        "spark-internal",
    ]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        port = None
        deadline = time.monotonic() + 240  # a guard against a hang, not a speed test
        while port is None:
            found = _STARTED.search(log.read_text(errors="replace"))
            if found:
                port = int(found.group(1))
            elif server.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                state = f"exit {server.returncode}" if server.poll() is not None else "no start"
                pytest.fail(f"Spark Connect server: {state}\n$ {' '.join(cmd)}\n{tail}")
            else:
                time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop(server, timeout=60)


@pytest.mark.spark
@pytest.mark.integration
def test_attach_runs_one_sessions_udfs_from_the_archive(
    connect_url: str, packed_archive: tuple[Path, dict[str, Any]]
) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import udf
    from pyspark.sql.types import StringType

    archive, manifest = packed_archive
    modules = [m for m in manifest["imports"] if m.split(".")[0] not in ("pyspark", "py4j")]
    assert "dateutil" in modules

    def probe(_: int) -> str:
        # Runs in the session's Python worker on the server.
        import importlib
        import os
        import sys

        files: dict[str, str | None] = {}
        for m in modules:
            try:
                files[m] = importlib.import_module(m).__file__
            except ImportError:
                files[m] = None
        return json.dumps(
            {
                "executable": sys.executable,
                "prefix": sys.prefix,
                "cwd": os.getcwd(),
                "version": "{}.{}".format(*sys.version_info[:2]),
                "files": files,
            }
        )

    def run(session: Any) -> list[dict[str, Any]]:
        probe_udf = udf(probe, StringType(), useArrow=False)
        rows = session.range(4).repartition(2).select(probe_udf("id").alias("p")).collect()
        return [json.loads(r.p) for r in rows]

    # The Connect client marks this process as Connect-only (SPARK_CONNECT_MODE_ENABLED,
    # SPARK_REMOTE in os.environ); later classic sessions and spark-submit runs of this
    # test process must not inherit that.
    saved_environ = dict(os.environ)
    attached = SparkSession.builder.remote(connect_url).create()
    other = SparkSession.builder.remote(connect_url).create()
    try:
        assert attached.session_id != other.session_id

        result = attach(attached, archive)

        assert result.session_id == attached.session_id
        assert result.archive_python is not None and result.archive_python.startswith(HERE)
        assert attached.conf.get(PYTHON_CONF) == "env/bin/python"
        assert other.conf.get(PYTHON_CONF, None) in (None, "")
        mine, theirs = run(attached), run(other)
    finally:
        attached.stop()
        other.stop()
        os.environ.clear()
        os.environ.update(saved_environ)

    assert len(mine) == 4 and len(theirs) == 4
    envs = set()
    for row in mine:
        env = (Path(row["cwd"]) / "env").resolve()
        envs.add(env)
        # Python, its prefix and the archive's modules all come from the unpacked archive.
        assert Path(row["prefix"]).resolve() == env, row
        assert Path(row["executable"]).resolve().is_relative_to(env), row
        assert row["version"] == HERE
        assert set(row["files"]) == set(modules), row
        for module, path in row["files"].items():
            assert path is not None and Path(path).resolve().is_relative_to(env), (module, path)
    assert len(envs) == 1
    for row in theirs:
        # The other session keeps the server's Python (this venv), not the archive.
        assert Path(row["prefix"]) == Path(sys.prefix), row
        assert not any(Path(row["executable"]).resolve().is_relative_to(e) for e in envs), row
        for module, path in row["files"].items():
            assert path is None or not any(Path(path).resolve().is_relative_to(e) for e in envs), (
                module,
                path,
            )
