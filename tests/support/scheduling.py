"""How pytest-xdist hands the tests to its two workers (see pyproject.toml's addopts).

Each test is a unit of its own, so that the slow Spark and image tests spread over
both workers, except the modules in ``ONE_WORKER``: all their tests go to one worker
as one unit, in file order.

xdist's own ``--dist loadgroup`` with ``xdist_group`` marks would say the same in the
test modules, but it does not group on pytest 9.2 (pytest-dev/pytest-xdist#1386: it
renames node ids through an attribute pytest no longer reads).
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

#: Test modules, by file name wherever they live under tests/, run by one worker.
#: The README cases share one sandbox and build on each other's results (an archive
#: packed by one command is submitted by the next, a properties file, a driver env).
#: The RAPIDS tests share one 6.5 GB prefix and pack one archive per class at a time.
ONE_WORKER = frozenset({"test_readme.py", "test_rapids.py"})


class Scheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose scopes are single tests, or a whole ``ONE_WORKER`` module.

    LoadScopeScheduling hands out the scopes with the most tests first: the README's
    long unit starts at once while the other worker takes single tests.
    """

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module.rsplit("/", 1)[-1] in ONE_WORKER else nodeid
