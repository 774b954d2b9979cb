"""Every command line of the README, run through ``bash -c`` as a user types it.

The README's ```bash blocks are read at collection time; each command becomes one
test, run in a sandbox workspace whose variants are the test workspace's (``base``
becomes ``app``, ``gpu`` becomes ``gpuapp``; see ``tests.support.readme``).  Each
command is claimed by exactly one ``Case``: ``run`` runs it for real (bundler,
spark-submit on a local cluster, buildah), ``record`` runs it with stand-ins for
programs that need a cluster that is not here (spark-submit for YARN, Kubernetes and
remote standalone masters) and checks the argument vector they received,
``elsewhere`` says why a command is not run here.  A README command that no case
claims, or a case that no command uses, fails the suite: the README and the tests
cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bundler.solve.lock import LockOptions, lock_variants
from bundler.variants import load_workspace
from tests.support import baseimage
from tests.support.readme import VARIANT_SWAPS, Case, Swap, readme_commands
from tests.support.s3 import S3Server
from tests.support.workspace import make_workspace

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
COMMANDS = readme_commands()

#: Stands in for spark-submit where the master is not on this machine: it records the
#: argument vector exactly as bash passed it, NUL-separated.
RECORDING_SUBMIT = """#!/bin/sh
printf '%s\\0' "$@" > "$README_ARGV"
"""
#: The application every README spark-submit line runs: it reports, from inside the
#: Python workers, which interpreter ran them and where the modules came from.
APP = """
import json, os, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("readme").getOrCreate()
modules = [m for m in os.environ.get("README_IMPORTS", "").split(",") if m]

def probe(_):
    import importlib, os, sys
    yield {
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "files": {m: importlib.import_module(m).__file__ for m in modules},
    }

rows = spark.sparkContext.parallelize(range(4), 4).mapPartitions(probe).collect()
with open(os.environ["README_RESULT"], "w") as fh:
    json.dump(rows, fh)
spark.stop()
"""

SPARK_CONF_VARIANTS = """\
[variants.app]
files = ["base.yml", "extra.yml"]
imports = ["numpy", "pyarrow", "six", "dateutil"]

[variants.gpuapp]
files = ["base.yml", "gpu.yml"]
cuda = "12.9"
imports = ["six"]
gpu_imports = ["cudaprobe"]
"""


@pytest.fixture(scope="module")
def sandbox(
    local_channel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """A workspace as a user has it after cloning: variants, locks, docker/, app.py."""
    root = tmp_path_factory.mktemp("readme")
    ws = make_workspace(root / "ws", local_channel)
    (ws / "environments" / "variants.toml").write_text(SPARK_CONF_VARIANTS)
    lock_variants(load_workspace(ws), LockOptions())
    shutil.copytree(REPO / "docker", ws / "docker")
    (ws / "app.py").write_text(APP)
    shims = root / "shims"
    shims.mkdir()
    (shims / "spark-submit").write_text(RECORDING_SUBMIT)
    (shims / "spark-submit").chmod(0o755)

    import pyspark

    home = root / "spark-home"  # local-cluster workers write to $SPARK_HOME/work
    home.mkdir()
    for entry in Path(pyspark.__file__).parent.iterdir():
        if entry.name not in ("work", "__pycache__"):
            (home / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SPARK_HOME"] = str(home)
    env["README_HDFS"] = str(root / "hdfs")
    yield SimpleNamespace(root=root, ws=ws, shims=shims, env=env, work=home / "work")
    shutil.rmtree(home / "work", ignore_errors=True)


def bash(
    command: str, sb: SimpleNamespace, *, record: bool = False, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = dict(sb.env, **extra)
    if record:
        env["PATH"] = f"{sb.shims}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=sb.ws,
        env=env,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(proc: subprocess.CompletedProcess[str], command: str) -> None:
    assert proc.returncode == 0, (
        f"$ {command}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )


def ensure_packed(sb: SimpleNamespace, variant: str) -> Path:
    """dist/<variant>-linux-64.tar.gz, packed with the CLI when an earlier case did not."""
    archive = sb.ws / "dist" / f"{variant}-linux-64.tar.gz"
    if not archive.is_file():
        ok(bash(f"bundler pack {variant} --quiet", sb), f"bundler pack {variant}")
    return archive


# ------------------------------------------------------------------ argument checks

_SAFE_WORD = re.compile(r"^[^\s'\"\\]+$")
_WITH_VALUE = {
    "--master",
    "--deploy-mode",
    "--archives",
    "--conf",
    "--py-files",
    "--properties-file",
    "--name",
    "--class",
}


def submit_args(argv: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """spark-submit's view of argv: (options, --conf pairs, the rest), after checking words.

    Every word must be one that bash passed on cleanly: no quote characters, no
    backslashes, no whitespace (those mean the output was not made for ``$(...)``).
    """
    for word in argv:
        assert _SAFE_WORD.match(word), f"spark-submit received {word!r} in {argv}"
    options: dict[str, str] = {}
    conf: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        opt = argv[i]
        assert opt in _WITH_VALUE, f"unexpected spark-submit option {opt} in {argv}"
        value = argv[i + 1]
        if opt == "--conf":
            key, sep, val = value.partition("=")
            assert sep and key.startswith("spark.") and val, f"--conf {value}"
            conf[key] = val
        else:
            options[opt] = value
        i += 2
    return options, conf, argv[i:]


def recorded(sb: SimpleNamespace, command: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    argv_file = sb.root / "argv"
    argv_file.unlink(missing_ok=True)
    ok(bash(command, sb, record=True, README_ARGV=str(argv_file)), command)
    return submit_args(argv_file.read_bytes().decode().split("\0")[:-1])


def ran_on_executors(sb: SimpleNamespace, command: str, modules: str) -> list[dict]:
    result = sb.root / "result.json"
    result.unlink(missing_ok=True)
    proc = bash(command, sb, README_RESULT=str(result), README_IMPORTS=modules)
    if proc.returncode != 0 or not result.is_file():
        logs = [
            f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-20:])
            for log in sorted(sb.work.glob("app-*/*/stderr"))
        ]
        pytest.fail(
            f"$ {command}\nexit {proc.returncode}\n{proc.stderr[-4000:]}\n" + "\n".join(logs)
        )
    sb.driver_log = proc.stderr
    return json.loads(result.read_text())


# ------------------------------------------------------------------ the cases

CHECKS: dict[str, Callable[[SimpleNamespace, str], None]] = {}
CASES: list[Case] = []


def case(c: Case) -> Callable[[Callable[[SimpleNamespace, str], None]], None]:
    def register(check: Callable[[SimpleNamespace, str], None]) -> None:
        CASES.append(c)
        CHECKS[c.name] = check

    return register


@case(Case("quick-start", r"^pip install \. && bundler lock"))
def _quick_start(sb: SimpleNamespace, command: str) -> None:
    # A fresh virtual environment for `pip install .`, run in a copy of the repository
    # whose environments/ are the test workspace's (the real ones need conda-forge).
    # The test environment's packages are visible to it, so pip builds only bundler.
    clone = sb.root / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    shutil.copytree(
        REPO,
        clone,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "dist", "*.egg-info", "__pycache__", ".*_cache", "build"
        ),
    )
    shutil.rmtree(clone / "environments")
    shutil.copytree(sb.ws / "environments", clone / "environments")
    venv = sb.root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    here = [p for p in sys.path if p.endswith("site-packages")]
    (site / "readme-test-env.pth").write_text("\n".join(here) + "\n")
    env = dict(sb.env, PATH=f"{venv / 'bin'}{os.pathsep}{sb.env['PATH']}")
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )
    ok(proc, command)
    assert (venv / "bin" / "bundler").is_file(), "pip install . did not install the CLI"
    archive = clone / "dist" / "gpuapp-linux-64.tar.gz"
    manifest = json.loads((clone / "dist" / "gpuapp-linux-64.tar.gz.json").read_text())
    assert archive.is_file() and manifest["variant"] == "gpuapp"
    assert (clone / "locks" / "app.conda-lock.yml").is_file()


@case(Case("verify", r"^bundler verify dist/"))
def _verify(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "gpuapp")
    proc = bash(command, sb)
    ok(proc, command)
    assert re.search(r"PASS\s+imports", proc.stdout), proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("OK"), proc.stdout


@case(Case("sbom as SPDX", r"^bundler sbom dist/"))
def _sbom_spdx(sb: SimpleNamespace, command: str) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    ensure_packed(sb, "app")
    out = sb.ws / "app-linux-64.spdx.json"
    out.unlink(missing_ok=True)
    ok(bash(command, sb), command)
    assert validate_full_spdx_document(parse_file(str(out))) == []
    names = {p["name"] for p in json.loads(out.read_text())["packages"]}
    assert {"app-linux-64.tar.gz", "python", "six", "numpy", "pyarrow"} <= names, names


@case(Case("licence policy", r"^bundler verify --deny-license "))
def _deny_license(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    proc = bash(command, sb)
    ok(proc, command)
    assert re.search(r"PASS\s+licenses\s+no component under GPL-3.0-only", proc.stdout)
    assert "unknown licence: python 3.11.7 (conda): none declared" in proc.stdout


@case(Case("spark-conf alone", r"^bundler spark-conf \S+ --archive hdfs:"))
def _spark_conf_alone(sb: SimpleNamespace, command: str) -> None:
    proc = bash(command, sb)
    ok(proc, command)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one line: made for $(...)
    words = lines[0].split()
    assert words[words.index("--archives") + 1].startswith("hdfs:///envs/")
    assert all(_SAFE_WORD.match(w) for w in words), words


#: There is no HDFS here: a local directory plays its root (publish treats both alike).
HDFS_SWAP = Swap(r"hdfs:///", "file://$README_HDFS/")


def publish_to(sb: SimpleNamespace, uri: str) -> str:
    """Publish the packed ``app`` archive to ``uri`` (the record's latest); its Spark URI."""
    ensure_packed(sb, "app")
    proc = bash(f"bundler publish app --to {uri} --json", sb)
    ok(proc, f"bundler publish app --to {uri}")
    return str(json.loads(proc.stdout)["spark_uri"])


def published_name(sb: SimpleNamespace) -> str:
    import hashlib

    digest = hashlib.sha256((sb.ws / "dist" / "app-linux-64.tar.gz").read_bytes()).hexdigest()
    return f"app-linux-64-executor-{digest[:16]}.tar.gz"


@case(
    Case(
        "pack and publish to HDFS",
        r"^bundler pack \S+ && bundler publish \S+ --to hdfs:",
        swaps=(*VARIANT_SWAPS, HDFS_SWAP),
    )
)
def _pack_publish(sb: SimpleNamespace, command: str) -> None:
    ok(bash(command, sb), command)
    put = sb.root / "hdfs" / "envs" / published_name(sb)
    assert put.read_bytes() == (sb.ws / "dist" / "app-linux-64.tar.gz").read_bytes()
    assert put.stat().st_mode & 0o004  # readable by others: YARN's PUBLIC cache
    record = json.loads((sb.ws / "dist" / "app-linux-64.tar.gz.published.json").read_text())
    assert record["published"][-1]["uri"] == f"file://{put}"


def hdfs_published(sb: SimpleNamespace) -> str:
    """The HDFS stand-in's URI of ``app``, made the record's latest (as the README does)."""
    return publish_to(sb, f"file://{sb.root / 'hdfs' / 'envs'}")


def _archive_conf(options: dict[str, str], conf: dict[str, str], key: str) -> str:
    return options.get("--archives") or conf[key]


@case(Case("YARN client", r"(?<!\.tar) --published --master yarn\) app\.py$", how="record"))
def _yarn_client(sb: SimpleNamespace, command: str) -> None:
    uri = hdfs_published(sb)
    options, conf, rest = recorded(sb, command)
    assert options["--master"] == "yarn" and options.get("--deploy-mode", "client") == "client"
    assert options["--archives"] == f"{uri}#env" and published_name(sb) in uri
    assert conf["spark.pyspark.python"] == "./env/bin/python"
    assert "spark.pyspark.driver.python" not in conf or conf["spark.pyspark.driver.python"]
    assert rest == ["app.py"]


def tar_published(sb: SimpleNamespace) -> tuple[Path, str]:
    """``gpuapp`` packed as a plain .tar and published to the HDFS stand-in: (tar, URI)."""
    packed = sb.ws / "dist" / "gpuapp-linux-64.tar"
    if not packed.is_file():
        ok(bash(f"bundler pack gpuapp -o {packed}", sb), "bundler pack gpuapp -o ...tar")
    target = f"file://{sb.root / 'hdfs' / 'envs'}"
    proc = bash(f"bundler publish {packed} --to {target} --json", sb)
    ok(proc, f"bundler publish {packed}")
    return packed, str(json.loads(proc.stdout)["spark_uri"])


@case(
    Case(
        "pack .tar and publish to HDFS",
        r"^bundler pack \S+ -o \S+\.tar && bundler publish",
        swaps=(*VARIANT_SWAPS, HDFS_SWAP),
    )
)
def _pack_tar_publish(sb: SimpleNamespace, command: str) -> None:
    import hashlib

    ok(bash(command, sb), command)
    packed = sb.ws / "dist" / "gpuapp-linux-64.tar"
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()
    put = sb.root / "hdfs" / "envs" / f"gpuapp-linux-64-executor-{digest[:16]}.tar"
    assert put.read_bytes() == packed.read_bytes()
    with tarfile.open(put, mode="r:") as tar:  # plain tar, no gzip
        assert tar.getmember("bin/python3.11").mode == 0o755
        assert tar.getmember("bin/python").issym()


@case(Case("YARN plain tar", r"\.tar --published --master yarn\) app\.py$", how="record"))
def _yarn_tar(sb: SimpleNamespace, command: str) -> None:
    _, uri = tar_published(sb)
    options, conf, rest = recorded(sb, command)
    assert options["--master"] == "yarn"
    assert options["--archives"] == f"{uri}#env" and uri.endswith(".tar"), options
    assert conf["spark.pyspark.python"] == "./env/bin/python"
    assert rest == ["app.py"]


@case(Case("YARN cluster", r"--master yarn --deploy-mode cluster\) app\.py$", how="record"))
def _yarn_cluster(sb: SimpleNamespace, command: str) -> None:
    uri = hdfs_published(sb)
    options, conf, rest = recorded(sb, command)
    assert options["--deploy-mode"] == "cluster"
    assert options["--archives"] == f"{uri}#env"
    assert conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./env/bin/python"
    assert "spark.pyspark.driver.python" not in conf  # never in cluster mode
    assert rest == ["app.py"]


@case(Case("publish to S3", r"^bundler publish \S+ --to s3a://"))
def _publish_s3(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    proc = bash(command, sb)
    ok(proc, command)
    body = sb.s3.client().get_object(Bucket="bucket", Key=f"envs/{published_name(sb)}")["Body"]
    assert body.read() == (sb.ws / "dist" / "app-linux-64.tar.gz").read_bytes()


@case(
    Case(
        "Kubernetes, published archive",
        r"^(?!.*--executor-cores)spark-submit \$\(bundler spark-conf \S+ --published.*--master k8s://",
        how="record",
    )
)
def _k8s_remote(sb: SimpleNamespace, command: str) -> None:
    uri = publish_to(sb, "s3a://bucket/envs")
    options, conf, rest = recorded(sb, command)
    assert options["--master"].startswith("k8s://https://")
    assert options["--archives"] == f"s3a://bucket/envs/{published_name(sb)}#env" == f"{uri}#env"
    assert conf["spark.pyspark.python"] == "./env/bin/python"
    assert conf["spark.kubernetes.container.image"]
    assert rest == ["app.py"]


@case(
    Case(
        "Kubernetes, local archive",
        r"--archive dist/.*--master k8s://.*--upload-path",
        how="record",
    )
)
def _k8s_upload(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    options, conf, rest = recorded(sb, command)
    archive = options["--archives"]
    assert archive == f"{sb.ws / 'dist' / 'app-linux-64.tar.gz'}#env", archive
    assert conf["spark.kubernetes.file.upload.path"] == "s3a://bucket/spark-uploads"
    assert rest == ["app.py"]


def _gpu_conf(conf: dict[str, str]) -> None:
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "0.25"
    assert conf["spark.executor.cores"] == "4"
    assert conf["spark.executor.resource.gpu.discoveryScript"].endswith("getGpusResources.sh")


@case(Case("YARN GPU", r"--master yarn .*--executor-cores 4\) app\.py$", how="record"))
def _yarn_gpu(sb: SimpleNamespace, command: str) -> None:
    options, conf, rest = recorded(sb, command)
    assert options["--archives"] == "hdfs:///envs/gpuapp-linux-64.tar.gz#env"
    _gpu_conf(conf)
    assert "spark.executor.resource.gpu.vendor" not in conf
    assert rest == ["app.py"]


@case(Case("Kubernetes GPU", r"--master k8s://.*--executor-cores 4\)", how="record"))
def _k8s_gpu(sb: SimpleNamespace, command: str) -> None:
    options, conf, rest = recorded(sb, command)
    assert options["--archives"] == "s3a://bucket/envs/gpuapp-linux-64.tar.gz#env"
    _gpu_conf(conf)
    assert conf["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert rest == ["app.py"]


@case(Case("Kubernetes, image", r"--image \S+.*--master k8s://", how="record"))
def _k8s_image(sb: SimpleNamespace, command: str) -> None:
    options, conf, rest = recorded(sb, command)
    assert "--archives" not in options
    assert conf["spark.kubernetes.container.image"] == "registry.example/spark-py:app"
    assert conf["spark.pyspark.python"] == "/opt/bundler/envs/app/bin/python"
    assert rest == ["local:///opt/app/app.py"]


@case(Case("standalone", r"--master spark://", how="record"))
def _standalone(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    options, conf, rest = recorded(sb, command)
    assert options["--master"] == "spark://spark-master:7077"
    assert options["--archives"].endswith("/dist/app-linux-64.tar.gz#env")
    assert conf["spark.pyspark.python"] == "./env/bin/python"
    assert rest == ["app.py"]


@case(
    Case(
        "local-cluster",
        r"^SPARK_LOCAL_IP=\S+ spark-submit \$\(bundler spark-conf (?!\S+ --published)",
    )
)
def _local_cluster(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    rows = ran_on_executors(sb, command, "numpy,pyarrow,six,dateutil")
    assert len({r["pid"] for r in rows}) >= 2, rows  # two executor processes
    for row in rows:
        env = Path(row["cwd"]) / "env"
        assert row["executable"] == str(env / "bin" / "python"), row
        for module, path in row["files"].items():
            assert Path(path).resolve().is_relative_to(env.resolve()), (module, path)


@case(Case("publish to a file system", r"^bundler publish \S+ --to \"file://"))
def _publish_file(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    ok(bash(command, sb), command)
    put = sb.ws / "published" / "envs" / published_name(sb)
    assert put.read_bytes() == (sb.ws / "dist" / "app-linux-64.tar.gz").read_bytes()
    assert json.loads(put.with_name(put.name + ".json").read_text())["archive"]["name"] == put.name


@case(
    Case(
        "local-cluster, published",
        r"^SPARK_LOCAL_IP=\S+ spark-submit \$\(bundler spark-conf \S+ --published",
    )
)
def _local_cluster_published(sb: SimpleNamespace, command: str) -> None:
    uri = publish_to(sb, f"file://{sb.ws / 'published' / 'envs'}")
    name = published_name(sb)
    assert uri.endswith(f"/published/envs/{name}"), uri
    rows = ran_on_executors(sb, command, "numpy,six")
    # The driver shipped the archive by its published, immutable URI.
    added = [ln for ln in sb.driver_log.splitlines() if "Added archive" in ln]
    assert added and all(f"{uri.split('//', 1)[1]}#env" in ln for ln in added), added
    assert len({r["pid"] for r in rows}) >= 2, rows  # two executor processes
    for row in rows:
        env = Path(row["cwd"]) / "env"
        assert row["executable"] == str(env / "bin" / "python"), row
        for module, path in row["files"].items():
            assert Path(path).resolve().is_relative_to(env.resolve()), (module, path)


@case(Case("spark-conf as a properties file", r"^bundler spark-conf .*--format defaults >"))
def _spark_conf_defaults(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    conf = sb.ws / "app-env.conf"
    conf.unlink(missing_ok=True)
    ok(bash(command, sb), command)
    props = dict(line.split(" ", 1) for line in conf.read_text().splitlines())
    assert props["spark.master"] == "local-cluster[2,1,1024]"
    assert props["spark.archives"] == f"{sb.ws / 'dist' / 'app-linux-64.tar.gz'}#env"
    assert props["spark.pyspark.python"] == "./env/bin/python"
    assert props["spark.pyspark.driver.python"] == "python3"


@case(Case("spark-submit with the properties file", r"spark-submit --properties-file"))
def _properties_submit(sb: SimpleNamespace, command: str) -> None:
    if not (sb.ws / "app-env.conf").is_file():
        first = next(c for c in COMMANDS if "--format defaults >" in c)
        _spark_conf_defaults(sb, swap_command(_case_of(first), first))
    rows = ran_on_executors(sb, command, "numpy,six")
    assert len({r["pid"] for r in rows}) >= 2, rows
    for row in rows:
        env = Path(row["cwd"]) / "env"
        assert row["executable"] == str(env / "bin" / "python"), row
        for module, path in row["files"].items():
            assert Path(path).resolve().is_relative_to(env.resolve()), (module, path)


@case(Case("pyfiles", r"^bundler pyfiles "))
def _pyfiles(sb: SimpleNamespace, command: str) -> None:
    (sb.ws / "deps.zip").unlink(missing_ok=True)
    proc = bash(command, sb)
    ok(proc, command)
    names = zipfile.ZipFile(sb.ws / "deps.zip").namelist()
    assert "six.py" in names and any(n.startswith("dateutil/") for n in names), names
    assert not any(n.startswith(("numpy/", "pyarrow/")) for n in names)
    assert "numpy" in proc.stdout + proc.stderr  # says what it left out


@case(Case("py-files submit", r"^spark-submit --py-files deps\.zip"))
def _pyfiles_submit(sb: SimpleNamespace, command: str) -> None:
    if not (sb.ws / "deps.zip").is_file():
        ok(bash("bundler pyfiles app -o deps.zip --skip-native", sb), "bundler pyfiles")
    rows = ran_on_executors(sb, command, "dateutil,six")
    for row in rows:
        for module, path in row["files"].items():
            assert "deps.zip" in path, (module, path)


#: Spark images cannot be pulled here: the test base image (tests/support/baseimage.py)
#: stands in for them, and buildah for docker (there is no docker daemon).
BASE_IMAGE_SWAP = Swap(r"apache/spark:\S+", "$README_BASE_IMAGE")


@pytest.fixture(scope="module")
def image_sandbox(sandbox: SimpleNamespace) -> SimpleNamespace:
    from tests.support.channel import cache_root

    base, settings = baseimage.require_base_image(cache_root())
    return SimpleNamespace(**{**vars(sandbox), "env": {**sandbox.env, **settings}, "base": base})


def _remove_image(sb: SimpleNamespace, tag: str) -> None:
    bash(f"buildah rmi {tag} >/dev/null 2>&1 || true", sb)


@case(Case("image", r"^bundler image ", swaps=(*VARIANT_SWAPS, BASE_IMAGE_SWAP)))
def _image(sb: SimpleNamespace, command: str) -> None:
    # The README shows this command in two places; one build proves both.
    if command in IMAGE_BUILT:
        return
    tag = "registry.example/spark-py:app"
    try:
        ok(bash(command, sb, README_BASE_IMAGE=sb.base), command)
        config = json.loads(bash(f"buildah inspect --type image {tag}", sb).stdout)
        docker = config["Docker"]["config"]
        assert docker["Labels"]["io.bundler.variant"] == "app"
        assert "PYSPARK_PYTHON=/opt/bundler/envs/app/bin/python" in docker["Env"]
        probe = bash(
            f"ctr=$(buildah from {tag}) && buildah run --user 185 $ctr -- "
            "/opt/bundler/envs/app/bin/python -c 'import numpy, six; print(numpy.__file__)'; "
            "rc=$?; buildah rm $ctr >/dev/null; exit $rc",
            sb,
        )
        ok(probe, "import from the image")
        assert probe.stdout.startswith("/opt/bundler/envs/app/lib/"), probe.stdout
        IMAGE_BUILT.add(command)
    finally:
        _remove_image(sb, tag)


IMAGE_BUILT: set[str] = set()


@case(
    Case(
        "docker build",
        r"^docker build -f docker/Dockerfile",
        swaps=(*VARIANT_SWAPS, BASE_IMAGE_SWAP, Swap(r"^docker build", "buildah build")),
    )
)
def _docker_build(sb: SimpleNamespace, command: str) -> None:
    ensure_packed(sb, "app")
    tag = "spark-py:app"
    try:
        ok(bash(command, sb, README_BASE_IMAGE=sb.base), command)
        probe = bash(
            f"ctr=$(buildah from {tag}) && buildah run --user 185 $ctr -- "
            "/opt/bundler/envs/app/bin/python -c 'import six, sys; print(sys.prefix)'; "
            "rc=$?; buildah rm $ctr >/dev/null; exit $rc",
            sb,
        )
        ok(probe, "run the image's Python")
        assert probe.stdout.split() == ["/opt/bundler/envs/app"], probe.stdout
    finally:
        _remove_image(sb, tag)


def ensure_ran(sb: SimpleNamespace, pattern: str, done: Path) -> None:
    """Run the README command matching ``pattern`` (as its case does) unless ``done`` exists."""
    if done.exists():
        return
    command = next(c for c in COMMANDS if re.search(pattern, c))
    c = _case_of(command)
    CHECKS[c.name](sb, swap_command(c, command))


@case(Case("pack --full", r"^bundler pack \S+ --full -o "))
def _pack_full(sb: SimpleNamespace, command: str) -> None:
    ok(bash(command, sb), command)
    manifest = json.loads((sb.ws / "dist" / "app-driver.tar.gz.json").read_text())
    assert manifest["kind"] == "full", manifest.get("kind")
    assert manifest["left_out"] == {} or not any(manifest["left_out"].values()), manifest


@case(Case("unpack a driver environment", r"^mkdir -p envs/\S+ && tar -xzf "))
def _unpack_driver(sb: SimpleNamespace, command: str) -> None:
    ensure_ran(sb, r"^bundler pack \S+ --full -o ", sb.ws / "dist" / "app-driver.tar.gz")
    shutil.rmtree(sb.ws / "envs", ignore_errors=True)
    ok(bash(command, sb), command)
    assert (sb.ws / "envs" / "app-driver" / "bin" / "python").is_file()


@case(Case("conda-unpack", r"^envs/\S+/bin/conda-unpack$"))
def _conda_unpack(sb: SimpleNamespace, command: str) -> None:
    env = sb.ws / "envs" / "app-driver"
    ensure_ran(sb, r"^mkdir -p envs/\S+ && tar -xzf ", env / "bin" / "python")
    ok(bash(command, sb), command)
    probe = bash("envs/app-driver/bin/python -c 'import sys, numpy, six; print(sys.prefix)'", sb)
    ok(probe, "the driver environment's Python")
    assert probe.stdout.split() == [str(env)], probe.stdout


@case(Case("YARN client, driver environment", r"--driver-python \"\$PWD/envs/", how="record"))
def _yarn_driver_env(sb: SimpleNamespace, command: str) -> None:
    driver = sb.ws / "envs" / "app-driver" / "bin" / "python"
    ensure_ran(sb, r"^envs/\S+/bin/conda-unpack$", driver)
    uri = hdfs_published(sb)
    options, conf, rest = recorded(sb, command)
    assert conf["spark.pyspark.driver.python"] == str(driver)
    assert options["--archives"] == f"{uri}#env"
    assert rest == ["app.py"]


@case(Case("pack", r"^bundler pack \S+$"))
def _pack(sb: SimpleNamespace, command: str) -> None:
    proc = bash(command, sb)
    ok(proc, command)
    archive = sb.ws / "dist" / "app-linux-64.tar.gz"
    with tarfile.open(archive) as tar:
        assert "bin/python" in tar.getnames()
    assert json.loads((sb.ws / "dist" / "app-linux-64.tar.gz.json").read_text())["variant"] == "app"


@case(
    Case(
        "test suite",
        r"pip install -e '\.\[test\]' && pytest",
        how="elsewhere",
        why="it is the command that runs this suite; CI runs it through .ci/run",
    )
)
def _suite(sb: SimpleNamespace, command: str) -> None:
    raise AssertionError("not run here")


# ------------------------------------------------------------------ the tests


def _case_of(command: str) -> Case:
    found = [c for c in CASES if c.matches(command)]
    assert len(found) == 1, f"README command claimed by {[c.name for c in found]}:\n{command}"
    return found[0]


def test_every_readme_command_has_exactly_one_case() -> None:
    assert COMMANDS, "no ```bash blocks found in README.md"
    for command in COMMANDS:
        _case_of(command)


def test_every_case_is_used_by_the_readme() -> None:
    used = {_case_of(command).name for command in COMMANDS}
    assert used == {c.name for c in CASES}, {c.name for c in CASES} - used


def test_the_swaps_change_only_names() -> None:
    from tests.support.readme import VARIANT_SWAPS, swap

    line = "bundler image base --base x:base --tag y && bundler pack gpu -o gpu-linux-64.tar.gz"
    assert swap(line, VARIANT_SWAPS) == (
        "bundler image app --base x:app --tag y && bundler pack gpuapp -o gpuapp-linux-64.tar.gz"
    )
    assert swap("bundler pack gpu-iceberg", VARIANT_SWAPS) == "bundler pack gpu-iceberg"
    assert isinstance(VARIANT_SWAPS[0], Swap)


def _runnable(command: str) -> bool:
    claimed = [c for c in CASES if c.matches(command)]
    return not (len(claimed) == 1 and claimed[0].how == "elsewhere")


_RUNNABLE = [c for c in COMMANDS if _runnable(c)]


@pytest.fixture(scope="module")
def s3_sandbox(sandbox: SimpleNamespace, s3_server: S3Server) -> SimpleNamespace:
    """The sandbox with a real S3 API (moto_server) that has a bucket named ``bucket``."""
    s3_server.client().create_bucket(Bucket="bucket")
    return SimpleNamespace(
        **{**vars(sandbox), "env": {**sandbox.env, **s3_server.env()}, "s3": s3_server}
    )


@pytest.mark.spark
@pytest.mark.parametrize("command", _RUNNABLE, ids=[c.split("\n")[0][:70] for c in _RUNNABLE])
def test_readme_command(command: str, request: pytest.FixtureRequest) -> None:
    c = _case_of(command)
    fixture = "sandbox"
    if c.name in IMAGE_CASES:
        fixture = "image_sandbox"
    elif c.name in S3_CASES:
        fixture = "s3_sandbox"
    CHECKS[c.name](request.getfixturevalue(fixture), swap_command(c, command))


IMAGE_CASES = {"image", "docker build"}
S3_CASES = {"publish to S3", "Kubernetes, published archive"}


def swap_command(c: Case, command: str) -> str:
    from tests.support.readme import swap

    return swap(command, c.swaps)
