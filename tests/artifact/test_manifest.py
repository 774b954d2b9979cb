"""The archive manifest: one versioned dataclass reads and writes <archive>.json."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from bundler.artifact.manifest import (
    MANIFEST_VERSION,
    ArchiveRecord,
    LeftOut,
    Manifest,
    PackageRecord,
    manifest_path,
    read_manifest,
)
from bundler.artifact.pack import PackResult
from bundler.check.verify import verify_archive
from bundler.cli.pack import pack_summary
from bundler.errors import ManifestError

FULL = Manifest(
    bundler_version="0.1.0",
    variant="app",
    platform="linux-64",
    inputs_hash="abc",
    lock_sha256="def",
    python="3.11.7",
    imports=("six", "numpy"),
    gpu_imports=("cudf",),
    build_prefix="/tmp/bundler-build/app-linux-64_ppp",
    content="executor",
    kept=("docs",),
    left_out={"pyspark": LeftOut(bytes=10, files=2)},
    installed_size=100,
    left_out_imports=("py4j", "pyspark"),
    exclude_patterns=("lib/python3.11/site-packages/pyspark/*",),
    zip_symlinks={"copied": 1},
    archive=ArchiveRecord(
        name="app.tar.gz", format="tar.gz", sha256="0" * 64, size=5, linked_files=2, linked_bytes=9
    ),
    packages=(
        PackageRecord("python", "3.11.7", "conda", 50),
        PackageRecord("pyspark", "4.3.0", "pip", 10, in_archive=False),
    ),
)


def _write(tmp_path: Path, data: object) -> Path:
    archive = tmp_path / "app.tar.gz"
    archive.write_bytes(b"x")
    manifest_path(archive).write_text(json.dumps(data))
    return archive


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar.gz"
    FULL.write(manifest_path(archive))
    back = read_manifest(archive)
    assert back == FULL
    assert back is not None and back.path == manifest_path(archive)
    data = json.loads(manifest_path(archive).read_text())
    assert data["manifest_version"] == MANIFEST_VERSION
    assert data["packages"][1] == {
        "name": "pyspark",
        "version": "4.3.0",
        "manager": "pip",
        "size": 10,
        "in_archive": False,
    }


def test_a_prefix_pack_has_no_lock_fields_not_even_null() -> None:
    data = Manifest(platform="linux-64", build_prefix="/env").to_dict()
    assert "inputs_hash" not in data and "lock_sha256" not in data
    assert "zip_symlinks" not in data
    assert "None" not in json.dumps(data)


def test_derived_facts_come_from_the_records() -> None:
    assert FULL.left_out_bytes == 10
    assert [p.name for p in FULL.largest(5)] == ["python"]  # pyspark is not in the archive
    assert FULL.package_versions() == {"python": "3.11.7", "pyspark": "4.3.0"}


def test_a_manifest_without_a_version_is_read_as_version_1(tmp_path: Path) -> None:
    archive = _write(tmp_path, {"variant": "app", "archive": {"size": 1}})
    manifest = read_manifest(archive)
    assert manifest is not None
    assert (manifest.variant, manifest.archive.size, manifest.content) == ("app", 1, "full")


def test_a_newer_manifest_version_is_refused_naming_file_and_version(tmp_path: Path) -> None:
    archive = _write(tmp_path, {"manifest_version": MANIFEST_VERSION + 1, "variant": "app"})
    with pytest.raises(ManifestError) as info:
        read_manifest(archive)
    line = info.value.one_line()
    assert str(manifest_path(archive)) in line
    assert f"version {MANIFEST_VERSION + 1}" in line and "upgrade bundler" in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"archive": "app.tar.gz"}, "archive is str, not an object"),
        ({"archive": {"size": "5"}}, "archive.size is str, not a number"),
        ({"imports": "six"}, "imports is str, not a list"),
        ({"imports": ["six", 1]}, "imports holds something other than names"),
        ({"packages": [{"version": "1"}]}, "packages[0] has no name or version"),
        ({"packages": [{"name": "six", "version": "1", "size": True}]}, "packages[0].size"),
        ({"left_out": {"tests": {"bytes": "many"}}}, "left_out.tests"),
        ({"kind": "slim"}, "kind is 'slim', not executor or full"),
        ({"manifest_version": "1"}, "manifest_version is '1'"),
    ],
)
def test_a_malformed_field_is_one_line_naming_it(tmp_path: Path, data: object, named: str) -> None:
    archive = _write(tmp_path, data)
    with pytest.raises(ManifestError, match=r"manifest .*app\.tar\.gz\.json: ") as info:
        read_manifest(archive)
    assert named in info.value.one_line()


def test_no_manifest_is_none_and_broken_json_is_an_error(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar.gz"
    assert read_manifest(archive) is None
    manifest_path(archive).write_text("{not json")
    with pytest.raises(ManifestError, match="is unreadable"):
        read_manifest(archive)
    manifest_path(archive).write_text("[]")
    with pytest.raises(ManifestError, match="is not a JSON object"):
        read_manifest(archive)


def test_verify_fails_the_manifest_check_of_a_too_new_manifest(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    with tarfile.open(archive, "w"):
        pass
    manifest_path(archive).write_text(json.dumps({"manifest_version": 99}))
    report = verify_archive(archive)
    check = report.check("manifest")
    assert (check.status, check.summary) == ("failed", "the manifest cannot be read")
    assert any("version 99" in p and "upgrade bundler" in p for p in check.problems)
    assert not report.ok


#: Written by bundler at 683b500, before the Python names changed (kind -> content,
#: dropped_imports -> left_out_imports, excluded -> exclude_patterns, left_out's dicts ->
#: LeftOut); the JSON names did not.  ``pack --json`` of a pack with that manifest too.
OLD_MANIFEST = Path(__file__).parent / "data" / "manifest-683b500.json"
OLD_PACK_JSON = Path(__file__).parent / "data" / "pack-json-683b500.json"


def test_a_manifest_written_before_the_renames_reads_back_identically(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar.gz"
    shutil.copyfile(OLD_MANIFEST, manifest_path(archive))
    manifest = read_manifest(archive)
    assert manifest is not None
    assert manifest.dumps() == OLD_MANIFEST.read_text()  # byte for byte
    assert manifest.content == "executor"
    assert manifest.left_out == {
        "pyspark": LeftOut(bytes=10, files=2),
        "tests": LeftOut(bytes=900, files=7),
        "bytecode": LeftOut(bytes=30, files=3),
    }
    assert manifest.left_out_bytes == 940
    assert manifest.left_out_imports == ("py4j", "pyspark")
    assert manifest.exclude_patterns[0] == "lib/python3.11/site-packages/pyspark/*"


def test_pack_json_of_that_manifest_is_unchanged() -> None:
    manifest = Manifest.from_dict(json.loads(OLD_MANIFEST.read_text()))
    result = PackResult(
        path=Path("dist/app.tar.gz"),
        manifest_path=Path("dist/app.tar.gz.json"),
        manifest=manifest,
        sbom_path=Path("dist/app.tar.gz.cdx.json"),
        components=3,
    )
    assert result.to_dict() == json.loads(OLD_PACK_JSON.read_text())
    assert pack_summary(result.content, result.left_out, manifest.installed_size) == (
        "executor archive: saved 940 B of 4.9 KiB installed by leaving out pyspark 10 B, "
        "tests 900 B, bytecode 30 B (--full keeps them)"
    )
