"""Solve variants with py-rattler and write their conda-lock files.

Plan, then execute: ``plan_solves`` turns variants into frozen ``SolveStep``s
(channels, specs, virtual packages per platform) that tests inspect without a
solver; ``lock_variants`` runs them all before writing anything, so one failure
leaves every lock as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.errors import ChannelError, GuardError, SolveError, WorkspaceError
from bundler.events import NullReporter, Reporter
from bundler.platforms import PLATFORMS
from bundler.solve import cudacontent
from bundler.solve.distnames import provided_distributions
from bundler.solve.lockfile import (
    LockedPackage,
    LockState,
    PackageChange,
    depends_to_dict,
    lock_state,
    package_changes,
    render_lock,
    write_atomic,
)
from bundler.solve.piplock import resolve_pip
from bundler.variants import Variant, Workspace, spec_name

__all__ = ["LockOptions", "LockResult", "check_locks", "lock_state", "lock_variants"]

DEFAULT_GLIBC = "2.28"
DEFAULT_LINUX = "5.10"


@dataclass(frozen=True)
class LockOptions:
    variants: tuple[str, ...] = ()
    allow_unsupported: bool = False


@dataclass(frozen=True)
class SolveStep:
    """Everything one solve needs: inspectable and solver-free."""

    variant: Variant
    platform: str
    channels: tuple[str, ...]
    specs: tuple[str, ...]
    virtual_packages: tuple[tuple[str, str, str], ...]  # (name, version, build)
    pip: tuple[str, ...]


@dataclass
class LockResult:
    variant: Variant
    path: Path
    packages: list[LockedPackage]
    skipped_pip: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[PackageChange] = field(default_factory=list)  # against the previous lock

    def summary(self) -> str:
        conda = sum(p.manager == "conda" for p in self.packages)
        pip = sum(p.manager == "pip" for p in self.packages)
        plats = ", ".join(self.variant.platforms)
        return f"{conda} conda + {pip} pip packages for {plats}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant.name,
            "path": str(self.path),
            "inputs_hash": self.variant.inputs_hash(),
            "platforms": list(self.variant.platforms),
            "packages": [
                {"name": p.name, "version": p.version, "manager": p.manager, "platform": p.platform}
                for p in self.packages
            ],
            "skipped_pip": self.skipped_pip,
            "warnings": self.warnings,
            "changes": [dataclasses.asdict(c) for c in self.changes],
        }


def virtual_packages(variant: Variant, platform: str) -> tuple[tuple[str, str, str], ...]:
    """The virtual packages a target machine of ``platform`` is assumed to have."""
    out: list[tuple[str, str, str]] = []
    if platform.startswith(("linux", "osx")):
        out.append(("__unix", "0", "0"))
    if platform.startswith("linux"):
        out.append(("__linux", DEFAULT_LINUX, "0"))
        out.append(("__glibc", variant.glibc or DEFAULT_GLIBC, "0"))
    if platform.startswith("osx"):
        out.append(("__osx", PLATFORMS[platform].macos or "11.0", "0"))
    if platform.startswith("win"):
        out.append(("__win", "0", "0"))
    out.append(("__archspec", "1", PLATFORMS[platform].archspec))
    if variant.cuda and not platform.startswith("osx"):
        out.append(("__cuda", variant.cuda, "0"))
    return tuple(out)


def plan_solves(variants: list[Variant]) -> list[SolveStep]:
    steps = []
    for v in variants:
        if not v.channels:
            raise WorkspaceError(
                f"variant '{v.name}': no channels in {', '.join(v.relative_files())}",
                "add a 'channels:' list such as [conda-forge]",
            )
        if not v.dependencies:
            raise WorkspaceError(f"variant '{v.name}': no dependencies", "add 'dependencies:'")
        if v.pip and not any(spec_name(s) == "python" for s in v.dependencies):
            raise WorkspaceError(
                f"variant '{v.name}': a pip: list needs python among the conda dependencies",
                "add python to dependencies",
            )
        for platform in v.platforms:
            steps.append(
                SolveStep(
                    variant=v,
                    platform=platform,
                    channels=v.channels,
                    specs=v.dependencies,
                    virtual_packages=virtual_packages(v, platform),
                    pip=v.pip,
                )
            )
    return steps


def _channel(name: str) -> Any:
    import rattler

    try:
        return rattler.Channel(name)
    except Exception as exc:
        raise WorkspaceError(f"invalid channel '{name}': {exc}", "use a name or a URL") from exc


def _short(message: str, limit: int = 400) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_channel(step: SolveStep, name: str, gateway: Any) -> None:
    """Raise ChannelError when ``name`` cannot be read for ``step.platform``."""
    import rattler

    if name.startswith("file://"):
        local = Path(name.removeprefix("file://"))
        if (
            not (local / "noarch" / "repodata.json").is_file()
            and not (local / step.platform / "repodata.json").is_file()
        ):
            raise ChannelError(
                f"variant '{step.variant.name}': channel {name} is unreachable "
                f"(no {step.platform}/repodata.json or noarch/repodata.json under {local})",
                "index the mirror (rattler-index or conda index) or fix the path",
            )
        return
    try:
        asyncio.run(
            gateway.query(
                [_channel(name)],
                [rattler.Platform(step.platform), rattler.Platform("noarch")],
                ["python"],
                recursive=False,
            )
        )
    except Exception as exc:
        raise ChannelError(
            f"variant '{step.variant.name}': channel '{name}' is unreachable: "
            f"{_short(str(exc), 200)}",
            "check the network or the channel name; offline, list a file:// mirror instead",
        ) from exc


def solve_step(step: SolveStep, reporter: Reporter) -> list[Any]:
    """Run the conda solve of one step; returns rattler RepoDataRecords."""
    import rattler
    from rattler.exceptions import FetchRepoDataError, GatewayError, SolverError

    # One gateway: what the channel probes fetched is reused by the solve.
    gateway = rattler.Gateway()
    for ch in step.channels:
        _check_channel(step, ch, gateway)
    vpkgs = [
        rattler.GenericVirtualPackage(
            rattler.PackageName(n), rattler.Version(ver), rattler.BuildString(build)
        )
        for n, ver, build in step.virtual_packages
    ]
    reporter.step(f"solving {step.variant.name} for {step.platform}")
    try:
        records = asyncio.run(
            rattler.solve(
                sources=[_channel(c) for c in step.channels],
                gateway=gateway,
                # Lenient parsing accepts conda's usual "pyspark 3.5.7" (== 3.5.7).
                specs=[rattler.MatchSpec(spec) for spec in step.specs],
                platforms=[rattler.Platform(step.platform), rattler.Platform("noarch")],
                virtual_packages=vpkgs,
                channel_priority=rattler.ChannelPriority.Strict,
            )
        )
    except SolverError as exc:
        message = str(exc)
        if "__cuda" in message and step.variant.cuda is None:
            raise SolveError(
                f"variant '{step.variant.name}' ({step.platform}): its packages need the "
                "__cuda virtual package but the variant sets no cuda version",
                f'add cuda = "12.9" to [variants.{step.variant.name}] in variants.toml',
            ) from exc
        raise SolveError(
            f"variant '{step.variant.name}' ({step.platform}) cannot be solved: {_short(message)}",
            "relax or fix the specs in " + ", ".join(step.variant.relative_files()),
        ) from exc
    except (FetchRepoDataError, GatewayError) as exc:
        raise ChannelError(
            f"variant '{step.variant.name}' ({step.platform}): fetching channels "
            f"{', '.join(step.channels)} failed: {_short(str(exc), 200)}",
            "check the network or the channel names",
        ) from exc
    except Exception as exc:
        raise SolveError(
            f"variant '{step.variant.name}' ({step.platform}) cannot be solved: {_short(str(exc))}",
            "check the specs in " + ", ".join(step.variant.relative_files()),
        ) from exc
    return list(records)


def lock_step(step: SolveStep, reporter: Reporter) -> tuple[list[LockedPackage], list[str]]:
    records = solve_step(step, reporter)
    packages = [
        LockedPackage(
            name=r.name.normalized,
            version=str(r.version),
            manager="conda",
            platform=step.platform,
            url=str(r.url),
            sha256=r.sha256.hex() if isinstance(r.sha256, bytes) else str(r.sha256),
            md5=r.md5.hex() if isinstance(r.md5, bytes) else str(r.md5),
            build=str(r.build),
            dependencies=depends_to_dict(list(r.depends)),
        )
        for r in records
    ]
    skipped: list[str] = []
    if step.pip:
        python = next((p for p in packages if p.name == "python"), None)
        if python is None:
            raise SolveError(
                f"variant '{step.variant.name}': the solve has no python for the pip: list",
                "add python to dependencies",
            )
        provided = provided_distributions(records, cache=_distnames_cache(), reporter=reporter)
        pip_pkgs, skipped = resolve_pip(
            list(step.pip),
            variant=step.variant.name,
            platform=step.platform,
            python_version=python.version,
            conda_provided=provided,
            glibc=step.variant.glibc or DEFAULT_GLIBC,
            macos=PLATFORMS[step.platform].macos,
            cuda_major=int(step.variant.cuda.split(".")[0]) if step.variant.cuda else None,
            reporter=reporter,
        )
        packages += [
            LockedPackage(
                name=p.name,
                version=p.version,
                manager="pip",
                platform=step.platform,
                url=p.url,
                sha256=p.sha256,
            )
            for p in pip_pkgs
        ]
    return packages, skipped


def _distnames_cache() -> Path:
    from bundler.platforms import cache_root

    return cache_root() / "distnames"


def _guard(
    variant: Variant, packages: list[LockedPackage], allow: bool, reporter: Reporter
) -> list[str]:
    """PySpark compatibility guards on the solved versions; see ``bundler.solve.guards``."""
    from bundler.solve.guards import check_versions, versions_of

    problems = []
    for platform in variant.platforms:
        versions = versions_of(
            (p.name, p.version, p.manager) for p in packages if p.platform == platform
        )
        problems += [
            f"variant '{variant.name}' ({platform}): {v.message}" for v in check_versions(versions)
        ]
    if problems and not allow:
        raise GuardError(
            "; ".join(problems), "fix the pins, or pass --allow-unsupported to lock anyway"
        )
    for text in problems:
        reporter.warn(text)
    return problems


def cuda_warnings(variant: Variant, packages: list[LockedPackage], reporter: Reporter) -> list[str]:
    """A variant whose locked content is CUDA but that sets no ``cuda =``: one line.

    ``cuda =`` is only the ``__cuda`` virtual package for the solver (pip wheels such
    as ``cudf-cu12`` never ask for it); pack, the manifest and spark-conf follow the
    content anyway (``bundler.solve.cudacontent``), but the solver did not check the
    driver version, and conda packages that need ``__cuda`` would not solve.
    """
    if variant.cuda is not None:
        return []
    found = cudacontent.from_packages((p.name, p.version, p.manager) for p in packages)
    if found is None:
        return []
    major = found.version or "12"
    text = (
        f"variant '{variant.name}' holds CUDA ({found.evidence}) but sets no cuda: add "
        f'cuda = "{major if "." in major else major + ".0"}" to [variants.{variant.name}] '
        "in variants.toml so the solver checks the driver it needs"
    )
    reporter.warn(text)
    return [text]


def lock_variants(
    workspace: Workspace, options: LockOptions, reporter: Reporter | None = None
) -> list[LockResult]:
    """Solve the chosen variants and write their locks; nothing is written on error."""
    reporter = reporter or NullReporter()
    variants = workspace.select(list(options.variants))
    steps = plan_solves(variants)
    results: dict[str, LockResult] = {
        v.name: LockResult(variant=v, path=v.lock_path, packages=[]) for v in variants
    }
    for step in steps:
        pkgs, skipped = lock_step(step, reporter)
        results[step.variant.name].packages.extend(pkgs)
        results[step.variant.name].skipped_pip.extend(skipped)
    for result in results.values():
        result.warnings = _guard(
            result.variant, result.packages, options.allow_unsupported, reporter
        )
        result.warnings += cuda_warnings(result.variant, result.packages, reporter)
    for result in results.values():
        result.changes = package_changes(result.path, result.packages)
        write_atomic(result.path, render_lock(result.variant, result.packages))
        reporter.step(f"wrote {result.path}")
    return list(results.values())


def check_locks(workspace: Workspace, names: list[str]) -> list[tuple[Variant, LockState]]:
    return [(v, lock_state(v)) for v in workspace.select(names)]
