"""Packing from a lock: relocatable, reproducible, atomic, with a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.errors import LockStateError, PackError
from bundler.pack import PackOptions, pack_archive
from tests.support.cli import error_line, run_cli
from tests.support.fixtures import copy_workspace

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_describes_the_archive(packed_archive: tuple[Path, dict[str, Any]]) -> None:
    archive, manifest = packed_archive
    assert manifest["variant"] == "app"
    assert manifest["platform"] == "linux-64"
    assert manifest["python"].startswith("3.11.")
    assert manifest["archive"]["sha256"] == _sha(archive)
    assert manifest["archive"]["size"] == archive.stat().st_size
    pkgs = {p["name"]: p for p in manifest["packages"]}
    assert pkgs["python"]["manager"] == "conda" and pkgs["six"]["manager"] == "conda"
    assert pkgs["numpy"]["manager"] == "pip" and pkgs["pyarrow"]["manager"] == "pip"
    assert all(p["size"] > 0 for p in pkgs.values())
    assert manifest["imports"] == ["numpy", "pyarrow", "pandas", "six", "dateutil"]


def test_archive_is_normalised_and_carries_conda_unpack(
    packed_archive: tuple[Path, dict[str, Any]],
) -> None:
    archive, _ = packed_archive
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    # conda-pack appends its own scripts last; everything from the prefix is sorted.
    added = [n for n in names if n.startswith(("bin/activate", "bin/deactivate", "bin/conda"))]
    body = [n for n in names if n not in added]
    assert body == sorted(body)
    assert names[-len(added) :] == added
    assert "bin/conda-unpack" in names and "bin/python3.11" in names
    assert not any(n.endswith(".pyc") for n in names)
    assert all(m.mtime == members[0].mtime and m.uid == 0 and m.uname == "" for m in members)
    modes = {m.name: m.mode for m in members}
    assert modes["bin/python3.11"] == 0o755
    assert not any(n.startswith(("/", "../")) for n in names)
    with open(archive, "rb") as fh:
        header = fh.read(10)
    assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0"  # gzip, no timestamp


def test_unpacked_anywhere_imports_without_conda_unpack(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, manifest = packed_archive
    dest = tmp_path / "a" / "deeper" / "place" / "env"
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")
    code = (
        "import sys, json, importlib;"
        "mods = [importlib.import_module(m) for m in sys.argv[1:]];"
        "print(json.dumps([sys.prefix] + [m.__file__ for m in mods]))"
    )
    out = subprocess.run(
        [str(dest / "bin/python"), "-c", code, *manifest["imports"]],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1"},
    )
    paths = json.loads(out.stdout)
    assert Path(paths[0]) == dest
    for p in paths[1:]:
        assert Path(p).is_relative_to(dest), p
    # conda-unpack still rewrites the remaining prefixes for tools that need it.
    build_prefix = manifest["build_prefix"]
    assert build_prefix.encode() in (dest / "bin/pip").read_bytes()
    subprocess.run([str(dest / "bin/conda-unpack")], check=True, capture_output=True)
    assert build_prefix.encode() not in (dest / "bin/pip").read_bytes()
    pip = subprocess.run(
        [str(dest / "bin/python"), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(dest) in pip.stdout


def test_two_packs_are_byte_identical(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    again = pack_archive(
        PackOptions(workspace=locked_workspace, variant="app", output=tmp_path / "again.tar.gz")
    )
    assert again.sha256 == _sha(archive)


def test_zip_output_keeps_symlinks_and_modes(locked_workspace: Path, tmp_path: Path) -> None:
    result = pack_archive(
        PackOptions(workspace=locked_workspace, variant="gpuapp", output=tmp_path / "g.zip")
    )
    with zipfile.ZipFile(result.path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    python = infos["bin/python"]
    assert (python.external_attr >> 16) & 0o170000 == 0o120000  # a symlink
    assert (infos["bin/python3.11"].external_attr >> 16) & 0o111
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["gpu_imports"] == ["cudaprobe"]
    assert manifest["archive"]["format"] == "zip"


def test_pack_prefix_of_an_existing_environment(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    env = tmp_path / "env"
    env.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(env, filter="tar")
    subprocess.run([str(env / "bin/conda-unpack")], check=True)
    proc = run_cli(
        "pack", "--prefix", str(env), "-o", str(tmp_path / "out.tgz"), "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["path"] == str(tmp_path / "out.tgz")
    names = {p["name"] for p in result["largest"]}
    assert {"pyarrow", "python", "numpy"} <= names
    with tarfile.open(tmp_path / "out.tgz") as tar:
        assert "bin/conda-unpack" in tar.getnames()


def test_stale_lock_is_refused_and_nothing_written(locked_workspace: Path, tmp_path: Path) -> None:
    ws = copy_workspace(locked_workspace, tmp_path / "ws")
    extra = ws / "environments/extra.yml"
    extra.write_text(extra.read_text().replace("numpy>=2,<3", "numpy>=2.2,<3"))
    proc = run_cli("pack", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "stale" in line and "bundler lock app" in line
    assert not (ws / "dist").exists()
    with pytest.raises(LockStateError):
        pack_archive(PackOptions(workspace=ws, variant="nocuda"))


def test_bad_suffix_is_refused_before_building(locked_workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(PackError, match="unsupported archive suffix"):
        pack_archive(
            PackOptions(workspace=locked_workspace, variant="app", output=tmp_path / "x.tar.zst")
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_pack_leaves_no_archive(locked_workspace: Path, tmp_path: Path) -> None:
    """A pack that dies mid-write (here: the prefix is not a conda env) leaves nothing."""
    bogus = tmp_path / "bogus"
    (bogus / "conda-meta").mkdir(parents=True)
    (bogus / "conda-meta" / "broken.json").write_text("{}")
    with pytest.raises(PackError):
        pack_archive(PackOptions(prefix=bogus, output=tmp_path / "out" / "x.tar.gz"))
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert leftovers == []


def _pack_cmd(ws: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bundler", "pack", "app", "-q", "-o", str(out)]


def test_concurrent_packs_do_not_corrupt_each_other(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    out = tmp_path / "same.tar.gz"
    procs = [
        subprocess.Popen(_pack_cmd(locked_workspace, target), cwd=locked_workspace)
        for target in (out, out, tmp_path / "other.tar.gz")
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
    assert _sha(out) == _sha(archive) == _sha(tmp_path / "other.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.tar.gz",
        "other.tar.gz.json",
        "same.tar.gz",
        "same.tar.gz.json",
    ]


def test_interrupted_pack_leaves_nothing_under_the_final_name(
    locked_workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "app.tar.gz"
    proc = subprocess.Popen(
        _pack_cmd(locked_workspace, out),
        cwd=locked_workspace,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list(out.parent.glob(".*.part")) if out.parent.exists() else True:
        assert proc.poll() is None, "pack finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(out.parent.iterdir()) == []
