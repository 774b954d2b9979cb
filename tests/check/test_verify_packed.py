"""verify on real packed archives: the good one passes, tampered copies fail by name."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bundler.check.verify import NO_GPU_NOTE, gpu_visible, verify_archive
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration


def _rewrite(src: Path, dest: Path, *, drop: str = "", add: tarfile.TarInfo | None = None) -> Path:
    """Copy a tar.gz, leaving out member ``drop`` and appending ``add``; no manifest.

    Compressed at level 1: the copy is read once, and level 9 took most of the test's time.
    """
    with tarfile.open(src) as tin, tarfile.open(dest, "w:gz", compresslevel=1) as tout:
        for member in tin:
            if member.name == drop:
                continue
            data = tin.extractfile(member) if member.isreg() else None
            tout.addfile(member, data)
        if add is not None:
            tout.addfile(add, io.BytesIO(b"x") if add.isreg() else None)
    return dest


def test_packed_archive_passes_every_check(packed_archive: tuple[Path, dict[str, Any]]) -> None:
    archive, manifest = packed_archive
    report = verify_archive(archive)
    assert report.ok, report.render()
    status = {c.name: c.status for c in report.checks}
    assert status["manifest"] == "passed"
    assert status["extract"] == "passed"
    assert status["python"] == "passed"
    assert status["imports"] == "passed"
    assert status["linkage"] == "passed"
    # The archive's imports came from the manifest written by pack.
    details = "\n".join(report.check("imports").details)
    for module in manifest["imports"]:
        assert module in details


def test_gpu_archive_linkage_runs_without_gpu(locked_workspace: Path, tmp_path: Path) -> None:
    proc = run_cli("pack", "gpuapp", "-q", "-o", str(tmp_path / "g.tar.gz"), cwd=locked_workspace)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("verify", str(tmp_path / "g.tar.gz"), "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    status = {c["name"]: c["status"] for c in result["checks"]}
    assert status["linkage"] == "passed"
    # imported on any host: without a GPU cudaprobe stops at the missing libcuda.so.1,
    # which is the host's driver, not the archive
    assert status["gpu-imports"] == "passed", proc.stdout
    assert proc.returncode == 0, proc.stdout
    gpu = next(c for c in result["checks"] if c["name"] == "gpu-imports")
    if gpu_visible() is None:
        assert gpu["warnings"] == [
            f"cudaprobe: {NO_GPU_NOTE} (OSError: libcuda.so.1: "
            "cannot open shared object file: No such file or directory)"
        ]
    else:  # on a GPU machine cudaprobe really initialises the driver
        assert gpu["warnings"] == []


def test_removed_library_fails_linkage_by_name(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    with tarfile.open(archive) as tar:
        ssl = next(n for n in tar.getnames() if n.startswith("lib/libssl.so"))
    tampered = _rewrite(archive, tmp_path / "nossl.tar.gz", drop=ssl)
    proc = run_cli("verify", str(tampered), "--import", "six", cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL  linkage" in proc.stdout
    assert f"_ssl.cpython-311-x86_64-linux-gnu.so -> {Path(ssl).name}" in proc.stdout


def test_escaping_member_is_refused_and_nothing_runs(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    evil = tarfile.TarInfo("lib/../../escape.txt")
    evil.size = 1
    tampered = _rewrite(archive, tmp_path / "evil.tar.gz", add=evil)
    proc = run_cli("verify", str(tampered), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    extract = next(c for c in result["checks"] if c["name"] == "extract")
    assert extract["status"] == "failed"
    assert "lib/../../escape.txt" in json.dumps(extract)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_manifest_mismatch_fails(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, manifest = packed_archive
    copy = tmp_path / archive.name
    copy.write_bytes(archive.read_bytes()[:-1] + b"\0")
    manifest = dict(manifest)
    (tmp_path / f"{archive.name}.json").write_text(json.dumps(manifest))
    report = verify_archive(copy)
    assert not report.ok
    assert report.check("manifest").status == "failed"


def test_cli_exits_1_when_python_could_not_run(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """An archive for another platform: nothing fails, nothing runs, and no OK."""
    archive, manifest = packed_archive
    copy = tmp_path / archive.name
    copy.symlink_to(archive)
    (tmp_path / f"{archive.name}.json").write_text(
        json.dumps({**manifest, "platform": "linux-aarch64"})
    )
    proc = run_cli("verify", str(copy), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    last = proc.stdout.splitlines()
    assert "NOT VERIFIED" in proc.stdout and not any(ln.startswith("OK") for ln in last)
    assert "  - python not run: the archive is for linux-aarch64" in proc.stdout
    assert "PASS  manifest" in proc.stdout and "PASS  linkage" in proc.stdout
