"""``bundler verify``: unpack an archive somewhere else and prove that it works there.

The checks run in a fixed order and each ends as passed, failed or skipped (with the
reason); a failed check never raises, so the caller gets the whole list at once:

- ``manifest``: the archive's sha256 and size match ``<archive>.json`` written by pack.
- ``extract``: the archive is unpacked in one pass into a fresh temporary directory
  (in memory when it fits, ``bundler.check.scratch``), never at the build prefix;
  each member is validated before it is written (no absolute paths, no ``..``, no
  links leaving the tree, no device files) and a refused archive leaves nothing.
  The sha256 of ``manifest`` is computed meanwhile.  A zip with symlink entries
  fails here: Spark's unzip turns them into text files.
- ``python``: ``bin/python`` runs from there, without ``conda-unpack``, and its
  ``sys.prefix`` is the extraction directory.
- ``imports``: each module is imported in its own interpreter (no user site, no
  inherited ``PYTHON*`` variables) and must be loaded from inside the extraction.
  For an executor archive (pyspark left out) the path holds Spark's pyspark and
  py4j zips first, as on an executor (``bundler.check.sparkpath``).
- ``spark-imports``: the modules of such an archive that Spark provides (pyspark,
  py4j) imported from Spark's zips; skipped, saying so, when no Spark is found.
- ``gpu-imports``: the same for the GPU modules, on any host.  An import that stops
  at the missing NVIDIA driver (``DRIVER_MISSING``) passes with a warning: it
  "imports without a GPU; GPU use needs the NVIDIA driver".  Any other error fails.
- ``linkage``: every ELF file's needed libraries resolve inside the environment, are
  loaded by the Python package that requires them, or come from the host (C runtime,
  NVIDIA driver, RDMA: listed as "needs on the host"); optional extension modules are
  warnings (see ``bundler.check.elf``).  This checks a gpu archive without a GPU.
  It runs in a thread while the imports run, each in its own process.
- ``pyspark-guards``: the manifest's package versions against the combinations
  PySpark supports (``bundler.solve.guards``).

The report is OK only when nothing failed and ``extract``, ``python`` and ``linkage``
ran (``ESSENTIAL``); when nothing failed but one of those could not run it is "not
verified", and either way it names every check that did not run and why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bundler import proc
from bundler.artifact.formats import archive_format
from bundler.artifact.manifest import Manifest, manifest_path, read_manifest
from bundler.artifact.readers import extract_members, zip_symlinks
from bundler.artifact.sbom import inventory_of, read_directory
from bundler.check.dists import display
from bundler.check.elf import HOST_KINDS, LinkageReport, check_linkage
from bundler.check.licenses import check_licenses, denied_keys
from bundler.check.report import NEED_EXTRACTION, Check, VerifyReport
from bundler.check.report import failed as _failed
from bundler.check.report import passed as _passed
from bundler.check.report import skipped as _skipped
from bundler.check.scratch import memory_scratch
from bundler.check.sparkpath import SparkPython, find_spark_python, version_note
from bundler.digest import sha256_file
from bundler.errors import BundlerError, ManifestError, VerifyError
from bundler.events import NullReporter, Reporter, SerializedReporter
from bundler.platforms import host_platform
from bundler.solve.guards import check_versions

PROBE_TIMEOUT = 120.0
IMPORT_TIMEOUT = 600.0
_MARK = "__bundler_verify__:"
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

#: What an import prints when it stops at the NVIDIA driver rather than at the archive:
#: RAPIDS 26.10 and CuPy load the driver lazily, older releases at import.  Such an
#: import in ``gpu-imports`` is not a failure on a host without a GPU.
DRIVER_MISSING = tuple(
    re.compile(p, re.I)
    for p in (
        r'"cuda" is an NVIDIA driver library',
        r"libcuda\.so(\.1)?\b.*(cannot open|not found|No such file)",
        r"(cannot open|could not (load|find)|not found)[^\n]*libcuda\.so",
        r"cudaErrorInsufficientDriver|CUDA_ERROR_(NO_DEVICE|NOT_INITIALIZED)|cudaErrorNoDevice",
        r"CUDA driver (version is insufficient|not found|library)",
        r"no CUDA-capable device is detected",
        r"NVIDIA driver (is not|not) (installed|loaded|found)",
    )
)
NO_GPU_NOTE = "imports without a GPU; GPU use needs the NVIDIA driver"


def needs_driver(output: str) -> bool:
    """Whether a failed import's output says it stopped at the missing NVIDIA driver."""
    return any(p.search(output) for p in DRIVER_MISSING)


# Run with the environment's interpreter (one line each, so ``--verbose`` stays legible);
# the result is the line that starts with _MARK.
_PYTHON_PROBE = (
    "import json,platform,sys,sysconfig;"
    f"print('\\n{_MARK}'+json.dumps(dict(prefix=sys.prefix,base_prefix=sys.base_prefix,"
    "executable=sys.executable,version=platform.python_version(),path=sys.path,"
    "config_prefix=sysconfig.get_config_var('prefix'))))"
)
_IMPORT_PROBE = (
    "import importlib,json,sys;m=importlib.import_module(sys.argv[1]);"
    "v=getattr(m,'__version__',None);"
    f"print('\\n{_MARK}'+json.dumps(dict(file=getattr(m,'__file__',None),"
    "path=[str(p) for p in getattr(m,'__path__',None) or []],"
    "version=v if isinstance(v,str) else None)))"
)


# ---------------------------------------------------------------- manifest


def _check_manifest(archive: Path, manifest: Manifest | None, reporter: Reporter) -> Check:
    if manifest is None:
        return _skipped(
            "manifest", f"no manifest beside the archive ({manifest_path(archive).name})"
        )
    mpath = manifest.path or manifest_path(archive)
    reporter.step(f"checking {archive.name} against {mpath.name}")
    expected = manifest.archive.sha256
    if not isinstance(expected, str) or not expected:
        return _failed("manifest", "the manifest records no archive sha256", [str(mpath)])
    total = archive.stat().st_size
    actual = sha256_file(
        archive, lambda done: reporter.progress(f"sha256 {archive.name}", done, total)
    )
    problems = []
    if actual != expected.lower():
        problems.append(f"sha256 of {archive.name} is {actual}, the manifest says {expected}")
    size = manifest.archive.size
    if isinstance(size, int) and size != archive.stat().st_size:
        problems.append(f"size is {archive.stat().st_size} bytes, the manifest says {size}")
    if problems:
        return _failed("manifest", "the archive does not match its manifest", problems)
    details = [f"{mpath.name}: sha256 {actual}"]
    name = manifest.archive.name
    if isinstance(name, str) and name != archive.name:
        details.append(f"packed as {name}, renamed since")
    return _passed("manifest", "sha256 and size match the manifest", details)


# ---------------------------------------------------------------- running the environment


def _env_root(dest: Path) -> Path:
    """The environment inside the extraction: its top, or a single top-level directory."""
    if (dest / "bin" / "python").exists():
        return dest
    children = [p for p in dest.iterdir() if p.is_dir() and not p.is_symlink()]
    if len(children) == 1 and (children[0] / "bin" / "python").exists():
        return children[0]
    return dest


def _clean_env() -> dict[str, str]:
    """Variables for the environment's Python: no user site, no inherited PYTHON*.

    ``proc.run`` adds these to ``os.environ``; CPython treats an empty ``PYTHON*``
    variable as unset, so blanking them is removing them.
    """
    env = {k: "" for k in os.environ if k.startswith("PYTHON")}
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _inside(path: str | Path, root: str | Path) -> bool:
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def _same(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _run_probe(
    python: Path,
    code: str,
    args: Sequence[str],
    *,
    what: str,
    cwd: Path,
    timeout: float,
    reporter: Reporter,
    pythonpath: Sequence[str] = (),
) -> dict[str, Any]:
    env = _clean_env()
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = proc.run(
        [python, "-c", code, *args],
        what=what,
        cwd=cwd,
        env=env,
        reporter=reporter,
        timeout=timeout,
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            if isinstance(data, dict):
                return data
    raise VerifyError(f"{what}: the interpreter printed no result")


def _check_python(
    root: Path, cwd: Path, manifest: Manifest | None, reporter: Reporter
) -> tuple[Check, bool]:
    """The ``python`` check, and whether the interpreter ran at all."""
    python = root / "bin" / "python"
    if not python.exists():
        return _failed("python", f"no bin/python in the archive (looked in {root})"), False
    reporter.step("running the environment's python from the extraction directory")
    try:
        info = _run_probe(
            python,
            _PYTHON_PROBE,
            [],
            what="bin/python",
            cwd=cwd,
            timeout=PROBE_TIMEOUT,
            reporter=reporter,
        )
    except BundlerError as exc:
        return _failed("python", "bin/python does not run", [exc.one_line()]), False
    except OSError as exc:
        hint = " (is the temporary directory mounted noexec? set TMPDIR)"
        return _failed("python", "bin/python does not run", [f"{exc}{hint}"]), False
    version = str(info.get("version"))
    problems = []
    details = [f"python {version}: sys.prefix {info.get('prefix')}"]
    for key in ("prefix", "base_prefix"):
        if not _same(str(info.get(key)), root):
            problems.append(f"sys.{key} is {info.get(key)}, not the extraction directory {root}")
    if not _inside(str(info.get("executable")), root):
        problems.append(f"sys.executable is {info.get('executable')}, outside the extraction")
    for entry in info.get("path") or []:
        if entry and os.path.exists(entry) and not _inside(entry, root):
            problems.append(f"sys.path holds {entry}, outside the extraction")
    built = info.get("config_prefix")
    if built and not _same(built, root):
        details.append(f"sysconfig still names {built}; conda-unpack was not needed to run")
    wanted = manifest.python if manifest else None
    if wanted and not (version == wanted or version.startswith(wanted + ".")):
        problems.append(f"python is {version}, the manifest says {wanted}")
    if problems:
        summary = f"python {version} runs, with {len(problems)} problem(s)"
        return _failed("python", summary, problems, details), True
    return _passed("python", f"python {version} runs from the extraction directory", details), True


def _check_imports(
    name: str,
    modules: Sequence[str],
    root: Path,
    cwd: Path,
    reporter: Reporter,
    note: str | None = None,
    spark: SparkPython | None = None,
    from_spark: bool = False,
    gpu: bool = False,
) -> Check:
    """Import each module; it must come from the extraction (from Spark's zips with
    ``from_spark``).  ``spark`` puts Spark's pyspark on the path, as on an executor.
    With ``gpu`` an import that stops at the missing NVIDIA driver is a warning."""
    problems: list[str] = []
    warnings: list[str] = []
    details = [note] if note else []
    pythonpath = spark.entries if spark else ()
    roots = [str(e) for e in pythonpath] if from_spark else [str(root)]
    place = "Spark's pyspark" if from_spark else "the extraction"
    valid = [m for m in modules if _MODULE_RE.match(m)]
    problems += [f"{m!r} is not a module name" for m in modules if m not in valid]

    def probe(module: str) -> dict[str, Any]:
        return _run_probe(
            root / "bin" / "python",
            _IMPORT_PROBE,
            [module],
            what=f"import {module}",
            cwd=cwd,
            timeout=IMPORT_TIMEOUT,
            reporter=shared,
            pythonpath=pythonpath,
        )

    shared = SerializedReporter(reporter)
    # each import is a process of its own: they run side by side, one per core
    workers = max(1, min(len(valid), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="bundler-import") as pool:
        reporter.step(f"import {', '.join(valid)}" if valid else "no valid module to import")
        running = [(module, pool.submit(probe, module)) for module in valid]
    for module, future in running:
        try:
            info = future.result()
        except BundlerError as exc:
            output = getattr(exc, "output", "") or exc.message
            if gpu and needs_driver(output):
                last = output.strip().splitlines()[-1] if output.strip() else exc.message
                warnings.append(f"{module}: {NO_GPU_NOTE} ({last})")
            else:
                problems.append(exc.message)
            continue
        origins = [info["file"]] if info.get("file") else list(info.get("path") or [])
        outside = [str(o) for o in origins if not any(_inside(str(o), r) for r in roots)]
        version = f" {info['version']}" if info.get("version") else ""
        shown = origins if from_spark else [os.path.relpath(str(o), root) for o in origins]
        where = ", ".join(str(o) for o in shown) or "built-in"
        if outside:
            problems.append(f"{module} was loaded from {', '.join(outside)}, outside {place}")
        else:
            details.append(f"{module}{version}: {where}")
    if problems:
        summary = f"{len(problems)} of {len(modules)} imports failed"
        return _failed(name, summary, problems, details, warnings)
    if warnings:
        imported = len(modules) - len(warnings)
        summary = f"imported {imported} module(s); {len(warnings)} stopped at the NVIDIA driver"
        return _passed(name, summary, details, warnings)
    return _passed(name, f"imported {len(modules)} module(s) from {place}", details)


def gpu_visible(reporter: Reporter | None = None) -> str | None:
    """How a GPU was seen (``/dev/nvidia0``, ``nvidia-smi -L``), or None without one."""
    if Path("/dev/nvidia0").exists():
        return "/dev/nvidia0 exists"
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = proc.run(["nvidia-smi", "-L"], what="nvidia-smi -L", timeout=30, reporter=reporter)
    except BundlerError:
        return None
    first = out.stdout.strip().splitlines()
    return f"nvidia-smi -L: {first[0]}" if first else None


def _check_linkage(root: Path, reporter: Reporter) -> Check:
    report: LinkageReport = check_linkage(
        root, progress=lambda done, total: reporter.progress("linkage", done, total)
    )
    notes = []
    if report.system_runtime:
        users = ", ".join(f"{k} ×{v}" for k, v in report.system_runtime.items())
        notes.append(f"from the host's GCC runtime: {users}")
    details = [f"unreadable ELF file {f}: {r}" for f, r in report.unreadable]
    if report.by_package:
        loaded = sum(report.by_package.values())
        owners = ", ".join(display(d) for d in report.by_package)
        details.append(
            f"{loaded} needed libraries are not on the ELF search path but are loaded by the "
            f"Python packages that require their distribution first: {owners}"
        )
    warnings = [
        f"needs on the host ({HOST_KINDS[kind]}): {', '.join(sonames)}"
        for kind, sonames in report.host.items()
    ]
    warnings += [f"optional module {o}" for o in report.optional]
    warnings += [str(u) for u in report.unrequired]
    summary = f"{report.dynamic_objects} dynamically linked of {report.elf_files} ELF files"
    if report.unresolved:
        return _failed(
            "linkage",
            f"{summary}; {len(report.unresolved)} needed libraries not found",
            [str(u) for u in report.unresolved],
            details,
            warnings,
        )
    tail = f" ({'; '.join(notes)})" if notes else ""
    return _passed("linkage", f"{summary}; all needed libraries resolve{tail}", details, warnings)


def _check_guards(manifest: Manifest | None) -> Check:
    """PySpark's supported combinations (``bundler.solve.guards``) on the packed versions."""
    if manifest is None:
        return _skipped("pyspark-guards", "no manifest: the packed versions are unknown")
    versions = manifest.package_versions()
    if "pyspark" not in versions:
        return _skipped("pyspark-guards", "no pyspark in the archive (executors use Spark's own)")
    names = ("pyspark", "python", "pandas", "pyarrow", "numpy")
    seen = ", ".join(f"{n} {versions[n]}" for n in names if n in versions)
    violations = check_versions(versions)
    if violations:
        problems = [f"{v.message} [{v.rule}]" for v in violations]
        return _failed("pyspark-guards", "a combination PySpark does not support", problems, [seen])
    return _passed("pyspark-guards", "a combination PySpark supports", [seen])


def _check_licenses(
    dest: Path, checks: list[Check], manifest: Manifest | None, denied: Sequence[str]
) -> Check:
    """The extracted environment's SBOM components against the denied licences."""
    if not any(c.name == "extract" and c.status == "passed" for c in checks):
        return _skipped("licenses", "the archive was not extracted")
    metadata = read_directory(_env_root(dest))
    inventory = inventory_of(dest.name, "", manifest or Manifest(), metadata)
    return check_licenses(inventory.components, denied)


# ---------------------------------------------------------------- the command


def _host_platform() -> str | None:
    try:
        return host_platform()
    except Exception:  # only decides whether this machine can run the archive's python
        return None


def verify_archive(
    archive: Path,
    *,
    imports: Sequence[str] | None = None,
    deny_licenses: Sequence[str] = (),
    reporter: Reporter | None = None,
) -> VerifyReport:
    """Unpack ``archive`` into a temporary directory and run every check on it.

    ``imports`` replaces the manifest's module lists (plain and GPU) when given.
    ``deny_licenses`` (SPDX) adds the ``licenses`` check (``bundler.check.licenses``).
    Raises ``VerifyError`` only for a missing or unsupported archive or a module
    name that is not one (``LicensePolicyError`` for a denied licence that is not
    SPDX); everything wrong with the archive itself, its manifest
    included, is a failed check in the report.
    """
    reporter = reporter or NullReporter()
    archive = Path(archive)
    if not archive.is_file():
        raise VerifyError(f"{archive}: no such archive", "pass the path that bundler pack wrote")
    archive_format(archive)
    for module in imports or ():
        if not _MODULE_RE.match(module):
            raise VerifyError(f"--import {module!r} is not a module name")
    denied = denied_keys(deny_licenses)
    manifest: Manifest | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="bundler-sha256") as pool:
        try:
            manifest = read_manifest(archive)
        except ManifestError as exc:
            first = Future[Check]()
            first.set_result(_failed("manifest", "the manifest cannot be read", [exc.one_line()]))
        else:
            # hashed while the archive is extracted (hashlib runs outside the GIL)
            if manifest is not None:
                reporter.step(f"checking {archive.name} against its manifest (in the background)")
            first = pool.submit(_check_manifest, archive, manifest, NullReporter())
        # in memory when the environment fits with room to spare (bundler.check.scratch)
        scratch = memory_scratch(manifest.installed_size if manifest else None)
        with tempfile.TemporaryDirectory(prefix="bundler-verify-", dir=scratch) as tmp:
            checks = _checks_in(Path(tmp), archive, manifest, imports, reporter)
            if denied:
                checks.append(_check_licenses(Path(tmp) / "env", checks, manifest, denied))
            reporter.step("removing the temporary directory")
        checks = [first.result(), *checks, _check_guards(manifest)]
    return VerifyReport(
        archive=archive,
        checks=tuple(checks),
        manifest_path=manifest.path if manifest else None,
        variant=manifest.variant if manifest else None,
        platform=manifest.platform if manifest else None,
    )


def _checks_in(
    tmp: Path,
    archive: Path,
    manifest: Manifest | None,
    imports: Sequence[str] | None,
    reporter: Reporter,
) -> list[Check]:
    """Every check after ``manifest``, with ``tmp`` as the scratch directory."""
    dest = tmp / "env"
    reporter.step(f"extracting {archive.name} into {dest}")
    try:
        links = zip_symlinks(archive) if archive_format(archive) == "zip" else []
        count = 0 if links else extract_members(archive, dest, reporter)
    except VerifyError as exc:
        summary = "the archive could not be extracted safely"
        return [_failed("extract", summary, [exc.one_line()])] + [
            _skipped(n, "extraction failed") for n in NEED_EXTRACTION
        ]
    except (OSError, zipfile.BadZipFile) as exc:
        summary = "the archive could not be read"
        return [_failed("extract", summary, [f"{type(exc).__name__}: {exc}"])] + [
            _skipped(n, "extraction failed") for n in NEED_EXTRACTION
        ]
    if links:
        summary = (
            f"{len(links)} symlink {'entry' if len(links) == 1 else 'entries'} in a zip: "
            "Spark's unzip (Hadoop's "
            "FileUtil.unZip) writes each as a file holding the link text, so the "
            "environment breaks on executors; pack it again with bundler pack"
        )
        shown = [f"symlink entry {name}" for name in links[:5]]
        return [_failed("extract", summary, [summary], shown)] + [
            _skipped(n, "not extracted: the zip holds symlink entries") for n in NEED_EXTRACTION
        ]
    root = _env_root(dest)
    built = manifest.build_prefix if manifest else None
    details = [f"into {root} (a temporary directory, removed afterwards)"]
    if built and _same(built, root):
        checks = [_failed("extract", f"extracted at the build prefix {built}")]
    else:
        details += [f"the build prefix was {built}"] if built else []
        checks = [_passed("extract", f"{count} members extracted safely", details)]

    target = manifest.platform if manifest else None
    with ThreadPoolExecutor(1, thread_name_prefix="bundler-linkage") as pool:
        # the ELF scan runs while the imports run in their own interpreters
        if not target or target.startswith("linux"):
            reporter.step("checking the needed libraries of every ELF file (in the background)")
        linkage = pool.submit(_linkage_or_skip, root, target)
        checks += _run_checks(root, tmp, target, manifest, imports, reporter)
        checks.append(linkage.result())
    return checks


def _linkage_or_skip(root: Path, target: str | None) -> Check:
    if target and not target.startswith("linux"):
        return _skipped("linkage", f"{target} archives hold no ELF files to check")
    return _check_linkage(root, NullReporter())


def _run_checks(
    root: Path,
    tmp: Path,
    target: str | None,
    manifest: Manifest | None,
    imports: Sequence[str] | None,
    reporter: Reporter,
) -> list[Check]:
    """``python``, ``imports``, ``spark-imports`` and ``gpu-imports``."""
    checks: list[Check] = []
    host = _host_platform()
    if target and host and target != host:
        reason = f"the archive is for {target}, this machine is {host}"
        checks += [_skipped(n, reason) for n in ("python", "imports", "gpu-imports")]
    else:
        cwd = tmp / "cwd"  # an empty working directory: '' on sys.path finds nothing
        cwd.mkdir()
        python_check, ran = _check_python(root, cwd, manifest, reporter)
        checks.append(python_check)
        if ran:
            checks += _import_checks(root, cwd, manifest, imports, reporter)
        else:
            reason = "the environment's python did not run"
            checks += [_skipped("imports", reason), _skipped("gpu-imports", reason)]
    return checks


def _import_checks(
    root: Path,
    cwd: Path,
    manifest: Manifest | None,
    imports: Sequence[str] | None,
    reporter: Reporter,
) -> list[Check]:
    """``imports`` and ``gpu-imports``; explicit ``imports`` replace both manifest lists."""
    modules: tuple[str, ...] = ()
    gpu_modules: tuple[str, ...] = ()
    if imports is not None:
        modules = tuple(imports)
        gpu_reason = "imports were given explicitly; the manifest's GPU imports are not used"
    elif manifest is not None:
        modules, gpu_modules = manifest.imports, manifest.gpu_imports
        gpu_reason = "the manifest lists no GPU imports"
    else:
        gpu_reason = "no manifest"
    provided = manifest.left_out_imports if manifest else ()
    from_spark = tuple(m for m in modules if m.split(".")[0] in provided)
    modules = tuple(m for m in modules if m not in from_spark)
    found = find_spark_python() if provided else None
    spark = found if isinstance(found, SparkPython) else None
    note = spark.describe() if spark else None
    checks = [
        _check_imports("imports", modules, root, cwd, reporter, note, spark)
        if modules
        else _skipped("imports", "no modules to import (none in a manifest; pass --import MODULE)")
    ]
    checks.append(_spark_imports(from_spark, found, root, cwd, manifest, reporter))
    if not gpu_modules:
        return [*checks, _skipped("gpu-imports", gpu_reason)]
    gpu = gpu_visible(reporter)
    note = f"GPU: {gpu}" if gpu else f"no GPU visible: {NO_GPU_NOTE}"
    gpu_check = _check_imports(
        "gpu-imports", gpu_modules, root, cwd, reporter, note, spark, gpu=True
    )
    return [*checks, gpu_check]


def _spark_imports(
    modules: Sequence[str],
    found: SparkPython | str | None,
    root: Path,
    cwd: Path,
    manifest: Manifest | None,
    reporter: Reporter,
) -> Check:
    """The modules an executor archive left to Spark, imported from Spark's own zips."""
    name = "spark-imports"
    if found is None:
        return _skipped(name, "the archive left out nothing that Spark provides")
    if not modules:
        return _skipped(name, "the archive imports nothing that Spark provides")
    if isinstance(found, str):
        return _skipped(
            name,
            f"NOT RUN: {', '.join(modules)} not imported: {found}",
            ["set SPARK_HOME to the Spark the executors run, then verify again"],
        )
    locked = manifest.package_versions().get("pyspark") if manifest else None
    check = _check_imports(
        name, modules, root, cwd, reporter, found.describe(), found, from_spark=True
    )
    note = version_note(found, locked)
    return dataclasses.replace(check, details=(*check.details, note)) if note else check
