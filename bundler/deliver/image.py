"""A variant's packed environment as one layer of a Spark image (``docker/Dockerfile``).

``bundler image`` replaces the hand-made "python-deps" layer of Spark-on-Kubernetes
images.  The environment is packed on the host, so the image build needs no network
and no conda:

1. the image layer holds what executors run, by the rules ``bundler pack`` uses for
   its default executor archive (``bundler.artifact.content``): without pyspark when the base
   image carries Spark, test suites that no other module imports, static libraries,
   man pages.  That is the variant's archive (``dist/<variant>-<platform>.tar.gz``),
   reused when it is fresh, else packed; a base without Spark (pyspark kept) or
   ``--no-slim`` packs into ``.bundler/image/`` instead.  ``bundler verify`` checks
   exactly what goes into the image;
3. the builder (docker, podman or buildah, found when not named) builds the
   Dockerfile from a context that holds only that archive: ``ADD`` extracts it in a
   build stage, ``conda-unpack`` fixes its prefix for ``/opt/bundler/envs/<variant>``
   and one ``COPY`` makes it a single layer of the final image, with the archive's
   SBOM at ``/opt/bundler/envs/<variant>/sbom.cdx.json`` (its sha256 a label).

Nothing is pulled: the base image must already be in the builder's local store.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as host
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler import __version__
from bundler.artifact.content import GROUPS, ContentPlan, read_listing
from bundler.artifact.formats import is_tar, tar_suffixes
from bundler.artifact.manifest import LeftOut, Manifest, manifest_path, read_manifest
from bundler.deliver.layout import IMAGE_ENV_ROOT
from bundler.errors import (
    BundlerError,
    ImageError,
    ManifestError,
    SubprocessError,
    ToolMissingError,
)
from bundler.events import NullReporter, Reporter
from bundler.platforms import DEFAULT_PLATFORM, MACHINE_OCI_ARCH, PLATFORMS
from bundler.proc import run
from bundler.solve.guards import minor_version, same_minor

if TYPE_CHECKING:
    from bundler.variants import Variant

BUILDERS = ("docker", "podman", "buildah")
#: The base image when --base is not given: Apache's Spark image of the locked pyspark.
DEFAULT_BASE_REPOSITORY = "apache/spark"
DEFAULT_REPOSITORY = "spark-k8s-python-deps"
PYSPARK_MODES = ("auto", "keep", "drop")
#: Labels the Dockerfile sets from the build arguments.
LABEL_VARIANT = "io.bundler.variant"
LABEL_LOCK_HASH = "io.bundler.lock-hash"
LABEL_VERSION = "io.bundler.version"
LABEL_ARCHIVE_SHA256 = "io.bundler.archive-sha256"
LABEL_PYTHON = "io.bundler.python"
LABEL_PYSPARK = "io.bundler.pyspark"
LABEL_SBOM_SHA256 = "io.bundler.sbom-sha256"
#: The archive's CycloneDX SBOM inside the image, beside the environment it describes.
SBOM_NAME = "sbom.cdx.json"
_INSTALL_HINT = (
    "install one: 'apt-get install buildah' (or podman), or start the docker daemon; "
    "as root in a container set STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot"
)


@dataclass(frozen=True)
class ImageOptions:
    workspace: Path = Path(".")
    variant: str = ""
    base: str | None = None  # default: apache/spark:<the locked pyspark version>
    tag: str | None = None  # default spark-k8s-python-deps:<variant>
    builder: str | None = None  # docker, podman or buildah; found when None
    platform: str = DEFAULT_PLATFORM
    archive: Path | None = None  # build from this archive as it is: no packing, nothing left out
    pyspark: str = "auto"  # leave pyspark out when the base has Spark (auto), or keep/drop
    # leave out unused test suites, static libraries and docs (--slim; --no-slim keeps them)
    leave_out_unused: bool = True
    compile: bool = True  # byte-compile in the build: executors import faster
    dockerfile: Path | None = None
    allow_spark_mismatch: bool = False


@dataclass(frozen=True)
class ImageResult:
    tag: str
    image_id: str
    builder: str
    base: str
    variant: str
    archive: Path
    archive_sha256: str
    archive_size: int
    env_size: int  # unpacked, before byte-compiling
    left_out: dict[str, LeftOut]  # content group -> what it leaves out
    labels: dict[str, str]
    sbom: str = ""  # its path in the image
    sbom_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "left_out":  # JSON: "removed", each group's bytes
                data["removed"] = {group: left.bytes for group, left in self.left_out.items()}
            else:
                data[key] = value
        data["archive"] = str(self.archive)
        return data


# ---------------------------------------------------------------- builders


@dataclass(frozen=True)
class Builder:
    name: str
    exe: str

    def inspect_cmd(self, image: str) -> list[str]:
        if self.name == "buildah":
            return [self.exe, "inspect", "--type", "image", image]
        return [self.exe, "image", "inspect", image]

    def build_cmd(
        self,
        *,
        context: Path,
        dockerfile: Path,
        tag: str,
        build_args: dict[str, str],
        iidfile: Path,
        oci_platform: str | None = None,
    ) -> list[str]:
        cmd = [self.exe, "build", "-f", str(dockerfile), "-t", tag, "--iidfile", str(iidfile)]
        if self.name != "docker":
            # HEALTHCHECK exists only in the docker format; never pull, the base is local.
            cmd += ["--format", "docker", "--pull=never"]
        if oci_platform:
            cmd += ["--platform", oci_platform]
        for key, value in build_args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        return [*cmd, str(context)]


def _usable(name: str, exe: str) -> str | None:
    """Why ``name`` cannot build here, or None when it can."""
    if name != "docker":
        return None
    try:
        run([exe, "version", "--format", "{{.Server.Version}}"], what="docker", timeout=30)
    except BundlerError:
        return "installed, but its daemon is not reachable"
    return None


def find_builder(name: str | None = None) -> Builder:
    """The named builder, or the first usable of docker, podman and buildah."""
    if name is not None and name not in BUILDERS:
        raise ImageError(f"unknown builder '{name}'", f"use one of {', '.join(BUILDERS)}")
    tried = []
    for candidate in (name,) if name else BUILDERS:
        exe = shutil.which(candidate)
        why = "not installed" if exe is None else _usable(candidate, exe)
        if exe is not None and why is None:
            return Builder(candidate, exe)
        tried.append(f"{candidate} ({why})")
    what = f"image builder {tried[0]}" if name else f"no image builder found: {', '.join(tried)}"
    raise ToolMissingError(what, _INSTALL_HINT)


def inspect_base(builder: Builder, base: str) -> dict[str, Any]:
    """The base image's config from the builder's local store; ImageError if absent."""
    try:
        out = run(builder.inspect_cmd(base), what=f"{builder.name} inspect {base}").stdout
    except SubprocessError as exc:
        raise ImageError(
            f"base image {base} not found in {builder.name}'s local images ({exc.message})",
            f"bundler never pulls: '{builder.name} pull {base}' or build it first; "
            f"'{builder.name} images' lists what is there",
        ) from exc
    data = json.loads(out)
    return data[0] if isinstance(data, list) and data else data


def base_env(config: dict[str, Any]) -> dict[str, str]:
    """Environment variables of an inspected image (buildah, podman or docker shape)."""
    for path in (("OCIv1", "config"), ("Docker", "config"), ("Config",), ("config",)):
        node: Any = config
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get("Env"):
            return dict(item.split("=", 1) for item in node["Env"] if "=" in item)
    return {}


def base_arch(config: dict[str, Any]) -> str | None:
    for node in (config.get("OCIv1"), config.get("Docker"), config):
        if isinstance(node, dict):
            arch = node.get("architecture") or node.get("Architecture")
            if arch:
                return str(arch)
    return None


# ---------------------------------------------------------------- archives


def _manifest(archive: Path) -> Manifest:
    path = manifest_path(archive)
    try:
        manifest = read_manifest(archive)
    except ManifestError as exc:
        raise ImageError(exc.message, exc.hint) from exc
    if manifest is None:
        raise ImageError(
            f"{path}: no manifest beside the archive", "use an archive written by 'bundler pack'"
        )
    return manifest


def _fresh(archive: Path, variant: Variant, platform: str, keep: tuple[str, ...]) -> bool:
    """``archive`` was packed from the variant's current lock, keeping the groups ``keep``."""
    if not archive.is_file():
        return False
    try:
        manifest = _manifest(archive)
    except ImageError:
        return False
    return (
        manifest.variant == variant.name
        and manifest.platform == platform
        and manifest.inputs_hash == variant.inputs_hash()
        and manifest.archive.size == archive.stat().st_size
        and archive.stat().st_mtime >= variant.lock_path.stat().st_mtime
        and manifest.bundler_version == __version__
        and manifest.kept == keep
    )


def packed(
    workspace: Path,
    variant: Variant,
    platform: str,
    output: Path,
    keep: tuple[str, ...] = (),
    reporter: Reporter | None = None,
) -> Path:
    """``output`` packed from the variant's lock, reused while lock and ``keep`` match."""
    from bundler.pipeline import PackOptions, pack_archive
    from bundler.solve.lockfile import require_fresh

    reporter = reporter or NullReporter()
    require_fresh(variant)
    keep = tuple(g for g in GROUPS if g in keep)
    if _fresh(output, variant, platform, keep):
        reporter.step(f"using {output} (packed from the current lock)")
        return output
    options = PackOptions(
        workspace=workspace, variant=variant.name, output=output, platform=platform, keep=keep
    )
    return pack_archive(options, reporter).path


@dataclass(frozen=True)
class PreparedArchive:
    path: Path
    manifest: Manifest
    plan: ContentPlan  # what the archive leaves out (nothing for --archive)
    env_size: int  # unpacked bytes, before byte-compiling
    sbom: bytes = b""  # the archive's CycloneDX SBOM, as it goes into the image


def archive_sbom(archive: Path, manifest: Manifest) -> bytes:
    """The SBOM pack wrote beside ``archive``, or one made from it when that is missing
    or describes another archive (one packed before bundler wrote SBOMs)."""
    from bundler.artifact.readers import read_members
    from bundler.artifact.sbom import cyclonedx, dumps, inventory_of, is_metadata, sbom_path
    from bundler.digest import sha256_file

    beside = sbom_path(archive)
    if beside.is_file():
        data = beside.read_bytes()
        try:
            hashes = json.loads(data)["metadata"]["component"]["hashes"]
        except (ValueError, KeyError, TypeError):
            hashes = []
        if {"alg": "SHA-256", "content": manifest.archive.sha256} in hashes:
            return data
    sbom = inventory_of(
        archive.name, sha256_file(archive), manifest, read_members(archive, is_metadata)
    )
    return dumps(cyclonedx(sbom)).encode()


def prepare_archive(
    options: ImageOptions, variant: Variant, base_has_spark: bool, reporter: Reporter
) -> PreparedArchive:
    """The archive the image is built from: given, or packed for the image (leaving out
    what executors do without)."""
    if options.archive is not None:
        archive = options.archive
        if not archive.is_file():
            raise ImageError(f"{archive}: no such archive", "pass an archive from 'bundler pack'")
        if not is_tar(archive.name):
            raise ImageError(
                f"{archive.name}: an image needs a tar archive ({tar_suffixes()})",
                "pack to .tar.gz",
            )
        listing = read_listing(archive, reporter)
        manifest = _manifest(archive)
        if manifest.variant not in (None, variant.name):
            raise ImageError(f"{archive} holds variant '{manifest.variant}', not {variant.name}")
        sizes = sum(listing.sizes.values())
        return PreparedArchive(
            archive, manifest, ContentPlan(), sizes, archive_sbom(archive, manifest)
        )
    root = variant.workspace
    spark_provides = options.pyspark == "drop" or (options.pyspark == "auto" and base_has_spark)
    keep: tuple[str, ...] = () if spark_provides else ("pyspark",)
    if not options.leave_out_unused:
        keep += tuple(g for g in GROUPS if g != "pyspark")
    name = f"{variant.name}-{options.platform}.tar.gz"
    # The executor archive is the image layer; other contents get their own file.
    output = root / ("dist" if not keep else ".bundler/image") / name
    archive = packed(root, variant, options.platform, output, keep, reporter)
    manifest = _manifest(archive)
    plan = ContentPlan(
        exclude_patterns=manifest.exclude_patterns,
        left_out=dict(manifest.left_out),
        left_out_imports=manifest.left_out_imports,
    )
    env_size = (manifest.installed_size or 0) - manifest.left_out_bytes
    return PreparedArchive(archive, manifest, plan, env_size, archive_sbom(archive, manifest))


# ---------------------------------------------------------------- the command


def _dockerfile(options: ImageOptions, workspace: Path) -> Path:
    candidates = [options.dockerfile] if options.dockerfile else []
    candidates += [workspace / "docker" / "Dockerfile"]
    # Installed from a wheel: the copy shipped as package data.
    candidates += [Path(__file__).resolve().parents[1] / "data" / "Dockerfile"]
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise ImageError("no docker/Dockerfile found", "pass --dockerfile PATH")


def _check_arch(config: dict[str, Any], base: str, platform: str) -> str | None:
    """The --platform to give the builder (None for the host's); ImageError on mismatch."""
    want = PLATFORMS[platform].oci_arch if platform in PLATFORMS else ""
    if not want:
        raise ImageError(f"platform {platform} has no Linux image architecture")
    have = base_arch(config)
    if have and have != want:
        raise ImageError(
            f"base image {base} is {have}, the archive is {platform} ({want})",
            "use a base image of the archive's architecture or pack for the base's",
        )
    return None if MACHINE_OCI_ARCH.get(host.machine()) == want else f"linux/{want}"


def build_args(
    options: ImageOptions, variant: str, prepared: PreparedArchive, base: str
) -> dict[str, str]:
    """The Dockerfile's build arguments for one prepared archive."""
    manifest = prepared.manifest
    left_out = prepared.plan.left_out_imports
    imports = [m for m in manifest.imports if m.split(".")[0] not in left_out]
    return {
        "BASE_IMAGE": base,
        "VARIANT": variant,
        "ARCHIVE": prepared.path.name,
        "LOCK_HASH": manifest.inputs_hash or "",
        "BUNDLER_VERSION": __version__,
        "ARCHIVE_SHA256": manifest.archive.sha256 or "",
        "PYTHON_VERSION": manifest.python or "",
        "IMPORTS": " ".join(imports),
        "PYSPARK": "base" if left_out else "env",
        "COMPILE": "1" if options.compile else "0",
        "SBOM_SHA256": hashlib.sha256(prepared.sbom).hexdigest() if prepared.sbom else "",
    }


def _spark_version(env: dict[str, str], base: str) -> str | None:
    """The base image's Spark version: SPARK_VERSION, else the tag (``spark-k8s:3.5.7-…``)."""
    if env.get("SPARK_VERSION"):
        return env["SPARK_VERSION"]
    m = re.search(r":(?:v)?(\d+\.\d+\.\d+)", base)
    return m.group(1) if m else None


def locked_pyspark(options: ImageOptions, variant: Variant) -> str | None:
    """The pyspark version of the variant's lock (or of ``--archive``'s manifest)."""
    from bundler.solve.guards import read_locked_versions

    if options.archive is not None:
        packages = _manifest(options.archive).packages
        return next((p.version for p in packages if p.name == "pyspark"), None)
    if not variant.lock_path.is_file():
        return None
    return read_locked_versions(variant.lock_path, options.platform).get("pyspark")


def default_base(variant: str, pyspark: str | None) -> str:
    """Apache's Spark image of the locked pyspark version, so the two always agree."""
    if pyspark is None:
        raise ImageError(
            f"variant {variant} locks no pyspark, so there is no Spark version to pick a "
            "base image for",
            "pass --base IMAGE (a Spark image, or a JDK image such as eclipse-temurin:17-jre)",
        )
    return f"{DEFAULT_BASE_REPOSITORY}:{pyspark}"


def spark_mismatch(spark: str | None, pyspark: str | None) -> str | None:
    """Why a base with Spark ``spark`` does not fit a lock with ``pyspark`` (None: it does).

    Spark puts its own pyspark first on the executors' PYTHONPATH, so the base's
    version is the one that runs, against the pandas/pyarrow locked for the other.
    """
    if not spark or not pyspark or same_minor(spark, pyspark):
        return None
    return (
        f"the base image carries Spark {spark} but the variant locks pyspark {pyspark}; "
        f"executors would run Spark {spark}'s pyspark against the locked pandas/pyarrow"
    )


def _check_spark(
    options: ImageOptions, base: str, env: dict[str, str], pyspark: str | None, reporter: Reporter
) -> None:
    if "SPARK_HOME" not in env:
        return
    spark = _spark_version(env, base)
    if spark is None:
        if pyspark is not None:
            reporter.warn(
                f"cannot tell which Spark {base} carries (no SPARK_VERSION, no version tag): "
                f"make sure it is Spark {'.'.join(map(str, minor_version(pyspark) or ()))}, "
                "like the lock"
            )
        return
    problem = spark_mismatch(spark, pyspark)
    if problem is None:
        return
    if options.allow_spark_mismatch:
        reporter.warn(problem)
        return
    assert pyspark is not None
    raise ImageError(
        problem,
        f"use a Spark {'.'.join(pyspark.split('.')[:2])} base image "
        f"({DEFAULT_BASE_REPOSITORY}:{pyspark}), or pass --allow-spark-mismatch",
    )


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def build_image(options: ImageOptions, reporter: Reporter | None = None) -> ImageResult:
    """``bundler image``: pack if needed (leaving out what executors do without) and
    build the image with a local builder."""
    from bundler.variants import load_workspace

    reporter = reporter or NullReporter()
    ws = load_workspace(options.workspace)
    if options.pyspark not in PYSPARK_MODES:
        raise ImageError(f"--pyspark {options.pyspark}", f"use one of {', '.join(PYSPARK_MODES)}")
    variant = ws.get(options.variant)
    dockerfile = _dockerfile(options, ws.root)
    builder = find_builder(options.builder)
    pyspark = locked_pyspark(options, variant)
    base = options.base or default_base(variant.name, pyspark)
    reporter.step(f"checking base image {base} with {builder.name}")
    config = inspect_base(builder, base)
    oci_platform = _check_arch(config, base, options.platform)
    env = base_env(config)
    _check_spark(options, base, env, pyspark, reporter)
    prepared = prepare_archive(options, variant, "SPARK_HOME" in env, reporter)
    args = build_args(options, variant.name, prepared, base)
    tag = options.tag or f"{DEFAULT_REPOSITORY}:{variant.name}"
    scratch = ws.root / ".bundler" / "image"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="context-", dir=scratch) as tmp:
        context = Path(tmp)
        _link_or_copy(prepared.path, context / prepared.path.name)
        (context / f"{prepared.path.name}.cdx.json").write_bytes(prepared.sbom)
        shutil.copyfile(dockerfile, context / "Dockerfile")
        iidfile = Path(tmp + ".iid")
        cmd = builder.build_cmd(
            context=context,
            dockerfile=context / "Dockerfile",
            tag=tag,
            build_args=args,
            iidfile=iidfile,
            oci_platform=oci_platform,
        )
        reporter.step(f"building {tag} from {base} with {builder.name}")
        try:
            run(
                cmd,
                what=f"{builder.name} build of {tag}",
                hint=f"the last lines of {builder.name}'s output follow",
                env={"BUILDKIT_PROGRESS": "plain"},
                reporter=reporter,
            )
            image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
        finally:
            iidfile.unlink(missing_ok=True)
    reporter.step(f"built {tag}")
    labels = {
        LABEL_VARIANT: variant.name,
        LABEL_LOCK_HASH: args["LOCK_HASH"],
        LABEL_VERSION: __version__,
        LABEL_ARCHIVE_SHA256: args["ARCHIVE_SHA256"],
        LABEL_PYTHON: args["PYTHON_VERSION"],
        LABEL_PYSPARK: args["PYSPARK"],
        LABEL_SBOM_SHA256: args["SBOM_SHA256"],
    }
    return ImageResult(
        tag=tag,
        image_id=image_id,
        builder=builder.name,
        base=base,
        variant=variant.name,
        archive=prepared.path,
        archive_sha256=args["ARCHIVE_SHA256"],
        archive_size=prepared.path.stat().st_size,
        env_size=prepared.env_size,
        left_out=dict(prepared.plan.left_out),
        labels=labels,
        sbom=f"{IMAGE_ENV_ROOT}/{variant.name}/{SBOM_NAME}",
        sbom_sha256=args["SBOM_SHA256"],
    )
