"""The SBOM: CycloneDX beside every archive, SPDX on request, a licence deny list.

The documents go through their real consumers (cyclonedx-python-lib's JSON schema
validator for CycloneDX 1.6, spdx-tools' validation for SPDX 2.3), and the component
list of the test workspace's archives is checked against what ``tar -tzf`` shows.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packageurl import PackageURL

from bundler.artifact.licenses import DeclaredLicense, from_metadata, from_text
from bundler.artifact.manifest import Manifest, PackageRecord
from bundler.artifact.readers import read_members
from bundler.artifact.sbom import (
    PROVIDED_BY_SPARK,
    Component,
    conda_purl,
    cyclonedx,
    dumps,
    inventory_of,
    is_metadata,
)
from bundler.artifact.spdx import spdx
from bundler.check.licenses import check_licenses, denied_keys, judge
from bundler.errors import LicensePolicyError
from tests.support.cli import error_line, run_cli

SITE = "lib/python3.11/site-packages"
#: Files in a packed archive that no package owns: conda-pack's scripts and the
#: environment's history and cache tag.
NOT_A_PACKAGE = {
    "CACHEDIR.TAG",
    "conda-meta/history",
    "bin/activate",
    "bin/deactivate",
    "bin/activate.fish",
    "bin/conda_unpack_progress.py",
    "bin/conda-unpack",
}


def cyclonedx_errors(text: str) -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


def spdx_errors(path: Path) -> list[Any]:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    return list(validate_full_spdx_document(parse_file(str(path))))


# ---------------------------------------------------------------- purls and licences


def test_conda_purl_follows_the_purl_spec_conda_type() -> None:
    record = {
        "name": "numpy",
        "version": "2.1.0",
        "build": "py311h_0",
        "subdir": "linux-64",
        "fn": "numpy-2.1.0-py311h_0.conda",
        "url": "https://conda.anaconda.org/conda-forge/linux-64/numpy-2.1.0-py311h_0.conda",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
    }
    purl = PackageURL.from_string(conda_purl(record))
    assert (purl.type, purl.name, purl.version) == ("conda", "numpy", "2.1.0")
    assert purl.qualifiers == {
        "build": "py311h_0",
        "channel": "conda-forge",
        "subdir": "linux-64",
        "type": "conda",
    }
    # no channel field: from the URL; a .tar.bz2; credentials and tokens never kept
    old = {**record, "channel": None, "fn": "x.tar.bz2"}
    old["url"] = "https://user:secret@mirror.example/conda/main/linux-64/x.tar.bz2"
    purl = PackageURL.from_string(conda_purl(old))
    assert purl.qualifiers["channel"] == "https://mirror.example/conda/main"
    assert purl.qualifiers["type"] == "tar.bz2"
    token = {**record, "channel": "https://conda.anaconda.org/t/tk-123/private/linux-64"}
    assert "tk-123" not in conda_purl(token)
    assert PackageURL.from_string(conda_purl(token)).qualifiers["channel"] == "private"


def _metadata(*headers: str) -> Any:
    from email.parser import HeaderParser

    return HeaderParser().parsestr("\n".join(headers) + "\n\n")


def test_licences_are_read_as_declared_never_guessed() -> None:
    assert from_text("mit", "conda record") == DeclaredLicense("conda record", expression="MIT")
    assert from_text("GPL-2.0+", "conda record").expression == "GPL-2.0-or-later"  # type: ignore[union-attr]
    assert from_text("BSD", "conda record") == DeclaredLicense("conda record", names=("BSD",))
    assert from_text("", "conda record") is None and from_text(None, "conda record") is None
    pep639 = _metadata("License-Expression: Apache-2.0 OR MIT", "License: BSD")
    assert from_metadata(pep639) == DeclaredLicense(
        "License-Expression", expression="Apache-2.0 OR MIT"
    )
    # a licence text in License is not a licence name: the classifiers are used instead
    text = _metadata(
        "License: Copyright (c) 2005 someone. All rights reserved. Redistribution and use in "
        "source and binary forms, with or without modification, are permitted",
        "Classifier: License :: OSI Approved :: BSD License",
        "Classifier: License :: OSI Approved",
    )
    assert from_metadata(text) == DeclaredLicense("classifier", names=("BSD License",))
    assert from_metadata(_metadata("Name: x")) is None


def _component(name: str, license: str | None) -> Component:
    declared = from_text(license, "conda record")
    return Component(name, "1", "conda", f"pkg:conda/{name}@1", license=declared)


def test_deny_list_follows_spdx_choices() -> None:
    denied = denied_keys(["GPL-3.0-only", "agpl-3.0-or-later"])
    assert denied == ("GPL-3.0-only", "AGPL-3.0-or-later")
    assert judge(_component("a", "MIT OR GPL-3.0-only"), denied).denied == ()
    assert judge(_component("b", "MIT AND GPL-3.0-only"), denied).denied == ("GPL-3.0-only",)
    assert judge(_component("c", "GPL-3.0"), denied).denied == ("GPL-3.0-only",)  # old id
    assert judge(_component("d", "AGPL-3.0-or-later"), denied).denied == ("AGPL-3.0-or-later",)
    with_exception = _component("e", "GPL-2.0-or-later WITH Classpath-exception-2.0")
    assert judge(with_exception, denied_keys(["GPL-2.0-or-later"])).denied
    assert judge(_component("f", None), denied).unknown
    assert judge(_component("g", "BSD"), denied).unknown  # not SPDX: unknown, not allowed
    check = check_licenses(
        [_component("a", "MIT"), _component("b", "GPL-3.0-only"), _component("f", None)], denied
    )
    assert check.status == "failed"
    assert check.problems == ("b 1 (conda): GPL-3.0-only is under denied GPL-3.0-only",)
    assert check.details == (
        "3 components: 1 allowed, 1 denied, 1 unknown",
        "unknown licence: f 1 (conda): none declared",
    )
    with pytest.raises(LicensePolicyError, match="'GNU GPL' is not an SPDX"):
        denied_keys(["GNU GPL"])


# ---------------------------------------------------------------- components and graph


def _record(name: str, version: str, files: list[str], **extra: Any) -> bytes:
    record = {
        "name": name,
        "version": version,
        "build": "h_0",
        "subdir": "linux-64",
        "fn": f"{name}-{version}-h_0.conda",
        "url": f"file:///channel/linux-64/{name}-{version}-h_0.conda",
        "sha256": hashlib.sha256(name.encode()).hexdigest(),
        "files": files,
        **extra,
    }
    return json.dumps(record).encode()


def test_components_graph_and_documents_from_metadata_files(tmp_path: Path) -> None:
    metadata = {
        "conda-meta/python-3.11.7-h_0.json": _record("python", "3.11.7", ["bin/python3.11"]),
        "conda-meta/six-1.17.0-h_0.json": _record(
            "six",
            "1.17.0",
            [f"{SITE}/six.py", f"{SITE}/six-1.17.0.dist-info/METADATA"],
            depends=["python >=3.9", "__glibc >=2.17"],
            license="MIT",
        ),
        f"{SITE}/six-1.17.0.dist-info/METADATA": b"Name: six\nVersion: 1.17.0\n\n",
        f"{SITE}/Py_Tool-2.0.dist-info/METADATA": (
            b"Metadata-Version: 2.4\nName: Py_Tool\nVersion: 2.0\n"
            b"License-Expression: Apache-2.0\n"
            b"Requires-Dist: six>=1\n"
            b"Requires-Dist: pytest; extra == 'test'\n"
            b"Requires-Dist: pywin32; sys_platform == 'win32'\n"
            b"Requires-Dist: tomli; python_version < '3.11'\n\n"
        ),
    }
    assert all(is_metadata(name) for name in metadata)
    manifest = Manifest(
        variant="app",
        platform="linux-64",
        python="3.11.7",
        packages=(
            PackageRecord("py-tool", "2.0", "pip", sha256="ab" * 32),
            PackageRecord("pyspark", "3.5.7", "conda", in_archive=False),
        ),
    )
    inventory = inventory_of("app.tar.gz", "cd" * 32, manifest, metadata)
    by_name = {c.name: c for c in inventory.components}
    assert sorted(by_name) == ["py-tool", "python", "six"]  # six's dist-info is conda's
    tool = by_name["py-tool"]
    assert tool.purl == "pkg:pypi/py-tool@2.0" and tool.sha256 == "ab" * 32
    assert tool.requires == ("six",)  # no extras, no other platform, no older Python
    assert by_name["six"].requires == ("python",) and by_name["six"].provides == ("six",)
    graph = inventory.graph()
    assert graph[tool.purl] == [by_name["six"].purl]
    assert graph[by_name["six"].purl] == [by_name["python"].purl]

    doc = cyclonedx(inventory)
    text = dumps(doc)
    assert cyclonedx_errors(text) is None
    assert dumps(cyclonedx(inventory)) == text  # reproducible, serial number included
    root = doc["metadata"]["component"]
    assert root["hashes"] == [{"alg": "SHA-256", "content": "cd" * 32}]
    props = {p["name"]: p["value"] for p in root["properties"]}
    assert props[PROVIDED_BY_SPARK] == "pyspark@3.5.7"
    assert (props["bundler:variant"], props["bundler:platform"]) == ("app", "linux-64")
    six = next(c for c in doc["components"] if c["name"] == "six")
    assert six["licenses"] == [{"expression": "MIT"}]
    assert "pyspark" not in {c["name"] for c in doc["components"]}

    path = tmp_path / "app.spdx.json"
    path.write_text(dumps(spdx(inventory)))
    assert spdx_errors(path) == []


def test_read_members_reads_a_zip_and_a_tar_alike(tmp_path: Path) -> None:
    files = {"conda-meta/a-1-h_0.json": _record("a", "1", ["x"]), "x": b"data"}
    tar_path, zip_path = tmp_path / "e.tar.gz", tmp_path / "e.zip"
    import io
    import zipfile

    with tarfile.open(tar_path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    want = {"conda-meta/a-1-h_0.json": files["conda-meta/a-1-h_0.json"]}
    assert read_members(tar_path, is_metadata) == read_members(zip_path, is_metadata) == want


def test_cli_sbom_of_a_small_archive_and_its_errors(tmp_path: Path) -> None:
    import io

    archive = tmp_path / "env.tar.gz"
    files = {
        "conda-meta/six-1.17.0-h_0.json": _record("six", "1.17.0", ["six.py"], license="MIT"),
        "six.py": b"",
    }
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = run_cli("sbom", str(archive), cwd=tmp_path)
    assert proc.returncode == 2
    assert error_line(proc) == (
        f"error: {archive}.json: no manifest beside the archive (bundler sbom reads the "
        "manifest that bundler pack writes beside each archive)"
    )
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = Manifest(variant="app", platform="linux-64")
    manifest = Manifest.from_dict({**manifest.to_dict(), "archive": {"sha256": sha}})
    Path(f"{archive}.json").write_text(manifest.dumps())
    proc = run_cli("sbom", str(archive), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert cyclonedx_errors(proc.stdout) is None
    doc = json.loads(proc.stdout)
    assert [(c["name"], c["licenses"]) for c in doc["components"]] == [
        ("six", [{"expression": "MIT"}])
    ]
    proc = run_cli("sbom", str(tmp_path / "gone.tar.gz"), cwd=tmp_path)
    assert proc.returncode == 2
    assert error_line(proc).startswith(f"error: {tmp_path / 'gone.tar.gz'}: no such archive")


def test_manifest_keeps_each_packages_sha256() -> None:
    manifest = Manifest(packages=(PackageRecord("six", "1", "pip", 3, sha256="ef" * 32),))
    again = Manifest.from_dict(json.loads(manifest.dumps()))
    assert again.packages[0].sha256 == "ef" * 32
    assert "sha256" not in Manifest(packages=(PackageRecord("a", "1"),)).to_dict()["packages"][0]


# ---------------------------------------------------------------- the test workspace's archives


DIST_RECORD = re.compile(r"(lib/python[\d.]+/site-packages)/([^/]+)-([^-/]+)\.dist-info/RECORD")


def tar_distributions(archive: Path) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(manager, name, version) of every distribution whose files ``tar -tzf`` lists, and
    the listed files that no distribution owns."""
    listed = subprocess.run(
        ["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    owners: dict[str, set[tuple[str, str, str]]] = {}
    with tarfile.open(archive) as tar:
        for name in listed:
            if re.fullmatch(r"conda-meta/[^/]+\.json", name):
                record = json.load(tar.extractfile(name))  # type: ignore[arg-type]
                key = ("conda", record["name"], record["version"])
                for f in [*record["files"], name]:
                    owners.setdefault(f, set()).add(key)
        for name in listed:
            m = DIST_RECORD.fullmatch(name)
            if not m or name in owners:
                continue
            key = ("pip", m.group(2).lower().replace("_", "-"), m.group(3))
            record = tar.extractfile(name).read().decode()  # type: ignore[union-attr]
            for line in record.splitlines():
                if path := line.split(",")[0]:
                    owners.setdefault(posixpath.normpath(f"{m.group(1)}/{path}"), set()).add(key)
    present = {key for name in listed for key in owners.get(name, ())}
    unowned = [n for n in listed if n not in owners and n not in NOT_A_PACKAGE]
    return present, unowned


def _lock_hashes(workspace: Path, variant: str) -> dict[tuple[str, str], str]:
    lock = yaml.safe_load((workspace / "locks" / f"{variant}.conda-lock.yml").read_text())
    return {(p["manager"], p["name"]): p["hash"]["sha256"] for p in lock["package"]}


def assert_sbom_matches_archive(archive: Path, workspace: Path) -> dict[str, Any]:
    """The SBOM beside ``archive`` is valid and lists exactly what the archive holds."""
    text = Path(f"{archive}.cdx.json").read_text()
    assert cyclonedx_errors(text) is None
    doc = json.loads(text)
    components = {
        (next(p["value"] for p in c["properties"] if p["name"] == "bundler:manager"),
         c["name"], c["version"]): c
        for c in doc["components"]
    }  # fmt: skip
    present, unowned = tar_distributions(archive)
    assert unowned == []  # every file belongs to a distribution
    assert set(components) == present  # nothing missing, nothing extra
    hashes = _lock_hashes(workspace, "app")
    for (manager, name, _), c in components.items():
        assert c["hashes"] == [{"alg": "SHA-256", "content": hashes[manager, name]}], name
    assert (
        doc["metadata"]["component"]["hashes"][0]["content"]
        == hashlib.sha256(archive.read_bytes()).hexdigest()
    )
    return doc


@pytest.mark.integration
def test_executor_archive_sbom_is_valid_and_matches_tar_listing(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    doc = assert_sbom_matches_archive(archive, locked_workspace)
    names = {c["name"] for c in doc["components"]}
    assert {"python", "six", "numpy", "pandas", "pyarrow", "python-dateutil"} <= names
    assert "pyspark" not in names and "py4j" not in names
    # a pip distribution depends on a conda package (dateutil on six, here)
    refs = {c["name"]: c["bom-ref"] for c in doc["components"]}
    depends = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    assert refs["numpy"] in depends[refs["pandas"]]
    assert refs["python"] in depends[refs["six"]]

    # bundler sbom rebuilds the same bytes from the archive; SPDX is valid too
    proc = run_cli("sbom", str(archive), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == Path(f"{archive}.cdx.json").read_text()
    out = tmp_path / "app.spdx.json"
    proc = run_cli("sbom", str(archive), "--format", "spdx", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{out}  spdx, {len(doc['components'])} components"
    assert spdx_errors(out) == []
    spdx_doc = json.loads(out.read_text())
    assert len(spdx_doc["packages"]) == len(doc["components"]) + 1  # and the archive

    proc = run_cli("sbom", str(archive), "--format", "xml", cwd=tmp_path)
    assert proc.returncode == 2
    assert error_line(proc) == "error: --format xml: unknown SBOM format (use cyclonedx or spdx)"


@pytest.mark.integration
def test_full_archive_sbom_matches_tar_listing(
    full_archive: tuple[Path, dict[str, Any]], locked_workspace: Path
) -> None:
    archive, _ = full_archive
    assert_sbom_matches_archive(archive, locked_workspace)


@pytest.mark.integration
def test_sbom_of_an_altered_archive_is_refused(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    copy = tmp_path / archive.name
    copy.write_bytes(archive.read_bytes() + b"\0")
    Path(f"{copy}.json").write_text(Path(f"{archive}.json").read_text())
    proc = run_cli("sbom", str(copy), "-o", str(tmp_path / "x.json"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not the" in error_line(proc) and "pack it again" in error_line(proc)
    assert not (tmp_path / "x.json").exists()


@pytest.mark.integration
def test_verify_deny_license_names_the_packages(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    proc = run_cli(
        "verify", str(archive), "--deny-license", "MIT", "--deny-license", "GPL-3.0-only",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    licenses = next(c for c in report["checks"] if c["name"] == "licenses")
    assert licenses["status"] == "failed"
    # numpy's License-Expression has MIT in every choice; pyarrow is Apache-2.0
    assert [p.split(" ")[0] for p in licenses["problems"]] == ["numpy"]
    unknown = [d for d in licenses["details"] if d.startswith("unknown licence: ")]
    assert "unknown licence: python 3.11.7 (conda): none declared" in unknown
    assert not any("pyarrow" in d for d in unknown)
    assert report["problems"] == [f"licenses: {p}" for p in licenses["problems"]]

    proc = run_cli("verify", str(archive), "--deny-license", "GNU GPL", cwd=tmp_path)
    assert proc.returncode == 2
    assert "'GNU GPL' is not an SPDX licence identifier" in error_line(proc)
