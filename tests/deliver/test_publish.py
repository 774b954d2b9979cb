"""bundler publish: immutable names, no re-upload, no overwrite, YARN's PUBLIC-cache rule,
and spark-conf --published; against a real S3 API (moto_server) and the local file system."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundler import platforms
from bundler.artifact.manifest import ArchiveRecord, Manifest
from bundler.deliver.publish import (
    PublishOptions,
    local_archive,
    public_blocker,
    publish,
    published_name,
)
from bundler.deliver.stores import (
    BACKENDS,
    HadoopCliModes,
    open_filesystem,
    parse_destination,
    translate,
)
from bundler.errors import PublishError
from tests.support.s3 import S3Server, free_port

BUCKET = "envs-bucket"


# ------------------------------------------------------------------ helpers


def make_archive(dist: Path, payload: bytes, variant: str | None = "app") -> Path:
    """A real tar.gz holding ``payload`` and its manifest, as pack writes them."""
    dist.mkdir(parents=True, exist_ok=True)
    archive = dist / f"{variant or 'myenv'}-linux-64.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("lib/payload.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    Manifest(
        variant=variant,
        platform="linux-64",
        content="executor",
        archive=ArchiveRecord(archive.name, "tar.gz", sha, archive.stat().st_size),
    ).write(archive.with_name(archive.name + ".json"))
    return archive


def make_workspace(root: Path) -> Path:
    env = root / "environments"
    env.mkdir(parents=True)
    (env / "variants.toml").write_text('[variants.app]\nfiles = ["base.yml"]\n')
    (env / "base.yml").write_text("channels: [conda-forge]\ndependencies:\n  - python\n")
    return root


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundler(
    *args: str, cwd: Path, env: dict[str, str] | None = None, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", *args],
        cwd=cwd,
        env=full,
        text=True,
        capture_output=True,
        timeout=300,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 and exactly one line on stderr, which starts with 'error:'."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("•")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def published(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(ok(proc).stdout)


# ------------------------------------------------------------------ pure logic


def test_the_name_is_the_content() -> None:
    manifest = Manifest(variant="gpu", platform="linux-64", content="executor")
    a, b = "ab" * 32, "cd" * 32
    assert published_name(manifest, Path("dist/gpu-linux-64.tar.gz"), a) == (
        f"gpu-linux-64-executor-{a[:16]}.tar.gz"
    )
    assert published_name(manifest, Path("dist/gpu-linux-64.tar.gz"), b) != (
        published_name(manifest, Path("dist/gpu-linux-64.tar.gz"), a)
    )
    prefix_pack = Manifest(variant=None, platform="linux-64", content="full")
    assert published_name(prefix_pack, Path("my-env.zip"), a) == f"my-env-full-{a[:16]}.zip"


def test_destinations() -> None:
    s3 = parse_destination("s3://bucket/envs/")
    assert (s3.backend.extra, s3.path) == ("s3", "bucket/envs")
    assert s3.spark_uri(s3.uri_of("x.tar.gz")) == "s3a://bucket/envs/x.tar.gz"
    local = parse_destination("file:///srv/envs")
    assert (local.path, local.backend.yarn_cache) == ("/srv/envs", True)
    assert local.spark_uri(local.uri_of("x.tar.gz")) == "file:///srv/envs/x.tar.gz"
    assert parse_destination("hdfs:///envs").path == "/envs"
    assert parse_destination("abfs://container/envs").backend.extra == "azure"
    abfs = parse_destination("abfss://envs@acct.dfs.core.windows.net/spark/")
    assert abfs.path == "envs/spark"
    assert abfs.uri_of("x.tar.gz") == "abfss://envs@acct.dfs.core.windows.net/spark/x.tar.gz"
    for bad in ("ftp://host/envs", "/srv/envs", "s3:///envs", "file://host/envs"):
        with pytest.raises(PublishError):
            parse_destination(bad)


class FakeModes:
    def __init__(self, modes: dict[str, int]) -> None:
        self.modes = modes

    def mode(self, path: str) -> int:
        return self.modes[path]

    def chmod(self, path: str, mode: int) -> None:
        self.modes[path] = mode


def test_public_blocker_names_the_first_path_that_breaks_the_rule() -> None:
    modes = {"/": 0o755, "/envs": 0o755, "/envs/team": 0o750, "/envs/team/a.tar.gz": 0o644}
    assert public_blocker(FakeModes(modes), "/envs/team/a.tar.gz") == ("/envs/team", 0o750)
    modes["/envs/team"] = 0o711
    assert public_blocker(FakeModes(modes), "/envs/team/a.tar.gz") is None
    modes["/envs/team/a.tar.gz"] = 0o640
    assert public_blocker(FakeModes(modes), "/envs/team/a.tar.gz") == (
        "/envs/team/a.tar.gz",
        0o640,
    )


def test_backend_errors_become_one_line() -> None:
    class NoCredentialsError(Exception):
        pass

    try:
        try:
            raise NoCredentialsError("Unable to locate credentials")
        except NoCredentialsError as inner:
            raise OSError("wrapped by s3fs") from inner
    except OSError as exc:
        assert "no credentials" in translate(exc, "s3://b/k").one_line()
    refused = translate(ConnectionRefusedError("refused"), "s3://b/k").one_line()
    assert "cannot reach" in refused
    assert "not found" in translate(FileNotFoundError("NoSuchBucket"), "s3://b/k").one_line()


#: Stands in for Hadoop's CLI: ``dfs -stat %a`` and ``dfs -chmod`` on hdfs://HOST/PATH,
#: mapped onto $FAKE_HDFS_ROOT/PATH; every call is logged to $FAKE_HDFS_LOG.
FAKE_HDFS = """#!/bin/sh
set -e
echo "$*" >> "$FAKE_HDFS_LOG"
[ "$1" = dfs ] || exit 2
path="$FAKE_HDFS_ROOT/${4#hdfs://*/}"
case "$2 $3" in
  "-stat %a") stat -c %a "$path" ;;
  "-chmod "*) chmod "$3" "$path" ;;
  *) exit 2 ;;
esac
"""


def test_hdfs_permissions_go_through_the_hadoop_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, root, log = tmp_path / "bin", tmp_path / "root", tmp_path / "hdfs.log"
    bin_dir.mkdir()
    (bin_dir / "hdfs").write_text(FAKE_HDFS)
    (bin_dir / "hdfs").chmod(0o755)
    (root / "envs" / "team").mkdir(parents=True)
    (root / "envs" / "team").chmod(0o750)
    (root / "envs" / "team" / "a.tar.gz").write_bytes(b"a")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HDFS_ROOT", str(root))
    monkeypatch.setenv("FAKE_HDFS_LOG", str(log))
    root.chmod(0o755)

    modes = HadoopCliModes("hdfs://namenode:8020/envs")
    modes.chmod("/envs/team/a.tar.gz", 0o644)
    assert public_blocker(modes, "/envs/team/a.tar.gz") == ("/envs/team", 0o750)
    calls = log.read_text().splitlines()
    assert calls[0] == "dfs -chmod 644 hdfs://namenode:8020/envs/team/a.tar.gz"
    assert "dfs -stat %a hdfs://namenode:8020/envs/team" in calls


@pytest.mark.parametrize(
    "uri", ["s3://b/envs", "gs://b/envs", "abfs://c/envs", "hdfs:///envs", "webhdfs:///envs"]
)
def test_a_missing_extra_is_named(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    dest = parse_destination(uri)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == dest.backend.module else real(name, *a),
    )
    with pytest.raises(PublishError) as err:
        open_filesystem(dest)
    assert f"pip install 'bundler[{dest.backend.extra}]'" in err.value.one_line()
    assert {b.extra for b in BACKENDS} == {None, "s3", "gcs", "azure", "hdfs"}


class ProgressReporter:
    """Keeps the progress events (RecordingReporter drops them)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, float | None]] = []
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def progress(self, task: str, completed: float, total: float | None) -> None:
        self.events.append((task, completed, total))

    def warn(self, message: str) -> None:
        pass


def assert_upload_progress(reporter: ProgressReporter, size: int) -> None:
    uploads = [(done, total) for task, done, total in reporter.events if task.startswith("upload")]
    assert uploads and uploads[-1] == (size, size), reporter.events


# ------------------------------------------------------------------ file://


def test_file_upload_reports_progress(tmp_path: Path, open_dir: Path) -> None:
    archive = make_archive(tmp_path / "dist", os.urandom(300_000))
    reporter = ProgressReporter()
    result = publish(PublishOptions(str(archive), f"file://{open_dir}/envs"), reporter)
    assert result.uploaded and result.public is True
    assert_upload_progress(reporter, archive.stat().st_size)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory whose ancestors (/, /tmp) and itself others may traverse."""
    path = Path(tempfile.mkdtemp(prefix="bundler-publish-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=True)


def test_file_publish_makes_archive_public(tmp_path: Path, open_dir: Path) -> None:
    archive = make_archive(tmp_path / "dist", b"one")
    dest = open_dir / "shared" / "envs"
    result = published(
        bundler("publish", str(archive), "--to", f"file://{dest}", "--json", cwd=tmp_path,
                umask=0o077)
    )  # fmt: skip
    remote = dest / f"app-linux-64-executor-{sha_of(archive)[:16]}.tar.gz"
    assert result["uri"] == f"file://{remote}" and result["uploaded"] is True
    assert remote.read_bytes() == archive.read_bytes()
    manifest = json.loads(remote.with_name(remote.name + ".json").read_text())
    assert manifest["archive"]["name"] == remote.name
    assert manifest["archive"]["sha256"] == sha_of(archive)
    # Under umask 077 publish still made what YARN's PUBLIC cache needs.
    assert stat.S_IMODE(remote.stat().st_mode) & 0o004
    for directory in (open_dir / "shared", dest):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o001, directory
    assert result["public"] is True and result["blocker"] is None
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_upload_leaves_nothing_under_any_name(
    tmp_path: Path, open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.local import LocalFileSystem

    def rename_fails(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalFileSystem, "mv", rename_fails)
    archive = make_archive(tmp_path / "dist", b"one")
    with pytest.raises(PublishError) as err:
        publish(PublishOptions(str(archive), f"file://{open_dir}/envs"))
    assert "No space left" in err.value.one_line()
    assert list((open_dir / "envs").iterdir()) == []  # no archive, no temporary
    assert not archive.with_name(archive.name + ".published.json").exists()


def test_file_publish_names_the_directory_that_blocks_the_cache(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    archive = make_archive(tmp_path / "dist", b"one")
    proc = ok(bundler("publish", str(archive), "--to", f"file://{closed}/envs", cwd=tmp_path))
    # The first path above the archive that others cannot traverse, found independently.
    blocker = next(
        p
        for p in [closed / "envs", *(closed / "envs").parents]
        if not stat.S_IMODE(p.stat().st_mode) & 0o001
    )
    warning = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and f"{blocker} (mode" in warning[0], proc.stderr
    assert "PUBLIC cache" in warning[0]


def test_file_publish_private_keeps_modes(tmp_path: Path, open_dir: Path) -> None:
    archive = make_archive(tmp_path / "dist", b"one")
    args = ("publish", str(archive), "--to", f"file://{open_dir}/envs", "--private", "--json")
    result = published(bundler(*args, cwd=tmp_path, umask=0o077))
    remote = Path(result["uri"].removeprefix("file://"))
    assert stat.S_IMODE(remote.stat().st_mode) == 0o600
    assert stat.S_IMODE((open_dir / "envs").stat().st_mode) == 0o700
    assert result["public"] is False and result["warnings"] == []


def test_file_republish_conflict_and_second_version(tmp_path: Path, open_dir: Path) -> None:
    dist = tmp_path / "dist"
    archive = make_archive(dist, b"one")
    to = f"file://{open_dir}/envs"
    first = published(bundler("publish", str(archive), "--to", to, "--json", cwd=tmp_path))
    remote = Path(first["uri"].removeprefix("file://"))
    before = remote.stat()

    again = published(bundler("publish", str(archive), "--to", to, "--json", cwd=tmp_path))
    assert again["uri"] == first["uri"] and again["uploaded"] is False
    after = remote.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    # Other bytes already under the name the second version will get: refused, untouched.
    second = make_archive(tmp_path / "dist2", b"two")
    squatter = open_dir / "envs" / f"app-linux-64-executor-{sha_of(second)[:16]}.tar.gz"
    squatter.write_bytes(b"x" * second.stat().st_size)
    line = one_error(bundler("publish", str(second), "--to", to, cwd=tmp_path))
    assert str(squatter.name) in line and "never overwritten" in line
    assert f"sha256 {sha_of(squatter)[:16]}..." in line  # no manifest there: its bytes hashed
    assert squatter.read_bytes() == b"x" * second.stat().st_size

    squatter.unlink()
    new = published(bundler("publish", str(second), "--to", to, "--json", cwd=tmp_path))
    assert new["uri"] != first["uri"] and new["uploaded"] is True
    assert Path(new["uri"].removeprefix("file://")).read_bytes() == second.read_bytes()
    assert remote.read_bytes() == archive.read_bytes()  # the first version is intact


def test_a_variant_names_the_archive_pack_wrote_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine's platform when the variant lists it, as ``bundler pack`` chooses."""
    ws = make_workspace(tmp_path / "ws")
    toml = ws / "environments" / "variants.toml"
    toml.write_text(toml.read_text() + 'platforms = ["linux-64", "linux-aarch64"]\n')
    monkeypatch.setattr(platforms, "host_platform", lambda: "linux-aarch64")
    archive = ws / "dist" / "app-linux-aarch64.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"only its name is read")
    assert local_archive(PublishOptions(target="app", to="", workspace=ws)) == archive
    with pytest.raises(PublishError, match=r"app-linux-64\.tar\.gz not found"):
        local_archive(PublishOptions(target="app", to="", platform="linux-64", workspace=ws))


def test_spark_conf_published_uses_the_record_and_refuses_a_stale_one(
    tmp_path: Path, open_dir: Path
) -> None:
    ws = make_workspace(tmp_path / "ws")
    master = ("--master", "local-cluster[2,1,1024]")
    missing = bundler("spark-conf", "app", "--published", *master, cwd=ws)
    assert "app-linux-64.tar.gz not found" in one_error(missing)
    archive = make_archive(ws / "dist", b"one")
    never = bundler("spark-conf", "app", "--published", *master, cwd=ws)
    assert "never published" in one_error(never)

    result = published(bundler("publish", "app", "--to", f"file://{open_dir}", "--json", cwd=ws))
    conf = ok(bundler("spark-conf", "app", "--published", *master, cwd=ws)).stdout.split()
    assert conf[conf.index("--archives") + 1] == f"{result['uri']}#env"
    record = json.loads(archive.with_name(archive.name + ".published.json").read_text())
    assert record["sha256"] == sha_of(archive)

    make_archive(ws / "dist", b"packed again")  # new bytes, not published yet
    line = one_error(bundler("spark-conf", "app", "--published", *master, cwd=ws))
    assert "stale" in line and "bundler publish" in line


# ------------------------------------------------------------------ S3 (moto_server)


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    s3_server.client().create_bucket(Bucket=BUCKET)
    return BUCKET


def test_s3_publish_republish_conflict_second_version(
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    env = s3_server.env()
    to = f"s3://{bucket}/envs"
    archive = make_archive(tmp_path / "v1", b"one" * 1000)
    second = make_archive(tmp_path / "v2", b"two" * 1000)
    name1 = f"envs/app-linux-64-executor-{sha_of(archive)[:16]}.tar.gz"
    name2 = f"envs/app-linux-64-executor-{sha_of(second)[:16]}.tar.gz"
    s3 = s3_server.client()

    def publish(path: Path) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str]]]:
        seen = len(s3_server.writes(bucket))
        proc = bundler("publish", str(path), "--to", to, "--json", cwd=tmp_path, env=env)
        return proc, s3_server.writes(bucket)[seen:]

    proc, writes = publish(archive)
    result = published(proc)
    assert result["uri"] == f"s3://{bucket}/{name1}" and result["uploaded"] is True
    assert result["spark_uri"] == f"s3a://{bucket}/{name1}"
    assert writes == [("PUT", f"/{bucket}/{name1}"), ("PUT", f"/{bucket}/{name1}.json")]

    proc, writes = publish(archive)
    assert published(proc)["uploaded"] is False
    assert writes == []  # re-publish: nothing uploaded

    s3.put_object(Bucket=bucket, Key=name2, Body=b"someone else's bytes")
    proc, writes = publish(second)
    assert "never overwritten" in one_error(proc)
    assert writes == []  # refused before any upload
    assert s3.get_object(Bucket=bucket, Key=name2)["Body"].read() == b"someone else's bytes"

    s3.delete_object(Bucket=bucket, Key=name2)
    proc, writes = publish(second)
    assert published(proc)["uri"] == f"s3://{bucket}/{name2}"
    assert writes == [("PUT", f"/{bucket}/{name2}"), ("PUT", f"/{bucket}/{name2}.json")]
    assert s3.get_object(Bucket=bucket, Key=name1)["Body"].read() == archive.read_bytes()
    remote_manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{name2}.json")["Body"].read())
    assert remote_manifest["archive"]["sha256"] == sha_of(second)


def test_s3_upload_reports_progress(
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    archive = make_archive(tmp_path / "dist", os.urandom(300_000))
    reporter = ProgressReporter()
    result = publish(PublishOptions(str(archive), f"s3://{bucket}/progress"), reporter)
    assert result.uploaded and result.public is None  # no PUBLIC-cache rule on S3
    assert_upload_progress(reporter, archive.stat().st_size)


def test_s3_bad_inputs_get_one_line_and_exit_2(
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    archive = make_archive(tmp_path / "dist", b"one")
    env = s3_server.env()
    to = f"s3://{bucket}/envs"

    line = one_error(bundler("publish", str(archive), "--to", "ftp://host/envs", cwd=tmp_path))
    assert "unknown scheme ftp://" in line

    no_keys = {
        k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    line = one_error(bundler("publish", str(archive), "--to", to, cwd=tmp_path, env=no_keys))
    assert "no credentials" in line and to in line

    closed = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    line = one_error(bundler("publish", str(archive), "--to", to, cwd=tmp_path, env=closed))
    assert "cannot reach" in line

    line = one_error(
        bundler("publish", str(archive), "--to", "s3://no-such-bucket/envs", cwd=tmp_path, env=env)
    )
    assert "no-such-bucket" in line

    hidden = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['s3fs'] = None; sys.argv = ['bundler', *sys.argv[1:]]; "
            "from bundler.cli import main; main()",
            "publish", str(archive), "--to", to,
        ],
        cwd=tmp_path,
        env={**os.environ, **env},
        text=True,
        capture_output=True,
    )  # fmt: skip
    assert "pip install 'bundler[s3]'" in one_error(hidden)
