"""``bundler spark-conf`` over ``bundler.deliver.spark`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

import enum
import shlex
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bundler.cli.options import JsonOpt, QuietOpt, WorkspaceOpt
from bundler.cli.runner import Output, run

if TYPE_CHECKING:
    from bundler.deliver.spark import OutputFormat, SparkConfOptions, SparkSubmitPlan
    from bundler.events import Reporter


class DeployMode(enum.StrEnum):
    client = "client"
    cluster = "cluster"


class Format(enum.StrEnum):
    args = "args"
    defaults = "defaults"
    json = "json"


# The command's arguments and options, one type each; its signature names them.
VariantArg = Annotated[str, typer.Argument(help="Variant whose environment Spark should use.")]
ArchiveOpt = Annotated[
    str | None,
    typer.Option(
        "--archive",
        help="Archive URI (s3a://, hdfs://, https://, or a local path); "
        "unpacked as ./env on the executors.",
    ),
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="Kubernetes image made by 'bundler image' (no archive)."),
]
PublishedOpt = Annotated[
    bool,
    typer.Option(
        "--published",
        help="Use the immutable URI 'bundler publish' recorded for the local archive "
        "(--archive PATH, default dist/<variant>-<platform>.tar.gz).",
    ),
]
MasterOpt = Annotated[
    str | None,
    typer.Option("--master", help="spark://H:P, yarn, k8s://https://H:P or local-cluster[N,C,M]."),
]
DeployModeOpt = Annotated[DeployMode, typer.Option("--deploy-mode", help="Where the driver runs.")]
UploadPathOpt = Annotated[
    str | None,
    typer.Option(
        "--upload-path",
        help="spark.kubernetes.file.upload.path, for a local archive in k8s cluster mode.",
    ),
]
DriverPythonOpt = Annotated[
    str | None,
    typer.Option(
        "--driver-python",
        help="Driver interpreter in client mode "
        "(default: $PYSPARK_DRIVER_PYTHON, else python3 on PATH).",
    ),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="Lock platform to read (default: this machine's if listed, else the first).",
    ),
]
GpusPerExecutorOpt = Annotated[
    int | None,
    typer.Option(
        "--gpus-per-executor",
        help="CUDA variants: GPUs per executor (0 turns GPU scheduling off).",
        show_default="1",
    ),
]
ExecutorCoresOpt = Annotated[
    int | None,
    typer.Option(
        "--executor-cores",
        help="CUDA variants: cores per executor; its tasks share its GPUs.",
        show_default="1",
    ),
]
GpuDiscoveryScriptOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu-discovery-script",
        help="Script that prints an executor's GPU addresses.",
        show_default="the Spark images' getGpusResources.sh",
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="args: spark-submit arguments; defaults: spark-defaults.conf lines; json.",
    ),
]


def spark_conf_command(
    variant: VariantArg,
    archive: ArchiveOpt = None,
    image: ImageOpt = None,
    published: PublishedOpt = False,
    master: MasterOpt = None,
    deploy_mode: DeployModeOpt = DeployMode.client,
    upload_path: UploadPathOpt = None,
    driver_python: DriverPythonOpt = None,
    platform: PlatformOpt = None,
    gpus_per_executor: GpusPerExecutorOpt = None,
    executor_cores: ExecutorCoresOpt = None,
    gpu_discovery_script: GpuDiscoveryScriptOpt = None,
    fmt: FormatOpt = Format.args,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print the spark-submit settings that make Spark run VARIANT's Python."""
    from bundler.deliver.spark import OutputFormat, SparkConfOptions

    output = OutputFormat.JSON if as_json else OutputFormat(fmt.value)
    options = SparkConfOptions(
        variant=variant,
        archive=archive,
        image=image,
        master=master,
        deploy_mode=deploy_mode.value,
        upload_path=upload_path,
        driver_python=driver_python,
        platform=platform,
        workspace=workspace,
        gpus_per_executor=gpus_per_executor,
        executor_cores=executor_cores,
        gpu_discovery_script=gpu_discovery_script,
        published=published,
    )
    answer = Output(as_json=output is OutputFormat.JSON, quiet=quiet)
    show = partial(print_conf, quiet=quiet)
    run(partial(conf_text, output), options, show, answer, product=True)


@dataclass(frozen=True)
class ConfText:
    """The settings, and their text in the format asked for."""

    plan: "SparkSubmitPlan"
    text: str

    def to_dict(self) -> dict[str, Any]:
        return self.plan.to_dict()


def conf_text(fmt: "OutputFormat", options: "SparkConfOptions", reporter: "Reporter") -> ConfText:
    """The settings as text; their warnings go to stderr, unless the JSON holds them."""
    from bundler.deliver.spark import OutputFormat, spark_conf

    plan = spark_conf(options, reporter)
    if fmt is OutputFormat.JSON:
        return ConfText(plan, "")
    text = plan.render(fmt)  # a value that the format cannot carry is refused here
    for message in plan.warnings:
        reporter.warn(message)
    return ConfText(plan, text)


def print_conf(conf: ConfText, *, quiet: bool) -> None:
    """The settings on stdout; what a session started from Python also needs, on stderr."""
    print(conf.text)
    if not conf.plan.env or quiet:
        return
    print("# for a session started from Python (python app.py, notebooks), also:", file=sys.stderr)
    for key, value in conf.plan.env:
        print(f"#   export {key}={shlex.quote(value)}", file=sys.stderr)
