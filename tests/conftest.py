"""Shared fixtures; each lives in tests/support/ beside the code that builds it."""

from __future__ import annotations

import os
import sys

import pytest

from tests.support.channel import local_channel  # noqa: F401
from tests.support.envs import python_env  # noqa: F401
from tests.support.fixtures import (  # noqa: F401
    bundler_cache,
    full_archive,
    locked_workspace,
    packed_archive,
)
from tests.support.rapids import rapids_prefix, rapids_workspace  # noqa: F401
from tests.support.s3 import s3_server  # noqa: F401
from tests.support.scheduling import Scheduling
from tests.support.sparkenv import spark_env  # noqa: F401

_EXIT_STATUS: list[int] = []

#: For every JVM the tests start (spark-submit, local-cluster executors, the Connect
#: server): JIT with C1 only and one GC thread.  The Spark jobs here run for seconds,
#: where C2 compiling and parallel GC threads cost more CPU than they save: a
#: local-cluster test takes about a third less CPU time on two cores.
JAVA_TOOL_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("JAVA_TOOL_OPTIONS", JAVA_TOOL_OPTIONS)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> Scheduling | None:
    """``--dist load`` (pyproject.toml's addopts): see tests/support/scheduling.py."""
    return Scheduling(config, log) if config.getvalue("dist") == "load" else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Skip interpreter finalisation once rattler ran in this process.

    rattler's runtime threads can abort finalisation (see bundler.cli.main); by now
    every report is written, so leave with pytest's own exit status.  Under
    pytest-xdist this runs in each worker, which has sent its results to the
    controller in pytest_sessionfinish already, and in the controller, whose status
    counts the workers' failures.
    """
    if "rattler" in sys.modules and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
