"""CLI command(s) for bundler.deliver.spark (registered by bundler.cli.build_app).

No ``from __future__ import annotations`` here: typer reads the annotations of the
command defined inside ``register``, which refer to names imported there.
"""

import enum
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


class DeployMode(enum.StrEnum):
    client = "client"
    cluster = "cluster"


class Format(enum.StrEnum):
    args = "args"
    defaults = "defaults"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""
    from bundler.cli.options import JsonOpt, QuietOpt, WorkspaceOpt, reporting

    @app.command("spark-conf")
    def spark_conf_command(
        variant: Annotated[str, typer.Argument(help="Variant whose environment Spark should use.")],
        archive: Annotated[
            str | None,
            typer.Option(
                "--archive",
                help="Archive URI (s3a://, hdfs://, https://, or a local path); "
                "unpacked as ./env on the executors.",
            ),
        ] = None,
        image: Annotated[
            str | None,
            typer.Option("--image", help="Kubernetes image made by 'bundler image' (no archive)."),
        ] = None,
        published: Annotated[
            bool,
            typer.Option(
                "--published",
                help="Use the immutable URI 'bundler publish' recorded for the local archive "
                "(--archive PATH, default dist/<variant>-<platform>.tar.gz).",
            ),
        ] = False,
        master: Annotated[
            str | None,
            typer.Option(
                "--master", help="spark://H:P, yarn, k8s://https://H:P or local-cluster[N,C,M]."
            ),
        ] = None,
        deploy_mode: Annotated[
            DeployMode, typer.Option("--deploy-mode", help="Where the driver runs.")
        ] = DeployMode.client,
        upload_path: Annotated[
            str | None,
            typer.Option(
                "--upload-path",
                help="spark.kubernetes.file.upload.path, for a local archive in k8s cluster mode.",
            ),
        ] = None,
        driver_python: Annotated[
            str | None,
            typer.Option(
                "--driver-python",
                help="Driver interpreter in client mode "
                "(default: $PYSPARK_DRIVER_PYTHON, else python3 on PATH).",
            ),
        ] = None,
        platform: Annotated[
            str | None,
            typer.Option(
                "--platform",
                help="Lock platform to read (default: this machine's if listed, else the first).",
            ),
        ] = None,
        gpus_per_executor: Annotated[
            int | None,
            typer.Option(
                "--gpus-per-executor",
                help="CUDA variants: GPUs per executor (0 turns GPU scheduling off).",
                show_default="1",
            ),
        ] = None,
        executor_cores: Annotated[
            int | None,
            typer.Option(
                "--executor-cores",
                help="CUDA variants: cores per executor; its tasks share its GPUs.",
                show_default="1",
            ),
        ] = None,
        gpu_discovery_script: Annotated[
            str | None,
            typer.Option(
                "--gpu-discovery-script",
                help="Script that prints an executor's GPU addresses.",
                show_default="the Spark images' getGpusResources.sh",
            ),
        ] = None,
        fmt: Annotated[
            Format,
            typer.Option(
                "--format",
                help="args: spark-submit arguments; defaults: spark-defaults.conf lines; json.",
            ),
        ] = Format.args,
        workspace: WorkspaceOpt = Path("."),
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Print the spark-submit settings that make Spark run VARIANT's Python."""
        from bundler.deliver.spark import OutputFormat, SparkConfOptions, spark_conf

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
        with reporting(quiet, output is OutputFormat.JSON) as reporter:
            plan = spark_conf(options, reporter)
            text = plan.render(output)
            if output is not OutputFormat.JSON:
                for message in plan.warnings:
                    reporter.warn(message)
        print(text)
        if output is not OutputFormat.JSON and plan.env and not quiet:
            print(
                "# for a session started from Python (python app.py, notebooks), also:",
                file=sys.stderr,
            )
            for key, value in plan.env:
                print(f"#   export {key}={shlex.quote(value)}", file=sys.stderr)
