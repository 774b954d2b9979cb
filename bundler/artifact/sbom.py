"""``<archive>.cdx.json``: a CycloneDX 1.6 SBOM of what an archive really holds.

The document is built from the archive's own metadata files, as packed: the conda
records (``conda-meta/*.json``, their file lists pruned to what went in) and the
``*.dist-info/METADATA`` of the Python distributions pip installed, plus the manifest
(variant, platform, the lock's sha256 of each package, what was left out).  So a
package is a component exactly when its record or dist-info is in the archive:
pyspark and py4j, which an executor archive leaves to Spark, are not components but
are named by a property of the archive (``bundler:provided-by-spark``).

``pack`` collects the same files while it writes (``METADATA_FILE`` says which) and
writes the document with the archive and the manifest, all three or none;
``bundler sbom`` reads them back from an existing archive (``archive_inventory``), so
both give the same bytes.  ``bundler.artifact.spdx`` renders the same inventory as SPDX.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from bundler import __version__
from bundler.artifact.licenses import DeclaredLicense, from_metadata, from_text
from bundler.artifact.manifest import Manifest, PackageRecord, manifest_path, read_manifest
from bundler.artifact.prefix import metadata_headers
from bundler.atomic import atomic_write
from bundler.errors import ManifestError, SbomError
from bundler.events import NullReporter, Reporter

Manager = Literal["conda", "pip"]
SPEC_VERSION = "1.6"
#: The archive members an SBOM is read from.
METADATA_FILE = re.compile(
    r"^(?:conda-meta/[^/]+\.json"
    r"|(?:lib/python\d+\.\d+|Lib)/site-packages/[^/]+\.dist-info/METADATA)$"
)
PROVIDED_BY_SPARK = "bundler:provided-by-spark"
_ANACONDA = ("https://conda.anaconda.org/", "https://repo.anaconda.com/pkgs/")


def sbom_path(archive: Path) -> Path:
    """Where pack writes an archive's SBOM: beside it, its name plus ``.cdx.json``."""
    return archive.with_name(archive.name + ".cdx.json")


def is_metadata(name: str) -> bool:
    return METADATA_FILE.match(name) is not None


@dataclass(frozen=True)
class Component:
    """One distribution in the archive: a conda package or a pip-installed one."""

    name: str  # the conda package name, or the canonical distribution name
    version: str
    manager: Manager
    purl: str
    sha256: str | None = None
    license: DeclaredLicense | None = None
    requires: tuple[str, ...] = ()  # conda package names / canonical distribution names
    provides: tuple[str, ...] = ()  # canonical names of the Python distributions it installs
    member: str = ""  # the metadata file it was read from


@dataclass(frozen=True)
class Inventory:
    """What one archive holds, read from its metadata files and its manifest."""

    name: str
    sha256: str
    manifest: Manifest
    components: tuple[Component, ...]

    @property
    def provided_by_spark(self) -> tuple[PackageRecord, ...]:
        """Packages the archive left out because Spark provides them (pyspark, py4j)."""
        return tuple(p for p in self.manifest.packages if not p.in_archive)

    @property
    def root_ref(self) -> str:
        return f"archive:{self.name}"

    def graph(self) -> dict[str, list[str]]:
        """bom-ref -> the bom-refs it depends on (only components in the archive)."""
        conda = {c.name: c for c in self.components if c.manager == "conda"}
        dists = {d: c for c in self.components for d in c.provides}
        edges: dict[str, list[str]] = {}
        for c in self.components:
            targets = conda if c.manager == "conda" else dists
            refs = {targets[r].purl for r in c.requires if r in targets} - {c.purl}
            edges[c.purl] = sorted(refs)
        return edges


# ---------------------------------------------------------------- reading metadata


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _channel(record: Mapping[str, Any]) -> str | None:
    """The purl ``channel``: a name for anaconda.org channels, else the channel URL."""
    url = str(record.get("url") or "")
    channel = str(record.get("channel") or "") or url.rsplit("/", 2)[0]
    channel = channel.rstrip("/")
    subdir = str(record.get("subdir") or "")
    if subdir and channel.endswith(f"/{subdir}"):
        channel = channel[: -len(subdir) - 1]
    parts = urlsplit(channel)
    if parts.username or parts.password:  # never a credential in an SBOM
        host = parts.hostname or ""
        channel = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    for prefix in _ANACONDA:
        if channel.startswith(prefix):
            channel = channel[len(prefix) :]
            if channel.startswith("t/"):  # a token in the path
                channel = channel.split("/", 2)[2] if channel.count("/") >= 2 else ""
    return channel or None


def conda_purl(record: Mapping[str, Any]) -> str:
    """``pkg:conda/name@version?build=..&channel=..&subdir=..&type=conda|tar.bz2``."""
    from packageurl import PackageURL

    fn = str(record.get("fn") or record.get("url") or "")
    kind = "conda" if fn.endswith(".conda") else "tar.bz2" if fn.endswith(".tar.bz2") else None
    qualifiers = {
        "build": record.get("build"),
        "channel": _channel(record),
        "subdir": record.get("subdir"),
        "type": kind,
    }
    return str(
        PackageURL(
            type="conda",
            name=str(record["name"]),
            version=str(record["version"]),
            qualifiers={k: str(v) for k, v in qualifiers.items() if v},
        ).to_string()
    )


def pypi_purl(name: str, version: str) -> str:
    from packageurl import PackageURL

    return str(PackageURL(type="pypi", name=_canonical(name), version=version).to_string())


def _dist_info(path: str) -> str | None:
    """``lib/python3.11/site-packages/six-1.17.0.dist-info/METADATA`` -> its directory."""
    return str(PurePosixPath(path).parent) if path.endswith(".dist-info/METADATA") else None


def _requires(metadata: Message, environment: Mapping[str, str]) -> tuple[str, ...]:
    """Canonical names of the Requires-Dist entries that apply (no extras)."""
    from packaging.requirements import InvalidRequirement, Requirement

    names = set()
    for line in metadata.get_all("Requires-Dist") or ():
        try:
            req = Requirement(str(line))
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({**environment, "extra": ""}):
            names.add(_canonical(req.name))
    return tuple(sorted(names))


def marker_environment(python: str | None, platform: str | None) -> dict[str, str]:
    """PEP 508 marker values of the archive's Python and platform (not this machine's)."""
    from bundler.platforms import PLATFORMS

    env: dict[str, str] = {}
    if python:
        env.update(python_full_version=python, python_version=".".join(python.split(".")[:2]))
    target = PLATFORMS.get(platform or "")
    if target is not None:
        system = {"linux": ("linux", "Linux", "posix"), "osx": ("darwin", "Darwin", "posix")}
        sys_platform, platform_system, os_name = system.get(
            target.system, ("win32", "Windows", "nt")
        )
        env.update(
            sys_platform=sys_platform,
            platform_system=platform_system,
            os_name=os_name,
            platform_machine=target.archspec,
        )
    return env


def _conda_component(
    member: str, record: Mapping[str, Any], metadata: Mapping[str, bytes], sha: str | None
) -> Component:
    files = [str(f) for f in record.get("files") or ()]
    provides = set()
    for f in files:
        if (info := _dist_info(f)) is not None:
            data = metadata.get(f)
            name = metadata_headers(data).get("Name") if data else None
            provides.add(_canonical(str(name or PurePosixPath(info).name.split("-")[0])))
    depends = {str(d).split()[0] for d in record.get("depends") or () if str(d).strip()}
    return Component(
        name=str(record["name"]),
        version=str(record["version"]),
        manager="conda",
        purl=conda_purl(record),
        sha256=str(record.get("sha256") or "") or sha,
        license=from_text(record.get("license"), "conda record"),
        requires=tuple(sorted(d for d in depends if not d.startswith("__"))),
        provides=tuple(sorted(provides)),
        member=member,
    )


def read_components(metadata: Mapping[str, bytes], manifest: Manifest) -> list[Component]:
    """The components of an archive from its metadata files (``is_metadata`` names them).

    A dist-info that a conda record lists belongs to that conda package; any other is
    a distribution pip installed.  Unreadable conda records are skipped, as conda-pack
    and ``installed_packages`` do.
    """
    hashes = {(p.manager, _canonical(p.name)): p.sha256 for p in manifest.packages}
    components: list[Component] = []
    owned: set[str] = set()
    for member in sorted(m for m in metadata if m.startswith("conda-meta/")):
        try:
            record = json.loads(metadata[member])
            sha = hashes.get(("conda", _canonical(str(record["name"]))))
            component = _conda_component(member, record, metadata, sha)
        except (ValueError, KeyError, TypeError):
            continue
        owned.update(str(f) for f in record.get("files") or ())
        components.append(component)
    python = manifest.python or next((c.version for c in components if c.name == "python"), None)
    environment = marker_environment(python, manifest.platform)
    for member in sorted(m for m in metadata if m.endswith(".dist-info/METADATA")):
        if member in owned:
            continue
        headers = metadata_headers(metadata[member])
        name, version = str(headers.get("Name") or ""), str(headers.get("Version") or "")
        if not name or not version:
            continue
        canonical = _canonical(name)
        components.append(
            Component(
                name=canonical,
                version=version,
                manager="pip",
                purl=pypi_purl(canonical, version),
                sha256=hashes.get(("pip", canonical)),
                license=from_metadata(headers),
                requires=_requires(headers, environment),
                provides=(canonical,),
                member=member,
            )
        )
    return components


def read_directory(root: Path) -> dict[str, bytes]:
    """The metadata files of an unpacked environment (``verify``'s extraction)."""
    found: dict[str, bytes] = {}
    patterns = ("conda-meta/*.json", "lib/python*/site-packages/*.dist-info/METADATA")
    for pattern in (*patterns, "Lib/site-packages/*.dist-info/METADATA"):
        for path in root.glob(pattern):
            name = path.relative_to(root).as_posix()
            if is_metadata(name) and path.is_file():
                found[name] = path.read_bytes()
    return found


def inventory_of(
    name: str, sha256: str, manifest: Manifest, metadata: Mapping[str, bytes]
) -> Inventory:
    components = read_components(metadata, manifest)
    components.sort(key=lambda c: (c.manager, c.name, c.version))
    return Inventory(name, sha256, manifest, tuple(components))


# ---------------------------------------------------------------- CycloneDX


def _licenses(declared: DeclaredLicense | None) -> list[dict[str, Any]]:
    if declared is None:
        return []
    if declared.expression is not None:
        return [{"expression": declared.expression}]
    return [{"license": {"name": name}} for name in declared.names]


def _properties(pairs: Iterable[tuple[str, str | None]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs if v]


def _component(c: Component) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "library",
        "bom-ref": c.purl,
        "name": c.name,
        "version": c.version,
    }
    if c.sha256:
        data["hashes"] = [{"alg": "SHA-256", "content": c.sha256}]
    if c.license is not None:
        data["licenses"] = _licenses(c.license)
    data["purl"] = c.purl
    data["properties"] = _properties(
        [
            ("bundler:manager", c.manager),
            ("bundler:license-source", c.license.source if c.license else None),
            ("bundler:metadata", c.member),
        ]
    )
    return data


def _root(inventory: Inventory) -> dict[str, Any]:
    manifest = inventory.manifest
    spark = ", ".join(f"{p.name}@{p.version}" for p in inventory.provided_by_spark)
    return {
        "type": "file",
        "bom-ref": inventory.root_ref,
        "name": inventory.name,
        "hashes": [{"alg": "SHA-256", "content": inventory.sha256}],
        "properties": _properties(
            [
                ("bundler:variant", manifest.variant),
                ("bundler:platform", manifest.platform),
                ("bundler:kind", manifest.content),
                ("bundler:lock-sha256", manifest.lock_sha256),
                (PROVIDED_BY_SPARK, spark),
            ]
        ),
    }


def cyclonedx(inventory: Inventory) -> dict[str, Any]:
    """The CycloneDX 1.6 document; the same inventory gives the same document."""
    graph = inventory.graph()
    doc: dict[str, Any] = {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {
                "components": [{"type": "application", "name": "bundler", "version": __version__}]
            },
            "component": _root(inventory),
        },
        "components": [_component(c) for c in inventory.components],
        "dependencies": [
            {"ref": inventory.root_ref, "dependsOn": sorted(graph)},
            *({"ref": ref, "dependsOn": deps} for ref, deps in graph.items()),
        ],
    }
    # Reproducible: the serial number is derived from the document itself.
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:bundler:sbom:{digest}")
    return {**doc, "serialNumber": f"urn:uuid:{serial}"}


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


# ---------------------------------------------------------------- bundler sbom

Format = Literal["cyclonedx", "spdx"]
FORMATS: tuple[Format, ...] = ("cyclonedx", "spdx")


def archive_inventory(archive: Path, reporter: Reporter | None = None) -> Inventory:
    """An existing archive's inventory, from its manifest and its own metadata files.

    ManifestError when the manifest is missing or does not describe this archive.
    """
    from bundler.artifact.readers import read_members
    from bundler.digest import sha256_file

    reporter = reporter or NullReporter()
    if not archive.is_file():
        raise SbomError(f"{archive}: no such archive", "pass the path that bundler pack wrote")
    manifest = read_manifest(archive)
    if manifest is None:
        raise ManifestError(
            f"{manifest_path(archive)}: no manifest beside the archive",
            "bundler sbom reads the manifest that bundler pack writes beside each archive",
        )
    reporter.step(f"reading {archive.name}")
    sha = sha256_file(archive)
    if manifest.archive.sha256 and manifest.archive.sha256 != sha:
        raise ManifestError(
            f"{archive}: sha256 {sha} is not the {manifest.archive.sha256} of its manifest",
            "the archive was changed or replaced after packing; pack it again",
        )
    return inventory_of(archive.name, sha, manifest, read_members(archive, is_metadata))


@dataclass(frozen=True)
class SbomOptions:
    archive: Path
    format: str = "cyclonedx"
    output: Path | None = None  # None: the caller prints ``SbomResult.text``


@dataclass(frozen=True)
class SbomResult:
    archive: Path
    format: str
    output: Path | None
    components: int
    provided_by_spark: tuple[str, ...]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "format": self.format,
            "output": str(self.output) if self.output else None,
            "components": self.components,
            "provided_by_spark": list(self.provided_by_spark),
        }


def render(inventory: Inventory, fmt: str) -> str:
    from bundler.artifact.spdx import spdx

    return dumps(cyclonedx(inventory) if fmt == "cyclonedx" else spdx(inventory))


def build_sbom(options: SbomOptions, reporter: Reporter | None = None) -> SbomResult:
    """``bundler sbom``: the document of an existing archive, written to ``output`` if given."""
    if options.format not in FORMATS:
        raise SbomError(
            f"--format {options.format}: unknown SBOM format", f"use {' or '.join(FORMATS)}"
        )
    inventory = archive_inventory(options.archive, reporter)
    text = render(inventory, options.format)
    if options.output is not None:
        with atomic_write(options.output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return SbomResult(
        archive=options.archive,
        format=options.format,
        output=options.output,
        components=len(inventory.components),
        provided_by_spark=tuple(p.name for p in inventory.provided_by_spark),
        text=text,
    )
