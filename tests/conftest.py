"""Shared fixtures; each lives in tests/support/ beside the code that builds it."""

from __future__ import annotations

from tests.support.channel import local_channel  # noqa: F401
from tests.support.fixtures import (  # noqa: F401
    bundler_cache,
    locked_workspace,
    packed_archive,
)
