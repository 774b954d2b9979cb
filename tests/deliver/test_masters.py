"""The cluster-manager rows: which master URL names which manager, and what each row says."""

from __future__ import annotations

import pytest

from bundler.deliver.masters import (
    KUBERNETES,
    LOCAL_CLUSTER,
    MANAGERS,
    STANDALONE,
    UNSPECIFIED,
    YARN,
    ClusterManager,
    cluster_manager,
)
from bundler.errors import SparkConfError


@pytest.mark.parametrize(
    ("master", "manager"),
    [
        (None, UNSPECIFIED),
        ("yarn", YARN),
        (" yarn ", YARN),
        ("k8s://https://k8s:6443", KUBERNETES),
        ("spark://m:7077", STANDALONE),
        ("local-cluster[2,1,1024]", LOCAL_CLUSTER),
    ],
)
def test_master_urls_name_their_manager(master: str | None, manager: ClusterManager) -> None:
    assert cluster_manager(master) is manager


@pytest.mark.parametrize(
    ("master", "match"),
    [
        ("local", "local mode runs Python workers"),
        ("local[*]", r"--master local\[\*\]: local mode"),
        ("mesos://m:5050", "--master mesos://m:5050: Spark 4 removed Mesos"),
        ("yarn-client", "unknown master URL"),
        ("bogus://x", "unknown master URL"),
    ],
)
def test_refused_and_unknown_masters(master: str, match: str) -> None:
    with pytest.raises(SparkConfError, match=match) as info:
        cluster_manager(master)
    assert "\n" not in info.value.one_line()


def test_each_url_names_at_most_one_manager() -> None:
    names = [m.name for m in MANAGERS]
    assert len(set(names)) == len(names) == 6
    for url in ("local", "local[2]", "local-cluster[1,1,512]", "spark://h:1", "yarn", "k8s://h"):
        assert sum(m.names(url) for m in MANAGERS) == 1, url


def test_how_each_manager_ships_an_archive_and_sets_python() -> None:
    assert YARN.archives_key == "spark.yarn.dist.archives"
    assert {m.archives_key for m in (KUBERNETES, STANDALONE, LOCAL_CLUSTER, UNSPECIFIED)} == {
        "spark.archives"
    }
    assert YARN.cluster_python_keys == (
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    )
    assert [m.name for m in MANAGERS if m.takes_image] == ["kubernetes"]
    assert STANDALONE.cluster_mode_refusal is not None
    assert LOCAL_CLUSTER.cluster_mode_refusal == STANDALONE.cluster_mode_refusal
    assert YARN.cluster_mode_refusal is None and KUBERNETES.cluster_mode_refusal is None


def test_archive_problem_follows_the_format_table() -> None:
    assert YARN.archive_problem("/envs/base.tar.gz") is None
    problem = KUBERNETES.archive_problem("/envs/base.tar.zst")
    assert problem is not None and "only unpacks" in problem[0]
