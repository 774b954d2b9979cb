"""Read a workspace: ``environments/variants.toml`` and the environment files it names.

A variant is the ordered merge of its overlay files.  Channels merge as in
conda-lock (``merge_channels``: each file's list is the tail of the longest one);
a package named again in a later file replaces the earlier spec (the same holds
for ``pip:`` entries, keyed by normalised distribution name).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bundler.errors import UnknownVariantError, WorkspaceError
from bundler.platforms import DEFAULT_PLATFORMS, KNOWN_PLATFORMS

VARIANTS_FILE = Path("environments") / "variants.toml"
LOCK_SUFFIX = ".conda-lock.yml"
# Bumped when the meaning of a lock's inputs changes, so old locks turn stale.
INPUTS_FORMAT = 1

_VARIANT_KEYS = {"files", "platforms", "cuda", "glibc", "imports", "gpu_imports", "description"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def normalize_pypi_name(name: str) -> str:
    """A distribution's canonical (PEP 503) name, as ``packaging`` gives it."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def spec_name(spec: str) -> str:
    """The package name of a conda match spec such as ``numpy>=2`` or ``conda-forge::numpy``."""
    head = spec.strip().split("::")[-1]
    match = re.match(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)", head)
    return match.group(1).lower() if match else head.lower()


def _pip_name(req: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return normalize_pypi_name(match.group(1)) if match else req.strip().lower()


@dataclass(frozen=True)
class EnvFile:
    """One parsed conda environment file."""

    path: Path
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    workspace: Path
    files: tuple[Path, ...]
    platforms: tuple[str, ...]
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...]
    cuda: str | None = None
    glibc: str | None = None
    imports: tuple[str, ...] = ()
    gpu_imports: tuple[str, ...] = ()
    description: str = ""

    @property
    def lock_path(self) -> Path:
        return self.workspace / "locks" / f"{self.name}{LOCK_SUFFIX}"

    def spec(self, platform: str | None = None) -> dict[str, Any]:
        """Everything that decides the solve, as plain data."""
        data: dict[str, Any] = {
            "format": INPUTS_FORMAT,
            "channels": list(self.channels),
            "dependencies": list(self.dependencies),
            "pip": list(self.pip),
            "cuda": self.cuda,
            "glibc": self.glibc,
        }
        if platform is None:
            data["platforms"] = list(self.platforms)
        else:
            data["platform"] = platform
        return data

    def inputs_hash(self) -> str:
        """Hash of the merged inputs; comments and formatting do not change it."""
        return _hash(self.spec())

    def content_hash(self, platform: str) -> str:
        return _hash(self.spec(platform))

    def relative_files(self) -> list[str]:
        return [str(p.relative_to(self.workspace)) for p in self.files]


def _hash(data: dict[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Workspace:
    root: Path
    variants: dict[str, Variant] = field(default_factory=dict)

    def get(self, name: str) -> Variant:
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none"
            raise UnknownVariantError(
                f"unknown variant '{name}' in {self.root / VARIANTS_FILE}",
                f"known variants: {known}",
            ) from None

    def select(self, names: list[str] | None) -> list[Variant]:
        if not names:
            return list(self.variants.values())
        return [self.get(n) for n in names]


def load_workspace(root: Path) -> Workspace:
    root = root.resolve()
    vfile = root / VARIANTS_FILE
    if not vfile.is_file():
        raise WorkspaceError(
            f"{vfile} not found",
            "run bundler in a workspace (a directory with environments/variants.toml) "
            "or pass --workspace DIR",
        )
    try:
        data = tomllib.loads(_read(vfile))
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{vfile}: {exc}", "fix the TOML syntax") from exc
    table = data.get("variants")
    if not isinstance(table, dict) or not table:
        raise WorkspaceError(f"{vfile}: no [variants.NAME] tables", "define at least one variant")
    cache: dict[Path, EnvFile] = {}
    variants = {}
    for name, body in table.items():
        variants[name] = _load_variant(root, vfile, name, body, cache)
    return Workspace(root=root, variants=variants)


def _check_variant_table(where: str, name: str, body: Any) -> None:
    if not _NAME_RE.match(name):
        raise WorkspaceError(f"{where}: invalid variant name", "use letters, digits, '.', '_', '-'")
    if not isinstance(body, dict):
        raise WorkspaceError(f"{where}: expected a table", "see README: adding a variant")
    unknown = set(body) - _VARIANT_KEYS
    if unknown:
        raise WorkspaceError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
            f"allowed: {', '.join(sorted(_VARIANT_KEYS))}",
        )


def _check_variant_files(where: str, body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The variant's ``files`` and ``platforms``, checked."""
    files = body.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise WorkspaceError(f"{where}: 'files' must be a non-empty list of file names")
    platforms = body.get("platforms", list(DEFAULT_PLATFORMS))
    if not isinstance(platforms, list) or not platforms:
        raise WorkspaceError(f"{where}: 'platforms' must be a non-empty list")
    for p in platforms:
        if p not in KNOWN_PLATFORMS:
            raise WorkspaceError(
                f"{where}: unknown platform '{p}'", f"known: {', '.join(KNOWN_PLATFORMS)}"
            )
    return files, platforms


def _check_variant_versions(where: str, body: dict[str, Any]) -> tuple[Any, Any]:
    """The variant's ``cuda`` and ``glibc`` (None when not set), checked."""
    cuda = body.get("cuda")
    if cuda is not None and not re.fullmatch(r"\d+(\.\d+){0,2}", str(cuda)):
        raise WorkspaceError(f"{where}: cuda = {cuda!r} is not a version", 'write cuda = "12.9"')
    glibc = body.get("glibc")
    if glibc is not None and not re.fullmatch(r"\d+\.\d+", str(glibc)):
        raise WorkspaceError(f"{where}: glibc = {glibc!r} is not a version", 'write glibc = "2.28"')
    return cuda, glibc


def _check_variant_imports(where: str, body: dict[str, Any]) -> None:
    for key in ("imports", "gpu_imports"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise WorkspaceError(f"{where}: '{key}' must be a list of module names")


def _load_variant(
    root: Path, vfile: Path, name: str, body: Any, cache: dict[Path, EnvFile]
) -> Variant:
    where = f"{vfile} [variants.{name}]"
    _check_variant_table(where, name, body)
    files, platforms = _check_variant_files(where, body)
    cuda, glibc = _check_variant_versions(where, body)
    _check_variant_imports(where, body)
    env_files = []
    for fname in files:
        path = (root / "environments" / fname).resolve()
        if path not in cache:
            cache[path] = parse_env_file(path)
        env_files.append(cache[path])
    try:
        merged = merge_env_files(env_files)
    except WorkspaceError as exc:
        raise WorkspaceError(f"variant '{name}': {exc.message}", exc.hint) from None
    return Variant(
        name=name,
        workspace=root,
        files=tuple(f.path for f in env_files),
        platforms=tuple(platforms),
        channels=merged.channels,
        dependencies=merged.dependencies,
        pip=merged.pip,
        cuda=str(cuda) if cuda is not None else None,
        glibc=str(glibc) if glibc is not None else None,
        imports=tuple(body.get("imports", [])),
        gpu_imports=tuple(body.get("gpu_imports", [])),
        description=str(body.get("description", "")),
    )


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkspaceError(f"{path}: cannot read: {reason}", "check its permissions") from exc


def parse_env_file(path: Path) -> EnvFile:
    """Parse a conda environment file, reporting problems with file and line."""
    if not path.is_file():
        raise WorkspaceError(f"{path}: environment file not found", "create it or fix 'files'")
    try:
        root = yaml.compose(_read(path))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise WorkspaceError(
            f"{path}:{line}: invalid YAML: {exc.problem}", "fix the syntax"
        ) from exc
    if root is None or not isinstance(root, yaml.MappingNode):
        raise WorkspaceError(f"{path}:1: expected a mapping with 'channels' and 'dependencies'")
    channels: list[str] = []
    deps: list[str] = []
    pip: list[str] = []
    for key_node, value_node in root.value:
        key = key_node.value
        if key == "channels":
            channels = _string_list(path, value_node, "channels")
        elif key == "dependencies":
            more_deps, more_pip = _dependencies(path, value_node)
            deps.extend(more_deps)
            pip.extend(more_pip)
        elif key in ("name", "prefix", "variables", "platforms", "category"):
            continue
        else:
            raise WorkspaceError(
                f"{path}:{_line(key_node)}: unknown key '{key}'",
                "allowed: name, channels, dependencies",
            )
    return EnvFile(path=path, channels=tuple(channels), dependencies=tuple(deps), pip=tuple(pip))


def _dependencies(path: Path, node: yaml.Node) -> tuple[list[str], list[str]]:
    """(conda specs, pip requirements) of a ``dependencies:`` list."""
    if not isinstance(node, yaml.SequenceNode):
        raise WorkspaceError(f"{path}:{_line(node)}: 'dependencies' must be a list")
    deps: list[str] = []
    pip: list[str] = []
    for item in node.value:
        if isinstance(item, yaml.ScalarNode):
            _check_conda_spec(path, item)
            deps.append(item.value.strip())
        elif isinstance(item, yaml.MappingNode) and len(item.value) == 1:
            sub_key, sub_val = item.value[0]
            if sub_key.value != "pip":
                raise WorkspaceError(
                    f"{path}:{_line(item)}: unexpected mapping '{sub_key.value}'",
                    "only a 'pip:' list may appear among dependencies",
                )
            pip.extend(_string_list(path, sub_val, "pip"))
        else:
            raise WorkspaceError(
                f"{path}:{_line(item)}: a dependency must be a string or a 'pip:' list"
            )
    return deps, pip


def _string_list(path: Path, node: yaml.Node, what: str) -> list[str]:
    if not isinstance(node, yaml.SequenceNode):
        raise WorkspaceError(f"{path}:{_line(node)}: '{what}' must be a list")
    out = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
            raise WorkspaceError(f"{path}:{_line(item)}: '{what}' entries must be strings")
        out.append(str(item.value).strip())
    return out


def _check_conda_spec(path: Path, node: yaml.ScalarNode) -> None:
    from rattler import MatchSpec

    try:
        MatchSpec(node.value)
    except Exception as exc:
        raise WorkspaceError(
            f"{path}:{_line(node)}: invalid package spec '{node.value}': {exc}",
            "use conda match-spec syntax such as 'numpy >=2,<3'",
        ) from exc


def merge_channels(files: list[EnvFile]) -> tuple[str, ...]:
    """The channel lists of ``files`` as one list, by conda-lock's rule (a suffix union).

    The longest list wins, and every other non-empty list must be its tail:
    ``[conda-forge]``, ``[rapidsai, conda-forge]``, ``[conda-forge]`` give
    ``[rapidsai, conda-forge]``.  Two lists that disagree on the order (neither is the
    end of the other) leave no single search order, so they are an error, as in
    conda-lock.  A file without ``channels:`` adds nothing.
    """
    lists = [(env, tuple(ch.rstrip("/") for ch in env.channels)) for env in files]
    if not lists:
        return ()
    longest_env, longest = max(lists, key=lambda item: len(item[1]))
    for env, channels in lists:
        if channels and longest[len(longest) - len(channels) :] != channels:
            raise WorkspaceError(
                f"{env.path}: channels [{', '.join(channels)}] are not the end of "
                f"[{', '.join(longest)}] in {longest_env.path}, so their order is ambiguous",
                "list the shared channels in the same order, the extra ones first, as in "
                "[rapidsai, conda-forge] over [conda-forge]",
            )
    return longest


def merge_env_files(files: list[EnvFile]) -> EnvFile:
    """Merge overlays in order: channels by ``merge_channels``, later specs win."""
    deps: dict[str, str] = {}
    pip: dict[str, str] = {}
    for env in files:
        for spec in env.dependencies:
            deps[spec_name(spec)] = spec
        for req in env.pip:
            pip[_pip_name(req)] = req
    return EnvFile(
        path=files[-1].path,
        channels=merge_channels(files),
        dependencies=tuple(deps.values()),
        pip=tuple(pip.values()),
    )
