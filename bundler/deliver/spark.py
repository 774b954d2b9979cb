"""How Spark finds a variant's Python: spark-submit arguments, and a local test session.

``plan_spark_conf`` is pure: a frozen ``SparkConfOptions`` plus what was read from
the workspace becomes a ``SparkSubmitPlan`` (ordered conf pairs, the archive,
environment variables and warnings), which renders as spark-submit arguments,
``spark-defaults.conf`` lines or JSON.  ``spark_conf`` does the reading.

What each cluster manager needs (Spark's "Python Package Management" and
"Submitting Applications" docs; SparkSubmit's option table):

- ``--archives`` becomes ``spark.archives`` for local, standalone and Kubernetes,
  ``spark.yarn.dist.archives`` for YARN.  Executors unpack it into their working
  directory under the ``#alias``, so ``./env/bin/python`` resolves there.
- Client mode: the driver runs where spark-submit runs, so ``spark.pyspark.driver.python``
  names the user's interpreter there (``python3`` on PATH unless told otherwise), which
  must share the archive's Python minor version.
- Cluster mode: the driver runs beside the executors and uses the archive too
  (YARN localises archives for the application master; Kubernetes unpacks them in
  the driver's working directory since SPARK-33748).  The driver Python is never
  set there ("PYSPARK_DRIVER_PYTHON ... should not be set for cluster modes").
- Standalone (and local-cluster) cluster mode does not run Python applications.
- Plain ``local[*]`` ignores ``spark.pyspark.python`` for a session created from
  Python, and ``./env`` does not resolve there: use ``local_session`` instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bundler.artifact.readers import safe_extract
from bundler.deliver.layout import ENV_ALIAS, IMAGE_ENV_ROOT
from bundler.deliver.masters import (
    K8S_IMAGE_KEY,
    K8S_UPLOAD_KEY,
    ClusterManager,
    cluster_manager,
)
from bundler.errors import BundlerError, SparkConfError
from bundler.events import NullReporter, Reporter
from bundler.platforms import choose_platform
from bundler.solve.guards import minor_version

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from bundler.variants import Variant

_LOCAL_SCHEMES = ("", "file")


class OutputFormat(enum.Enum):
    ARGS = "args"
    DEFAULTS = "defaults"
    JSON = "json"


@dataclass(frozen=True)
class SparkConfOptions:
    """What ``bundler spark-conf`` was asked for."""

    variant: str
    archive: str | None = None
    image: str | None = None
    master: str | None = None
    deploy_mode: str = "client"
    upload_path: str | None = None
    driver_python: str | None = None
    platform: str | None = None
    workspace: Path = Path(".")
    gpus_per_executor: int | None = None  # CUDA variants: default 1; 0 turns GPUs off
    executor_cores: int | None = None
    gpu_discovery_script: str | None = None
    published: bool = False  # --archive (default dist/<variant>-<platform>.tar.gz) as published


@dataclass(frozen=True)
class SparkSubmitPlan:
    """The spark-submit settings for one variant; render it with ``render``."""

    variant: str
    manager: ClusterManager
    master: str | None
    deploy_mode: str
    archive: str | None  # "URI#alias"
    archive_key: str | None  # spark.archives or spark.yarn.dist.archives
    conf: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def conf_dict(self) -> dict[str, str]:
        return dict(self.conf)

    def argument_lines(self) -> list[list[str]]:
        """spark-submit arguments, one option (with its value) per line."""
        lines: list[list[str]] = []
        if self.master is not None:
            lines.append(["--master", self.master])
            lines.append(["--deploy-mode", self.deploy_mode])
        if self.archive is not None:
            lines.append(["--archives", self.archive])
        lines.extend(["--conf", f"{k}={v}"] for k, v in self.conf)
        return lines

    def submit_args(self) -> list[str]:
        return [token for line in self.argument_lines() for token in line]

    def defaults(self) -> list[tuple[str, str]]:
        """The same settings as ``spark-defaults.conf`` properties."""
        pairs: list[tuple[str, str]] = []
        if self.master is not None:
            pairs.append(("spark.master", self.master))
            pairs.append(("spark.submit.deployMode", self.deploy_mode))
        if self.archive is not None and self.archive_key is not None:
            pairs.append((self.archive_key, self.archive))
        pairs.extend(self.conf)
        return pairs

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "cluster_manager": self.manager.name,
            "master": self.master,
            "deploy_mode": self.deploy_mode,
            "submit_args": self.submit_args(),
            "conf": dict(self.defaults()),
            "env": dict(self.env),
            "warnings": list(self.warnings),
        }

    def render(self, fmt: OutputFormat) -> str:
        if fmt is OutputFormat.JSON:
            import json

            return json.dumps(self.to_dict(), indent=2)
        if fmt is OutputFormat.DEFAULTS:
            return "\n".join(_properties_line(k, v) for k, v in self.defaults())
        return render_words(self.submit_args())


#: Characters that bash changes in the unquoted output of ``$(...)``: it splits on
#: whitespace and expands ``*`` and ``?`` against the files of the current directory.
#: ``[`` is left alone: ``local-cluster[2,1,1024]`` needs it, and it only expands when
#: a file of exactly that pattern's shape exists.
_UNSAFE_IN_WORD = re.compile(r"[\s*?]")


def render_words(words: list[str]) -> str:
    """spark-submit arguments as one line for ``spark-submit $(bundler spark-conf ...)``.

    The output is not quoted: bash never removes quotes from a command substitution,
    it only splits it on whitespace.  A word that would not survive that is refused.
    """
    for word in words:
        if _UNSAFE_IN_WORD.search(word):
            raise SparkConfError(
                f"{word!r} holds whitespace, '*' or '?', which bash would split or expand "
                "inside $(...)",
                "use --format defaults > FILE and spark-submit --properties-file FILE",
            )
    return " ".join(words)


def _properties_line(key: str, value: str) -> str:
    """One ``spark-defaults.conf`` line, escaped the way java.util.Properties reads it."""
    if "\n" in value or "\r" in value:
        raise SparkConfError(f"{key}: a value with a line break cannot be a Spark property")
    escaped = value.replace("\\", "\\\\")
    if escaped[:1].isspace():
        escaped = "\\" + escaped
    return f"{key} {escaped}"


def _split_archive(uri: str) -> tuple[str, str]:
    """``URI#alias`` -> (URI, alias); the alias defaults to ``env``."""
    base, sep, fragment = uri.partition("#")
    if sep and not fragment:
        raise SparkConfError(f"--archive {uri}: empty #alias")
    alias = fragment or ENV_ALIAS
    if "/" in alias or alias in (".", ".."):
        raise SparkConfError(f"--archive {uri}: #{alias} must be a plain directory name")
    return base, alias


def is_local_uri(uri: str) -> bool:
    """A path on this machine (no scheme, or ``file:``), as opposed to s3a://, https://, ..."""
    scheme = urlsplit(uri).scheme
    # A one-letter scheme is a Windows drive ("C:\\..."), still a local path.
    return scheme in _LOCAL_SCHEMES or len(scheme) == 1


@dataclass(frozen=True)
class _Source:
    """Where the executors' Python comes from: an archive they unpack, or an image."""

    python: str
    conf: tuple[tuple[str, str], ...]
    archive: str | None = None  # "URI#alias"
    archive_key: str | None = None
    warnings: tuple[str, ...] = ()


def plan_spark_conf(
    options: SparkConfOptions,
    *,
    driver_python: str,
    driver_version: tuple[int, int] | None,
    locked_python: str | None,
    lock_note: str | None = None,
    cuda: str | None = None,
) -> SparkSubmitPlan:
    """Decide the spark-submit settings; pure (reads nothing, runs nothing).

    ``locked_python`` is the variant's locked Python version (None when the lock
    is missing or has none; ``lock_note`` then says why, as a warning).  ``cuda`` is
    the variant's CUDA version: a CUDA variant gets Spark's GPU scheduling settings.
    What differs between cluster managers is read from their ``masters`` rows.
    """
    from bundler.deliver.sparkgpu import GpuRequest, plan_gpu

    manager = _checked_manager(options)
    cluster = options.deploy_mode == "cluster"
    if options.image is not None:
        source = _image_source(manager, options, options.image)
    else:
        source = _archive_source(manager, options, cluster)
    gpu_conf, gpu_warnings = plan_gpu(
        manager,
        options.variant,
        cuda,
        GpuRequest(options.gpus_per_executor, options.executor_cores, options.gpu_discovery_script),
    )
    upload_conf, upload_warnings = _upload_path(manager, options.upload_path)
    driver_conf: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    if not cluster:
        driver_conf = (("spark.pyspark.driver.python", driver_python),)
        # For a session started from Python (python app.py, a notebook), where spark-submit
        # does not turn spark.pyspark.* into the workers' environment.
        env = (("PYSPARK_PYTHON", source.python), ("PYSPARK_DRIVER_PYTHON", driver_python))
    version_warnings = _driver_version_warnings(
        options, cluster, driver_python, driver_version, locked_python, lock_note
    )
    return SparkSubmitPlan(
        variant=options.variant,
        manager=manager,
        master=options.master,
        deploy_mode=options.deploy_mode,
        archive=source.archive,
        archive_key=source.archive_key,
        conf=(*source.conf, *gpu_conf, *upload_conf, *driver_conf),
        env=env,
        warnings=(*source.warnings, *gpu_warnings, *upload_warnings, *version_warnings),
    )


def _checked_manager(options: SparkConfOptions) -> ClusterManager:
    """The cluster manager ``--master`` names, refusing what it cannot run as asked."""
    manager = cluster_manager(options.master)
    mode = options.deploy_mode
    if mode not in ("client", "cluster"):
        raise SparkConfError(f"--deploy-mode {mode}: expected client or cluster")
    if (options.archive is None) == (options.image is None):
        raise SparkConfError("pass exactly one of --archive URI or --image TAG")
    if mode == "cluster" and manager.cluster_mode_refusal is not None:
        message, hint = manager.cluster_mode_refusal
        raise SparkConfError(message.format(master=options.master), hint)
    return manager


def _image_source(manager: ClusterManager, options: SparkConfOptions, image: str) -> _Source:
    if not manager.takes_image:
        raise SparkConfError(
            f"--image with --master {options.master}: images are for Kubernetes",
            "use --master k8s://https://HOST:PORT, or --archive on this cluster",
        )
    python = f"{IMAGE_ENV_ROOT}/{options.variant}/bin/python"
    return _Source(python, conf=((K8S_IMAGE_KEY, image), ("spark.pyspark.python", python)))


def _archive_source(manager: ClusterManager, options: SparkConfOptions, cluster: bool) -> _Source:
    assert options.archive is not None
    uri, alias = _split_archive(options.archive)
    problem = manager.archive_problem(urlsplit(uri).path or uri)
    if problem is not None:
        raise SparkConfError(f"--archive {uri}: {problem[0]}", problem[1])
    upload_needed = manager.uploads_local_archive and cluster and is_local_uri(uri)
    if upload_needed and options.upload_path is None:
        raise SparkConfError(
            f"--archive {uri} is a local file: in Kubernetes cluster mode "
            f"spark-submit uploads it to {K8S_UPLOAD_KEY}",
            "pass --upload-path s3a://BUCKET/PATH (or an https/s3a URI as --archive)",
        )
    python = f"./{alias}/bin/python"
    keys = ("spark.pyspark.python", *(manager.cluster_python_keys if cluster else ()))
    return _Source(
        python,
        conf=tuple((key, python) for key in keys),
        archive=f"{uri}#{alias}",
        archive_key=manager.archives_key,
        warnings=(manager.archive_note,) if manager.archive_note else (),
    )


def _upload_path(
    manager: ClusterManager, upload_path: str | None
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(conf, warnings) for ``--upload-path``."""
    if upload_path is None:
        return (), ()
    if manager.takes_upload_path:
        return ((K8S_UPLOAD_KEY, upload_path),), ()
    return (), (f"--upload-path is only used by Kubernetes; ignored for {manager.name}",)


def _driver_version_warnings(
    options: SparkConfOptions,
    cluster: bool,
    driver_python: str,
    driver_version: tuple[int, int] | None,
    locked_python: str | None,
    lock_note: str | None,
) -> tuple[str, ...]:
    """Whether the client-mode driver's Python can share the archive's minor version."""
    if lock_note is not None:
        return (lock_note,)
    if locked_python is None or cluster:
        return ()
    if driver_version is None:
        return (
            f"driver Python {driver_python} not found on PATH: cannot check that its minor "
            f"version matches the {locked_python} of variant {options.variant} "
            "(pass --driver-python)",
        )
    locked_minor = minor_version(locked_python)
    if locked_minor is None or locked_minor == driver_version:
        return ()
    have = f"{driver_version[0]}.{driver_version[1]}"
    want = f"{locked_minor[0]}.{locked_minor[1]}"
    return (
        f"variant {options.variant} locks Python {locked_python} but the driver "
        f"({driver_python}) runs Python {have}; PySpark needs the same minor version "
        f"on the driver and the executors: use a Python {want} driver (--driver-python)",
    )


def _published(options: SparkConfOptions, default: Path) -> SparkConfOptions:
    """``--archive`` replaced by the URI ``bundler publish`` recorded for the local archive
    (``--archive PATH``, else the variant's default), checked against its bytes."""
    from bundler.deliver.published import published_uri

    if options.image is not None:
        raise SparkConfError("--published is for archives, not --image")
    local, sep, alias = (options.archive or "").partition("#")
    if local and not is_local_uri(local):
        raise SparkConfError(
            f"--archive {local} with --published: name the local archive that was published",
            "or drop --published and pass the remote URI yourself",
        )
    path = Path(local).expanduser().resolve() if local else default
    return dataclasses.replace(options, archive=f"{published_uri(path)}{sep}{alias}")


def _driver(options: SparkConfOptions, reporter: Reporter) -> tuple[str, tuple[int, int] | None]:
    """The client-mode driver interpreter as spark-submit will run it, and its version.

    Spark starts the driver of ``spark-submit app.py`` with ``spark.pyspark.driver.python``
    when set, else with ``spark.pyspark.python`` (the archive's, which does not exist on
    this side), so client mode always names it: ``--driver-python``, else the user's
    ``PYSPARK_DRIVER_PYTHON``, else ``python3`` as found on PATH when spark-submit runs.
    Never bundler's own interpreter, which may live in a venv without pyspark.
    """
    if options.deploy_mode == "cluster":
        return "", None
    python = options.driver_python or os.environ.get("PYSPARK_DRIVER_PYTHON") or "python3"
    found = shutil.which(python)
    if found is None:
        return python, None  # plan_spark_conf says that it could not check
    return python, _driver_version(found, python, reporter)


def _driver_version(path: str, python: str, reporter: Reporter) -> tuple[int, int]:
    from bundler import proc

    out = proc.run(
        [path, "-c", "import sys; print(*sys.version_info[:2])"],
        what=f"asking the driver Python ({python}) for its version",
        hint="pass an existing Python interpreter as --driver-python",
        reporter=reporter,
    )
    major, minor = out.stdout.split()
    return (int(major), int(minor))


def spark_conf(options: SparkConfOptions, reporter: Reporter | None = None) -> SparkSubmitPlan:
    """Read the workspace and the variant's lock, then ``plan_spark_conf``."""
    from bundler.solve.guards import read_locked_versions
    from bundler.variants import load_workspace

    reporter = reporter or NullReporter()
    ws = load_workspace(options.workspace)
    variant = ws.get(options.variant)
    platform = choose_platform(variant.platforms, options.platform)

    if options.published:
        options = _published(options, ws.root / "dist" / f"{variant.name}-{platform}.tar.gz")
    archive = options.archive
    local: Path | None = None
    if archive is not None and not options.published:
        uri, sep, alias = archive.partition("#")
        if is_local_uri(uri) and not uri.startswith("file:"):
            local = Path(uri).expanduser().resolve()
            if not local.is_file():
                reporter.warn(f"archive {local} does not exist on this machine")
            archive = f"{local}{sep}{alias}"
        options = dataclasses.replace(options, archive=archive)

    locked_python = None
    lock_note = None
    lock_path = variant.lock_path
    rel = lock_path.relative_to(ws.root) if lock_path.is_relative_to(ws.root) else lock_path
    if not lock_path.is_file():
        lock_note = (
            f"{rel} not found: cannot check that the driver's Python matches the variant's "
            f"(run 'bundler lock {variant.name}')"
        )
    else:
        locked_python = read_locked_versions(lock_path, platform).get("python")
        if locked_python is None:
            lock_note = f"{rel} has no python package for {platform}"

    driver_python, driver_version = _driver(options, reporter)
    return plan_spark_conf(
        options,
        driver_python=driver_python,
        driver_version=driver_version,
        locked_python=locked_python,
        lock_note=lock_note,
        cuda=variant.cuda or content_cuda(variant, platform, local),
    )


def content_cuda(variant: Variant, platform: str, archive: Path | None) -> str | None:
    """The CUDA a variant's content carries, whatever its ``cuda =`` says: the archive's
    manifest when the archive is here, else the lock (``bundler.solve.cudacontent``)."""
    from bundler.artifact.manifest import read_manifest
    from bundler.solve import cudacontent
    from bundler.solve.lockfile import locked_packages

    if archive is not None and archive.is_file():
        with contextlib.suppress(BundlerError):
            manifest = read_manifest(archive)
            if manifest is not None and manifest.cuda is not None:
                return manifest.cuda
    try:
        packages = locked_packages(variant, platform)
    except (BundlerError, OSError):
        return None
    found = cudacontent.from_packages((p.name, p.version, p.manager) for p in packages)
    return found.version if found else None


# --- a local session for users' own tests ------------------------------------------


def _check_python_minor(env_dir: Path, archive: Path) -> None:
    libs = [p.name for p in (env_dir / "lib").glob("python3.*") if p.is_dir()]
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if libs and here not in libs:
        raise SparkConfError(
            f"{archive} holds {', '.join(sorted(libs))} but this driver runs {here}; "
            "PySpark needs the same minor version on the driver and the workers",
            f"run the tests with a {libs[0]} interpreter",
        )


@contextmanager
def local_session(
    archive: Path,
    *,
    app_name: str = "bundler-test",
    conf: Mapping[str, str] | None = None,
) -> Iterator[SparkSession]:
    """A ``local[2]`` SparkSession whose Python workers run from ``archive``.

    The archive is unpacked (safely) into a temporary directory, ``conda-unpack``
    runs when the archive has it, and ``PYSPARK_PYTHON`` points at the unpacked
    ``bin/python`` before the session starts (local mode ignores
    ``spark.pyspark.python`` for its workers).  On exit the session stops, the
    environment variable is restored and the directory is removed.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        raise SparkConfError(
            "a SparkContext is already running in this process; its workers would not use "
            f"{archive}",
            "stop it first (spark.stop())",
        )
    tmp = Path(tempfile.mkdtemp(prefix="bundler-session-"))
    saved = os.environ.get("PYSPARK_PYTHON")
    session: SparkSession | None = None
    try:
        env_dir = tmp / ENV_ALIAS
        safe_extract(Path(archive), env_dir)
        children = [p for p in env_dir.iterdir() if p.is_dir() and not p.is_symlink()]
        if not (env_dir / "bin").exists() and len(children) == 1:
            env_dir = children[0]  # an archive with one enclosing folder
        python = env_dir / "bin" / "python"
        if not python.exists():
            raise SparkConfError(
                f"{archive}: no bin/python inside", "pack an environment with python"
            )
        _check_python_minor(env_dir, Path(archive))
        unpack = env_dir / "bin" / "conda-unpack"
        if unpack.is_file():
            from bundler import proc

            proc.run([python, unpack], what=f"conda-unpack in {env_dir}")
        os.environ["PYSPARK_PYTHON"] = str(python)
        settings = {"spark.ui.enabled": "false", "spark.local.dir": str(tmp / "spark-local")}
        settings.update(conf or {})
        builder: Any = SparkSession.builder.master("local[2]").appName(app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        yield session
    finally:
        if session is not None:
            session.stop()
        if saved is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = saved
        shutil.rmtree(tmp, ignore_errors=True)
