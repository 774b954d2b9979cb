"""bundler verify: safe extraction, ELF linkage, and the checks on real archives.

The environments (tests/support/envs.py) are built from the running interpreter's own
files (its ``bin/python3.X``, ``libpython`` and standard library) with ``patchelf``
setting a relative RUNPATH, so every check runs against real ELF files and a real Python.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from bundler.artifact.manifest import manifest_path
from bundler.artifact.readers import safe_extract
from bundler.check.elf import check_linkage, read_dynamic, system_library_kind
from bundler.check.report import CHECK_NAMES, VerifyReport
from bundler.check.verify import NO_GPU_NOTE, gpu_visible, verify_archive
from bundler.errors import VerifyError
from bundler.events import RecordingReporter
from tests.support.archives import pack_dir, write_manifest
from tests.support.envs import (
    BASE,
    LIBPYTHON,
    PYVER,
    make_linkage_env,
    needs_shared_python,
    patchelf,
)


def assert_verified(report: VerifyReport) -> None:
    """For end-to-end tests: every check that ran passed; the report says why not."""
    assert report.ok, report.render()
    assert [c.name for c in report.checks] == list(CHECK_NAMES)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """verify's temporary directories land here, so the test can see they are removed."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


# ---------------------------------------------------------------- linkage


@needs_shared_python
def test_linkage_resolves_through_origin_runpath(tmp_path: Path) -> None:
    env = make_linkage_env(tmp_path / "env")
    report = check_linkage(env)
    assert report.ok, report.unresolved
    assert report.elf_files == 2
    assert read_dynamic(env / "bin" / f"python{PYVER}").runpath == ("$ORIGIN/../lib",)  # type: ignore[union-attr]


@needs_shared_python
def test_linkage_fails_naming_file_and_soname_when_library_is_missing(tmp_path: Path) -> None:
    env = make_linkage_env(tmp_path / "env")
    (env / "lib" / LIBPYTHON).unlink()
    report = check_linkage(env)
    assert not report.ok
    assert [str(u) for u in report.unresolved] == [f"bin/python{PYVER} -> {LIBPYTHON}"]


@needs_shared_python
def test_runpath_to_the_build_machine_does_not_count(tmp_path: Path) -> None:
    # The original binary's RUNPATH points at sys.base_prefix/lib, which exists on this
    # host: the library is found there, but not inside the environment.
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    shutil.copy2(BASE / "bin" / f"python{PYVER}", env / "bin")
    info = read_dynamic(env / "bin" / f"python{PYVER}")
    assert info is not None and any(str(BASE) in p for p in info.search_path)
    report = check_linkage(env)
    assert [u.soname for u in report.unresolved] == [LIBPYTHON]


@needs_shared_python
def test_rpath_outside_lib_sibling_dir_and_symlinked_dir(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "private").mkdir()
    shutil.copy2(BASE / "bin" / f"python{PYVER}", env / "bin")
    shutil.copy2(BASE / "lib" / LIBPYTHON, env / "private" / LIBPYTHON)
    patchelf("--set-rpath", "$ORIGIN/../private", env / "bin" / f"python{PYVER}")
    # a second copy next to its library, no RUNPATH: found as a sibling
    shutil.copy2(BASE / "bin" / f"python{PYVER}", env / "private" / "tool")
    patchelf("--remove-rpath", env / "private" / "tool")
    assert check_linkage(env).ok
    # a RUNPATH entry through a symlink that leaves the tree does not count
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(env / "private" / LIBPYTHON, outside / LIBPYTHON)
    (env / "private" / LIBPYTHON).symlink_to(outside / LIBPYTHON)
    assert {str(u) for u in check_linkage(env).unresolved} == {
        f"bin/python{PYVER} -> {LIBPYTHON}",
        f"private/tool -> {LIBPYTHON}",
    }


@needs_shared_python
def test_system_runtime_and_driver_libraries_are_allowed(tmp_path: Path) -> None:
    env = make_linkage_env(tmp_path / "env")
    exe = env / "bin" / f"python{PYVER}"
    for soname in ("libcuda.so.1", "libnvidia-ml.so.1", "libstdc++.so.6", "libunknown.so.9"):
        patchelf("--add-needed", soname, exe)
    report = check_linkage(env)
    assert [str(u) for u in report.unresolved] == [f"bin/python{PYVER} -> libunknown.so.9"]
    assert dict(report.system_runtime) == {"libstdc++.so.6": 1}
    assert set(report.driver) == {"libcuda.so.1", "libnvidia-ml.so.1"}


def test_system_library_kinds() -> None:
    assert system_library_kind("libc.so.6") == "glibc"
    assert system_library_kind("ld-linux-x86-64.so.2") == "glibc"
    assert system_library_kind("ld-linux-aarch64.so.1") == "glibc"
    assert system_library_kind("libgcc_s.so.1") == "runtime"
    assert system_library_kind("libnvidia-ptxjitcompiler.so.1") == "driver"
    assert system_library_kind("libnvcuvid.so.1") == "driver"
    assert system_library_kind("libcudart.so.12") is None
    assert system_library_kind("libz.so.1") is None


def test_non_elf_and_broken_elf_files(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "notes.txt").write_text("not an ELF file at all, but long enough " * 4)
    real = (BASE / "bin" / f"python{PYVER}").read_bytes()
    (tmp_path / "lib" / "broken.so").write_bytes(real[:300])  # truncated in its headers
    report = check_linkage(tmp_path)
    assert report.ok
    assert report.elf_files == 1
    assert [f for f, _ in report.unreadable] == ["lib/broken.so"]


# ---------------------------------------------------------------- safe extraction


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith((".gz", ".tgz")) else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"ok\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info, None


@pytest.mark.parametrize(
    ("bad", "member", "reason"),
    [
        (_file("../escape"), "../escape", "'..'"),
        (_file("lib/../../escape"), "lib/../../escape", "'..'"),
        (_file("/abs/path"), "/abs/path", "absolute path"),
        (_link("lib/passwd", "/etc/passwd"), "lib/passwd", "/etc/passwd"),
        (_link("lib/x", "../../x"), "lib/x", "leaves the tree"),
        (_link("lib/hard", "../outside", tarfile.LNKTYPE), "lib/hard", "hard link"),
        (_device("dev/null"), "dev/null", "device file"),
    ],
)
def test_safe_extract_refuses_unsafe_members(
    tmp_path: Path, bad: tuple[tarfile.TarInfo, bytes | None], member: str, reason: str
) -> None:
    # A harmless member comes first: nothing may be written before all are checked.
    archive = _tar(tmp_path / "bad.tar.gz", [_file("bin/first"), bad, _file("lib/last")])
    dest = tmp_path / "a" / "b" / "dest"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(VerifyError) as err:
        safe_extract(archive, dest)
    assert repr(member) in err.value.message
    assert reason in err.value.message
    assert list(dest.rglob("*")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "a" / "escape").exists() and not (tmp_path / "escape").exists()


def test_safe_extract_follows_the_archives_own_links(tmp_path: Path) -> None:
    # d/q -> .. is the top of the tree (fine); p -> d/q/.. is then its parent.
    archive = _tar(
        tmp_path / "chain.tar", [_link("d/q", ".."), _link("p", "d/q/.."), _file("p/evil")]
    )
    with pytest.raises(VerifyError, match=r"'p'.*leaves the tree"):
        safe_extract(archive, tmp_path / "dest")
    # "a" is the top, so "a/.." is outside, though it reads as inside
    archive = _tar(tmp_path / "via.tar", [_link("a", "."), _link("b", "a/.."), _file("b/evil")])
    with pytest.raises(VerifyError, match=r"'b'.*leaves the tree"):
        safe_extract(archive, tmp_path / "dest2")
    assert not (tmp_path / "evil").exists()
    # a file written through a link that stays inside lands where the link points
    archive = _tar(tmp_path / "ok.tar", [_link("d/q", ".."), _file("d/q/x", b"x")])
    safe_extract(archive, tmp_path / "dest3")
    assert (tmp_path / "dest3" / "x").read_bytes() == b"x"


def test_safe_extract_keeps_links_and_modes(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "good.tgz",
        [
            _file("./bin/tool", b"#!/bin/sh\n", 0o755),
            _file("lib/libx.so.1.2", b"\x7fELF", 0o644),
            _link("lib/libx.so.1", "libx.so.1.2"),
            _link("bin/lib", "../lib"),
            _link("lib/copy.so", "lib/libx.so.1.2", tarfile.LNKTYPE),
        ],
    )
    dest = tmp_path / "dest"
    safe_extract(archive, dest)
    assert os.access(dest / "bin" / "tool", os.X_OK)
    assert not os.access(dest / "lib" / "libx.so.1.2", os.X_OK)
    assert os.readlink(dest / "lib" / "libx.so.1") == "libx.so.1.2"
    assert (dest / "bin" / "lib" / "libx.so.1").read_bytes() == b"\x7fELF"
    assert os.path.samefile(dest / "lib" / "copy.so", dest / "lib" / "libx.so.1.2")


def test_zip_symlink_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (src / "bin" / "tool").chmod(0o755)
    (src / "bin" / "data.txt").write_text("data\n")
    (src / "bin" / "alias").symlink_to("tool")
    (src / "lib").symlink_to("bin")
    archive = pack_dir(src, tmp_path / "env.zip")
    dest = tmp_path / "dest"
    safe_extract(archive, dest)
    assert os.readlink(dest / "bin" / "alias") == "tool"
    assert os.readlink(dest / "lib") == "bin"
    assert (dest / "lib" / "data.txt").read_text() == "data\n"
    assert stat.S_IMODE((dest / "bin" / "tool").stat().st_mode) == 0o755
    assert subprocess.run([dest / "bin" / "alias"], capture_output=True, text=True).stdout == "hi\n"


def test_zip_refuses_escaping_symlink_and_path(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("lib/evil")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        zf.writestr("bin/ok", b"ok")
        zf.writestr(link, "../../etc/passwd")
    with pytest.raises(VerifyError, match="'lib/evil'"):
        safe_extract(tmp_path / "link.zip", tmp_path / "d1")
    with zipfile.ZipFile(tmp_path / "dots.zip", "w") as zf:
        zf.writestr("bin/ok", b"ok")
        zf.writestr("../escape", b"x")
    with pytest.raises(VerifyError, match=re.escape("'../escape'")):
        safe_extract(tmp_path / "dots.zip", tmp_path / "d2")
    assert not (tmp_path / "escape").exists()
    assert list((tmp_path / "d1").rglob("*")) == [] and list((tmp_path / "d2").rglob("*")) == []


def test_unsupported_and_corrupt_archives(tmp_path: Path) -> None:
    (tmp_path / "env.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(VerifyError, match="unsupported archive suffix"):
        safe_extract(tmp_path / "env.tar.zst", tmp_path / "d")
    (tmp_path / "env.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(VerifyError, match="could not be extracted"):
        safe_extract(tmp_path / "env.tar.gz", tmp_path / "d")
    with pytest.raises(VerifyError, match="no such archive"):
        verify_archive(tmp_path / "missing.tar.gz")


# ---------------------------------------------------------------- verify_archive


@needs_shared_python
def test_verify_good_archive(python_env: Path, tmp_path: Path, private_tmp: Path) -> None:
    archive = pack_dir(python_env, tmp_path / "env.tar.gz")
    write_manifest(
        archive, imports=["json", "hello"], gpu_imports=["json"], build_prefix=str(python_env)
    )
    reporter = RecordingReporter()
    report = verify_archive(archive, reporter=reporter)
    assert_verified(report)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["manifest"] == statuses["extract"] == statuses["python"] == "passed"
    assert statuses["imports"] == statuses["linkage"] == "passed"
    gpu = report.check("gpu-imports")  # imported on any host, GPU or not
    assert gpu.status == "passed"
    if gpu_visible() is None:
        assert gpu.details[0] == f"no GPU visible: {NO_GPU_NOTE}"
    assert any(d.startswith("hello 1.2.3: lib/python") for d in report.check("imports").details)
    assert f"the build prefix was {python_env}" in report.check("extract").details
    assert "runs from the extraction directory" in report.check("python").summary
    assert any("extracting env.tar.gz" in s for s in reporter.steps)
    # pyspark-guards: no pyspark in the manifest;
    # spark-imports: the manifest lists no pyspark import to make the way Spark does
    not_run = "spark-imports, pyspark-guards"
    ran = len(CHECK_NAMES) - len(not_run.split(", "))
    lines = report.render().splitlines()
    assert lines[-1] == f"OK: {ran} checks ran; not run: {not_run}; none failed"
    assert report.verdict == "ok"
    assert any(line.startswith(f"  {gpu.status[:4].upper()}  gpu-imports") for line in lines)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True
    assert list(private_tmp.iterdir()) == []  # the extraction is gone


@needs_shared_python
def test_verify_zip_archive_without_manifest(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    archive = pack_dir(python_env, tmp_path / "env.zip", zip_links=False)
    report = verify_archive(archive, imports=["hello"])
    assert report.ok, report.render()
    assert report.check("manifest").status == "skipped"
    assert report.check("gpu-imports").status == "skipped"
    assert report.check("imports").details == (
        "hello 1.2.3: lib/python" + PYVER + "/site-packages/hello/__init__.py",
    )
    assert list(private_tmp.iterdir()) == []


@needs_shared_python
def test_zip_with_symlink_entries_fails_extract(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    """Spark's unzip would turn bin/python into a text file: refused before running."""
    archive = pack_dir(python_env, tmp_path / "env.zip")
    report = verify_archive(archive, imports=["hello"])
    assert report.verdict == "failed"
    extract = report.check("extract")
    assert extract.status == "failed"
    assert extract.summary.startswith("1 symlink entry in a zip: Spark's unzip")
    assert extract.details == ("symlink entry bin/python",)
    assert [report.check(n).status for n in ("python", "imports", "linkage")] == ["skipped"] * 3
    assert "FAILED: extract" in report.render()
    assert list(private_tmp.iterdir()) == []


@needs_shared_python
def test_wrong_sha256_and_missing_module_fail(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    archive = pack_dir(python_env, tmp_path / "env.tar")
    write_manifest(archive, imports=["json", "no_such_module_xyz"])
    data = json.loads(manifest_path(archive).read_text())
    data["archive"]["sha256"] = "0" * 64
    manifest_path(archive).write_text(json.dumps(data))
    report = verify_archive(archive)
    assert not report.ok
    assert report.check("manifest").status == "failed"
    assert "the manifest says " + "0" * 64 in report.check("manifest").problems[0]
    imports = report.check("imports")
    assert imports.status == "failed"
    assert any("no_such_module_xyz" in d and "ModuleNotFoundError" in d for d in imports.problems)
    assert report.check("python").status == report.check("linkage").status == "passed"
    text = report.render()
    assert "FAILED: manifest, imports" in text
    assert "  - imports: import no_such_module_xyz failed: ModuleNotFoundError" in text
    assert list(private_tmp.iterdir()) == []


@needs_shared_python
def test_module_loaded_from_outside_the_extraction_fails(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    # A .pth file with an absolute path, as an editable install leaves behind.
    outside = tmp_path / "outside"
    (outside / "leaky").mkdir(parents=True)
    (outside / "leaky" / "__init__.py").write_text("")
    env = tmp_path / "env"
    shutil.copytree(python_env, env, symlinks=True)
    (env / "lib" / f"python{PYVER}" / "site-packages" / "leak.pth").write_text(f"{outside}\n")
    archive = pack_dir(env, tmp_path / "env.tar")
    report = verify_archive(archive, imports=["leaky"])
    assert report.check("python").status == "failed"
    assert f"sys.path holds {outside}, outside the extraction" in report.check("python").problems
    assert report.check("imports").status == "failed"
    assert (
        f"leaky was loaded from {outside}/leaky/__init__.py" in report.check("imports").problems[0]
    )


@needs_shared_python
def test_missing_library_fails_linkage_in_the_report(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    env = tmp_path / "env"
    shutil.copytree(python_env, env, symlinks=True)
    (env / "lib" / LIBPYTHON).unlink()
    report = verify_archive(pack_dir(env, tmp_path / "env.tar"), imports=["json"])
    linkage = report.check("linkage")
    assert linkage.status == "failed"
    assert f"bin/python{PYVER} -> {LIBPYTHON}" in linkage.problems
    # Whether bin/python still starts depends on the host (a system libpython in the
    # loader's cache satisfies it here); the linkage check does not.
    assert f"linkage: bin/python{PYVER} -> {LIBPYTHON}" in report.problems()


def test_unsafe_archive_is_a_failed_check(tmp_path: Path, private_tmp: Path) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", [_file("bin/python"), _link("lib", "/usr/lib")])
    report = verify_archive(archive)
    assert not report.ok
    assert report.check("extract").status == "failed"
    assert "'lib'" in report.check("extract").problems[0]
    assert [c.status for c in report.checks[2:]] == ["skipped"] * (len(CHECK_NAMES) - 2)
    assert list(private_tmp.iterdir()) == []


def test_invalid_import_name_is_a_user_error(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "env.tar", [_file("bin/python")])
    with pytest.raises(VerifyError, match="not a module name"):
        verify_archive(archive, imports=["os; import shutil"])


@pytest.mark.parametrize(
    ("versions", "status", "expect"),
    [
        ({"pyspark": "3.4.1", "pandas": "2.1.0"}, "failed", "pandas2-needs-pyspark-3.5"),
        ({"pyspark": "4.0.0", "pandas": "2.2.3", "pyarrow": "18.1.0"}, "passed", "pyspark 4.0.0"),
        ({"pandas": "3.0.0"}, "skipped", "no pyspark in the archive"),
    ],
)
def test_pyspark_guards_read_the_manifest(
    tmp_path: Path, private_tmp: Path, versions: dict[str, str], status: str, expect: str
) -> None:
    archive = _tar(tmp_path / "env.tar", [_file("conda-meta/history")])
    packages = [
        {"name": n, "version": v, "manager": "conda", "size": 1} for n, v in versions.items()
    ]
    write_manifest(archive, packages=packages, python="3.11.7")
    guards = verify_archive(archive).check("pyspark-guards")
    assert guards.status == status
    assert any(expect in line for line in (guards.summary, *guards.details, *guards.problems))


@needs_shared_python
def test_archive_for_another_platform_is_not_verified(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    """Nothing failed, but python never ran: the report must not say OK."""
    archive = pack_dir(python_env, tmp_path / "env.tar.gz")
    write_manifest(archive, platform="linux-aarch64", imports=["json"])
    report = verify_archive(archive)
    assert not report.ok and not report.failed
    assert report.verdict == "not-verified"
    assert [c.name for c in report.incomplete] == ["python"]
    lines = report.render().splitlines()
    assert not any(line.startswith("OK") for line in lines)
    assert lines[-2] == (
        "NOT VERIFIED: nothing failed, but not everything could run (3 checks ran; "
        "not run: python, imports, gpu-imports, pyspark-guards)"
    )
    reason = "the archive is for linux-aarch64, this machine is linux-64"
    assert lines[-1] == f"  - python not run: {reason}"
    data = report.to_dict()
    assert data["ok"] is False and data["verdict"] == "not-verified"
    assert data["not_run"]["imports"] == reason


@needs_shared_python
def test_ok_names_the_checks_that_did_not_run(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    """No manifest: the hash check and the guards cannot run, and the report says so."""
    archive = pack_dir(python_env, tmp_path / "env.tar.gz")
    report = verify_archive(archive)
    assert report.ok, report.render()
    assert report.check("manifest").summary == "no manifest beside the archive (env.tar.gz.json)"
    assert "pass --import MODULE" in report.check("imports").summary
    text = report.render()
    assert "  SKIP  manifest" in text
    assert text.splitlines()[-1] == (
        "OK: 3 checks ran; not run: manifest, imports, spark-imports, gpu-imports, "
        "pyspark-guards; none failed"
    )


# ---------------------------------------------------------------- gpu-imports without a GPU

DRIVER_ERRORS = {
    # RAPIDS 26.10 loads the driver lazily, through cuda-pathfinder
    "drv_lazy": 'RuntimeError(\'"cuda" is an NVIDIA driver library that was not found. '
    "Ensure the NVIDIA display driver is installed.')",
    # older releases dlopen it at import
    "drv_dlopen": "ImportError('libcuda.so.1: cannot open shared object file: No such file')",
    "drv_old": "RuntimeError('cudaErrorInsufficientDriver: CUDA driver version is insufficient')",
}


@needs_shared_python
def test_gpu_imports_stopped_by_the_missing_driver_pass_and_real_errors_fail(
    python_env: Path, tmp_path: Path, private_tmp: Path
) -> None:
    env = tmp_path / "env"
    shutil.copytree(python_env, env, symlinks=True)
    site = env / "lib" / f"python{PYVER}" / "site-packages"
    errors = {**DRIVER_ERRORS, "broken": "ImportError('libcudf.so: cannot open shared object')"}
    for name, error in errors.items():
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(f"import json\nraise {error}\n")
    archive = pack_dir(env, tmp_path / "env.tar.gz")
    write_manifest(archive, gpu_imports=[*DRIVER_ERRORS, "hello"])
    gpu = verify_archive(archive).check("gpu-imports")
    assert gpu.status == "passed", gpu
    assert gpu.summary == "imported 1 module(s); 3 stopped at the NVIDIA driver"
    assert [w.split(" (")[0] for w in gpu.warnings] == [
        f"{m}: {NO_GPU_NOTE}" for m in DRIVER_ERRORS
    ]
    assert "libcuda.so.1: cannot open shared object file" in gpu.warnings[1]

    write_manifest(archive, gpu_imports=["drv_lazy", "broken"])
    report = verify_archive(archive)
    gpu = report.check("gpu-imports")
    assert gpu.status == "failed" and report.verdict == "failed"
    assert gpu.problems == (
        "import broken failed: ImportError: libcudf.so: cannot open shared object",
    )
    assert [w.split(" (")[0] for w in gpu.warnings] == [f"drv_lazy: {NO_GPU_NOTE}"]
