"""bundler.pipeline: pack as explicit steps, planned before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler import __version__, platforms
from bundler.artifact.content import GROUPS
from bundler.errors import BundlerError, PackError, UnknownVariantError, UsageError
from bundler.pipeline import PackOptions, plan_pack
from bundler.platforms import host_platform
from tests.support.workspace import make_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    # The channel is never read: planning needs no solver and no network.
    return make_workspace(tmp_path / "ws", tmp_path / "no-channel")


def test_a_variant_plan_locks_builds_packs_and_writes_a_manifest(workspace: Path) -> None:
    plan = plan_pack(PackOptions(workspace=workspace, variant="app"))
    assert plan.steps == ("fresh lock", "build", "pack", "manifest")
    assert plan.platform == "linux-64" == plan.identity.platform
    assert plan.output == workspace / "dist" / "app-linux-64.tar.gz"
    assert plan.variant is not None
    assert plan.identity.variant == "app"
    assert plan.identity.inputs_hash == plan.variant.inputs_hash()
    assert plan.identity.imports == ("numpy", "pyarrow", "pandas", "six", "dateutil")
    assert plan.identity.bundler_version == __version__
    assert plan.identity.build_prefix == str(plan.prefix)
    assert plan.prefix.name.startswith("app-linux-64_")
    assert (plan.archive.content, plan.archive.cuda, plan.archive.bytecode) == (
        "executor",
        False,
        True,
    )
    assert not (workspace / "dist").exists()  # planning writes nothing


def test_a_cuda_variant_keeps_static_libraries_and_full_keeps_everything(
    workspace: Path,
) -> None:
    plan = plan_pack(PackOptions(workspace=workspace, variant="gpuapp", full=True))
    assert plan.archive.cuda is True
    assert plan.archive.content == "full" and set(plan.archive.kept) == set(GROUPS)
    assert plan.identity.gpu_imports == ("cudaprobe",)


def test_a_prefix_plan_only_packs(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    out = tmp_path / "env.zip"
    plan = plan_pack(PackOptions(prefix=prefix, output=out, full=True))
    assert plan.steps == ("pack", "manifest")
    assert plan.variant is None and plan.output == out
    assert plan.identity.platform == host_platform()
    assert plan.identity.inputs_hash is None and plan.identity.variant is None
    assert plan.archive.bytecode is False  # a --full pack of a prefix keeps its bytecode
    executor = plan_pack(PackOptions(prefix=prefix, output=out))
    assert executor.archive.bytecode is True and executor.archive.content == "executor"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (PackOptions(), UsageError, r"name a VARIANT or pass --prefix DIR \(not both\)"),
        (
            PackOptions(variant="app", prefix=Path("/nonexistent-env"), output=Path("x.tar.gz")),
            UsageError,
            r"name a VARIANT or pass --prefix DIR \(not both\)",
        ),
        (PackOptions(level=12), UsageError, "name a VARIANT"),  # options first, then values
        (PackOptions(variant="app", level=12), PackError, "--level 12"),
        (
            PackOptions(variant="app", output=Path("app.tar.zst")),
            PackError,
            "unsupported archive suffix",
        ),
        (PackOptions(prefix=Path("/nonexistent-env")), UsageError, "--prefix needs -o PATH"),
        (
            PackOptions(prefix=Path("/nonexistent-env"), output=Path("x.tar.gz")),
            PackError,
            "is not a conda environment",
        ),
    ],
)
def test_bad_options_fail_while_planning(
    workspace: Path, options: PackOptions, error: type[BundlerError], message: str
) -> None:
    if options.variant:
        options = PackOptions(**{**options.__dict__, "workspace": workspace})
    with pytest.raises(error, match=message) as raised:
        plan_pack(options)
    assert raised.value.exit_code == 2
    assert not (workspace / "dist").exists()


def test_an_unknown_variant_is_named(workspace: Path) -> None:
    with pytest.raises(UnknownVariantError, match="nosuch"):
        plan_pack(PackOptions(workspace=workspace, variant="nosuch"))


def _two_platforms(workspace: Path) -> Path:
    """The workspace with a variant ``two`` for linux-64 and linux-aarch64."""
    toml = workspace / "environments" / "variants.toml"
    toml.write_text(
        toml.read_text()
        + '\n[variants.two]\nfiles = ["base.yml"]\nplatforms = ["linux-64", "linux-aarch64"]\n'
    )
    return workspace


@pytest.mark.parametrize(
    ("host", "chosen", "platform"),
    [
        ("linux-aarch64", None, "linux-aarch64"),  # this machine's, listed
        ("osx-arm64", None, "linux-64"),  # not listed: the variant's first
        ("linux-aarch64", "linux-64", "linux-64"),  # --platform
    ],
)
def test_the_platform_names_the_output_and_the_build_prefix(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    chosen: str | None,
    platform: str,
) -> None:
    monkeypatch.setattr(platforms, "host_platform", lambda: host)
    plan = plan_pack(
        PackOptions(workspace=_two_platforms(workspace), variant="two", platform=chosen)
    )
    assert plan.platform == platform == plan.identity.platform
    assert plan.output == workspace / "dist" / f"two-{platform}.tar.gz"
    assert plan.prefix.name.startswith(f"two-{platform}_")


def test_an_output_name_is_kept_and_its_suffix_checked(workspace: Path) -> None:
    out = workspace / "elsewhere" / "app.tgz"
    plan = plan_pack(PackOptions(workspace=workspace, variant="app", output=out))
    assert plan.output == out and plan.platform == "linux-64"
    with pytest.raises(PackError, match="unsupported archive suffix"):
        plan_pack(PackOptions(workspace=workspace, variant="app", output=out.with_suffix(".7z")))


@pytest.mark.parametrize(
    ("full", "keep", "kept", "content"),
    [
        (False, (), (), "executor"),
        (False, ("tests", "pyspark"), ("pyspark", "tests"), "executor"),  # in GROUPS' order
        (False, GROUPS, GROUPS, "full"),
        (True, (), GROUPS, "full"),
    ],
)
def test_kept_groups_decide_the_content(
    workspace: Path, full: bool, keep: tuple[str, ...], kept: tuple[str, ...], content: str
) -> None:
    plan = plan_pack(PackOptions(workspace=workspace, variant="app", full=full, keep=keep))
    assert (plan.archive.kept, plan.archive.content) == (kept, content)
