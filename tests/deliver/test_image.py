"""``bundler image``: the plan and the builders' commands, and a real image with buildah.

The unit tests use fake builder executables on PATH.  The ``image`` tests build a
real image from the test workspace on a base image assembled from this machine's
files (tests/support/baseimage.py), run it with ``buildah run`` as uid 185, and
check what Spark relies on.  CI installs buildah (.ci/install-image-tools.sh) and
runs as root; without buildah these tests fail unless BUNDLER_SKIP_IMAGE_TESTS=1.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundler import __version__
from bundler.artifact import content
from bundler.artifact.manifest import LeftOut, Manifest
from bundler.deliver import image as im
from bundler.errors import ImageError, ToolMissingError
from bundler.events import RecordingReporter
from bundler.proc import TAIL_LINES, run
from tests.support import baseimage
from tests.support.archives import tar_gz
from tests.support.channel import cache_root
from tests.support.cli import error_line, run_cli
from tests.support.fixtures import copy_workspace

DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"
SITE = "lib/python3.11/site-packages"


# ---------------------------------------------------------------- helpers


def _fake_builder(bindir: Path, name: str, script: str) -> Path:
    """An executable ``name`` in ``bindir`` running the given shell body."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return exe


def _only_path(monkeypatch: pytest.MonkeyPatch, bindir: Path) -> None:
    """PATH holds only ``bindir`` plus a directory with /bin/sh's tools the fakes use."""
    tools = bindir.parent / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("sh", "cat", "echo"):
        found = shutil.which(tool)
        if found and not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", f"{bindir}:{tools}")


def _small_workspace(root: Path) -> Path:
    env = root / "environments"
    env.mkdir(parents=True)
    (env / "variants.toml").write_text(
        '[variants.app]\nfiles = ["base.yml"]\nimports = ["six", "pyspark"]\n'
    )
    (env / "base.yml").write_text("channels: [conda-forge]\ndependencies: [python, six]\n")
    (root / "locks").mkdir()
    return root


def _small_archive(dest: Path, suffix: str = ".tar.gz") -> Path:
    archive = tar_gz(dest / f"app-linux-64{suffix}", {"bin/python": b"#!/bin/sh\n"})
    manifest = {
        "variant": "app",
        "platform": "linux-64",
        "inputs_hash": "abc",
        "python": "3.11.7",
        "imports": ["six"],
        "archive": {"sha256": "f" * 64, "size": archive.stat().st_size},
    }
    (dest / f"app-linux-64{suffix}.json").write_text(json.dumps(manifest))
    return archive


INSPECT_JSON = json.dumps(
    {"OCIv1": {"architecture": "amd64", "config": {"Env": ["SPARK_HOME=/opt/spark"]}}}
)


# ---------------------------------------------------------------- Dockerfile contract


def _stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(
        ln for ln in text.splitlines() if not ln.lstrip().startswith("#")
    ))  # fmt: skip
    stages: list[list[tuple[str, str]]] = [[]]
    for line in joined.splitlines():
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def test_dockerfile_final_stage_is_the_base_plus_one_layer() -> None:
    preamble, unpack, final = _stages(DOCKERFILE.read_text())
    # No default base: `bundler image` passes the Spark image of the locked pyspark.
    assert preamble == [("ARG", "BASE_IMAGE")]
    assert unpack[0] == ("FROM", "${BASE_IMAGE} AS unpack")
    assert final[0] == ("FROM", "${BASE_IMAGE}")
    # Only one instruction of the final stage writes files: the environment's COPY.
    writers = [(k, v) for k, v in final if k in ("ADD", "COPY", "RUN")]
    assert writers == [
        ("COPY", "--from=unpack /opt/bundler/envs/${VARIANT} /opt/bundler/envs/${VARIANT}")
    ]
    config = dict(final)
    assert config["USER"] == "185"
    assert config["WORKDIR"] == "/opt/spark/work-dir"
    assert "PYSPARK_PYTHON=/opt/bundler/envs/${VARIANT}/bin/python" in config["ENV"]
    assert "BUNDLER_IMPORTS" in config["HEALTHCHECK"] and "$PYSPARK_PYTHON" in config["HEALTHCHECK"]
    labels = set(re.findall(r"([\w.-]+)=", config["LABEL"]))
    assert {
        im.LABEL_VARIANT,
        im.LABEL_LOCK_HASH,
        im.LABEL_VERSION,
        im.LABEL_ARCHIVE_SHA256,
        im.LABEL_PYTHON,
        im.LABEL_PYSPARK,
        im.LABEL_SBOM_SHA256,
    } <= labels
    # The unpack stage relocates with the archive's own conda-unpack.
    assert any(k == "RUN" and "conda-unpack" in v for k, v in unpack)


def test_build_args_are_exactly_the_dockerfile_args(tmp_path: Path) -> None:
    declared = set(re.findall(r"^ARG (\w+)", DOCKERFILE.read_text(), re.M))
    prepared = im.PreparedArchive(
        path=_small_archive(tmp_path),
        manifest=Manifest.from_dict(
            json.loads((tmp_path / "app-linux-64.tar.gz.json").read_text())
        ),
        plan=content.ContentPlan(),
        env_size=1,
    )
    args = im.build_args(im.ImageOptions(variant="app"), "app", prepared, "b:1")
    assert set(args) == declared
    assert args["VARIANT"] == "app"
    assert args["ARCHIVE"] == "app-linux-64.tar.gz"
    assert args["LOCK_HASH"] == "abc"
    assert args["BUNDLER_VERSION"] == __version__
    assert args["IMPORTS"] == "six"
    assert args["PYSPARK"] == "env"
    assert args["SBOM_SHA256"] == ""  # no SBOM prepared here


def test_build_args_drop_imports_of_left_out_pyspark(tmp_path: Path) -> None:
    prepared = im.PreparedArchive(
        path=tmp_path / "a.tar.gz",
        manifest=Manifest(imports=("pyspark", "pyspark.sql", "pandas")),
        plan=content.ContentPlan(left_out_imports=("pyspark",)),
        env_size=1,
    )
    args = im.build_args(im.ImageOptions(variant="x", compile=False), "x", prepared, "b:1")
    assert args["IMPORTS"] == "pandas"
    assert args["PYSPARK"] == "base"
    assert args["COMPILE"] == "0"


def test_image_json_says_removed_bytes_per_group_as_before() -> None:
    result = im.ImageResult(
        tag="t:1",
        image_id="sha256:1",
        builder="buildah",
        base="b:1",
        variant="app",
        archive=Path("dist/app.tar.gz"),
        archive_sha256="0" * 64,
        archive_size=1,
        env_size=2,
        left_out={"tests": LeftOut(bytes=5, files=2), "docs": LeftOut(bytes=1, files=1)},
        labels={"k": "v"},
    )
    data = result.to_dict()
    assert list(data) == [  # the keys and their order of bundler image --json
        "tag", "image_id", "builder", "base", "variant", "archive", "archive_sha256",
        "archive_size", "env_size", "removed", "labels", "sbom", "sbom_sha256",
    ]  # fmt: skip
    assert data["removed"] == {"tests": 5, "docs": 1}
    assert data["archive"] == "dist/app.tar.gz"


# ---------------------------------------------------------------- builders


@pytest.mark.parametrize("name", im.BUILDERS)
def test_build_command(name: str, tmp_path: Path) -> None:
    builder = im.Builder(name, f"/usr/bin/{name}")
    cmd = builder.build_cmd(
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        tag="t:1",
        build_args={"VARIANT": "app", "IMPORTS": "a b"},
        iidfile=tmp_path / "iid",
    )
    assert cmd[:2] == [f"/usr/bin/{name}", "build"]
    assert cmd[-1] == str(tmp_path)
    at = cmd.index("IMPORTS=a b")
    assert cmd[at - 1] == "--build-arg"
    assert "--platform" not in cmd
    if name == "docker":
        assert "--format" not in cmd
    else:  # HEALTHCHECK needs the docker format; nothing may be pulled
        assert cmd[cmd.index("--format") + 1] == "docker"
        assert "--pull=never" in cmd
    assert builder.inspect_cmd("b")[-1] == "b"


def test_builder_found_skips_docker_without_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    _fake_builder(bindir, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1\n")
    _fake_builder(bindir, "buildah", "exit 0\n")
    _only_path(monkeypatch, bindir)
    assert im.find_builder().name == "buildah"
    with pytest.raises(
        ToolMissingError, match=r"docker \(installed, but its daemon is not reachable\)"
    ):
        im.find_builder("docker")
    with pytest.raises(ToolMissingError, match=r"podman \(not installed\)"):
        im.find_builder("podman")


def test_no_builder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    _fake_builder(bindir, "docker", "exit 1\n")
    _only_path(monkeypatch, bindir)
    with pytest.raises(ToolMissingError) as info:
        im.find_builder()
    assert info.value.message == (
        "no image builder found: docker (installed, but its daemon is not reachable), "
        "podman (not installed), buildah (not installed)"
    )
    assert "apt-get install buildah" in info.value.hint


def test_cli_reports_missing_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _small_workspace(tmp_path / "ws")
    _only_path(monkeypatch, tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    proc = run_cli("image", "app", "--builder", "buildah", cwd=ws)
    assert proc.returncode == 2
    assert error_line(proc).startswith("error: image builder buildah (not installed)")


def test_cli_reports_missing_base_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _small_workspace(tmp_path / "ws")
    bindir = tmp_path / "bin"
    _fake_builder(
        bindir,
        "buildah",
        'echo "error: image not known: $4" >&2; exit 125\n',
    )
    _only_path(monkeypatch, bindir)
    proc = run_cli("image", "app", "--base", "localhost/nope:1", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert line.startswith("error: base image localhost/nope:1 not found in buildah's local images")
    assert "bundler never pulls" in line


def test_cli_build_failure_shows_the_builders_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _small_workspace(tmp_path / "ws")
    archive = _small_archive(tmp_path)
    bindir = tmp_path / "bin"
    _fake_builder(
        bindir,
        "buildah",
        f"""case "$1" in
  inspect) echo '{INSPECT_JSON}' ;;
  build) i=1; while [ $i -le 30 ]; do echo "STEP line $i"; i=$((i + 1)); done
         echo "error building at STEP \\"RUN conda-unpack\\": exit status 1" >&2; exit 1 ;;
esac
""",
    )
    _only_path(monkeypatch, bindir)
    proc = run_cli("image", "app", "--archive", str(archive), "--base", "b:1", cwd=ws)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert line.startswith(
        'error: buildah build of spark-k8s-python-deps:app failed: error building at STEP "RUN'
    )
    first = 32 - TAIL_LINES  # the tail: the error line and the lines before it
    assert f"STEP line {first}\n" in proc.stderr and "STEP line 30\n" in proc.stderr
    assert f"STEP line {first - 1}\n" not in proc.stderr
    assert not list((ws / ".bundler" / "image").glob("context-*"))


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar"])
def test_fake_build_passes_arguments_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    ws = _small_workspace(tmp_path / "ws")
    archive = _small_archive(tmp_path, suffix)
    bindir = tmp_path / "bin"
    log = tmp_path / "build.log"
    _fake_builder(
        bindir,
        "podman",
        f"""case "$1" in
  image) echo '[{INSPECT_JSON}]' ;;
  build) echo "$@" > {log}
         while [ $# -gt 1 ]; do [ "$1" = --iidfile ] && echo sha256:0123 > "$2"; shift; done
         cat "$1/Dockerfile" > /dev/null && cat "$1/app-linux-64{suffix}" > /dev/null ;;
esac
""",
    )
    _only_path(monkeypatch, bindir)
    proc = run_cli("image", "app", "--archive", str(archive), "--base", "b:1", "--json", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["builder"] == "podman"
    assert result["tag"] == "spark-k8s-python-deps:app"
    assert result["image_id"] == "sha256:0123"
    assert result["labels"][im.LABEL_VARIANT] == "app"
    assert result["labels"][im.LABEL_LOCK_HASH] == "abc"
    # an archive without an SBOM beside it: one is made from its content
    assert result["sbom"] == "/opt/bundler/envs/app/sbom.cdx.json"
    assert result["labels"][im.LABEL_SBOM_SHA256] == result["sbom_sha256"]
    assert len(result["sbom_sha256"]) == 64
    assert result["env_size"] == len(b"#!/bin/sh\n")
    args = log.read_text()
    assert "--build-arg VARIANT=app" in args and "--build-arg BASE_IMAGE=b:1" in args
    assert "--pull=never" in args and "--format docker" in args
    assert f"--build-arg ARCHIVE=app-linux-64{suffix}" in args


def test_an_archive_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "app-linux-64.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))
    options = im.ImageOptions(workspace=tmp_path, variant="app", archive=archive)
    with pytest.raises(
        ImageError, match=r"an image needs a tar archive \(\.tar\.gz, \.tgz, \.tar\)"
    ):
        im.prepare_archive(options, None, False, RecordingReporter())  # type: ignore[arg-type]


# ---------------------------------------------------------------- base image config


def test_base_env_and_arch_from_each_builder_shape() -> None:
    buildah = json.loads(INSPECT_JSON)
    docker = {"Architecture": "arm64", "Config": {"Env": ["A=1", "SPARK_HOME=/opt/spark"]}}
    assert im.base_env(buildah) == {"SPARK_HOME": "/opt/spark"}
    assert im.base_env(docker)["A"] == "1"
    assert im.base_arch(buildah) == "amd64"
    assert im.base_arch(docker) == "arm64"
    assert im.base_env({}) == {}


def test_base_of_another_architecture_is_refused() -> None:
    with pytest.raises(im.ImageError, match="is arm64, the archive is linux-64"):
        im._check_arch({"Architecture": "arm64"}, "b", "linux-64")


def test_spark_version_of_a_base_and_the_mismatch_rule() -> None:
    assert im._spark_version({}, "localhost/spark-k8s:3.5.7-hadoop3.4.2") == "3.5.7"
    assert im._spark_version({"SPARK_VERSION": "4.1.0"}, "spark:latest") == "4.1.0"
    assert im._spark_version({}, "eclipse-temurin:17-jre") is None
    warning = im.spark_mismatch("3.5.7", "4.3.0")
    assert warning is not None and "Spark 3.5.7" in warning and "pyspark 4.3.0" in warning
    assert im.spark_mismatch("4.3.1", "4.3.0") is None
    assert im.spark_mismatch(None, "4.3.0") is None
    assert im.spark_mismatch("3.5.7", None) is None


def test_default_base_is_the_locked_spark() -> None:
    assert im.default_base("base", "4.3.0") == "apache/spark:4.3.0"
    with pytest.raises(im.ImageError) as info:
        im.default_base("app", None)
    assert "variant app locks no pyspark" in info.value.one_line()
    assert "--base IMAGE" in info.value.one_line()


def _spark_base_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: str) -> Path:
    """A fake buildah whose base image has SPARK_HOME and SPARK_VERSION=spark; logs calls."""
    log = tmp_path / "calls"
    config = json.dumps(
        {
            "Architecture": "amd64",
            "Docker": {"config": {"Env": ["SPARK_HOME=/opt/spark", f"SPARK_VERSION={spark}"]}},
        }
    )
    _fake_builder(
        tmp_path / "bin",
        "buildah",
        f'echo "$@" >> {log}\ncase "$1" in inspect) cat <<\'EOF\'\n{config}\nEOF\n;; '
        "*) exit 3;; esac\n",
    )
    _only_path(monkeypatch, tmp_path / "bin")
    return log


def _locked_with_pyspark(root: Path, version: str) -> Path:
    ws = _small_workspace(root)
    from bundler.variants import load_workspace

    variant = load_workspace(ws).get("app")
    variant.lock_path.parent.mkdir(parents=True, exist_ok=True)
    variant.lock_path.write_text(
        "version: 1\nmetadata: {}\npackage:\n"
        f"- {{name: pyspark, version: {version}, manager: conda, platform: linux-64}}\n"
    )
    return ws


def test_a_base_of_another_spark_minor_is_refused_before_packing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _locked_with_pyspark(tmp_path / "ws", "4.3.0")
    log = _spark_base_builder(tmp_path, monkeypatch, "3.5.7")
    proc = run_cli("image", "app", "--base", "spark:old", "--builder", "buildah", cwd=ws)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert "Spark 3.5.7" in line and "pyspark 4.3.0" in line
    assert "apache/spark:4.3.0" in line and "--allow-spark-mismatch" in line
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["inspect"]
    assert not (ws / "dist").exists()  # refused before anything was packed


def test_default_base_comes_from_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _locked_with_pyspark(tmp_path / "ws", "4.3.0")
    log = _spark_base_builder(tmp_path, monkeypatch, "4.3.0")
    run_cli("image", "app", "--builder", "buildah", cwd=ws)
    assert log.read_text().splitlines()[0].endswith("apache/spark:4.3.0")


# ---------------------------------------------------------------- a real image


def _inspect(name: str) -> dict[str, Any]:
    return baseimage.image_config(name)


@pytest.fixture(scope="session")
def spark_base_image() -> Iterator[str]:
    """A base image in a private vfs store; the store's settings stay set for the session."""
    name, settings = baseimage.require_base_image(cache_root())
    with baseimage.environ(settings):
        yield name


def _assert_labels(labels: dict[str, str], result: dict[str, Any], sbom: bytes) -> None:
    """The labels name the variant, its lock, bundler, the archive and the SBOM."""
    manifest = json.loads(Path(result["archive"] + ".json").read_text())
    assert labels[im.LABEL_VARIANT] == "app"
    assert labels[im.LABEL_LOCK_HASH] == manifest["inputs_hash"]
    assert labels[im.LABEL_VERSION] == __version__
    assert labels[im.LABEL_ARCHIVE_SHA256] == manifest["archive"]["sha256"]
    # The SBOM pack wrote beside the archive is in the layer; its sha256 is a label.
    assert labels[im.LABEL_SBOM_SHA256] == hashlib.sha256(sbom).hexdigest()
    assert result["sbom_sha256"] == labels[im.LABEL_SBOM_SHA256]
    assert result["sbom"] == "/opt/bundler/envs/app/sbom.cdx.json"


def _assert_one_layer_on(base_image: str, config: dict[str, Any]) -> None:
    """The environment is exactly one layer on top of the base image's."""
    base_layers = _inspect(base_image)["OCIv1"]["rootfs"]["diff_ids"]
    layers = config["OCIv1"]["rootfs"]["diff_ids"]
    assert layers[: len(base_layers)] == base_layers and len(layers) == len(base_layers) + 1


@pytest.mark.integration
@pytest.mark.image
def test_image_runs_the_variant_as_spark_user(
    spark_base_image: str, locked_workspace: Path, tmp_path: Path
) -> None:
    from bundler.check.verify import verify_archive
    from bundler.variants import load_workspace

    ws = copy_workspace(locked_workspace, tmp_path / "ws")
    tag = f"localhost/bundler-test-image:{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    proc = run_cli(
        "image", "app", "--base", spark_base_image, "--tag", tag, "--builder", "buildah",
        "--json", cwd=ws,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    built_s = time.monotonic() - started
    result = json.loads(proc.stdout)
    ctr = ""
    try:
        config = _inspect(tag)
        docker = config["Docker"]["config"]
        env = dict(item.split("=", 1) for item in docker["Env"])
        prefix = "/opt/bundler/envs/app"
        assert env["PYSPARK_PYTHON"] == f"{prefix}/bin/python"
        assert docker["User"] == "185"
        assert docker["WorkingDir"] == "/opt/spark/work-dir"

        sbom = Path(result["archive"] + ".cdx.json").read_bytes()
        _assert_labels(docker["Labels"], result, sbom)
        _assert_one_layer_on(spark_base_image, config)

        ctr = run(["buildah", "from", tag], what="buildah from").stdout.strip()
        inside = run(  # the base image has no cat: the environment's python reads it
            ["buildah", "run", ctr, "--", "/bin/sh", "-c",
             '"$PYSPARK_PYTHON" -c "import sys; sys.stdout.write(open(sys.argv[1]).read())" '
             f"{result['sbom']}"],
            what="read the image's SBOM",
        ).stdout  # fmt: skip
        assert inside == sbom.decode()
        probe = (
            "import os, sys, numpy, pyarrow, six, dateutil\n"
            "assert os.getuid() == 185, os.getuid()\n"
            "assert sys.prefix == os.environ['BUNDLER_ENV'], sys.prefix\n"
            "for m in (numpy, pyarrow, six, dateutil):\n"
            "    assert m.__file__.startswith(sys.prefix + '/lib/'), m.__file__\n"
            "assert numpy.arange(3).sum() == 3\n"
            "try:\n"
            "    open(sys.prefix + '/lib/x', 'w')\n"
            "except PermissionError:\n"
            "    pass\n"
            "else:\n"
            "    raise AssertionError('the environment is writable by uid 185')\n"
            "print(os.getcwd(), sys.prefix)\n"
        )
        out = run(
            ["buildah", "run", "--user", "185", ctr, "--", "/bin/sh", "-c",
             '"$PYSPARK_PYTHON" -c "$0"', probe],
            what="import the variant's modules in the image",
        ).stdout  # fmt: skip
        assert out.split() == ["/opt/spark/work-dir", prefix]

        health = docker["Healthcheck"]["Test"]
        assert health[0] == "CMD-SHELL"
        run(["buildah", "run", ctr, "--", "/bin/sh", "-c", health[1]], what="the healthcheck")
        assert env["BUNDLER_IMPORTS"].split() == ["numpy", "pyarrow", "pandas", "six", "dateutil"]

        # Slimmed: the unused test suites are gone, and the byte-code is there.
        gone = run(
            ["buildah", "run", ctr, "--", "/bin/sh", "-c",
             f"cd {prefix}/{SITE} && for d in numpy/_core/tests pyarrow/tests; do "
             "test -e $d && echo kept $d; done; test -e six.py && "
             "test -e __pycache__/six.cpython-311.pyc && echo ok"],
            what="look at the environment",
        ).stdout  # fmt: skip
        assert gone.split() == ["ok"]
        assert result["removed"]["tests"] > 1_000_000
    finally:
        if ctr:
            run(["buildah", "rm", ctr], what="buildah rm")
        run(["buildah", "rmi", tag], what="buildah rmi")

    # What went into the image passes bundler verify on its own.
    report = verify_archive(Path(result["archive"]))
    assert report.ok, report.render()

    # A second run packs nothing: the executor archive in dist/ is the image layer.
    reporter = RecordingReporter()
    variant = load_workspace(ws).get("app")
    again = im.prepare_archive(
        im.ImageOptions(workspace=ws, variant="app"), variant, True, reporter
    )
    assert again.path == Path(result["archive"])
    assert sum(s.startswith("using ") for s in reporter.steps) == 1, reporter.steps
    assert again.path == ws / "dist" / "app-linux-64.tar.gz"
    print(
        f"\nimage test: built in {built_s:.0f}s; environment "
        f"{result['env_size'] / 2**20:.1f} MiB unpacked (before byte-code), "
        f"{result['archive_size'] / 2**20:.1f} MiB compressed; left out {result['removed']}"
    )
